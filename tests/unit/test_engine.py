"""The scan engine on formats no scanner claims, folders, links and odd files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelward import Policy, Severity, Status, scan_bytes, scan_path
from modelward.errors import FormatError, InputError
from modelward.results import ExitCode
from modelward.scan import UNKNOWN_FORMAT
from modelward.scanners import ScannerSet
from modelward.scanners.base import Artifact, Nested, Scanner, ScanOutput


def rule_ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def test_unknown_format_is_reported_not_clean(tmp_path: Path) -> None:
    (tmp_path / "notes.xyz").write_bytes(b"\x01\x02 definitely nothing known")
    report = scan_path(tmp_path)
    (result,) = report.files
    assert result.status is Status.SKIPPED
    assert "MW-CORE-001" in rule_ids(result)
    assert report.exit_code() is ExitCode.OK


def test_missing_target_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        scan_path(tmp_path / "nope")


def test_symlink_out_of_folder_is_flagged(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    model = tmp_path / "model"
    model.mkdir()
    os.symlink(outside, model / "weights.bin")
    report = scan_path(model)
    assert "MW-CORE-007" in rule_ids(report.files[0])


def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    report = scan_path(tmp_path)
    assert "MW-CORE-008" in rule_ids(report.files[0])


def test_ignored_rules_are_counted_not_shown(tmp_path: Path) -> None:
    (tmp_path / "a.xyz").write_bytes(b"zzz")
    report = scan_path(tmp_path, policy=Policy(ignored_rules=frozenset({"MW-CORE-001"})))
    assert report.files[0].findings == []
    assert report.files[0].suppressed == 1


def test_exit_code_thresholds(tmp_path: Path) -> None:
    (tmp_path / "a.xyz").write_bytes(b"zzz")
    report = scan_path(tmp_path)
    assert report.exit_code(Severity.INFO) is ExitCode.FINDINGS
    assert report.exit_code(Severity.LOW) is ExitCode.OK


def test_scan_bytes_empty() -> None:
    result = scan_bytes(b"", "empty.bin")
    assert "MW-CORE-001" in rule_ids(result)


class _GivesUpScanner(Scanner):
    """Claims b"GIVEUP", reports one finding, then stops with a FormatError."""

    name = "giveup"
    rules = (UNKNOWN_FORMAT,)

    def claims(self, artifact: Artifact) -> bool:
        return artifact.head.startswith(b"GIVEUP")

    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        if artifact.head.startswith(b"GIVEUP-MEMBER"):
            def extract() -> bytes:
                raise FormatError("member header is cut")
            yield Nested("member.bin", extract)
            return
        yield artifact.finding(UNKNOWN_FORMAT, "seen")
        raise FormatError("cannot parse the rest", offset=6)


@pytest.mark.parametrize("data", [b"GIVEUP and then garbage", b"GIVEUP-MEMBER"])
def test_format_error_stops_analysis_so_the_file_failed(data: bytes) -> None:
    result = scan_bytes(data, "x.bin", scanners=ScannerSet([_GivesUpScanner()]),
                        raise_internal=True)
    assert "MW-CORE-002" in rule_ids(result)
    assert result.status is Status.FAILED


def test_link_to_a_folder_inside_is_walked_once_not_special(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.xyz").write_bytes(b"zzz")
    os.symlink("sub", tmp_path / "alias")
    os.symlink(tmp_path.parent, tmp_path / "up")
    report = scan_path(tmp_path)
    found = {r.path: rule_ids(r) for r in report.files}
    assert found == {"sub/a.xyz": {"MW-CORE-001"}, "up": {"MW-CORE-007"}}
