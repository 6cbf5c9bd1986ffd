"""TFLite scanner and flatbuffer reader, on models built with the flatbuffers Builder.

TensorFlow is not installed, so models are written field by field following
tensorflow/compiler/mlir/lite/schema/schema.fbs (Model, OperatorCode, SubGraph, Operator,
Tensor, Buffer, Metadata) with the generic `flatbuffers.Builder` API.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes
from modelward._internal.flatbuffers import Budget, root_table
from modelward.errors import FormatError

flatbuffers = pytest.importorskip("flatbuffers")


def _vector_of(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _ints(b: flatbuffers.Builder, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def build_model(ops: list[tuple[int, str | None]], *, op_uses: list[int] | None = None,
                buffers: list[tuple[int, int]] | None = None, tensor_buffer: int = 1) -> bytes:
    """A model with the given operator codes (builtin code, custom name).

    Args:
        ops: operator codes.
        op_uses: opcode index of each operator of subgraph 0 (default: one per code).
        buffers: (offset, size) of external buffers appended after buffer 0 (empty).
        tensor_buffer: buffer index of the single tensor.
    """
    b = flatbuffers.Builder(1024)
    codes = []
    for builtin, custom in ops:
        name = b.CreateString(custom) if custom else None
        b.StartObject(4)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(1, name, 0)
        b.PrependInt32Slot(3, builtin, 0)
        b.PrependInt8Slot(0, min(builtin, 127), 0)
        b.PrependInt32Slot(2, 1, 1)
        codes.append(b.EndObject())
    tname = b.CreateString("input")
    shape = _ints(b, [1, 4])
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, shape, 0)
    b.PrependUint32Slot(2, tensor_buffer, 0)
    b.PrependUOffsetTRelativeSlot(3, tname, 0)
    tensor = b.EndObject()
    operators = []
    for index in op_uses if op_uses is not None else list(range(len(ops))):
        ins, outs = _ints(b, [0]), _ints(b, [0])
        b.StartObject(11)
        b.PrependUint32Slot(0, index, 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        operators.append(b.EndObject())
    tensors_vec = _vector_of(b, [tensor])
    ops_vec = _vector_of(b, operators)
    io_vec = _ints(b, [0])
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, io_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    subgraph = b.EndObject()
    buffer_tables = []
    b.StartObject(3)
    buffer_tables.append(b.EndObject())
    b.StartVector(1, 16, 1)
    for _ in range(16):
        b.PrependUint8(0)
    data = b.EndVector()
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, data, 0)
    buffer_tables.append(b.EndObject())
    for offset, size in buffers or []:
        b.StartObject(3)
        b.PrependUint64Slot(1, offset, 0)
        b.PrependUint64Slot(2, size, 0)
        buffer_tables.append(b.EndObject())
    codes_vec = _vector_of(b, codes)
    subgraphs_vec = _vector_of(b, [subgraph])
    buffers_vec = _vector_of(b, buffer_tables)
    desc = b.CreateString("built in a test")
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


CONV, FULLY_CONNECTED, CUSTOM = 3, 9, 32


def findings(data: bytes) -> dict[str, Severity]:
    result = scan_bytes(data, "model.tflite", raise_internal=True)
    out: dict[str, Severity] = {}
    for f in result.findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def test_builtin_model_is_clean() -> None:
    data = build_model([(CONV, None), (FULLY_CONNECTED, None)])
    result = scan_bytes(data, "model.tflite", raise_internal=True)
    assert result.format == "tflite-v3"
    assert result.findings == []


def test_custom_op_is_medium() -> None:
    result = scan_bytes(build_model([(CUSTOM, "MyKernel")]), "m.tflite", raise_internal=True)
    (hit,) = result.findings
    assert (hit.rule.id, hit.severity, hit.evidence) == ("MW-TFLITE-001", Severity.MEDIUM,
                                                         "MyKernel")
    assert hit.location.node == "operator_codes[0]"


def test_flex_ops() -> None:
    assert findings(build_model([(CUSTOM, "FlexReadFile")])) == {"MW-TFLITE-002": Severity.HIGH}
    assert findings(build_model([(CUSTOM, "FlexEagerPyFunc")])) == {
        "MW-TFLITE-002": Severity.HIGH}
    assert findings(build_model([(CUSTOM, "FlexMatMul")])) == {}
    assert findings(build_model([(CUSTOM, "FlexNotARealOp")])) == {
        "MW-TFLITE-001": Severity.MEDIUM}


def test_external_buffers_out_of_range_and_overlapping() -> None:
    assert "MW-TFLITE-003" in findings(build_model([(CONV, None)], buffers=[(1 << 40, 16)]))
    base = build_model([(CONV, None)], buffers=[(8, 16), (16, 16)])
    assert "MW-TFLITE-005" in findings(base)


def test_bad_indices() -> None:
    assert "MW-TFLITE-004" in findings(build_model([(CONV, None)], op_uses=[5]))
    assert "MW-TFLITE-004" in findings(build_model([(CONV, None)], tensor_buffer=9))


def test_unknown_builtin_code_is_low() -> None:
    assert findings(build_model([(4000, None)])) == {"MW-TFLITE-006": Severity.LOW}


def test_reader_rejects_out_of_bounds_root() -> None:
    data = b"\xff\xff\x00\x00TFL3" + b"\0" * 8
    with pytest.raises(FormatError):
        root_table(memoryview(data), Budget(100))
    result = scan_bytes(data, "x.tflite", raise_internal=True)
    assert "MW-CORE-002" in {f.rule.id for f in result.findings}


SEED = build_model([(CUSTOM, "FlexWriteFile"), (CONV, None)], buffers=[(8, 4)])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_property_mutations_never_crash(data: st.DataObject) -> None:
    buf = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        buf[data.draw(st.integers(8, len(buf) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(buf)))
    scan_bytes(bytes(buf[:cut]), "m.tflite", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=256))
def test_property_arbitrary_bytes(tail: bytes) -> None:
    scan_bytes(tail[:4].ljust(4, b"\0") + b"TFL3" + tail[4:], "m.tflite", raise_internal=True)
