"""Static audit of Jinja chat templates: what a template could reach if an engine rendered it.

Chat templates ship inside model files (GGUF ``tokenizer.chat_template``, Hugging Face
``tokenizer_config.json``) and inference servers render them. An engine that renders them
in a plain ``jinja2.Environment`` lets a template walk Python object internals
(``().__class__.__base__.__subclasses__()``) to reach ``os.popen``: CVE-2024-34359
(llama-cpp-python), https://github.com/advisories/GHSA-56xg-wfcc-g829.

The audit only *parses* the template (``Environment.parse`` builds an AST and runs nothing)
and walks the tree. It flags:

- attribute or item access to underscore names (``__class__``, ``__globals__`` ...) and to the
  few non-underscore names that only matter for escapes (``mro``, ``func_globals``,
  ``popen``, ``os`` ...), whether written literally, hex-escaped, or assembled from pieces
  with ``~``, ``+``, ``*``, ``|join``, ``|replace``, ``|reverse``, ``.format`` or ``{% set %}``;
- the ``attr`` filter and filters that take attribute names (``map(attribute=...)``);
- calls to ``eval``/``exec``/``__import__``/``open``/``getattr`` style names, and
  references to web-framework globals used for probing (``request``, ``config``, ``self``,
  ``lipsum``, ``cycler``, ``joiner``, ``url_for``);
- anything else outside what real chat templates use (unknown filters, unknown method calls,
  ``include``/``import``/``extends``) at MEDIUM, since it cannot be verified safe;
- item keys and attribute-filter arguments that only exist at render time, and work bounded
  only by huge constants, huge format widths, or recursion (macros, ``caller()``
  self-application, ``recursive`` loops on the same or self-containing data)
  (`modelward._internal.jinja_flow` says why and how each is judged).

The constructs real templates use (loops over messages, ``raise_exception``,
``strftime_now``, ``tojson``, ``namespace()``, string methods) pass without a finding.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import jinja2
import jinja2.ext
from jinja2 import nodes as n

from modelward._internal.jinja_flow import Flow, KeyVerdict, huge_format

__all__ = ["IssueKind", "TemplateIssue", "audit_template", "is_dangerous_name", "parse_template"]

MAX_TEMPLATE_CHARS: Final = 1 << 20
_MAX_FOLD_DEPTH: Final = 24
_MAX_FOLD_CHARS: Final = 4096


class IssueKind(enum.Enum):
    """What sort of problem an issue is; scanners map each to one of their rules."""

    INJECTION = "injection"  # reaches Python internals: HIGH
    UNVERIFIED = "unverified"  # outside what chat templates use: MEDIUM
    UNPARSEABLE = "unparseable"  # cannot be parsed (or is too large): MEDIUM


@dataclass(frozen=True, slots=True)
class TemplateIssue:
    """One problem found in a template.

    Attributes:
        kind: injection, unverified construct, or unparseable template.
        message: what was found and why it matters.
        evidence: the triggering fragment (an attribute name, a filter...).
        line: 1-based line in the template, if known.
    """

    kind: IssueKind
    message: str
    evidence: str
    line: int | None = None


# Names that only matter for a sandbox escape or for reaching the OS from a template
# (https://github.com/swisskyrepo/PayloadsAllTheThings, Server Side Template Injection/Jinja2;
# jinja2.sandbox.UNSAFE_* sets).
DANGEROUS_NAMES: Final = frozenset({
    "mro", "func_globals", "func_code", "func_closure", "f_globals", "f_locals", "f_builtins",
    "f_back", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame",
    "tb_next", "co_code", "im_func", "im_self", "im_class", "os", "sys", "popen", "system",
    "subprocess", "spawn", "execv", "execve", "fork", "check_output", "check_call", "Popen",
    "eval", "exec", "compile", "builtins", "import_module", "load_module", "modules",
    "globals", "locals", "application", "environ", "get_data", "open", "getattr",
    "format_map", "func", "__builtins__",
})
DANGEROUS_CALLS: Final = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "import", "__import__", "input", "breakpoint", "system", "popen",
})
# Globals a chat template has no business touching; they are the usual handles for an
# escape (lipsum.__globals__, cycler.__init__.__globals__, request.application...).
PROBE_GLOBALS: Final = frozenset({
    "request", "config", "self", "lipsum", "cycler", "joiner", "url_for",
    "get_flashed_messages", "session", "g", "_TemplateReference__context",
})
SAFE_GLOBAL_CALLS: Final = frozenset({
    "namespace", "range", "raise_exception", "strftime_now", "dict", "loop",
    "caller", "super", "zip", "len",
})
# Methods real templates call on strings, lists and dicts.
SAFE_METHODS: Final = frozenset({
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
    "lower", "upper", "title", "capitalize", "replace", "find", "rfind", "index", "count",
    "join", "items", "keys", "values", "get", "append", "extend", "update", "pop", "copy",
    "isdigit", "isalpha", "isspace", "isnumeric", "isalnum", "islower", "isupper", "zfill",
    "center", "ljust", "rjust", "partition", "rpartition", "cycle", "changed", "format",
    "removeprefix", "removesuffix", "setdefault", "insert", "sort", "reverse", "casefold",
    "tojson", "strftime", "encode",
})
SAFE_FILTERS: Final = frozenset({
    "abs", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "pprint", "reject", "rejectattr", "replace", "reverse", "round", "safe",
    "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson",
    "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
    "xmlattr",
})
# Filters whose string arguments name attributes or other filters.
_ATTRIBUTE_FILTERS: Final = frozenset({
    "map", "select", "reject", "selectattr", "rejectattr", "sort", "groupby", "unique",
    "sum", "min", "max", "dictsort",
})
_DUNDER_NAME: Final = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")
_DUNDER_TEXT: Final = re.compile(r"__[A-Za-z_]+__|\{[^{}]*(?:\.|\[)_[^{}]*\}")


def is_dangerous_name(name: str) -> bool:
    """Whether an attribute or key name only makes sense for reaching Python internals."""
    return name.startswith("_") or name in DANGEROUS_NAMES


def audit_template(text: str) -> list[TemplateIssue]:
    """Parse a Jinja template (never render it) and report what it could reach.

    Args:
        text: the template source.

    Returns:
        Issues in template order; empty for ordinary chat templates.
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        return [TemplateIssue(IssueKind.UNPARSEABLE,
                              f"template of {len(text)} characters is larger than the "
                              f"{MAX_TEMPLATE_CHARS} audited; not verified", text[:80])]
    try:
        tree = parse_template(text)
    except jinja2.TemplateSyntaxError as err:
        return [TemplateIssue(IssueKind.UNPARSEABLE,
                              f"template does not parse ({err.message}); engines with other "
                              "Jinja dialects may still render part of it", _line(text, err.lineno),
                              err.lineno)]
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError) as err:
        return [TemplateIssue(IssueKind.UNPARSEABLE,
                              f"template does not parse ({type(err).__name__})", text[:80])]
    return list(_Walker().walk(tree))


