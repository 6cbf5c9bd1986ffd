"""The public API of ``modelward`` is pinned: changing it is a deliberate act."""

from __future__ import annotations

import modelward
import modelward.reporting

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert sorted(modelward.__all__) == EXPECTED


def test_every_name_in_all_exists() -> None:
    for name in modelward.__all__:
        assert hasattr(modelward, name), name
    for name in modelward.reporting.__all__:
        assert hasattr(modelward.reporting, name), name


def test_reporting_api() -> None:
    assert sorted(modelward.reporting.__all__) == [
        "FORMATS", "RENDERERS", "RenderOptions", "Renderer", "get_renderer", "render",
    ]
