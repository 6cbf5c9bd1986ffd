"""``modelward scan`` in process: exit codes, formats, policy, errors."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from modelward.scanners import discover

ROOT = Path(__file__).parents[2]
Run = Callable[..., Any]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "notes.xyz").write_bytes(b"\x01\x02 nothing modelward knows")
    return folder


def test_unknown_format_passes_with_summary(cli: Run, models: Path) -> None:
    result = cli("scan", str(models))
    assert result.code == 0
    assert result.out.rstrip("\n").splitlines()[-1].startswith("1 file, 0 critical")
    assert "PASS" in result.out
    assert result.err == ""
    assert "\x1b[" not in result.out  # captured stdout is no terminal


def test_fail_on_threshold(cli: Run, models: Path) -> None:
    assert cli("scan", str(models), "--fail-on", "info").code == 1
    assert cli("scan", str(models), "--fail-on", "LOW").code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "severe"], "unknown severity 'severe'"),
        (["--ignore", "CORE-1"], "is not a rule id"),
        (["--allow-global", "not a name"], "is not a module.qualname"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--config", "missing.toml"], "does not exist"),
        (["-q", "-v"], "contradict"),
    ],
)
def test_bad_options_exit_2_with_message(cli: Run, models: Path, args: list[str],
                                         message: str) -> None:
    result = cli("scan", str(models), *args)
    assert result.code == 2
    assert f"modelward: error: {message}" in result.err or (
        "modelward: error: " in result.err and message in result.err)
    assert result.out == ""


def test_missing_path_exits_2(cli: Run, tmp_path: Path) -> None:
    result = cli("scan", str(tmp_path / "nope"))
    assert result.code == 2
    assert "no such file or directory" in result.err


def test_unreadable_config_exits_2(cli: Run, models: Path, workdir: Path) -> None:
    (workdir / "modelward.toml").write_text("fail-on = [unclosed", encoding="utf-8")
    result = cli("scan", str(models))
    assert result.code == 2 and "cannot read policy file" in result.err


def test_usage_errors_and_help(cli: Run) -> None:
    assert cli().code == 2
    assert cli("scan").code == 2
    assert cli("scan", "x", "--format", "xml").code == 2
    helped = cli("scan", "--help")
    assert helped.code == 0 and "--fail-on" in helped.out and "exit codes" in helped.out
    version = cli("--version")
    assert version.code == 0 and version.out.startswith("modelward ")


def test_verbose_error_shows_traceback(cli: Run, tmp_path: Path) -> None:
    result = cli("-v", "scan", str(tmp_path / "nope"))
    assert result.code == 2
    assert "Traceback" in result.err and "InputError" in result.err


def test_policy_from_cwd_applies(cli: Run, models: Path, workdir: Path) -> None:
    (workdir / "modelward.toml").write_text('fail-on = "info"\n', encoding="utf-8")
    assert cli("scan", str(models)).code == 1
    # the command line wins over the file
    assert cli("scan", str(models), "--fail-on", "high").code == 0


def test_pyproject_table_applies(cli: Run, models: Path, workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.modelward]\nignore = ["MW-CORE-001"]\n',
        encoding="utf-8",
    )
    data = json.loads(cli("scan", str(models), "--format", "json").out)
    assert data["summary"]["suppressed"] == 1
    assert data["policy"]["ignored_rules"] == ["MW-CORE-001"]
    assert data["policy"]["source"].endswith("pyproject.toml")


def test_policy_inside_scanned_folder_is_not_used(cli: Run, models: Path) -> None:
    # A hostile model folder must not ship its own allowlist or thresholds.
    (models / "modelward.toml").write_text(
        'fail-on = "critical"\nignore = ["MW-CORE-001"]\nallowed-globals = ["os.system"]\n',
        encoding="utf-8",
    )
    (models / "pyproject.toml").write_text('[tool.modelward]\nignore = ["MW-CORE-001"]\n',
                                           encoding="utf-8")
    result = cli("scan", str(models), "--format", "json", "--fail-on", "info")
    data = json.loads(result.out)
    assert result.code == 1
    assert data["policy"]["source"] == "defaults + command line"
    assert data["policy"]["allowed_globals"] == [] and data["policy"]["ignored_rules"] == []
    assert data["summary"]["suppressed"] == 0
    assert {f["rule_id"] for r in data["files"] for f in r["findings"]} == {"MW-CORE-001"}


def test_explicit_config(cli: Run, models: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy.toml"
    config.write_text('[tool.modelward]\nfail-on = "info"\n', encoding="utf-8")
    assert cli("scan", str(models), "--config", str(config)).code == 1


def test_ignore_and_allow_global_flags(cli: Run, models: Path) -> None:
    result = cli("scan", str(models), "--format", "json", "--ignore", "mw-core-001,MW-CORE-004",
                 "--allow-global", "mylib.layers:Block", "--allow-global", "other.fn")
    data = json.loads(result.out)
    assert data["policy"]["ignored_rules"] == ["MW-CORE-001", "MW-CORE-004"]
    assert data["policy"]["allowed_globals"] == ["mylib.layers.Block", "other.fn"]
    assert data["summary"]["total_findings"] == 0 and data["summary"]["suppressed"] == 1
    assert result.err == ""


def test_unknown_ignored_rule_warns(cli: Run, models: Path) -> None:
    result = cli("scan", str(models), "--ignore", "MW-NOPE-999")
    assert result.code == 0
    assert "warning: ignored rule MW-NOPE-999 does not exist" in result.err
    assert cli("scan", str(models), "--ignore", "MW-NOPE-999", "-q").err == ""


def test_json_output_validates(cli: Run, models: Path) -> None:
    schema = json.loads((ROOT / "docs" / "report-schema.json").read_text(encoding="utf-8"))
    data = json.loads(cli("scan", str(models), "--format", "json").out)
    Draft202012Validator(schema).validate(data)
    assert data["files"][0]["path"] == "notes.xyz"
    assert data["targets"] == [str(models)]


def test_sarif_output_validates(cli: Run, models: Path) -> None:
    schema_path = ROOT / "tests" / "assets" / "schemas" / "sarif-schema-2.1.0.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    data = json.loads(cli("scan", str(models), "--format", "sarif").out)
    validator_for(schema)(schema).validate(data)
    (result,) = data["runs"][0]["results"]
    assert result["ruleId"] == "MW-CORE-001" and result["level"] == "note"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "notes.xyz"


def test_output_file_is_written_atomically(cli: Run, models: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "report.json"
    target.write_text("old", encoding="utf-8")
    result = cli("scan", str(models), "--format", "json", "--output", str(target))
    assert result.code == 0 and result.out == ""
    assert f"report written to {target}" in result.err
    assert "1 file, 0 critical" in result.err
    assert json.loads(target.read_text(encoding="utf-8"))["schema_version"] == "1.0"
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.json"]  # no temp file left
    quiet = cli("scan", str(models), "--output", str(target), "-q")
    assert quiet.err.startswith("1 file, 0 critical") and "written" not in quiet.err
    assert target.read_text(encoding="utf-8").startswith("1 file")


def test_unwritable_output_exits_2(cli: Run, models: Path, tmp_path: Path) -> None:
    result = cli("scan", str(models), "--output", str(tmp_path / "no" / "such" / "r.txt"))
    assert result.code == 2 and "cannot write" in result.err


def test_quiet_prints_only_the_summary(cli: Run, models: Path) -> None:
    result = cli("scan", str(models), "-q", "--fail-on", "info")
    assert result.code == 1
    assert result.out.count("\n") == 1 and "FAIL" in result.out


def test_verbose_lists_info_findings(cli: Run, models: Path) -> None:
    default = cli("scan", str(models)).out
    verbose = cli("scan", str(models), "-v").out
    assert "MW-CORE-001" not in default
    assert "MW-CORE-001" in verbose and "policy: default" in verbose


def test_hash_records_sha256(cli: Run, models: Path) -> None:
    data = json.loads(cli("scan", str(models), "--format", "json", "--hash").out)
    expected = hashlib.sha256((models / "notes.xyz").read_bytes()).hexdigest()
    assert data["files"][0]["sha256"] == expected
    assert json.loads(cli("scan", str(models), "--format", "json").out)["files"][0]["sha256"] \
        is None


def test_several_targets_and_jobs(cli: Run, tmp_path: Path, workdir: Path) -> None:
    for i in range(10):
        (workdir / f"f{i}.xyz").write_bytes(b"zz%d" % i)
    result = cli("scan", *(f"f{i}.xyz" for i in range(10)), "--jobs", "2", "--format", "json")
    data = json.loads(result.out)
    assert sorted(r["path"] for r in data["files"]) == sorted(f"f{i}.xyz" for i in range(10))


def test_symlink_escape_and_fifo(cli: Run, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink(outside, folder / "weights.bin")
    os.mkfifo(folder / "pipe")
    result = cli("scan", str(folder), "--format", "json", "--fail-on", "medium")
    data = json.loads(result.out)
    rules = {f["rule_id"] for r in data["files"] for f in r["findings"]}
    assert {"MW-CORE-007", "MW-CORE-008"} <= rules
    assert result.code == 1
    text = cli("scan", str(folder)).out
    assert "MW-CORE-007" in text and "weights.bin" in text


def test_malicious_pickle_fails(cli: Run, tmp_path: Path, marker_command: str) -> None:
    if discover().get("pickle") is None:
        pytest.skip("no pickle scanner in this tree yet")
    cmd = marker_command.encode()
    payload = (b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd
               + b"\x85q\x01Rq\x02.")
    (tmp_path / "model.pkl").write_bytes(payload)
    result = cli("scan", str(tmp_path / "model.pkl"), "--format", "json")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["verdict"] == "critical"
    text = cli("scan", str(tmp_path / "model.pkl")).out
    assert "CRITICAL" in text and "os.system" in text
