"""``modelward rules``: every rule, in three formats; Markdown is docs/rules.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelward.reporting.rulesdoc import collect_rules, rules_markdown
from modelward.scan import CORE_RULES

Run = Callable[..., Any]


def test_text_lists_core_rules(cli: Run) -> None:
    result = cli("rules")
    assert result.code == 0
    for rule in CORE_RULES:
        assert rule.id in result.out


def test_json(cli: Run) -> None:
    data = json.loads(cli("rules", "--format", "json").out)
    ids = [item["id"] for item in data]
    assert {r.id for r in CORE_RULES} <= set(ids) and len(ids) == len(set(ids))
    first = data[0]
    assert set(first) == {"id", "name", "severity", "area", "description", "remediation",
                          "references", "reported_by", "help_uri"}


def test_markdown_is_the_generator_output(cli: Run, tmp_path: Path) -> None:
    # docs/rules.md itself is checked by tests/unit/test_rules_doc.py
    expected = rules_markdown(collect_rules())
    assert cli("rules", "--format", "markdown").out == expected
    target = tmp_path / "rules.md"
    assert cli("rules", "--format", "markdown", "--output", str(target)).code == 0
    assert target.read_text(encoding="utf-8") == expected


def test_bad_format(cli: Run) -> None:
    assert cli("rules", "--format", "xml").code == 2
