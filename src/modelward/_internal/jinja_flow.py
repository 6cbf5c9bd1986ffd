"""Whole-template facts for the chat-template audit: run-time keys and resource abuse.

`jinja_audit` folds constant strings, so a key spelled out in pieces is caught; a key that
only exists at render time is not: a ``namespace`` attribute grown in a loop, a loop over a
literal list of characters, ``'%c%c' % (95, 95)``, ``('_', 'x')[0]``, ``'class'.center(9,
'_')``, ``(()|select|string)[24]``, or a key taken from message content. Jinja's item
lookup falls back to ``getattr`` for string keys, so any of those reaching ``obj[key]`` or
``|attr(key)`` is an attribute access the audit cannot name.

The rule applied to each item access (and attribute-naming filter argument) whose key is
not a compile-time constant:

- the key's possible values are known (loop over a literal list, ``set`` of constants):
  judged by name like constant keys;
- the key is numeric (``loop.index0``, ``messages|length - 1``, ``range`` targets), is a
  key of the very container it indexes (``for k in d`` ... ``d[k]``, ``d|items``), or
  indexes a lookup table the template builds from a dict literal (``roles[m.role]``): safe,
  the lookup selects an existing item or, at worst, one attribute of a plain dict that a
  further run-time key would have to traverse (and that access is judged in turn);
- the key is built from pieces that can produce ``_`` (a constant containing ``_``, ``%c``
  formatting, the string form of a Python object): HIGH, that is how a dunder is assembled
  past the constant folder;
- otherwise the key comes from data (message content, tool arguments): MEDIUM, because a
  user-controlled ``__class__`` key then reaches attributes.

It also reports work bounded only by constants in the template (``range(10**9)``,
``9**9**9``, ``'a' * 10**10``, nested loops whose product is huge, padding to a huge width)
and recursive macros: rendering such a template exhausts the serving host's CPU or memory.
So do format directives padding to a huge width (``'%0999999999d' % 1``,
``'{:>999999999}'.format(x)``, ``|format``; `huge_format`), recursion without a macro
naming itself (a macro or ``caller`` passed on and called through a parameter,
``caller(caller)``), and ``{% for ... recursive %}`` loops whose ``loop(...)`` gets data not
taken from the current item or data the template made contain itself.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterator, Sequence
from typing import Final

from jinja2 import nodes as n

__all__ = ["Flow", "KeyVerdict", "huge_format"]

KeyVerdict = tuple[bool, str, str]
"""(is_injection, message, evidence): True is HIGH, False MEDIUM."""

_MAX_DEPTH: Final = 24
_MAX_VALUES: Final = 64
_BIG: Final = 10**6  # iterations, repetitions or widths no chat template needs
_MAX_POW_BITS: Final = 4096
_CAP: Final = 10**18
_NUMERIC_LOOP_ATTRS: Final = frozenset({"index", "index0", "revindex", "revindex0", "length",
                                        "depth", "depth0"})
_NUMERIC_FILTERS: Final = frozenset({"length", "count", "int", "float", "round", "abs", "sum",
                                     "wordcount"})
_OBJECT_FILTERS: Final = frozenset({"select", "reject", "map", "selectattr", "rejectattr",
                                    "groupby", "batch", "slice", "dictsort", "items", "attr",
                                    "list", "unique"})
_STRINGIFY_FILTERS: Final = frozenset({"string", "pprint", "e", "escape", "forceescape",
                                       "format", "join", "urlencode", "tojson"})
_OBJECT_GLOBALS: Final = frozenset({"lipsum", "cycler", "joiner", "namespace", "range", "dict",
                                    "loop", "self", "caller", "varargs", "kwargs"})
_BOOLEAN: Final = (n.Compare, n.Test, n.And, n.Or, n.Not)
_WIDTH_CALLS: Final = frozenset({"center", "ljust", "rjust", "zfill", "indent", "truncate",
                                 "wordwrap"})
_MAX_FORMAT: Final = 4096  # characters of a format string examined
# printf-style directive: width and precision may be digits or '*' (taken from the arguments)
_PERCENT_SPEC: Final = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
# str.format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_BRACE_SPEC: Final = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?([a-zA-Z%]?)")
_MUTATORS: Final = frozenset({"append", "insert", "extend", "update", "setdefault"})


class Flow:
    """Assignments of one template, and the questions the audit asks about keys."""

    def __init__(self, tree: n.Template, macros: dict[str, n.Macro]) -> None:
        self.assigns: dict[str, list[n.Node]] = {}
        self.loops: dict[str, list[tuple[n.For, bool]]] = {}
        self.macros = macros
        self.tree = tree
        for node in tree.find_all((n.Assign, n.AssignBlock, n.For, n.Call)):
            if isinstance(node, n.Assign):
                self._bind(node.target, node.node)
            elif isinstance(node, n.AssignBlock):
                self._bind(node.target, node)
            elif isinstance(node, n.For):
                self._bind_loop(node)
            elif isinstance(node, n.Call):
                self._bind_call(node)

    # -- bindings -----------------------------------------------------------------------
    def _bind(self, target: n.Node, value: n.Node) -> None:
        if isinstance(target, n.Name):
            self.assigns.setdefault(target.name, []).append(value)
        elif isinstance(target, n.NSRef):
            self.assigns.setdefault("." + target.attr, []).append(value)
        elif isinstance(target, n.Tuple):
            for item in target.items:  # unpacking a run-time value: data
                self._bind(item, n.Name("<data>", "load"))

    def _bind_loop(self, loop: n.For) -> None:
        if isinstance(loop.target, n.Name):
            self.loops.setdefault(loop.target.name, []).append((loop, True))
        elif isinstance(loop.target, n.Tuple):
            for i, item in enumerate(loop.target.items):
                if isinstance(item, n.Name):
                    self.loops.setdefault(item.name, []).append((loop, i == 0))

    def _bind_call(self, call: n.Call) -> None:
        callee = call.node
        if isinstance(callee, n.Name) and callee.name == "namespace":
            for kw in call.kwargs:
                self.assigns.setdefault("." + kw.key, []).append(kw.value)
        elif isinstance(callee, n.Name) and callee.name in self.macros:
            macro = self.macros[callee.name]
            for arg, value in zip(macro.args, call.args, strict=False):
                self.assigns.setdefault(arg.name, []).append(value)
            names = {a.name: a for a in macro.args}
            for kw in call.kwargs:
                if kw.key in names:
                    self.assigns.setdefault(kw.key, []).append(kw.value)

    def _sources(self, node: n.Node) -> list[n.Node] | None:
        """Values a variable can take (None: not a tracked variable)."""
        if isinstance(node, n.Name) and node.name in self.assigns | self.loops:
            return self.assigns.get(node.name, [])
        if isinstance(node, n.Getattr) and "." + node.attr in self.assigns:
            return self.assigns["." + node.attr]
        return None

    # -- values ---------------------------------------------------------------------------
    def values(self, node: n.Node, depth: int = 0, busy: frozenset[str] = frozenset()
               ) -> list[str] | None:
        """Every string the expression can take, when finitely known; else None."""
        if depth > _MAX_DEPTH:
            return None
        d = depth + 1
        if isinstance(node, n.Const):
            return [node.value] if isinstance(node.value, str) else None
        if isinstance(node, (n.List, n.Tuple)) or isinstance(node, _BOOLEAN):
            return None
        if isinstance(node, n.CondExpr):
            a = self.values(node.expr1, d, busy)
            b = self.values(node.expr2, d, busy) if node.expr2 is not None else []
            return None if a is None or b is None else (a + b)[:_MAX_VALUES]
        if isinstance(node, (n.Concat, n.Add)):
            parts = node.nodes if isinstance(node, n.Concat) else [node.left, node.right]
            out = [""]
            for part in parts:
                vals = self.values(part, d, busy)
                if vals is None:
                    return None
                out = [a + b for a in out for b in vals]
                if len(out) > _MAX_VALUES:
                    return None
            return out
        if isinstance(node, n.Getitem) and isinstance(node.node, (n.List, n.Tuple)):
            return self._literal_strings(node.node)
        key = _var_key(node)
        if key is None or key in busy:
            return None
        out = []
        for loop, first in self.loops.get(key, []) if isinstance(node, n.Name) else []:
            items = self._literal_strings(loop.iter) if first else None
            if items is None:
                return None
            out += items
        for source in self._sources(node) or []:
            vals = self.values(source, d, busy | {key})
            if vals is None:
                return None
            out += vals
        return out[:_MAX_VALUES] if out else None

    @staticmethod
    def _literal_strings(node: n.Node) -> list[str] | None:
        if isinstance(node, (n.List, n.Tuple)) and all(
                isinstance(i, n.Const) and isinstance(i.value, str) for i in node.items):
            return [i.value for i in node.items if isinstance(i, n.Const)]
        return None

    # -- numeric --------------------------------------------------------------------------
    def numeric(self, node: n.Node, depth: int = 0, busy: frozenset[str] = frozenset()) -> bool:
        """Whether the expression can only be a number."""
        if depth > _MAX_DEPTH:
            return False
        d = depth + 1
        if isinstance(node, n.Const):
            return isinstance(node.value, (int, float))
        if isinstance(node, (n.Neg, n.Pos)):
            return self.numeric(node.node, d, busy)
        if isinstance(node, (n.Add, n.Sub, n.Mul, n.Div, n.FloorDiv, n.Mod, n.Pow)):
            return self.numeric(node.left, d, busy) and self.numeric(node.right, d, busy)
        if isinstance(node, n.Filter):
            return node.name in _NUMERIC_FILTERS
        if isinstance(node, n.Getattr) and isinstance(node.node, n.Name):
            if node.node.name == "loop" and node.attr in _NUMERIC_LOOP_ATTRS:
                return True
        key = _var_key(node)
        if key is None or key in busy:
            return False
        sources = list(self._sources(node) or [])
        loops = self.loops.get(key, []) if isinstance(node, n.Name) else []
        if not sources and not loops:
            return False
        if any(not (first and _is_range(loop.iter)) for loop, first in loops):
            return False
        return all(self.numeric(s, d, busy | {key}) for s in sources)

    # -- '_' capability -------------------------------------------------------------------
    def underscore(self, node: n.Node, depth: int = 0,
                   busy: frozenset[str] = frozenset()) -> bool:
        """Whether the expression can build a string with ``_`` the folder cannot name."""
        if depth > _MAX_DEPTH:
            return True
        d = depth + 1
        if isinstance(node, n.Const):
            return isinstance(node.value, str) and ("_" in node.value or "%c" in node.value
                                                   or ":c}" in node.value)
        if isinstance(node, _BOOLEAN):
            return False
        if isinstance(node, n.CondExpr):
            return self.underscore(node.expr1, d, busy) or (
                node.expr2 is not None and self.underscore(node.expr2, d, busy))
        if isinstance(node, n.Getitem):  # the key names what is read, not what is built
            return self.underscore(node.node, d, busy) or self._stringified(node.node, d)
        if isinstance(node, n.Filter) and node.name in _STRINGIFY_FILTERS and node.node:
            if self._stringified(node.node, d):
                return True
        if isinstance(node, n.Call) and isinstance(node.node, n.Name) and node.node.name == "dict":
            if any("_" in kw.key for kw in node.kwargs):
                return True
        if isinstance(node, n.AssignBlock):
            return any(self.underscore(child, d, busy) or (
                isinstance(child, n.TemplateData) and "_" in child.data)
                for child in node.find_all((n.Output, n.TemplateData, n.Expr)))
        key = _var_key(node)
        if key is not None:
            if key in busy:
                return False
            loops = self.loops.get(key, []) if isinstance(node, n.Name) else []
            if any(self.underscore(loop.iter, d, busy | {key}) for loop, _ in loops):
                return True
            sources = self._sources(node)
            if sources is not None:
                return any(self.underscore(s, d, busy | {key}) for s in sources)
        if isinstance(node, n.Getattr):
            return False  # data attribute: what it holds is data, not built here
        return any(self.underscore(child, d, busy) for child in node.iter_child_nodes())

    def _stringified(self, node: n.Node, depth: int) -> bool:
        """Whether `node` is a Python object whose string form (``<generator object
        select_or_reject ...>``, ``<function generate_lorem_ipsum ...>``) holds ``_``."""
        if depth > _MAX_DEPTH:
            return True
        if isinstance(node, n.Filter):
            return node.name in _OBJECT_FILTERS or (
                node.node is not None and node.name in _STRINGIFY_FILTERS
                and self._stringified(node.node, depth + 1))
        if isinstance(node, n.Name):
            return node.name in _OBJECT_GLOBALS or node.name in self.macros
        if isinstance(node, n.Getattr):
            return self._stringified(node.node, depth + 1)
        return isinstance(node, n.Call)

    # -- keys -----------------------------------------------------------------------------
    def judge_key(self, container: n.Node | None, key: n.Node) -> KeyVerdict | None:
        """Verdict on a run-time key (None: safe or left to the constant folder)."""
        if isinstance(key, (n.Const, n.Slice)):
            return None
        if self.values(key) is not None or self.numeric(key):
            return None
        if container is not None and (self._own_key(container, key)
                                      or self._lookup_table(container)):
            return None
        source = _source_text(key)
        if self.underscore(key):
            return (True, "template indexes with a key built at render time from pieces that "
                    "can produce '_' (loop-built, %c-formatted, padded or taken from an "
                    "object's string form); Jinja falls back to getattr, so this is how a "
                    "dunder is assembled past static checks", source)
        return (False, "template indexes with a key taken from data at render time; Jinja "
                "falls back to getattr for string keys, so a '__class__' key arriving in a "
                "message or tool call reaches Python internals", source)

    def _lookup_table(self, container: n.Node) -> bool:
        """A name the template only ever binds to a dict literal (``{'user': ...}`` or
        ``dict(user=...)``): a data key selects a value or, on a miss, one attribute of a
        plain dict; a chain needs a second run-time key, whose container is then not a
        table and is judged."""
        sources = self._sources(container) if isinstance(container, n.Name) else None
        return bool(sources) and not self.loops.get(getattr(container, "name", "")) and all(
            isinstance(s, n.Dict) or (isinstance(s, n.Call) and isinstance(s.node, n.Name)
                                      and s.node.name == "dict" and not s.args)
            for s in sources or [])

    def _own_key(self, container: n.Node, key: n.Node) -> bool:
        """``for k in d`` / ``for k, v in d|items`` ... ``d[k]``: k is one of d's keys."""
        if not isinstance(key, n.Name):
            return False
        loops = self.loops.get(key.name, [])
        if not loops or key.name in self.assigns:
            return False
        return all(first and _strip_iteration(loop.iter) == container for loop, first in loops)

    # -- resource abuse -------------------------------------------------------------------
    def resource_issues(self) -> Iterator[tuple[str, str, int | None]]:
        """(message, evidence, line) for work bounded only by huge constants or recursion."""
        for node in self.tree.find_all((n.Pow, n.Mul, n.Call, n.Filter)):
            line = getattr(node, "lineno", None)
            if isinstance(node, n.Pow) and _int_value(node) is None and self._powbig(node):
                yield ("template raises a number to a huge power (a bignum that takes the "
                       "serving host minutes and gigabytes to compute)", _source_text(node), line)
            elif isinstance(node, n.Mul):
                for count in (_int_value(node.left), _int_value(node.right)):
                    if count is not None and abs(count) >= _BIG and not (
                            self.numeric(node.left) and self.numeric(node.right)):
                        yield ("template repeats a string or list a huge number of times "
                               "(memory exhaustion on the serving host)", _source_text(node),
                               line)
                        break
            elif isinstance(node, (n.Call, n.Filter)):
                name = (node.name if isinstance(node, n.Filter) else node.node.name
                        if isinstance(node.node, n.Name) else node.node.attr
                        if isinstance(node.node, n.Getattr) else "")
                if name in _WIDTH_CALLS or name == "range":
                    sizes = [_int_value(a) for a in [*node.args, *(k.value for k in node.kwargs)]]
                    if any(s is not None and abs(s) >= _BIG for s in sizes):
                        yield (f"template calls {name} with a huge size (CPU or memory "
                               "exhaustion on the serving host)", _source_text(node), line)
        yield from self._loop_products(self.tree.body, 1)
        yield from self._recursion()
        yield from self._self_application()
        yield from self._recursive_loops()

    def _self_application(self) -> Iterator[tuple[str, str, int | None]]:
        """``caller(caller)`` / ``m(m)``: a callable passed on and called via a parameter.

        A call block's body and a macro are values; handed to a call whose callee then
        calls its parameter with it, they recurse without any macro naming itself
        (``{% macro m() %}{{ caller(caller) }}{% endmacro %}{% call(c) m() %}{{ c(c) }}``).
        """
        params = {a.name for m in self.tree.find_all(n.Macro) for a in m.args}
        params |= {a.name for b in self.tree.find_all(n.CallBlock) for a in b.args}
        callables = set(self.macros) | {"caller"} | params
        if not any(isinstance(c.node, n.Name) and c.node.name in params
                   for c in self.tree.find_all(n.Call)):
            return  # no parameter is ever called: nothing passed on can call itself
        for call in self.tree.find_all(n.Call):
            passed = [a for a in [*call.args, *(k.value for k in call.kwargs)]
                      if isinstance(a, n.Name) and a.name in callables]
            if passed:
                yield ("template passes a macro or its caller() to a call that invokes it "
                       "through a parameter; such self-application recurses to Python's limit "
                       "or does exponential work (denial of service on the serving host)",
                       f"{_source_text(call.node)}({passed[0].name})", call.lineno)
                return

    def _recursive_loops(self) -> Iterator[tuple[str, str, int | None]]:
        """``{% for ... recursive %}`` whose ``loop(...)`` cannot bottom out.

        ``loop(x)`` descends into `x`; it ends when the data ends. It does not when `x` is
        not taken from the current item (the same data again), or when the template builds
        data that contains itself (``d.c.append(d)``, ``{% set ns.kids = [ns] %}``).
        """
        cyclic = self._cyclic_data()
        for loop in self.tree.find_all(n.For):
            if not loop.recursive:
                continue
            targets = {t.name for t in loop.target.find_all(n.Name)} | (
                {loop.target.name} if isinstance(loop.target, n.Name) else set())
            for body in loop.body:
                for call in body.find_all(n.Call):
                    if not (isinstance(call.node, n.Name) and call.node.name == "loop"):
                        continue
                    used = {x.name for a in call.args for x in a.find_all(n.Name)} | {
                        a.name for a in call.args if isinstance(a, n.Name)}
                    if not used & targets:
                        yield ("recursive loop calls loop() on data not taken from the current "
                               "item, so it recurses on the same data until Python's limit "
                               "(denial of service on the serving host)",
                               f"loop({', '.join(_source_text(a) for a in call.args)})",
                               call.lineno)
                        return
                    if cyclic is not None:
                        yield ("recursive loop walks data the template makes contain itself "
                               f"({cyclic}); loop() never reaches the end (denial of service "
                               "on the serving host)", cyclic, call.lineno)
                        return

    def _cyclic_data(self) -> str | None:
        """Evidence of a container the template puts into itself, if any."""
        for call in self.tree.find_all(n.Call):
            callee = call.node
            if isinstance(callee, n.Getattr) and callee.attr in _MUTATORS:
                root = _root_name(callee.node)
                values = [*call.args, *(k.value for k in call.kwargs)]
                if root is not None and any(_holds(v, root) for v in values):
                    return f"{_source_text(callee)}({root})"
        for assign in self.tree.find_all(n.Assign):
            root = _root_name(assign.target)
            if isinstance(assign.target, n.NSRef):
                root = assign.target.name
            if root is not None and not isinstance(assign.target, n.Name) \
                    and _holds(assign.node, root):
                return f"set {_source_text(assign.target)} = {_source_text(assign.node)}"
        return None

    def _powbig(self, node: n.Pow) -> bool:
        base, exp = _int_value(node.left), _int_value(node.right)
        if isinstance(node.right, n.Pow) and exp is None:
            return True
        if base is None or exp is None:
            return False
        return abs(base) > 1 and exp > 0 and exp * math.log2(abs(base)) > _MAX_POW_BITS

    def _loop_products(self, body: list[n.Node], outer: int) -> Iterator[tuple[str, str,
                                                                                int | None]]:
        for node in body:
            if isinstance(node, n.For):
                size = _range_size(node.iter)
                total = outer * (size if size is not None else 1)
                if size is not None and outer > 1 and total >= _BIG * 10:
                    yield ("nested loops over constant ranges run a huge number of times "
                           "(CPU exhaustion on the serving host)", _source_text(node.iter),
                           node.lineno)
                    continue
                yield from self._loop_products(node.body, min(total, _CAP))
                yield from self._loop_products(node.else_, outer)
            else:
                for child in node.iter_child_nodes():
                    if isinstance(child, n.Stmt):
                        yield from self._loop_products([child], outer)

    def _recursion(self) -> Iterator[tuple[str, str, int | None]]:
        calls = {name: {c.node.name for c in macro.find_all(n.Call)
                        if isinstance(c.node, n.Name) and c.node.name in self.macros}
                 for name, macro in self.macros.items()}
        for name in sorted(calls):
            seen, stack = set(), list(calls[name])
            while stack:
                callee = stack.pop()
                if callee == name:
                    yield ("macro calls itself (directly or through others); rendering "
                           "recurses to Python's limit or does exponential work (denial of "
                           "service on the serving host)", f"macro {name}",
                           self.macros[name].lineno)
                    break
                if callee not in seen:
                    seen.add(callee)
                    stack.extend(calls.get(callee, ()))


