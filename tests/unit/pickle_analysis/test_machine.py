"""The pickle machine sees what CPython sees: same opcodes, same offsets, same structure.

Benign pickles of every protocol (text forms, frames, memo tricks, ``pickletools.optimize``
output) are compared with ``pickletools.genops`` (a pure reader) and, for plain data, with
what ``pickle.loads`` returns on the same bytes (those tests are marked ``allow_unpickle``
and only ever feed benign data built here).
"""

from __future__ import annotations

import collections
import pickle
import pickletools
import struct

import pytest
from pickle_helpers import make_artifact, run_machine

from modelward.pickle_analysis import analyze, analyze_stream
from modelward.pickle_analysis.machine import _HANDLERS, Machine
from modelward.pickle_analysis.symbols import (
    Blob,
    Call,
    DictSym,
    Global,
    ListSym,
    Opaque,
    SetSym,
    Value,
)

BENIGN = [
    None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31, 2**64, -(2**100),
    1.5, -0.0, float("inf"), "", "a", "é\u20ac\U0001f600", "x" * 300, b"", b"\x00\xff",
    b"y" * 300, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, [2, [3]]], {}, {"a": 1, 2: "b"},
    {1, 2}, frozenset({"z"}), bytearray(b"ab"), ["shared"] * 3, {"k": (1.0, None, [b"v"])},
    [list(range(40)), {str(i): i for i in range(30)}],
]


def genops_trace(data: bytes) -> list[tuple[int, int]]:
    return [(pos, ord(op.code.encode("latin-1"))) for op, _arg, pos in pickletools.genops(data)]


def machine_trace(data: bytes) -> tuple[Machine, list[tuple[int, int]]]:
    machine = Machine(make_artifact(data), 0, None)
    trace: list[tuple[int, int]] = []
    machine.run(trace)
    return machine, trace


def materialize(value: Value, data: bytes) -> object:
    """Turn the machine's symbols for plain data back into Python values."""
    if isinstance(value, tuple):
        return tuple(materialize(v, data) for v in value)
    if isinstance(value, SetSym):
        items = {materialize(v, data) for v in value.items}
        return frozenset(items) if value.frozen else items
    if isinstance(value, ListSym):
        assert value.count == len(value.items)
        return [materialize(v, data) for v in value.items]
    if isinstance(value, DictSym):
        return {materialize(k, data): materialize(v, data) for k, v in value.items}
    if isinstance(value, Blob):
        if value.full is not None:
            return value.full
        assert value.start is not None
        raw = data[value.start : value.start + value.length]
        return raw.decode("utf-8", "surrogatepass") if value.kind == "str" else raw
    if isinstance(value, Call) and isinstance(value.func, Global):
        # bytearray / set / frozenset in protocols < 4, bytes in protocols < 3
        args = materialize(value.args, data)
        assert isinstance(args, tuple)
        if value.func.dotted == "_codecs.encode":
            return args[0].encode(args[1])
        if value.func.dotted in ("builtins.set", "builtins.frozenset", "builtins.bytearray",
                                 "builtins.bytes"):
            kinds = {"builtins.set": set, "builtins.frozenset": frozenset,
                     "builtins.bytearray": bytearray, "builtins.bytes": bytes}
            return kinds[value.func.dotted](*args)
    assert not isinstance(value, (Global, Call, Opaque)), value
    return value


def test_every_opcode_has_a_handler() -> None:
    assert {ord(op.code.encode("latin-1")) for op in pickletools.opcodes} == set(_HANDLERS)


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("index", range(len(BENIGN)))
def test_opcode_stream_matches_genops(proto: int, index: int) -> None:
    data = pickle.dumps(BENIGN[index], protocol=proto)
    machine, trace = machine_trace(data)
    assert machine.complete
    assert trace == genops_trace(data)
    assert machine.pos == len(data)


@pytest.mark.parametrize("proto", range(6))
def test_optimized_pickles_match_genops(proto: int) -> None:
    shared = ["s"]
    data = pickletools.optimize(pickle.dumps([shared, shared, {"a": shared}], protocol=proto))
    machine, trace = machine_trace(data)
    assert machine.complete
    assert trace == genops_trace(data)


