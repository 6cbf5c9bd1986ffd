"""Strings a pickle computes at load time, folded back into constants.

Payloads hide the names they import (``STACK_GLOBAL`` arguments, ``getattr`` names) behind
pure string functions: ``codecs.decode('bf.flfgrz', 'rot13')``, ``base64.b64decode``,
``''.join``, concatenation. Those few functions are evaluated here on constants only, with
safe codecs and bounded sizes, so the data-flow layer sees the name a loader would import.
Nothing else is ever evaluated.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from typing import Final

from modelward.pickle_analysis.symbols import Blob, Call, Global, ListSym, Value

__all__ = ["STR_FUNCS", "const_str", "eval_str"]

#: Pure string transforms a payload may use to assemble names; evaluated on constants.
STR_FUNCS: Final = frozenset({
    "codecs.decode", "_codecs.decode", "codecs.encode", "_codecs.encode", "base64.b64decode",
    "binascii.unhexlify", "binascii.a2b_hex", "builtins.bytes.fromhex", "operator.add",
    "_operator.add", "operator.concat", "_operator.concat", "builtins.str", "builtins.str.join",
    "builtins.bytes.decode", "builtins.str.lower", "builtins.str.upper", "builtins.str.strip",
})
_SAFE_CODECS: Final = frozenset({
    "rot13", "rot_13", "base64", "base_64", "base64_codec", "hex", "hex_codec", "utf-8",
    "utf8", "latin-1", "latin1", "ascii",
})


def const_str(value: Value, data: memoryview) -> str | None:
    """`value` as a ``str`` if it is a string constant (`data`: the stream it points into)."""
    if type(value) is str:
        return value
    if isinstance(value, Blob) and value.kind == "str":
        if value.full is not None and isinstance(value.full, str):
            return value.full
        if value.start is not None and value.length <= 65536:
            return str(data[value.start : value.start + value.length], "utf-8", "replace")
    return None

def eval_str(value: Value, data: memoryview, depth: int = 0) -> str | bytes | None:
    """Evaluate a string computed by pure string functions on constants, if possible."""
    if isinstance(value, (str, bytes)):
        return value
    s = const_str(value, data)
    if s is not None:
        return s
    if depth > 6 or not isinstance(value, Call) or value.kind != "call":
        return None
    func = value.func
    if not isinstance(func, Global) or func.via is not None or func.dotted not in STR_FUNCS:
        return None
    if not isinstance(value.args, tuple):
        return None
    args = [eval_str(a, data, depth + 1) for a in value.args]
    if any(a is None for a in args):
        if func.dotted == "builtins.str.join" and len(value.args) == 2:
            items = value.args[1]
            parts = items.items if isinstance(items, ListSym) else items
            if isinstance(parts, (list, tuple)) and isinstance(args[0], str):
                strs = [eval_str(p, data, depth + 1) for p in parts]
                if all(isinstance(p, str) for p in strs):
                    return args[0].join(strs)  # type: ignore[arg-type]
        return None
    try:
        out = _apply_str_func(func.dotted, args)  # type: ignore[arg-type]
    except (ValueError, TypeError, LookupError, binascii.Error):
        return None
    return out if out is None or len(out) <= 65536 else None


def _apply_str_func(dotted: str, args: list[str | bytes]) -> str | bytes | None:
    short = dotted.rsplit(".", 1)[-1]
    if short in ("decode", "encode") and dotted.split(".")[0] in ("codecs", "_codecs"):
        enc = args[1] if len(args) > 1 else "utf-8"
        if not isinstance(enc, str) or enc.lower() not in _SAFE_CODECS:
            return None
        transform = codecs.decode if short == "decode" else codecs.encode
        out: object = transform(args[0], enc)  # type: ignore[arg-type]
        return out if isinstance(out, (str, bytes)) else None
    if dotted == "base64.b64decode":
        return base64.b64decode(args[0])
    if dotted in ("binascii.unhexlify", "binascii.a2b_hex"):
        return binascii.unhexlify(args[0])
    if dotted == "builtins.bytes.fromhex" and isinstance(args[0], str):
        return bytes.fromhex(args[0])
    if short in ("add", "concat") and len(args) == 2 and type(args[0]) is type(args[1]):
        return args[0] + args[1]  # type: ignore[operator]
    if dotted == "builtins.str" and len(args) == 1:
        return args[0] if isinstance(args[0], str) else None
    if dotted == "builtins.bytes.decode" and isinstance(args[0], bytes):
        enc = args[1] if len(args) > 1 else "utf-8"
        if isinstance(enc, str) and enc.lower() in _SAFE_CODECS:
            return args[0].decode(enc)
        return None
    if dotted in ("builtins.str.lower", "builtins.str.upper", "builtins.str.strip"):
        text = args[0]
        if isinstance(text, str):
            return text.lower() if short == "lower" else text.upper() if short == "upper" \
                else text.strip()
    return None
