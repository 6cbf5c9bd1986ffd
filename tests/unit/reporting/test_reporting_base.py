"""Shared reporting helpers: escaping, fingerprints, renderer lookup."""

from __future__ import annotations

import pytest
from mw_reporting_helpers import finding, make_report

from modelward.errors import InputError
from modelward.reporting import FORMATS, get_renderer, render
from modelward.reporting.base import finding_fingerprint, printable, rule_help_uri


def test_printable_escapes_controls_and_bidi() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("a\nb") == "a\\x0ab"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    assert printable("\u202e\u200b") == "\\u202e\\u200b"
    assert printable("naïve 模型 ✓") == "naïve 模型 ✓"


def test_fingerprint_covers_location_and_evidence_not_message() -> None:
    base = finding(offset=1, evidence="e")
    assert finding_fingerprint(base) == finding_fingerprint(finding(offset=1, evidence="e",
                                                                    message="other words"))
    for other in (finding(offset=2, evidence="e"), finding(offset=1, evidence="f"),
                  finding(offset=1, evidence="e", members=("x",)),
                  finding(offset=1, evidence="e", path="n.bin"),
                  finding(offset=1, evidence="e", node="n")):
        assert finding_fingerprint(other) != finding_fingerprint(base)


def test_help_uri_anchor() -> None:
    assert rule_help_uri(finding().rule).endswith("/docs/rules.md#mw-test-001")


def test_renderer_lookup() -> None:
    assert FORMATS == ("text", "json", "sarif")
    assert get_renderer("SARIF").name == "sarif"
    with pytest.raises(InputError):
        render(make_report(), "xml")