@pytest.mark.allow_unpickle
@pytest.mark.parametrize("proto", range(6))
def test_structure_matches_pickle_loads(proto: int) -> None:
    # Benign data only, built right here: this is the reference the machine must match.
    for value in BENIGN:
        data = pickle.dumps(value, protocol=proto)
        machine = run_machine(data)
        assert materialize(machine.result, data) == pickle.loads(data), (proto, value)


@pytest.mark.allow_unpickle
def test_memo_sharing_matches_pickle_loads() -> None:
    inner = [1]
    data = pickletools.optimize(pickle.dumps([inner, inner], protocol=2))
    machine = run_machine(data)
    assert isinstance(machine.result, ListSym)
    assert machine.result.items[0] is machine.result.items[1]
    loaded = pickle.loads(data)
    assert loaded[0] is loaded[1]


def test_protocol_zero_text_forms() -> None:
    data = b"(dp0\nS'a'\np1\nI01\nsVb\np2\nL12L\nsS'c'\nF1.5\nsg1\nI00\ns."
    machine = run_machine(data)
    assert machine.complete
    assert isinstance(machine.result, DictSym)
    assert machine.result.items == [("a", True), ("b", 12), ("c", 1.5), ("a", False)]


def test_string_escapes_and_quotes() -> None:
    machine = run_machine(b"S'a\\nb\\x41'\n.")
    assert machine.result == "a\nbA"
    machine = run_machine(b"S'unquoted\n.")
    assert not machine.complete
    assert "must be quoted" in machine.findings[0].message


def test_stack_global_with_names_from_memo() -> None:
    data = (b"\x80\x04\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94"
            b"h\x00h\x01\x93)R.")
    machine = run_machine(data)
    assert machine.complete
    assert [r.dotted for r in machine.records] == ["collections.OrderedDict"] * 2


def test_memoize_put_binput_long_binput_and_gets() -> None:
    data = (b"\x80\x04K\x07\x94K\x08q\x05K\x09r\x00\x01\x00\x00p9\n"
            b"(h\x00h\x05j\x00\x01\x00\x00g9\nt.")
    machine = run_machine(data)
    assert machine.result == (7, 8, 9, 9)


def test_pop_mark_pop_and_dup() -> None:
    machine = run_machine(b"\x80\x02K\x01(K\x02K\x031K\x042\x86\x86K\x090\x85.")
    assert machine.complete
    assert machine.result == ((1, (4, 4)),)


def test_pop_on_empty_stack_pops_the_mark() -> None:
    # CPython: POP with an empty stack discards the topmost mark.
    machine = run_machine(b"K\x01(0\x85.")
    assert machine.complete and machine.result == (1,)


def test_frame_with_lying_length_is_reported_and_run_like_pickle_py() -> None:
    # The C unpickler fails at such a FRAME; pickle._Unpickler (joblib.load) runs the
    # opcodes that are there, so the machine reports the FRAME and goes on (a payload after
    # it must be seen: tests/regressions/test_pickle_bypasses_more.py).
    data = b"\x80\x04\x95" + struct.pack("<Q", 1000) + b"K\x01."
    machine = run_machine(data)
    assert machine.complete
    assert any("FRAME" in f.message for f in machine.findings)
    short = b"\x80\x04\x95" + struct.pack("<Q", 1) + b"K\x01\x85."
    assert run_machine(short).complete  # a frame shorter than its ops is ignored by C


def test_protocol_5_buffers() -> None:
    data = b"\x80\x05\x97\x98\x96" + struct.pack("<Q", 3) + b"abc\x86."
    machine = run_machine(data)
    assert machine.complete
    assert isinstance(machine.result, tuple) and isinstance(machine.result[0], Opaque)
    assert machine.result[1] == b"abc"


def test_ext_codes_resolve_through_copyreg(monkeypatch: pytest.MonkeyPatch) -> None:
    import copyreg

    monkeypatch.setitem(copyreg._inverted_registry, 0x1234, ("collections", "OrderedDict"))
    machine = run_machine(b"\x80\x02\x83\x34\x12)R.")
    assert machine.complete
    assert [r.dotted for r in machine.records] == ["collections.OrderedDict"]
    assert machine.findings == []


