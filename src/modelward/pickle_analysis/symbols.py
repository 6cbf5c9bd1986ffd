"""The values the pickle machine pushes instead of objects, and their pseudo-Python form.

Plain data (``None``, booleans, ints, floats, short ``str``/``bytes``, tuples) is kept as
ordinary Python values: building them runs no code. Everything else is a symbol: an
imported name (`Global`), the result of a call (`Call`), a persistent id (`Persistent`),
big strings and byte strings (`Blob`: a prefix and a length, never the payload), and
mutable containers (`ListSym`, `DictSym`, `SetSym`) that keep a bounded number of items.

`render` turns any of them back into bounded pseudo-Python (``os.system('id')``), which is
the evidence a user reads.
"""

from __future__ import annotations

from typing import Any, Final, Union

__all__ = [
    "Blob", "Call", "DictSym", "Global", "ListSym", "Opaque", "Persistent", "SetSym",
    "Value", "render", "to_plain",
]

#: Items a container keeps for analysis and rendering; the rest are only counted.
KEEP_ITEMS: Final = 64
#: Longest str/bytes kept whole as a Python value; longer ones become a `Blob`.
SMALL: Final = 256
#: Characters of a `Blob` kept for rendering and sniffing.
HEAD: Final = 64
#: Longest rendering of one finding's evidence.
MAX_RENDER: Final = 400

PICKLE_PROTOCOL_HEAD: Final = frozenset(b"\x80" + bytes([p]) for p in range(6))


class Global:
    """An imported name (``os.system``), however the pickle reached it.

    Attributes:
        dotted: ``module.qualname`` after Python 2 name mapping.
        offset: byte offset of the import opcode.
        record: index of the import in the machine's import list.
        via: how it was computed when not a plain import (``getattr``, ``import_module``...).
        is_module: the name denotes a whole module (``import_module('os')``).
    """

    __slots__ = ("dotted", "is_module", "offset", "record", "via")

    def __init__(self, dotted: str, offset: int, record: int, via: Call | None = None,
                 is_module: bool = False) -> None:
        self.dotted = dotted
        self.offset = offset
        self.record = record
        self.via = via
        self.is_module = is_module


class Call:
    """A call the unpickler makes (REDUCE, NEWOBJ, OBJ, INST, BUILD, APPEND...).

    Attributes:
        kind: ``call``, ``new``, ``build``, ``append``, ``setitem``, ``add``, ``persistent``.
        func: the callee (or the object a method runs on, for build/append/setitem/add).
        args: positional arguments (a tuple of values, or a symbol for ``f(*sym)``).
        kwargs: keyword arguments for NEWOBJ_EX.
        offset: byte offset of the opcode that makes the call.
        risk: severity of what the call touches (0 when it only involves safe callables).
        outer: the riskier call this one is part of, if any.
        resolved: the dotted name of the callable really run, when computed at load time.
        state: the state a later BUILD gave the object this call made.
    """

    __slots__ = ("args", "func", "kind", "kwargs", "offset", "outer", "resolved", "risk", "state")

    def __init__(self, kind: str, func: Value, args: Value, offset: int,
                 kwargs: Value = None) -> None:
        self.kind = kind
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.offset = offset
        self.risk = 0
        self.outer: Call | None = None
        self.resolved: str | None = None
        self.state: Value = None


class Persistent:
    """The object a loader's ``persistent_load`` returns for a persistent id."""

    __slots__ = ("offset", "pid")

    def __init__(self, pid: Value, offset: int) -> None:
        self.pid = pid
        self.offset = offset


class Blob:
    """A long ``str``/``bytes``/``bytearray``: its first characters and its length.

    Attributes:
        kind: ``bytes``, ``str`` or ``bytearray``.
        head: the first `HEAD` items.
        length: full length (bytes for raw payloads, characters for decoded text).
        start: absolute offset of the raw payload in the artifact, when it is stored raw.
        full: the whole decoded value when it is not raw but small enough to keep.
    """

    __slots__ = ("full", "head", "kind", "length", "start")

    def __init__(self, kind: str, head: bytes | str, length: int, start: int | None,
                 full: bytes | str | None = None) -> None:
        self.kind = kind
        self.head = head
        self.length = length
        self.start = start
        self.full = full

    @property
    def has_pickle_magic(self) -> bool:
        """The payload starts like a protocol 2+ pickle."""
        head = self.head.encode("latin-1", "replace") if isinstance(self.head, str) else self.head
        return head[:2] in PICKLE_PROTOCOL_HEAD


class ListSym:
    """A list being built: first `KEEP_ITEMS` items kept, the rest counted."""

    __slots__ = ("count", "items")

    def __init__(self, items: list[Value] | None = None) -> None:
        self.items: list[Value] = []
        self.count = 0
        if items:
            self.extend(items)

    def extend(self, items: list[Value]) -> None:
        room = KEEP_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(items[:room])
        self.count += len(items)


