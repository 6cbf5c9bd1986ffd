"""Symbolic analysis of pickle streams (being built: see pickle_analysis/policy.py for the classifier)."""