def test_inst_and_obj_instantiate_classes() -> None:
    inst = run_machine(b"(K\x01icollections\nOrderedDict\n.")
    assert inst.complete
    assert isinstance(inst.result, Call) and inst.result.args == (1,)
    obj = run_machine(b"(ccollections\nOrderedDict\nK\x02o.")
    assert obj.complete
    assert isinstance(obj.result, Call) and obj.result.args == (2,)


def test_newobj_ex_keeps_kwargs() -> None:
    data = b"\x80\x04ccollections\nOrderedDict\n)}\x8c\x01a\x94K\x01s\x92."
    machine = run_machine(data)
    assert machine.complete
    assert isinstance(machine.result, Call) and machine.result.kind == "new"
    assert isinstance(machine.result.kwargs, DictSym)


def test_build_with_state_and_slotstate() -> None:
    data = b"\x80\x02ccollections\nOrderedDict\n)R}K\x01K\x02s}K\x03K\x04s\x86b."
    machine = run_machine(data)
    assert machine.complete
    assert isinstance(machine.result, Call)
    assert isinstance(machine.result.state, tuple) and len(machine.result.state) == 2


def test_persid_text_and_binary() -> None:
    machine = run_machine(b"Pstorage-0\n(S'storage'\nK\x05tQ\x86.")
    assert machine.complete
    assert machine.persistent_ids == ["storage-0", ("storage", 5)]


def test_python2_names_are_mapped_below_protocol_3() -> None:
    machine = run_machine(b"c__builtin__\nset\n(tR.")
    assert [r.dotted for r in machine.records] == ["builtins.set"]
    machine = run_machine(b"\x80\x03c__builtin__\nset\n)R.")
    assert [r.dotted for r in machine.records] == ["__builtin__.set"]


def test_unicode_and_newline_names() -> None:
    machine = run_machine("cmodülé\nnäme\n.".encode())
    assert machine.complete
    assert [r.dotted for r in machine.records] == ["modülé.näme"]
    machine = run_machine(b"\x80\x04\x8c\x03a\nb\x8c\x01c\x93.")
    assert [r.dotted for r in machine.records] == ["a\nb.c"]


def test_two_pickles_and_trailing_bytes() -> None:
    first = pickle.dumps({"a": 1}, protocol=2)
    second = pickle.dumps([1, 2], protocol=4)
    results = analyze_stream(make_artifact(first + second + b"\x00garbage"))
    assert [r.complete for r in results] == [True, True, False]
    assert results[1].start == len(first)
    assert {f.rule.id for f in results[1].findings} == {"MW-PKL-008"}
    assert {f.rule.id for f in results[2].findings} == {"MW-PKL-007"}
    assert results[2].findings[0].location.offset == len(first) + len(second)


def test_analyze_respects_start_and_end() -> None:
    body = pickle.dumps((1, 2), protocol=2)
    data = b"JUNK" + body + b"MORE"
    result = analyze(make_artifact(data), 4, 4 + len(body))
    assert result.complete and result.end == 4 + len(body) and result.protocol == 2
    cut = analyze(make_artifact(data), 4, 4 + len(body) - 1)
    assert not cut.complete
    assert any(f.rule.id == "MW-PKL-006" for f in cut.findings)


def test_big_payloads_are_kept_as_prefix_and_length() -> None:
    payload = b"\x80\x04" + b"z" * 100_000
    data = pickle.dumps([payload, "u" * 50_000], protocol=4)
    machine = run_machine(data)
    blob, text = machine.result.items  # type: ignore[union-attr]
    assert isinstance(blob, Blob) and blob.length == len(payload) and blob.has_pickle_magic
    assert len(blob.head) < 100 and data[blob.start : blob.start + 5] == payload[:5]
    assert isinstance(text, Blob) and text.length == 50_000


def test_ordered_dict_result_and_imports() -> None:
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    result = analyze(make_artifact(data))
    assert result.imports == ("collections.OrderedDict",)
    assert result.complete and result.protocol == 2
