"""Policy files: safe defaults, clear errors on bad values, never read from the scanned folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward import Severity
from modelward.errors import InputError
from modelward.policy import Policy, load_policy


def test_no_file_gives_the_safe_default(tmp_path: Path) -> None:
    assert load_policy(cwd=tmp_path) == Policy()
    assert Policy().fail_on is Severity.HIGH and not Policy().allowed_globals


def test_pyproject_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.modelward]\nfail-on = "medium"\nallowed-globals = ["pkg:Cls"]\n'
        'ignore = ["mw-core-004"]\n[tool.modelward.limits]\nmax-depth = 4\n')
    policy = load_policy(cwd=tmp_path)
    assert policy.fail_on is Severity.MEDIUM
    assert policy.allowed_globals == {"pkg.Cls"}
    assert policy.ignored_rules == {"MW-CORE-004"}
    assert policy.limits.max_depth == 4


@pytest.mark.parametrize(("text", "message"), [
    ('tool = "x"\n', "'tool' must be a table"),
    ('[tool.modelward.limits]\nmax-depth = 8.5\n', "positive whole number"),
    ('[tool.modelward.limits]\nmax-depth = 0\n', "positive whole number"),
    ('[tool.modelward.limits]\nmax-seconds-per-file = "a"\n', "positive number"),
    ('[tool.modelward]\nfail-on = "severe"\n', "unknown severity"),
    ('[tool.modelward]\nbogus = 1\n', "unknown key"),
])
def test_bad_policy_files_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_policy(cwd=tmp_path)


def test_fractional_time_budget_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "modelward.toml").write_text("[limits]\nmax-seconds-per-file = 2.5\n")
    assert load_policy(cwd=tmp_path).limits.max_seconds_per_file == 2.5