def _root_name(node: n.Node) -> str | None:
    """``a.b[c].d`` -> ``a``."""
    while isinstance(node, (n.Getattr, n.Getitem)):
        node = node.node
    return node.name if isinstance(node, n.Name) else None


def _holds(node: n.Node, name: str, depth: int = 0) -> bool:
    """Whether `node` is `name` itself or a literal list/tuple/dict holding it."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(node, n.Name):
        return node.name == name
    if isinstance(node, (n.List, n.Tuple)):
        return any(_holds(x, name, depth + 1) for x in node.items)
    if isinstance(node, n.Dict):
        return any(_holds(p.value, name, depth + 1) for p in node.items)
    return False


def _big(digits: str | None) -> bool:
    return bool(digits) and digits is not None and digits.isdigit() and (
        len(digits) > 7 or int(digits) >= _BIG)


def huge_format(fmt: str, percent: bool, args: Sequence[n.Node] = ()) -> str | None:
    """The directive of a format string that pads or prints to a huge size, if any.

    ``'%0999999999d' % 1``, ``'{:>999999999}'.format(x)``, ``'%*d' % (10**9, 1)`` and
    ``'{:{}}'.format(x, 10**9)`` each allocate gigabytes when rendered. Precision on
    strings only truncates, so it is not counted.

    Args:
        fmt: the (folded) format string.
        percent: printf-style (``%``, ``|format``) rather than ``str.format``.
        args: the argument expressions, for widths given as ``*`` or nested fields.
    """
    fmt = fmt[:_MAX_FORMAT]
    huge_arg = any(v is not None and abs(v) >= _BIG for v in (_int_value(a) for a in args))
    if percent:
        for match in _PERCENT_SPEC.finditer(fmt):
            width, precision, conv = match.groups()
            if _big(width) or (conv not in "sra" and _big(precision)) or (
                    huge_arg and "*" in (width, precision)):
                return match.group(0)
        return None
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    for _text, field, spec, _conv in fields:
        if field is None or not spec:
            continue
        parts = _BRACE_SPEC.fullmatch(spec)
        if ("{" in spec and huge_arg) or (parts is not None and (
                _big(parts.group(1)) or (parts.group(3) != "s" and _big(parts.group(2))))):
            return f"{{{field}:{spec}}}"
    return None


def _var_key(node: n.Node) -> str | None:
    if isinstance(node, n.Name):
        return node.name
    if isinstance(node, n.Getattr) and isinstance(node.node, n.Name):
        return "." + node.attr
    return None


def _is_range(node: n.Node) -> bool:
    return isinstance(node, n.Call) and isinstance(node.node, n.Name) and node.node.name == "range"


def _strip_iteration(node: n.Node) -> n.Node:
    """``d|items``, ``d.items()``, ``d.keys()``, ``d|dictsort``, ``d|list`` -> ``d``."""
    while True:
        if isinstance(node, n.Filter) and node.node is not None and node.name in {
                "items", "dictsort", "list", "sort", "reverse", "unique"}:
            node = node.node
        elif (isinstance(node, n.Call) and isinstance(node.node, n.Getattr)
              and node.node.attr in {"items", "keys"} and not node.args):
            node = node.node.node
        else:
            return node


def _int_value(node: n.Node, depth: int = 0) -> int | None:
    """Value of a constant integer expression, capped; None when unknown or unsafe."""
    if depth > _MAX_DEPTH:
        return None
    d = depth + 1
    if isinstance(node, n.Const):
        v = node.value
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(node, n.Neg):
        v = _int_value(node.node, d)
        return None if v is None else -v
    if isinstance(node, (n.Add, n.Sub, n.Mul, n.Pow)):
        a, b = _int_value(node.left, d), _int_value(node.right, d)
        if a is None or b is None:
            return None
        if isinstance(node, n.Pow):
            if b < 0 or (abs(a) > 1 and b * math.log2(abs(a)) > 64):
                return None if b >= 0 else 0
            r = int(a**b)
        else:
            r = a + b if isinstance(node, n.Add) else a - b if isinstance(node, n.Sub) else a * b
        return int(max(-_CAP, min(_CAP, r)))
    return None


def _range_size(node: n.Node) -> int | None:
    if not _is_range(node) or not isinstance(node, n.Call) or not node.args:
        return None
    bounds = [_int_value(a) for a in node.args[:2]]
    if any(b is None for b in bounds):
        return None
    ints = [b for b in bounds if b is not None]
    return max(0, ints[-1] - (ints[0] if len(ints) == 2 else 0))


def _source_text(node: n.Node) -> str:
    """A short, readable rendering of an expression for evidence."""
    if isinstance(node, n.Const):
        return repr(node.value)[:80]
    if isinstance(node, n.Name):
        return node.name
    if isinstance(node, n.Getattr):
        return f"{_source_text(node.node)}.{node.attr}"[:120]
    if isinstance(node, n.Getitem):
        return f"{_source_text(node.node)}[{_source_text(node.arg)}]"[:120]
    if isinstance(node, n.Filter):
        inner = _source_text(node.node) if node.node is not None else ""
        return f"{inner}|{node.name}"[:120]
    if isinstance(node, n.NSRef):
        return f"{node.name}.{node.attr}"
    if isinstance(node, (n.List, n.Tuple)):
        return "[" + ", ".join(_source_text(x) for x in node.items[:4])[:100] + "]"
    if isinstance(node, n.BinExpr):
        return f"{_source_text(node.left)} {node.operator} {_source_text(node.right)}"[:120]
    return type(node).__name__
