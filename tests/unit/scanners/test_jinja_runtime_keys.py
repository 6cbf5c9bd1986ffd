"""Red-team regressions: chat-template keys that only exist at render time, and resource abuse.

Jinja's item lookup (``obj[key]``) falls back to ``getattr`` for string keys, so a key the
constant folder cannot name is an attribute access it cannot judge. Each payload below
builds ``__class__`` (or takes a key from data) without a foldable constant; sources:
PayloadsAllTheThings "Server Side Template Injection/Jinja2" filter bypasses (``%c``
formatting, ``(()|select|string)[24]``, ``dict(...)|join``), and red-team variants on
namespaces and loops. Resource abuse: templates render on the serving host, so constant
ranges, powers and repetitions are a denial of service (CWE-400).
"""

from __future__ import annotations

import pytest
from chat_template_corpus import BENIGN, BENIGN_FILES

from modelward._internal.jinja_audit import IssueKind, audit_template


def kinds(text: str) -> set[IssueKind]:
    return {i.kind for i in audit_template(text)}


HIGH_PAYLOADS = {
    "namespace attribute grown in a loop": (
        "{% set ns = namespace(k='') %}{% for c in ['_', '_', 'c', 'l', 'a', 's', 's', '_', '_'] %}"
        "{% set ns.k = ns.k ~ c %}{% endfor %}{{ ''[ns.k] }}"),
    "percent-c formatting": "{% set k = '%c%cclass%c%c' % (95, 95, 95, 95) %}{{ ''[k] }}",
    "percent-c via format filter": "{{ ''['%c%cclass%c%c'|format(95, 95, 95, 95)] }}",
    "char-by-char loop over a literal list": (
        "{% set ns = namespace(s='') %}{% for ch in ('_', 'c') %}{% set ns.s = ns.s ~ ch ~ ch %}"
        "{% endfor %}{{ ()[ns.s] }}"),
    "tuple-index concatenation": "{{ ()[('_', 'x')[0] ~ ('_', 'y')[0] ~ 'class__'] }}",
    "center padding": "{{ ()['class'.center(9, '_')] }}",
    "string form of a generator": (
        "{% set u = (()|select|string)[24] %}{{ ()[u ~ u ~ 'class' ~ u ~ u] }}"),
    "dict keywords joined": "{{ ()[dict(_=1, __c=2)|join] }}",
    "map attribute from a built key": (
        "{% set ns = namespace(a='') %}{% for c in ['_', '_'] %}{% set ns.a = ns.a ~ c %}"
        "{% endfor %}{{ [1]|map(attribute=ns.a ~ 'class' ~ ns.a)|list }}"),
    "loop over literal list names the dunder": (
        "{% for k in ['__class__'] %}{{ ()[k] }}{% endfor %}"),
}


@pytest.mark.parametrize("name", sorted(HIGH_PAYLOADS))
def test_runtime_built_keys_are_injection(name: str) -> None:
    assert IssueKind.INJECTION in kinds(HIGH_PAYLOADS[name]), audit_template(HIGH_PAYLOADS[name])


@pytest.mark.parametrize("text", [
    "{% for m in messages %}{{ m[m['content']] }}{% endfor %}",
    "{% for m in messages %}{{ (m|attr(m.content)) }}{% endfor %}",
    "{% for m in messages %}{{ messages|map(attribute=m.content)|list }}{% endfor %}",
    "{% for m in messages %}{{ m.tool_calls[0][m.name][m.content] }}{% endfor %}",
])
def test_keys_taken_from_message_content_are_flagged(text: str) -> None:
    """A key from message content (user-controlled in a multi-tenant server) reaches
    attributes through the getattr fallback: at least MEDIUM."""
    assert kinds(text) & {IssueKind.INJECTION, IssueKind.UNVERIFIED}


@pytest.mark.parametrize("text", [
    # Hermes-style tool schema rendering: keys of the dict being indexed
    "{% for name, fields in tool.parameters.properties|items %}{% for k in fields %}"
    "{{ k }}={{ fields[k] }}{% endfor %}{% endfor %}",
    "{% for k, v in args.items() %}{{ args[k] }}{% endfor %}",
    # numeric indexes kept in namespaces and variables
    "{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m.role == 'user' %}"
    "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}{{ messages[ns.last]['content'] }}",
    "{% set last = messages|length - 1 %}{{ messages[last].content }}",
    "{% for i in range(messages|length) %}{{ messages[i]['content'] }}{% endfor %}",
    # lookup tables built from literals, keyed by role
    "{% set roles = {'user': 'U', 'assistant': 'A'} %}{% for m in messages %}"
    "{{ roles[m['role']] }}{% endfor %}",
    # a loop over literal safe keys
    "{% for key in ['content', 'tool_calls'] %}{{ message[key] }}{% endfor %}",
])
def test_ordinary_dynamic_keys_stay_quiet(text: str) -> None:
    assert audit_template(text) == []


def test_real_template_corpus_stays_clean() -> None:
    texts = list(BENIGN.values()) + [p.read_text() for p in BENIGN_FILES]
    for text in texts:
        assert audit_template(text) == [], text[:80]