class SetSym(ListSym):
    """A set (or frozenset, when `frozen`) being built."""

    __slots__ = ("frozen",)

    def __init__(self, items: list[Value] | None = None, frozen: bool = False) -> None:
        super().__init__(items)
        self.frozen = frozen


class DictSym:
    """A dict being built: first `KEEP_ITEMS` pairs kept, the rest counted."""

    __slots__ = ("count", "items")

    def __init__(self) -> None:
        self.items: list[tuple[Value, Value]] = []
        self.count = 0

    def set(self, key: Value, value: Value) -> None:
        if len(self.items) < KEEP_ITEMS:
            self.items.append((key, value))
        self.count += 1

    def get(self, key: str) -> Value:
        """The last value set under the str `key`, or `None`."""
        for k, v in reversed(self.items):
            if k == key and isinstance(k, str):
                return v
        return None


class Opaque:
    """Something the machine cannot model further (an out-of-band buffer, a joblib array)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


Value = Union[None, bool, int, float, complex, str, bytes, "tuple[Any, ...]", Global, Call,
              Persistent, Blob, ListSym, DictSym, Opaque]


def _short_name(dotted: str) -> str:
    return dotted[9:] if dotted.startswith("builtins.") else dotted


def _args(args: Value, budget: list[int]) -> str:
    if isinstance(args, tuple):
        return ", ".join(_render(a, budget) for a in args)
    return "*" + _render(args, budget)


def _render(value: Value, budget: list[int], depth: int = 0) -> str:
    budget[0] -= 1
    if budget[0] < 0 or depth > 12:
        return "..."
    d = depth + 1
    if isinstance(value, Global):
        if value.via is not None:
            return _render(value.via, budget, d)
        return _short_name(value.dotted)
    if isinstance(value, Call):
        return _render_call(value, budget, d)
    if isinstance(value, tuple):
        inner = ", ".join(_render(v, budget, d) for v in value[:KEEP_ITEMS])
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, SetSym):
        inner = ", ".join(_render(v, budget, d) for v in value.items)
        inner += ", ..." if value.count > len(value.items) else ""
        return f"frozenset({{{inner}}})" if value.frozen else (f"{{{inner}}}" if inner else "set()")
    if isinstance(value, ListSym):
        more = ", ..." if value.count > len(value.items) else ""
        return "[" + ", ".join(_render(v, budget, d) for v in value.items) + more + "]"
    if isinstance(value, DictSym):
        more = ", ..." if value.count > len(value.items) else ""
        pairs = ", ".join(f"{_render(k, budget, d)}: {_render(v, budget, d)}"
                          for k, v in value.items)
        return "{" + pairs + more + "}"
    if isinstance(value, Blob):
        text = repr(value.head)[:-1]
        return f"{text}...{text[-1]} <{value.length} {'chars' if value.kind == 'str' else 'bytes'}>"
    if isinstance(value, Persistent):
        return f"persistent_load({_render(value.pid, budget, d)})"
    if isinstance(value, Opaque):
        return f"<{value.label}>"
    text = repr(value)
    return text if len(text) <= 120 else text[:100] + "..." + text[-1]


def _render_call(call: Call, budget: list[int], depth: int) -> str:
    func = _render(call.func, budget, depth)
    if call.kind == "call":
        return f"{func}({_args(call.args, budget)})"
    if call.kind == "new":
        args = _args(call.args, budget)
        kwargs = "" if call.kwargs is None else ", **" + _render(call.kwargs, budget, depth)
        return f"{func}.__new__({func}{', ' if args else ''}{args}{kwargs})"
    if call.kind == "build":
        return f"{func}.__setstate__({_args(call.args, budget)})"
    if call.kind in ("append", "extend", "add", "__setitem__"):
        return f"{func}.{call.kind}({_args(call.args, budget)})"
    return f"{func}.{call.kind}({_args(call.args, budget)})"


def render(value: Value, limit: int = MAX_RENDER) -> str:
    """Render a value as readable pseudo-Python of at most `limit` characters."""
    text = _render(value, [200])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_plain(value: Value, depth: int = 0) -> object:
    """Plain Python data for a value: tuples, str, int...; imports become dotted strings."""
    if depth > 8:
        return "..."
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, tuple):
        return tuple(to_plain(v, depth + 1) for v in value)
    if isinstance(value, Global) and value.via is None:
        return value.dotted
    if isinstance(value, Blob):
        return value.full if value.full is not None else render(value)
    if isinstance(value, ListSym) and not isinstance(value, SetSym):
        return [to_plain(v, depth + 1) for v in value.items]
    return render(value)
