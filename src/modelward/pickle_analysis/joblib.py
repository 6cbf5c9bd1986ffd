"""joblib's inline arrays: bytes inside the pickle stream that are not opcodes.

``joblib.dump`` pickles each NumPy array as a ``NumpyArrayWrapper`` and writes the array
right after the wrapper's BUILD opcode; ``joblib.load``'s unpickler intercepts that BUILD
and reads the array from the stream (joblib/numpy_pickle.py, ``NumpyArrayWrapper.read_array``):

- object arrays: a complete nested pickle (protocol 5) read by a plain unpickler;
- everything else: an optional padding-length byte and padding (when the wrapper has
  ``numpy_array_alignment_bytes``, joblib >= 1.2), then ``prod(shape) * itemsize`` raw bytes.

This module computes that payload from the wrapper's BUILD state symbols, so the machine
skips raw bytes by length and analyses the nested pickle of object arrays. Old wrappers
(``NDArrayWrapper``, ``ZNDArrayWrapper``) point at sibling files and have no inline bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from modelward.pickle_analysis.symbols import Call, DictSym, Global, Value

__all__ = ["Payload", "inline_payload", "wrapper_name"]

WRAPPERS: Final = frozenset({
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
})
_DTYPES: Final = frozenset({
    "numpy.dtype", "numpy.core.multiarray.dtype", "numpy._core.multiarray.dtype",
})
#: The type strings ``numpy.dtype.__reduce__`` writes (``u1``, ``f8``, ``U5``, ``V12``) and
#: one-character type codes. Anything else (``uint8``, ``float16``, ``f,i``) is refused: a
#: guessed item size would put the end of the array, and so the next opcode, elsewhere.
_TYPESTR: Final = re.compile(r"[<>|=]?([a-zA-Z?])(\d*)")
_DEFAULT_SIZE: Final = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8,
                        "q": 8, "Q": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16,
                        "G": 32, "O": 8, "M": 8, "m": 8, "c": 1, "p": 8, "P": 8}
#: Kinds whose digits give the item size in bytes (``U`` digits count 4-byte characters).
_SIZED_KINDS: Final = frozenset("biufcMmOSaVU")
#: Largest element count accepted; beyond it the size is treated as undeterminable.
MAX_ELEMENTS: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class Payload:
    """What follows a wrapper's BUILD in the stream."""

    nested_pickle: bool = False
    nbytes: int = 0
    aligned: bool = False
    error: str | None = None


#: Helpers that create an instance of the class given as their first argument.
_CONSTRUCTORS: Final = frozenset({
    "copyreg._reconstructor", "copy_reg._reconstructor", "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
})


def wrapper_name(inst: Value, state: Value = None) -> str | None:
    """The dotted class name when `inst` (after BUILD with `state`) is a ``NumpyArrayWrapper``.

    joblib tests ``isinstance`` on the object BUILD leaves, so every way of making one
    counts: the class called directly or through a copyreg helper, and any object whose
    ``__class__`` the BUILD state itself reassigns (slot state ``{'__class__': wrapper}``).
    """
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], DictSym):
        cls = state[1].get("__class__")
        if isinstance(cls, Global) and cls.dotted in WRAPPERS:
            return cls.dotted
    if isinstance(inst, Call) and inst.kind in ("new", "call") and isinstance(inst.func, Global):
        dotted = inst.func.dotted
        if dotted in WRAPPERS:
            return dotted
        if dotted in _CONSTRUCTORS and \
                isinstance(inst.args, tuple) and inst.args and isinstance(inst.args[0], Global) \
                and inst.args[0].dotted in WRAPPERS:
            return inst.args[0].dotted
    return None


def _dtype(value: Value) -> tuple[int, bool] | None:
    """(itemsize, has_object) of a ``numpy.dtype(...)`` call symbol with its BUILD state."""
    if not (isinstance(value, Call) and isinstance(value.func, Global)
            and value.func.dotted in _DTYPES and isinstance(value.args, tuple) and value.args):
        return None
    typestr = value.args[0]
    if not isinstance(typestr, str):
        return None
    match = _TYPESTR.fullmatch(typestr)
    if match is None:
        return None
    kind, digits = match.group(1), match.group(2)
    if (digits and kind not in _SIZED_KINDS) or (not digits and kind not in _DEFAULT_SIZE):
        return None
    state = getattr(value, "state", None)
    has_object = kind == "O"
    itemsize = int(digits) if digits else _DEFAULT_SIZE.get(kind, 0)
    if kind == "U" and digits:
        itemsize = 4 * int(digits)
    if isinstance(state, tuple) and len(state) >= 8:
        elsize, flags = state[5], state[7]
        if isinstance(elsize, int) and elsize > 0 and kind in "UVSa":
            itemsize = elsize
        if isinstance(flags, int) and flags & 1:
            has_object = True
    return itemsize, has_object


def inline_payload(wrapper: str, state: Value) -> Payload | None:
    """The payload after a ``NumpyArrayWrapper`` BUILD, or ``None`` for non-inline wrappers."""
    if wrapper not in WRAPPERS:
        return None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], DictSym):
        state = state[0]  # (dict state, slot state): BUILD updates __dict__ from the first
    if not isinstance(state, DictSym):
        return Payload(error="wrapper state is not a dict")
    dtype = _dtype(state.get("dtype"))
    if dtype is None:
        return Payload(error="cannot determine the array dtype from the wrapper state")
    itemsize, has_object = dtype
    if has_object:
        return Payload(nested_pickle=True)
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        return Payload(error="cannot determine the array shape from the wrapper state")
    count = 1
    for dim in shape:
        count *= dim
        if count > MAX_ELEMENTS:
            return Payload(error="array shape is implausibly large")
    aligned = any(k == "numpy_array_alignment_bytes" and v is not None for k, v in state.items)
    return Payload(nbytes=count * itemsize, aligned=aligned)