@pytest.mark.parametrize("text", [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ 9**999999999 }}",
    "{{ 9**(9**9) }}",  # Jinja's ** is left-associative: plain 9**9**9 is (9**9)**9, cheap
    "{{ 'a' * 10**10 }}",
    "{{ [0] * 100000000 }}",
    "{{ 'x'.center(1000000000) }}",
    "{{ 'x'|indent(width=10**8) }}",
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}",
    "{% macro boom(n) %}{{ boom(n) }}{{ boom(n) }}{% endmacro %}{{ boom(1) }}",
    "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
])
def test_resource_abuse_is_medium(text: str) -> None:
    """Work bounded only by template constants, or macro recursion: DoS on the serving host."""
    issues = audit_template(text)
    assert IssueKind.UNVERIFIED in {i.kind for i in issues}, issues
    assert IssueKind.INJECTION not in {i.kind for i in issues}


@pytest.mark.parametrize("text", [
    "{% for i in range(0, messages|length) %}{{ i }}{% endfor %}",
    "{{ 2**10 }}{{ '=' * 80 }}{{ 'x'.center(40) }}{{ 9**9**9 }}",
    "{% for a in range(10) %}{% for b in range(100) %}{% endfor %}{% endfor %}",
])
def test_ordinary_sizes_stay_quiet(text: str) -> None:
    assert audit_template(text) == []


@pytest.mark.parametrize("text", [
    "{{ '{:>999999999}'.format(x) }}",
    "{{ '{:0999999999}'.format(1) }}",
    "{{ '{0:_<999999999}'.format(x) }}",
    "{{ '{:.999999999f}'.format(1.5) }}",
    "{{ '{:{}}'.format(x, 10**9) }}",  # width from a nested field
    "{{ '%0999999999d' % 1 }}",
    "{{ '%-999999999s' % (x,) }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%*d' % (999999999, 1) }}",  # width from the arguments
    "{{ '%999999999s'|format('a') }}",
    "{{ '%(a)0999999999d'|format(a=1) }}",
    "{% set w = '9' * 9 %}{{ ('{:>' ~ w ~ '}').format(x) }}",  # width assembled from pieces
])
def test_huge_format_widths_are_medium(text: str) -> None:
    """Format padding to a huge width allocates gigabytes while rendering (CWE-400); the
    audit must report it without padding anything itself."""
    issues = audit_template(text)
    assert {i.kind for i in issues} == {IssueKind.UNVERIFIED}, issues
    assert any("huge width" in i.message for i in issues), issues


@pytest.mark.parametrize(("text", "evidence"), [
    # the call block's body receives its own caller and calls it with itself
    ("{% macro m() %}{{ caller(caller) }}{% endmacro %}"
     "{% call(c) m() %}{{ c(c) }}{{ c(c) }}{% endcall %}", "caller(caller)"),
    ("{% macro m(f) %}{{ f(f) }}{% endmacro %}{{ m(m) }}", "f(f)"),
    # recursive loops that never bottom out
    ("{% for m in messages recursive %}{{ loop(messages) }}{% endfor %}", "loop(messages)"),
    ("{% set d = {'children': []} %}{% set _ = d.children.append(d) %}"
     "{% for x in [d] recursive %}{{ loop(x.children) }}{% endfor %}",
     "d.children.append(d)"),
    ("{% set ns = namespace(kids=[]) %}{% set ns.kids = [ns] %}"
     "{% for x in [ns] recursive %}{{ loop(x.kids) }}{% endfor %}", "set ns.kids = [ns]"),
    ("{% set d = {} %}{% set _ = d.update({'next': [d]}) %}"
     "{% for x in [d] recursive %}{{ loop(x.next) }}{% endfor %}", "d.update(d)"),
])
def test_recursion_through_caller_and_recursive_loops_is_medium(text: str,
                                                                 evidence: str) -> None:
    """Recursion without a macro naming itself: self-application of caller()/macros, and
    ``for ... recursive`` whose ``loop()`` gets the same or self-containing data."""
    issues = audit_template(text)
    assert IssueKind.INJECTION not in {i.kind for i in issues}, issues
    assert any(i.kind is IssueKind.UNVERIFIED and i.evidence == evidence
               and "denial of service" in i.message for i in issues), issues


@pytest.mark.parametrize("text", [
    "{{ '{:>4}'.format(loop.index) }}{{ '%02d' % 7 }}{{ '%-12s|'|format(m.role) }}",
    "{{ '{:.2f}'.format(score) }}{{ '%.3f' % x }}{{ '{0:>{1}}'.format(x, 8) }}",
    "{{ '%.9999999s' % m.content }}",  # precision on a string only truncates
    "{% macro box() %}[{{ caller() }}]{% endmacro %}{% for m in messages %}"
    "{% call box() %}{{ m.content }}{% endcall %}{% endfor %}",
    "{% macro row(f) %}{{ caller(f) }}{% endmacro %}{% call(x) row('a') %}{{ x }}{% endcall %}",
    "{% for m in messages recursive %}{{ m.role }}{% if m.children %}{{ loop(m.children) }}"
    "{% endif %}{% endfor %}",
    "{% set ns = namespace(parts=[]) %}{% for m in messages %}"
    "{% set ns.parts = ns.parts + [m.content] %}{% endfor %}"
    "{% for p in ns.parts recursive %}{{ p }}{% endfor %}",
])
def test_ordinary_formats_calls_and_recursive_loops_stay_quiet(text: str) -> None:
    assert audit_template(text) == []
