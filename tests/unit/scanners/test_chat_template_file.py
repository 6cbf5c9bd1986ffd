"""Standalone ``chat_template.jinja`` files (transformers saves one beside the tokenizer).

Before this scanner such a file was reported only as an unknown format (MW-CORE-001), so a
template-injection payload moved out of tokenizer_config.json into its own file went
unaudited. Claiming is by content: a Jinja template reading ``messages``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_template_corpus import BENIGN, BENIGN_FILES, PAYLOADS
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes, scan_path


def rule_ids(data: bytes, name: str = "chat_template.jinja") -> set[str]:
    return {f.rule.id for f in scan_bytes(data, name, raise_internal=True).findings}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_in_standalone_chat_template_file(name: str) -> None:
    """Each known SSTI payload, wrapped in an ordinary template, saved as its own file."""
    text = "{% for message in messages %}{{ message['content'] }}{% endfor %}" + PAYLOADS[name]
    assert "MW-HF-003" in rule_ids(text.encode())


def test_real_chat_template_files_are_clean(tmp_path: Path) -> None:
    texts = list(BENIGN.values()) + [p.read_text() for p in BENIGN_FILES]
    for i, text in enumerate(texts):
        path = tmp_path / f"m{i}" / "chat_template.jinja"
        path.parent.mkdir()
        path.write_text(text)
        report = scan_path(path.parent, raise_internal=True)
        (result,) = report.files
        assert result.format == "jinja-chat-template", text[:60]
        assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == []


@pytest.mark.parametrize("data", [
    b"# Title\n\nSome {{ mustache }} text that is not a chat template.\n",
    b"{{ name }} is a Jinja template for e-mails, not for chats.",
    b"{% for message in messages %}",  # does not parse
    b"plain text mentioning messages and {{ braces }}",
])
def test_other_text_is_not_claimed(data: bytes) -> None:
    result = scan_bytes(data, "chat_template.jinja", raise_internal=True)
    assert result.format != "jinja-chat-template"


def test_claimed_by_content_not_name() -> None:
    text = b"{% for m in messages %}{{ m.__class__ }}{% endfor %}"
    assert "MW-HF-003" in rule_ids(text, "notes.txt")


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_property_arbitrary_bytes(tail: bytes) -> None:
    scan_bytes(b"{% for m in messages %}" + tail, "chat_template.jinja", raise_internal=True)
