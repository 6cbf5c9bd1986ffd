"""``modelward diff``: is a converted model still the model it came from, on every backend?

- `engine`: `diff_models` (source vs converted target) and `diff_backends` (one model on
  several execution providers or devices), returning a `DiffReport`.
- `structural`: graph difference tolerant of legitimate rewrites (backdoor analysis on the
  difference, weights within the conversion's precision, outputs, removed checks).
- `compare`, `tolerance`: output statistics and the bounds each kind of conversion allows.
- `triggers`: inputs that satisfy each input-dependent condition, to *demonstrate* triggers.
- `backends`: the plug-in interface (ONNX Runtime, PyTorch, ``modelward.backends`` entry points).
- `report`, `html`: text, canonical JSON (`report_digest` for lineage records) and HTML.

Unlike ``modelward scan``, diff executes models: the user asks it to run them.
"""

from __future__ import annotations

from typing import Any

from modelward.diff.report import DiffReport, render_text, report_digest, to_json

__all__ = ["DiffOptions", "DiffReport", "diff_backends", "diff_models", "render_text",
           "report_digest", "to_json"]

_ENGINE = frozenset({"DiffOptions", "diff_backends", "diff_models"})


def __getattr__(name: str) -> Any:
    # The engine needs numpy (the `diff` extra); the report model and its rules do not, so
    # `modelward rules` and lineage digests work on a core install.
    if name in _ENGINE:
        from modelward.diff import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