class _GenerationTag(jinja2.ext.Extension):
    """Parses ``{% generation %}...{% endgeneration %}``, which transformers' template
    environment accepts (it marks assistant turns); the body is kept as ordinary nodes."""

    tags = {"generation"}  # noqa: RUF012 - jinja2's Extension API uses a plain class set

    def parse(self, parser: jinja2.parser.Parser) -> n.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return n.Scope(body, lineno=lineno)


def parse_template(text: str) -> n.Template:
    """Parse a template with the extensions chat-template engines enable; runs nothing.

    Raises:
        jinja2.TemplateSyntaxError: the template does not parse.
    """
    env = jinja2.Environment(  # noqa: S701 - parsed, never rendered
        extensions=[jinja2.ext.loopcontrols, _GenerationTag],
    )
    return env.parse(text)


def _line(text: str, lineno: int | None) -> str:
    lines = text.splitlines()
    if lineno and 0 < lineno <= len(lines):
        return lines[lineno - 1][:200]
    return text[:80]


class _Walker:
    """Walks a parsed template once, folding constant strings assigned with ``set``."""

    def __init__(self) -> None:
        self.env: dict[str, list[str]] = {}
        self.macros: set[str] = set()
        self.seen: set[tuple[IssueKind, str, int | None]] = set()
        self.flow: Flow | None = None

    def walk(self, tree: n.Template) -> Iterator[TemplateIssue]:
        for macro in tree.find_all(n.Macro):
            self.macros.add(macro.name)
        self.flow = Flow(tree, {m.name: m for m in tree.find_all(n.Macro)})
        for message, evidence, line in self.flow.resource_issues():
            yield TemplateIssue(IssueKind.UNVERIFIED, message + "; chat templates never need "
                                "that much work", evidence, line)
        for assign in tree.find_all(n.Assign):
            if isinstance(assign.target, n.Name):
                values = self.fold(assign.node, 0)
                if values:
                    self.env.setdefault(assign.target.name, []).extend(values)
        for fmt_node in tree.find_all((n.Mod, n.Filter, n.Call)):
            found = self._huge_format(fmt_node)
            if found is not None:
                yield TemplateIssue(IssueKind.UNVERIFIED,
                                    "template formats to a huge width or precision; padding "
                                    "allocates gigabytes on the serving host (memory "
                                    "exhaustion); chat templates never need that",
                                    found, fmt_node.lineno)
        stack: list[n.Node] = [tree]
        while stack:
            node = stack.pop()
            for issue in self.check(node):
                key = (issue.kind, issue.evidence, issue.line)
                if key not in self.seen:
                    self.seen.add(key)
                    yield issue
            stack.extend(reversed(list(node.iter_child_nodes())))

    def _huge_format(self, node: n.Node) -> str | None:
        """The huge-width directive of ``fmt % x``, ``fmt|format(x)`` or ``fmt.format(x)``."""
        if isinstance(node, n.Mod):
            right = node.right
            args = right.items if isinstance(right, (n.Tuple, n.List)) else [right]
            formats, percent = self.fold(node.left, 0), True
        elif isinstance(node, n.Filter) and node.name == "format" and node.node is not None:
            formats, percent, args = self.fold(node.node, 0), True, list(node.args)
        elif (isinstance(node, n.Call) and isinstance(node.node, n.Getattr)
              and node.node.attr == "format"):
            formats, percent = self.fold(node.node.node, 0), False
            args = [*node.args, *(k.value for k in node.kwargs)]
        else:
            return None
        for fmt in formats:
            found = huge_format(fmt, percent, args)
            if found is not None:
                return found
        return None

    # -- constant folding -------------------------------------------------------------
    def fold(self, node: n.Node | None, depth: int) -> list[str]:
        """Possible string values of an expression, as far as constants tell (else [])."""
        if depth > _MAX_FOLD_DEPTH:
            return []
        d = depth + 1
        out: list[str] = []
        if isinstance(node, n.Const):
            if isinstance(node.value, str):
                out = [node.value]
        elif isinstance(node, n.Name):
            out = list(self.env.get(node.name, []))
        elif isinstance(node, n.Concat):
            out = self._product([self.fold(x, d) for x in node.nodes])
        elif isinstance(node, n.Add):
            out = self._product([self.fold(node.left, d), self.fold(node.right, d)])
        elif isinstance(node, n.Mul):
            count = node.right.value if isinstance(node.right, n.Const) else None
            if isinstance(count, int) and 0 <= count <= 16:
                out = [s * count for s in self.fold(node.left, d)]
        elif isinstance(node, n.Mod):
            out = self._percent(node, d)
        elif isinstance(node, n.Filter):
            out = self._filter(node, d)
        elif isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            out = self._method(node, d)
        elif isinstance(node, n.CondExpr):
            out = self.fold(node.expr1, d) + (self.fold(node.expr2, d) if node.expr2 else [])
        return [s[:_MAX_FOLD_CHARS] for s in out[:32]]

    @staticmethod
    def _product(parts: list[list[str]]) -> list[str]:
        if not parts or any(not p for p in parts):
            # An unknown piece: still report what the known pieces would join to.
            parts = [p for p in parts if p]
            if not parts:
                return []
        results = [""]
        for options in parts:
            results = [r + o for r in results for o in options[:4]][:32]
        return results

    def _percent(self, node: n.Mod, depth: int) -> list[str]:
        formats = self.fold(node.left, depth)
        right = node.right
        items = right.items if isinstance(right, (n.Tuple, n.List)) else [right]
        args = [(self.fold(x, depth) or [""])[0] for x in items]
        out = []
        for fmt in formats:
            if huge_format(fmt, True, items) is not None:
                out.append(fmt)  # never pad to a huge width here: reported by _huge_format
                continue
            try:
                out.append(fmt % tuple(args))
            except (TypeError, ValueError, OverflowError):
                out.append(fmt)
        return out

    def _filter(self, node: n.Filter, depth: int) -> list[str]:
        name = node.name
        args = node.args
        if node.node is None:
            return []
        base = self.fold(node.node, depth)
        if name == "join" and isinstance(node.node, (n.List, n.Tuple)):
            sep = (self.fold(args[0], depth) or [""])[0] if args else ""
            pieces = [(self.fold(x, depth) or [""])[0] for x in node.node.items]
            return [sep.join(pieces)]
        if name == "reverse":
            return [s[::-1] for s in base]
        if name in {"lower", "upper", "trim", "string", "e", "escape", "safe"}:
            return [s.lower() if name == "lower" else s.upper() if name == "upper" else s
                    for s in base]
        if name == "replace" and len(args) >= 2:
            old = self.fold(args[0], depth)
            new = self.fold(args[1], depth)
            if old and new:
                return [s.replace(old[0], new[0]) for s in base]
        if name == "format":
            return [self._pyformat(s, args, depth) for s in base]
        return base

    def _pyformat(self, fmt: str, args: list[n.Expr], depth: int) -> str:
        values = [(self.fold(a, depth) or [""])[0] for a in args]
        if huge_format(fmt, "%" in fmt, args) is not None:
            return fmt  # never pad to a huge width here: reported by _huge_format
        try:
            return fmt % tuple(values) if "%" in fmt else fmt.format(*values)
        except (IndexError, KeyError, ValueError, TypeError, AttributeError):
            return fmt

    def _method(self, node: n.Call, depth: int) -> list[str]:
        call_node = node.node
        if not isinstance(call_node, n.Getattr):
            return []
        method = call_node.attr
        base = self.fold(call_node.node, depth)
        args = node.args
        if method == "join" and args:
            seq = args[0]
            if isinstance(seq, (n.List, n.Tuple)):
                pieces = [(self.fold(x, depth) or [""])[0] for x in seq.items]
                return [sep.join(pieces) for sep in base or [""]]
        if method == "format":
            return [self._pyformat(s, args, depth) for s in base]
        if method in {"lower", "upper", "strip"}:
            return [getattr(s, method)() for s in base]
        if method == "replace" and len(args) >= 2:
            old, new = self.fold(args[0], depth), self.fold(args[1], depth)
            if old and new:
                return [s.replace(old[0], new[0]) for s in base]
        return []

    # -- checks ---------------------------------------------------------------------------
    def check(self, node: n.Node) -> Iterator[TemplateIssue]:
        line = getattr(node, "lineno", None)
        if isinstance(node, n.Getattr):
            if is_dangerous_name(node.attr):
                yield TemplateIssue(IssueKind.INJECTION,
                                    f"template reads attribute {node.attr!r}, a way into Python "
                                    "internals used for template injection", f".{node.attr}", line)
        elif isinstance(node, n.Getitem):
            known = self.flow.values(node.arg) if self.flow is not None else None
            for value in self.fold(node.arg, 0) + (known or []):
                if is_dangerous_name(value):
                    yield TemplateIssue(IssueKind.INJECTION,
                                        f"template reads item {value!r}, a way into Python "
                                        "internals used for template injection",
                                        f"[{value!r}]", line)
            if self.flow is not None:
                yield from _key_issue(self.flow.judge_key(node.node, node.arg), line)
        elif isinstance(node, n.Filter):
            yield from self._check_filter(node, line)
        elif isinstance(node, n.Call):
            yield from self._check_call(node, line)
        elif isinstance(node, n.Name) and node.ctx == "load":
            if node.name in PROBE_GLOBALS:
                yield TemplateIssue(IssueKind.UNVERIFIED,
                                    f"template references the global {node.name!r}, which chat "
                                    "templates do not use and template-injection payloads do",
                                    node.name, line)
            elif node.name in DANGEROUS_CALLS or node.name.startswith("__"):
                yield TemplateIssue(IssueKind.INJECTION,
                                    f"template references {node.name!r}", node.name, line)
        elif isinstance(node, (n.Include, n.Import, n.FromImport, n.Extends)):
            yield TemplateIssue(IssueKind.UNVERIFIED,
                                "template loads other templates; an engine with a file loader "
                                "would read files chosen by the model author",
                                type(node).__name__.lower(), line)
        elif isinstance(node, n.Const) and isinstance(node.value, str):
            match = _DUNDER_TEXT.search(node.value)
            if match:
                yield TemplateIssue(IssueKind.INJECTION,
                                    "template text names a Python special attribute; assembled "
                                    "or formatted names reach internals the same way",
                                    match.group(0), line)
        elif isinstance(node, n.TemplateData) and (found := _DUNDER_NAME.search(node.data)):
            # {% set k %}__class__{% endset %} or a {% call %} body: captured text is a string
            yield TemplateIssue(IssueKind.INJECTION,
                                "template text names a Python special attribute; text captured "
                                "by set/call blocks is a string that can index internals",
                                found.group(0), line)
        elif isinstance(node, n.Keyword) and _DUNDER_NAME.fullmatch(node.key):
            # dict(__class__=1)|list|first yields the key as a string
            yield TemplateIssue(IssueKind.INJECTION,
                                "template passes a Python special name as a keyword argument; "
                                "dict(...) turns it into a string that can index internals",
                                f"{node.key}=", line)
        elif isinstance(node, (n.Concat, n.Add, n.Mul, n.Mod)):
            for value in self.fold(node, 0):
                match = re.search(r"__[A-Za-z]+__|\b(?:popen|os\.system|subprocess)\b", value)
                if match:
                    yield TemplateIssue(IssueKind.INJECTION,
                                        "template assembles the name of a Python internal from "
                                        "pieces, a standard filter-evasion trick", match.group(0),
                                        line)
                    break

    def _check_filter(self, node: n.Filter, line: int | None) -> Iterator[TemplateIssue]:
        name = node.name
        if name == "attr":
            names = [v for a in node.args for v in self.fold(a, 0)] or ["<dynamic>"]
            yield TemplateIssue(IssueKind.INJECTION,
                                "template uses the |attr filter, the standard way to reach "
                                "attributes while evading '.' and '_' filters",
                                f"|attr({names[0]!r})", line)
            return
        if name not in SAFE_FILTERS:
            yield TemplateIssue(IssueKind.UNVERIFIED,
                                f"template uses the filter {name!r}, which is not a standard "
                                "Jinja filter; what it does depends on the engine",
                                f"|{name}", line)
        if name in _ATTRIBUTE_FILTERS and self.flow is not None:
            keyed = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            keyed += node.args[:1] if name in {"selectattr", "rejectattr", "groupby", "map",
                                               "select", "reject"} else []
            for arg in keyed:
                yield from _key_issue(self.flow.judge_key(None, arg), line)
        if name in _ATTRIBUTE_FILTERS:
            values = [v for a in node.args for v in self.fold(a, 0)]
            values += [v for kw in node.kwargs for v in self.fold(kw.value, 0)]
            for value in values:
                if value == "attr" or any(is_dangerous_name(p) for p in value.split(".") if p):
                    yield TemplateIssue(IssueKind.INJECTION,
                                        f"the {name} filter is pointed at {value!r}, reaching "
                                        "Python internals through attribute lookup",
                                        f"|{name}({value!r})", line)
                    break

    def _check_call(self, node: n.Call, line: int | None) -> Iterator[TemplateIssue]:
        callee = node.node
        if isinstance(callee, n.Name):
            name = callee.name
            if name in DANGEROUS_CALLS:
                yield TemplateIssue(IssueKind.INJECTION, f"template calls {name}()",
                                    f"{name}()", line)
            elif name not in SAFE_GLOBAL_CALLS and name not in self.macros:
                yield TemplateIssue(IssueKind.UNVERIFIED,
                                    f"template calls {name}(), which is neither a standard "
                                    "chat-template helper nor a macro it defines",
                                    f"{name}()", line)
        elif isinstance(callee, n.Getattr):
            method = callee.attr
            if method in DANGEROUS_CALLS:
                yield TemplateIssue(IssueKind.INJECTION, f"template calls .{method}()",
                                    f".{method}()", line)
            elif method == "format":
                for value in self.fold(callee.node, 0):
                    if _DUNDER_TEXT.search(value) or re.search(r"\{[^{}:!]*[.\[]", value):
                        yield TemplateIssue(IssueKind.INJECTION,
                                            "str.format with attribute lookups in the format "
                                            "string reaches object internals (CVE-2016-10745)",
                                            value[:120], line)
                        break
            elif method not in SAFE_METHODS and not is_dangerous_name(method):
                yield TemplateIssue(IssueKind.UNVERIFIED,
                                    f"template calls the method .{method}(), which chat "
                                    "templates do not normally use", f".{method}()", line)


def _key_issue(verdict: KeyVerdict | None, line: int | None) -> Iterator[TemplateIssue]:
    if verdict is not None:
        high, message, evidence = verdict
        yield TemplateIssue(IssueKind.INJECTION if high else IssueKind.UNVERIFIED, message,
                            f"[{evidence}]", line)
