"""Red-team round on the chat-template audit: name-building tricks that were silent.

CVE-2024-34359 (llama-cpp-python, GHSA-56xg-wfcc-g829) payloads reach Python internals
through ``obj['__class__']`` style item access, which a plain ``jinja2.Environment``
resolves with ``getattr``. The audit folds constant strings, but two ways of producing the
key string were silent before the fix: text captured by a ``{% set %}...{% endset %}`` or
``{% call %}`` block (Jinja docs, "Block Assignments"), and ``dict(__class__=1)|list|first``
(a keyword name turned into a string, a known SSTI filter-evasion trick).
"""

from __future__ import annotations

import pytest

from modelward._internal.jinja_audit import IssueKind, audit_template

EVASIONS = {
    "set_block_key": "{% set k %}__class__{% endset %}{{ ''[k] }}",
    "set_block_trimmed_key": "{% set k %}  __globals__ {% endset %}{{ x[k|trim] }}",
    "call_block_caller_key": ("{% macro g() %}{{ ''[caller()] }}{% endmacro %}"
                              "{% call g() %}__class__{% endcall %}"),
    "dict_keyword_list": "{{ ''[(dict(__class__=1)|list)[0]] }}",
    "dict_keyword_first": "{% set k = dict(__init__=1)|list|first %}{{ cycler[k] }}",
}


@pytest.mark.parametrize("name", sorted(EVASIONS))
def test_captured_or_keyword_built_names_are_injection(name: str) -> None:
    issues = audit_template(EVASIONS[name])
    assert IssueKind.INJECTION in {i.kind for i in issues}, issues


def test_ordinary_block_set_and_keywords_stay_quiet() -> None:
    """Block assignments and dict() keywords in real templates (system prompt defaults)."""
    text = ("{% set default_system %}You are a helpful assistant.{% endset %}"
            "{% set roles = dict(user='<|user|>', assistant='<|assistant|>') %}"
            "{% for m in messages %}{{ roles[m['role']] }}{{ m['content'] }}{% endfor %}"
            "{{ default_system }}")
    assert audit_template(text) == []
