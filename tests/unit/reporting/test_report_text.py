"""The text report: what is shown by default, -v and -q, and escaping of hostile text."""

from __future__ import annotations

from mw_reporting_helpers import file_result, finding, make_report

from modelward.findings import Severity
from modelward.reporting import RenderOptions, render
from modelward.reporting.text import summary_line
from modelward.results import Status


def test_worst_file_first_and_summary_last() -> None:
    report = make_report(
        file_result("b_medium", finding(Severity.MEDIUM, "b_medium", message="medium one")),
        file_result("a_critical", finding(Severity.CRITICAL, "a_critical", message="bad one")),
    )
    text = render(report, "text")
    assert text.index("a_critical") < text.index("b_medium")
    last = text.rstrip("\n").splitlines()[-1]
    assert last == summary_line(report)
    assert last.startswith("2 files, 1 critical, 0 high, 1 medium, 0 low, 0 info — ")
    assert "verdict: critical, FAIL (findings at or above high)" in last


def test_info_and_low_hidden_by_default_shown_with_verbose() -> None:
    report = make_report(file_result("m", finding(Severity.INFO, "m", message="just info"),
                                     finding(Severity.LOW, "m", message="low thing")))
    default = render(report, "text")
    assert "just info" not in default and "low thing" not in default
    assert "1 file with no finding at or above medium" in default
    verbose = render(report, "text", RenderOptions(verbose=True))
    assert "just info" in verbose and "low thing" in verbose


def test_low_fail_on_shows_low_findings() -> None:
    report = make_report(file_result("m", finding(Severity.LOW, "m", message="low thing")),
                         fail_on=Severity.LOW)
    assert "low thing" in render(report, "text")


def test_quiet_is_the_summary_line_alone() -> None:
    report = make_report(file_result("m", finding(Severity.CRITICAL, "m")))
    assert render(report, "text", RenderOptions(quiet=True)) == summary_line(report) + "\n"


def test_failed_file_always_listed() -> None:
    report = make_report(file_result("big", status=Status.FAILED, suppressed=1))
    text = render(report, "text")
    assert "big" in text and "NOT FULLY ANALYSED" in text and "1 suppressed by policy" in text
    assert "INCOMPLETE" in summary_line(report)
    assert "1 file not fully analysed" in summary_line(report)


def test_location_evidence_and_fix() -> None:
    report = make_report(file_result("m.pt", finding(Severity.HIGH, "m.pt", ("a/data.pkl",), 42,
                                                     evidence="os.system('id')")))
    text = render(report, "text")
    assert "where: in a/data.pkl, at byte 42" in text
    assert "evidence: os.system('id')" in text
    assert "fix: Do the safe thing." in text
    assert "MW-TEST-001 test-rule" in text


def test_hostile_text_cannot_reach_the_terminal_raw() -> None:
    hostile = "x\x1b]0;owned\x07\x1b[2J\u202eyxe.pt"
    report = make_report(file_result(hostile, finding(Severity.HIGH, hostile, (hostile,),
                                                      evidence=hostile, message=hostile)))
    for options in (RenderOptions(), RenderOptions(verbose=True), RenderOptions(color=True)):
        text = render(report, "text", options)
        assert "\x1b]" not in text and "\x07" not in text and "\u202e" not in text
        assert "\x1b[2J" not in text
        assert "\\x1b]0;owned\\x07" in text and "\\u202e" in text


def test_long_evidence_is_cut_unless_verbose() -> None:
    evidence = "\n".join(f"line{i}" for i in range(30))
    report = make_report(file_result("m", finding(Severity.HIGH, "m", evidence=evidence)))
    assert "line29" not in render(report, "text")
    assert "22 more lines (use -v)" in render(report, "text")
    assert "line29" in render(report, "text", RenderOptions(verbose=True))


def test_pass_and_clean() -> None:
    report = make_report(file_result("ok"))
    assert summary_line(report) == ("1 file, 0 critical, 0 high, 0 medium, 0 low, 0 info — "
                                    "verdict: clean, PASS (nothing at or above high)")


def test_same_fix_is_shown_once_per_file() -> None:
    report = make_report(file_result("m", finding(Severity.HIGH, "m", offset=1),
                                     finding(Severity.HIGH, "m", offset=2)))
    assert render(report, "text").count("fix: Do the safe thing.") == 1
    assert render(report, "text", RenderOptions(verbose=True)).count("fix: Do the safe") == 2
