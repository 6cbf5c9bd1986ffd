"""A small graph IR decoded from ONNX protobuf bytes by a bounded, zero-copy parser.

The ``onnx`` package decodes a model by copying every tensor into Python objects and trusts
the sizes it reads. This module walks the wire format instead (`modelward._internal.protobuf`)
and keeps only what analysis needs: nodes with their attributes, nested graphs (``If``/``Loop``/
``Scan`` bodies), local functions, tensor *metadata* (name, type, dims, where the payload is,
and the values of small integer/float tensors, which shape logic and triggers are made of),
value infos and model metadata. Tensor payloads are never copied: a `Tensor` records the
offset and length of its ``raw_data`` slice.

Nothing here depends on the scanner or on ``onnx``: the backdoor detector and the ``diff``
subcommand build on this IR. Field numbers follow ``onnx/onnx.proto`` (IR version 11).
The IR's classes live in `modelward.graph.model` and are re-exported here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from modelward._internal.protobuf import (
    I32,
    I64,
    LEN,
    VARINT,
    Field,
    as_signed,
    as_text,
    iter_fields,
    packed_varints,
)
from modelward.errors import FormatError, ResourceLimitError
from modelward.graph.model import (
    DTYPE_NAMES,
    DTYPE_SIZES,
    SMALL_TENSOR,
    ZERO_SCAN_BYTES,
    Attribute,
    Function,
    Graph,
    Model,
    Node,
    Tensor,
    Value,
    ValueInfo,
)

__all__ = [
    "DTYPE_NAMES",
    "DTYPE_SIZES",
    "SMALL_TENSOR",
    "Attribute",
    "Function",
    "Graph",
    "Model",
    "Node",
    "ParseLimits",
    "Tensor",
    "Value",
    "ValueInfo",
    "parse_model",
]

_TEXT_LIMIT: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Budgets of one parse.

    Attributes:
        max_nodes: nodes in all graphs and functions together.
        max_depth: nesting of subgraphs (an ``If`` inside a ``Loop`` body is depth 2).
        max_items: entries of any repeated field of one message.
    """

    max_nodes: int = 2_000_000
    max_depth: int = 64
    max_items: int = 1_000_000


def _expect(f: Field, wire: int, what: str) -> None:
    if f.wire != wire:
        raise FormatError(f"{what}: field {f.number} has wire type {f.wire}, expected {wire}",
                          offset=f.offset)


def _text(f: Field, what: str) -> str:
    _expect(f, LEN, what)
    return as_text(f.value, _TEXT_LIMIT)


def _int(f: Field, what: str) -> int:
    _expect(f, VARINT, what)
    assert isinstance(f.value, int)
    return as_signed(f.value)


def _sub(f: Field, what: str) -> memoryview:
    _expect(f, LEN, what)
    assert isinstance(f.value, memoryview)
    return f.value


def _start(f: Field) -> int:
    """Absolute offset of a LEN field's payload (tag and length precede it)."""
    assert isinstance(f.value, memoryview)
    return f.offset + _payload_skip(f)


def _payload_skip(f: Field) -> int:
    tag = (f.number << 3) | f.wire
    n = 1
    while tag >= 0x80:
        tag >>= 7
        n += 1
    assert isinstance(f.value, memoryview)
    length = len(f.value)
    n += 1
    while length >= 0x80:
        length >>= 7
        n += 1
    return n


