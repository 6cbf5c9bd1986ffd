"""modelward: security toolkit for machine-learning model artifacts.

A tour of the package:

- `scan_path` (``scan.py``) walks files, folders and archives, identifies each stream by
  content and hands it to a format scanner (``scanners/``) that parses bytes without ever
  loading the model. Pickles go through a symbolic interpreter (``pickle_analysis/``).
- Scanners yield `Finding`s (``findings.py``): a stable rule id, a `Severity`, a message,
  a `Location` and evidence. A `ScanReport` (``results.py``) gathers them per file;
  ``reporting/`` renders it as text, JSON or SARIF.
- `Policy` (``policy.py``) holds the allowlist additions, ignored rules, fail-on level and
  parser limits; ``errors.py`` the exception tree.
- ``cli/`` is the thin ``modelward`` command over all of this.
"""

from __future__ import annotations

__version__ = "0.1.0"

from modelward.errors import ModelwardError
from modelward.findings import Finding, Location, Rule, Severity
from modelward.policy import Limits, Policy, load_policy
from modelward.results import ExitCode, FileResult, ScanReport, Status
from modelward.scan import scan_bytes, scan_path

__all__ = [
    "ExitCode",
    "FileResult",
    "Finding",
    "Limits",
    "Location",
    "ModelwardError",
    "Policy",
    "Rule",
    "ScanReport",
    "Severity",
    "Status",
    "__version__",
    "load_policy",
    "scan_bytes",
    "scan_path",
]
