"""The opcode table of the symbolic pickle VM: which handler runs each byte, and its name.

Data only, shared by the machine (dispatch, error messages) and its opcode families
(`values`, `structure`), so none of them has to import the machine itself. Opcode bytes
and names follow ``pickletools`` / Lib/pickle.py.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FIXED_ARG", "HANDLERS", "NAMES"]

#: Fixed argument sizes, to tell a truncated argument from a stack underflow.
FIXED_ARG: Final = {
    ord("J"): 4, ord("K"): 1, ord("M"): 2, ord("G"): 8, ord("h"): 1, ord("j"): 4, ord("q"): 1,
    ord("r"): 4, 0x82: 1, 0x83: 2, 0x84: 4, 0x80: 1, 0x95: 8, 0x8A: 1, 0x8B: 4, ord("T"): 4,
    ord("U"): 1, ord("B"): 4, ord("C"): 1, 0x8E: 8, 0x96: 8, 0x8C: 1, ord("X"): 4, 0x8D: 8,
}

#: Opcode byte -> name of the `Machine` method that executes it.
HANDLERS: Final[dict[int, str]] = {
    ord("("): "op_mark", ord("."): "op_stop", ord("0"): "op_pop", ord("1"): "op_pop_mark",
    ord("2"): "op_dup", ord("F"): "op_float", ord("I"): "op_int", ord("J"): "op_binint",
    ord("K"): "op_binint1", ord("L"): "op_long", ord("M"): "op_binint2", ord("N"): "op_none",
    ord("P"): "op_persid", ord("Q"): "op_binpersid", ord("R"): "op_reduce",
    ord("S"): "op_string", ord("T"): "op_binstring", ord("U"): "op_short_binstring",
    ord("V"): "op_unicode", ord("X"): "op_binunicode", ord("a"): "op_append",
    ord("b"): "op_build", ord("c"): "op_global", ord("d"): "op_dict", ord("}"): "op_empty_dict",
    ord("e"): "op_appends", ord("g"): "op_get", ord("h"): "op_binget", ord("i"): "op_inst",
    ord("j"): "op_long_binget", ord("l"): "op_list", ord("]"): "op_empty_list", ord("o"): "op_obj",
    ord("p"): "op_put", ord("q"): "op_binput", ord("r"): "op_long_binput", ord("s"): "op_setitem",
    ord("t"): "op_tuple", ord(")"): "op_empty_tuple", ord("u"): "op_setitems",
    ord("G"): "op_binfloat", ord("B"): "op_binbytes", ord("C"): "op_short_binbytes",
    0x80: "op_proto", 0x81: "op_newobj", 0x82: "op_ext1", 0x83: "op_ext2", 0x84: "op_ext4",
    0x85: "op_tuple1", 0x86: "op_tuple2", 0x87: "op_tuple3", 0x88: "op_true", 0x89: "op_false",
    0x8A: "op_long1", 0x8B: "op_long4", 0x8C: "op_short_binunicode", 0x8D: "op_binunicode8",
    0x8E: "op_binbytes8", 0x8F: "op_empty_set", 0x90: "op_additems", 0x91: "op_frozenset",
    0x92: "op_newobj_ex", 0x93: "op_stack_global", 0x94: "op_memoize", 0x95: "op_frame",
    0x96: "op_bytearray8", 0x97: "op_next_buffer", 0x98: "op_readonly_buffer",
}

NAMES: Final[dict[int, str]] = {code: name[3:].upper() for code, name in HANDLERS.items()}
NAMES.update({ord("c"): "GLOBAL", ord("i"): "INST", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
               ord("}"): "EMPTY_DICT", ord("]"): "EMPTY_LIST", ord(")"): "EMPTY_TUPLE"})