class _Parser:
    """Decodes one model; counts nodes and items against `ParseLimits`."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.nodes = 0

    def _count(self, n: int, what: str, offset: int) -> None:
        if n > self.limits.max_items:
            raise ResourceLimitError(f"more than {self.limits.max_items} {what}", offset=offset)

    def _ints(self, f: Field, what: str) -> list[int]:
        if f.wire not in (VARINT, LEN):
            raise FormatError(f"{what}: bad wire type {f.wire}", offset=f.offset)
        return [as_signed(v) for v in packed_varints(f.value, self.limits.max_items)]

    def _floats(self, f: Field, what: str, width: int) -> list[float]:
        code = "<f" if width == 4 else "<d"
        if f.wire == (I32 if width == 4 else I64):
            assert isinstance(f.value, int)
            raw = struct.pack("<I" if width == 4 else "<Q", f.value)
            return [struct.unpack(code, raw)[0]]
        view = _sub(f, what)
        if len(view) % width:
            raise FormatError(f"{what}: packed floats of odd length", offset=f.offset)
        self._count(len(view) // width, what, f.offset)
        head = view[: SMALL_TENSOR * width]
        return [v[0] for v in struct.iter_unpack(code, head)] if view else []

    def entry(self, buf: memoryview, base: int) -> tuple[str, str]:
        key = value = ""
        for f in iter_fields(buf, base):
            if f.number == 1:
                key = _text(f, "entry key")
            elif f.number == 2:
                value = _text(f, "entry value")
        return key, value

    def opset(self, buf: memoryview, base: int) -> tuple[str, int]:
        domain, version = "", 0
        for f in iter_fields(buf, base):
            if f.number == 1:
                domain = _text(f, "opset domain")
            elif f.number == 2:
                version = _int(f, "opset version")
        return domain, version

    def tensor(self, buf: memoryview, base: int) -> Tensor:
        t = Tensor(offset=base)
        dims: list[int] = []
        ext: list[tuple[str, str]] = []
        strings: list[int] = []
        heads: list[bytes] = []
        values: list[Value] = []
        raw: memoryview | None = None
        payload = 0
        for f in iter_fields(buf, base):
            n = f.number
            if n == 1:
                dims.extend(self._ints(f, "tensor dims"))
                self._count(len(dims), "tensor dims", f.offset)
            elif n == 2:
                t.data_type = _int(f, "tensor data_type")
            elif n == 8:
                t.name = _text(f, "tensor name")
            elif n == 9:
                raw = _sub(f, "raw_data")
                t.raw_offset = _start(f)
                payload += len(raw)
            elif n in (5, 7, 11):  # int32_data, int64_data, uint64_data
                size = len(f.value) if isinstance(f.value, memoryview) else 8
                payload += size
                if len(values) < SMALL_TENSOR and size <= SMALL_TENSOR * 10:
                    ints = packed_varints(f.value, SMALL_TENSOR * 10)
                    values.extend(as_signed(v) if n != 11 else v for v in ints)
            elif n in (4, 10):  # float_data, double_data
                width = 4 if n == 4 else 8
                payload += len(f.value) if isinstance(f.value, memoryview) else width
                if len(values) < SMALL_TENSOR:
                    values.extend(self._floats(f, "tensor floats", width))
            elif n == 6:
                text = _sub(f, "string_data")
                strings.append(len(text))
                if len(heads) < SMALL_TENSOR:
                    heads.append(bytes(text[:16]))
                self._count(len(strings), "tensor strings", f.offset)
            elif n == 13:
                ext.append(self.entry(_sub(f, "external_data"), _start(f)))
                self._count(len(ext), "external_data entries", f.offset)
            elif n == 14:
                t.is_external = _int(f, "data_location") == 1
        t.dims = tuple(dims)
        t.external = tuple(ext)
        t.string_lengths = tuple(strings)
        t.string_heads = tuple(heads)
        t.payload_bytes = payload + sum(strings)
        t.all_zero = (0 < payload <= ZERO_SCAN_BYTES and not strings and not t.is_external
                      and _all_zero(buf, t.data_type))
        if raw is not None and not values:
            values = _decode_raw(raw, t.data_type)
        if values and t.numel <= SMALL_TENSOR:
            t.values = tuple(values[: max(t.numel, 1)])
        return t

    def value_info(self, buf: memoryview, base: int) -> ValueInfo:
        vi = ValueInfo()
        for f in iter_fields(buf, base):
            if f.number == 1:
                vi.name = _text(f, "value_info name")
            elif f.number == 2:
                for tf in iter_fields(_sub(f, "type"), _start(f)):
                    if tf.number in (1, 8):  # tensor_type, sparse_tensor_type
                        self._tensor_type(vi, _sub(tf, "tensor_type"), _start(tf))
        return vi

    def _tensor_type(self, vi: ValueInfo, buf: memoryview, base: int) -> None:
        for f in iter_fields(buf, base):
            if f.number == 1:
                vi.elem_type = _int(f, "elem_type")
            elif f.number == 2:
                dims: list[int | str | None] = []
                for df in iter_fields(_sub(f, "shape"), _start(f)):
                    if df.number != 1:
                        continue
                    dim: int | str | None = None
                    for d in iter_fields(_sub(df, "dim"), _start(df)):
                        if d.number == 1:
                            dim = _int(d, "dim_value")
                        elif d.number == 2:
                            dim = _text(d, "dim_param")
                    dims.append(dim)
                    self._count(len(dims), "shape dims", df.offset)
                vi.dims = tuple(dims)

    def attribute(self, buf: memoryview, base: int, depth: int) -> Attribute:
        a = Attribute()
        ints: list[int] = []
        floats: list[float] = []
        strings: list[bytes] = []
        tensors: list[Tensor] = []
        graphs: list[Graph] = []
        for f in iter_fields(buf, base):
            n = f.number
            if n == 1:
                a.name = _text(f, "attribute name")
            elif n == 20:
                a.type = _int(f, "attribute type")
            elif n == 21:
                a.ref_attr_name = _text(f, "ref_attr_name")
            elif n == 2:
                a.f = self._floats(f, "attribute f", 4)[0] if f.wire == I32 else None
            elif n == 3:
                a.i = _int(f, "attribute i")
            elif n == 4:
                a.s = bytes(_sub(f, "attribute s")[:_TEXT_LIMIT])
            elif n == 5:
                a.t = self.tensor(_sub(f, "attribute t"), _start(f))
            elif n == 6:
                a.g = self.graph(_sub(f, "attribute g"), _start(f), depth + 1)
            elif n == 7:
                floats.extend(self._floats(f, "attribute floats", 4))
            elif n == 8:
                ints.extend(self._ints(f, "attribute ints"))
            elif n == 9:
                strings.append(bytes(_sub(f, "attribute strings")[:_TEXT_LIMIT]))
            elif n == 10:
                tensors.append(self.tensor(_sub(f, "attribute tensors"), _start(f)))
            elif n == 11:
                graphs.append(self.graph(_sub(f, "attribute graphs"), _start(f), depth + 1))
            elif n == 22:  # sparse_tensor: its values tensor carries the payload
                a.t = self._sparse(_sub(f, "sparse_tensor"), _start(f))
            self._count(len(ints) + len(floats) + len(strings) + len(tensors) + len(graphs),
                        "attribute values", f.offset)
        a.ints, a.floats, a.strings = tuple(ints), tuple(floats), tuple(strings)
        a.tensors, a.graphs = tuple(tensors), tuple(graphs)
        return a

    def _sparse(self, buf: memoryview, base: int) -> Tensor:
        out = Tensor(offset=base)
        dims: list[int] = []
        for f in iter_fields(buf, base):
            if f.number == 1:
                out = self.tensor(_sub(f, "sparse values"), _start(f))
            elif f.number == 3:
                dims.extend(self._ints(f, "sparse dims"))
        out.dims = tuple(dims)
        out.values = None
        return out

    def node(self, buf: memoryview, base: int, depth: int) -> Node:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise ResourceLimitError(f"more than {self.limits.max_nodes} graph nodes", offset=base)
        node = Node(offset=base)
        inputs: list[str] = []
        outputs: list[str] = []
        for f in iter_fields(buf, base):
            n = f.number
            if n == 1:
                inputs.append(_text(f, "node input"))
            elif n == 2:
                outputs.append(_text(f, "node output"))
            elif n == 3:
                node.name = _text(f, "node name")
            elif n == 4:
                node.op_type = _text(f, "op_type")
            elif n == 7:
                node.domain = _text(f, "node domain")
            elif n == 6:
                node.doc_string = _text(f, "node doc_string")
            elif n == 5:
                attr = self.attribute(_sub(f, "attribute"), _start(f), depth)
                node.attributes[attr.name] = attr
                self._count(len(node.attributes), "node attributes", f.offset)
            self._count(len(inputs) + len(outputs), "node inputs/outputs", f.offset)
        node.inputs, node.outputs = tuple(inputs), tuple(outputs)
        return node

    def graph(self, buf: memoryview, base: int, depth: int) -> Graph:
        if depth > self.limits.max_depth:
            raise ResourceLimitError(f"subgraphs nested deeper than {self.limits.max_depth}",
                                     offset=base)
        g = Graph(offset=base, depth=depth)
        for f in iter_fields(buf, base):
            n = f.number
            if n == 1:
                g.nodes.append(self.node(_sub(f, "node"), _start(f), depth))
            elif n == 2:
                g.name = _text(f, "graph name")
            elif n == 5:
                g.initializers.append(self.tensor(_sub(f, "initializer"), _start(f)))
                self._count(len(g.initializers), "initializers", f.offset)
            elif n == 15:
                g.sparse_initializers.append(self._sparse(_sub(f, "sparse"), _start(f)))
            elif n == 10:
                g.doc_string = _text(f, "graph doc_string")
            elif n in (11, 12, 13):
                vi = self.value_info(_sub(f, "value_info"), _start(f))
                (g.inputs if n == 11 else g.outputs if n == 12 else g.value_info).append(vi)
                self._count(len(g.value_info) + len(g.inputs) + len(g.outputs), "value infos",
                            f.offset)
        return g

    def function(self, buf: memoryview, base: int) -> Function:
        fn = Function(offset=base)
        inputs: list[str] = []
        outputs: list[str] = []
        attrs: list[str] = []
        for f in iter_fields(buf, base):
            n = f.number
            if n == 1:
                fn.name = _text(f, "function name")
            elif n == 10:
                fn.domain = _text(f, "function domain")
            elif n == 13:
                fn.overload = _text(f, "function overload")
            elif n == 4:
                inputs.append(_text(f, "function input"))
            elif n == 5:
                outputs.append(_text(f, "function output"))
            elif n == 6:
                attrs.append(_text(f, "function attribute"))
            elif n == 11:
                attrs.append(self.attribute(_sub(f, "attribute_proto"), _start(f), 0).name)
            elif n == 7:
                fn.nodes.append(self.node(_sub(f, "function node"), _start(f), 1))
            elif n == 8:
                fn.doc_string = _text(f, "function doc_string")
            elif n == 9:
                d, v = self.opset(_sub(f, "function opset"), _start(f))
                fn.opset_import[d] = v
            self._count(len(inputs) + len(outputs) + len(attrs), "function signature", f.offset)
        fn.inputs, fn.outputs, fn.attribute_names = tuple(inputs), tuple(outputs), tuple(attrs)
        return fn

    def model(self, buf: memoryview) -> Model:
        m = Model()
        dup: list[str] = []
        for f in iter_fields(buf, 0):
            n = f.number
            if n == 1:
                m.ir_version = _int(f, "ir_version")
            elif n == 2:
                m.producer_name = _text(f, "producer_name")
            elif n == 3:
                m.producer_version = _text(f, "producer_version")
            elif n == 4:
                m.domain = _text(f, "model domain")
            elif n == 5:
                m.model_version = _int(f, "model_version")
            elif n == 6:
                m.doc_string = as_text(_sub(f, "doc_string"), 1 << 20)
            elif n == 7:
                m.graph = self.graph(_sub(f, "graph"), _start(f), 0)
            elif n == 8:
                d, v = self.opset(_sub(f, "opset_import"), _start(f))
                if d in m.opset_import:
                    dup.append(d)
                m.opset_import[d] = v
                self._count(len(m.opset_import), "opset imports", f.offset)
            elif n == 14:
                key, value = self.entry(_sub(f, "metadata_props"), _start(f))
                m.metadata_props.append((key, value))
                self._count(len(m.metadata_props), "metadata entries", f.offset)
            elif n == 20:
                for tf in iter_fields(_sub(f, "training_info"), _start(f)):
                    if tf.number in (1, 2):
                        m.training_graphs.append(
                            self.graph(_sub(tf, "training graph"), _start(tf), 1))
            elif n == 25:
                m.functions.append(self.function(_sub(f, "function"), _start(f)))
                self._count(len(m.functions), "functions", f.offset)
        m.duplicate_opsets = tuple(dup)
        m.node_count = self.nodes
        return m


# Floating types: element width (a zero may be -0.0, whose sign bit sits in the top byte).
_FLOAT_WIDTH: Final = {1: 4, 10: 2, 11: 8, 16: 2}


def _zero_payload(data: bytes, width: int) -> bool:
    if not width:
        return data.count(0) == len(data)
    if len(data) % width:
        return False
    top = data[width - 1::width]
    if top.translate(None, b"\x00\x80"):
        return False
    return all(data[k::width].count(0) * width == len(data) for k in range(width - 1))


def _all_zero(buf: memoryview, data_type: int) -> bool:
    """Whether every payload element of the TensorProto in `buf` is zero (bounded by caller).

    ``raw_data`` and packed ``float_data``/``double_data``/``int32_data``/``int64_data``/
    ``uint64_data`` are read (a packed varint zero is a zero byte); nothing else counts.
    """
    seen = False
    for f in iter_fields(buf, 0):
        if f.number not in (4, 5, 7, 9, 10, 11):
            continue
        seen = True
        if isinstance(f.value, int):  # unpacked element
            if f.value & ~(1 << (63 if f.wire == I64 else 31)) and f.number in (4, 10):
                return False
            if f.value and f.number not in (4, 10):
                return False
            continue
        width = _FLOAT_WIDTH.get(data_type, 0) if f.number == 9 else (
            4 if f.number == 4 else 8 if f.number == 10 else 0)
        if not _zero_payload(bytes(f.value), width):
            return False
    return seen


def _decode_raw(raw: memoryview, data_type: int) -> list[Value]:
    """Decode at most `SMALL_TENSOR` elements of little-endian raw_data."""
    code = {1: "f", 2: "B", 3: "b", 4: "H", 5: "h", 6: "i", 7: "q", 9: "?", 11: "d", 12: "I",
            13: "Q"}.get(data_type)
    if code is None:
        return []
    width = struct.calcsize(code)
    count = min(len(raw) // width, SMALL_TENSOR)
    return [v if not isinstance(v, bool) else int(v)
            for v in struct.unpack_from(f"<{count}{code}", raw)] if count else []


def parse_model(data: memoryview | bytes, limits: ParseLimits | None = None) -> Model:
    """Decode a serialized ONNX ModelProto into the IR.

    Args:
        data: the model bytes (a memoryview over an mmap: tensors are not copied).
        limits: node, nesting and repetition budgets.

    Returns:
        The model.

    Raises:
        FormatError: the bytes are not a well-formed ModelProto.
        ResourceLimitError: a budget was exceeded.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    return _Parser(limits or ParseLimits()).model(view)
