"""Renderer output, byte for byte, for one deterministic report (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelward.reporting import RenderOptions, render
from modelward.results import ScanReport


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("report.txt", "text", RenderOptions()),
        ("report-verbose.txt", "text", RenderOptions(verbose=True)),
        ("report-quiet.txt", "text", RenderOptions(quiet=True)),
        ("report.json", "json", RenderOptions()),
        ("report.sarif", "sarif", RenderOptions()),
    ],
)
def test_golden(sample_report: ScanReport, golden: Callable[[str, str], None], name: str,
                fmt: str, options: RenderOptions) -> None:
    golden(name, render(sample_report, fmt, options))


def test_color_output_has_ansi_only_when_asked(sample_report: ScanReport) -> None:
    plain = render(sample_report, "text", RenderOptions())
    colored = render(sample_report, "text", RenderOptions(color=True))
    assert "\x1b[" not in plain
    assert "\x1b[" in colored
