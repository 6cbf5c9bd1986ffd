"""Fixtures for CLI tests: a clean working directory and a way to run ``main`` in process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelward.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory (so no policy file is picked up by accident)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return cwd


@pytest.fixture
def cli(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run ``modelward ARGS`` in process; returns exit code, stdout and stderr."""

    def run(*args: str) -> Outcome:
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
