"""``modelward scan --root``: report paths relative to a chosen folder (repository root)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for

from modelward.errors import InputError
from modelward.scan import scan_path

ROOT = Path(__file__).parents[2]
Run = Callable[..., Any]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a model in a subfolder."""
    top = tmp_path / "repo"
    (top / "models" / "bert").mkdir(parents=True)
    (top / "models" / "bert" / "notes.xyz").write_bytes(b"\x01\x02 nothing modelward knows")
    return top


def _uris(data: dict[str, Any]) -> list[str]:
    return [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in data["runs"][0]["results"]
    ]


def test_sarif_uri_is_relative_to_root(cli: Run, repo: Path) -> None:
    schema_path = ROOT / "tests" / "assets" / "schemas" / "sarif-schema-2.1.0.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    sub = str(repo / "models")
    without = json.loads(cli("scan", sub, "--format", "sarif").out)
    assert _uris(without) == ["bert/notes.xyz"]
    data = json.loads(cli("scan", sub, "--root", str(repo), "--format", "sarif").out)
    validator_for(schema)(schema).validate(data)
    assert _uris(data) == ["models/bert/notes.xyz"]
    location = data["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uriBaseId"] == "SRCROOT"


def test_json_and_single_file_relative_to_root(cli: Run, repo: Path) -> None:
    target = repo / "models" / "bert" / "notes.xyz"
    data = json.loads(cli("scan", str(target), "--root", str(repo), "--format", "json").out)
    assert [f["path"] for f in data["files"]] == ["models/bert/notes.xyz"]


def test_relative_root_from_cwd(
    cli: Run, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    data = json.loads(cli("scan", "models", "--root", ".", "--format", "json").out)
    assert [f["path"] for f in data["files"]] == ["models/bert/notes.xyz"]


def test_target_outside_root_exits_2(cli: Run, repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "x.bin").write_bytes(b"abc")
    out = cli("scan", str(other), "--root", str(repo / "models"))
    assert out.code == 2
    assert "outside the report root" in out.err
    out = cli("scan", str(repo), "--root", str(repo / "missing"))
    assert out.code == 2 and "not a folder" in out.err


def test_root_with_attest_is_refused(cli: Run, repo: Path) -> None:
    out = cli("scan", str(repo), "--root", str(repo), "--attest")
    assert out.code == 2 and "--root" in out.err


def test_scan_path_root_argument(repo: Path) -> None:
    report = scan_path([repo / "models"], root=repo, jobs=1)
    assert [f.path for f in report.files] == ["models/bert/notes.xyz"]
    # The prefix of a sibling folder's name is not "inside" it.
    sibling = repo.parent / "repo-other"
    sibling.mkdir()
    with pytest.raises(InputError):
        scan_path(sibling, root=repo)
