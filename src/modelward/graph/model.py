"""The graph IR's data classes: what `ir.parse_model` decodes an ONNX model into.

Plain dataclasses with no parsing in them, so analyses (the backdoor detector, data flow,
the ``diff`` subcommand, the bill of materials) can build and test graphs without bytes.
A `Tensor` holds metadata and, for small tensors, values; never the payload itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BOOL",
    "DTYPE_NAMES",
    "DTYPE_SIZES",
    "SMALL_TENSOR",
    "ZERO_SCAN_BYTES",
    "Attribute",
    "Function",
    "Graph",
    "Model",
    "Node",
    "Tensor",
    "Value",
    "ValueInfo",
]
# TensorProto.DataType -> element size in bytes (sub-byte types rounded up per element).
DTYPE_SIZES: Final[dict[int, int]] = {
    1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 0, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8,
    15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1, 24: 1, 25: 1, 26: 1,
    27: 1, 28: 1,
}
DTYPE_NAMES: Final[dict[int, str]] = {
    0: "undefined", 1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16",
}
BOOL: Final = 9
# How many elements of a tensor are decoded into `Tensor.values` (shapes, thresholds, ...).
SMALL_TENSOR: Final = 64
# Inline payloads up to this size are checked for being all zero (a zero weight makes a
# "computed" value a constant); larger or external payloads are not read.
ZERO_SCAN_BYTES: Final = 1 << 20

Value = int | float

@dataclass(slots=True)
class Tensor:
    """Metadata of a `TensorProto`; the payload itself is never copied.

    Attributes:
        name: tensor name (empty for attribute tensors).
        data_type: ``TensorProto.DataType`` number.
        dims: declared dimensions.
        offset: file offset of the TensorProto's tag.
        payload_bytes: bytes of inline data (raw_data or typed repeated fields).
        string_lengths: sizes of ``string_data`` entries (string tensors only).
        string_heads: the first bytes of the first few ``string_data`` entries.
        external: ``external_data`` key/value pairs (location, offset, length, checksum).
        is_external: ``data_location`` is EXTERNAL.
        values: the elements when the tensor is small (at most `SMALL_TENSOR`), else None.
        raw_offset: file offset of ``raw_data`` bytes, if any.
        all_zero: every element is zero (checked for inline payloads up to
            `ZERO_SCAN_BYTES`; False when larger, external, or not known).
    """

    name: str = ""
    data_type: int = 0
    dims: tuple[int, ...] = ()
    offset: int = 0
    payload_bytes: int = 0
    string_lengths: tuple[int, ...] = ()
    external: tuple[tuple[str, str], ...] = ()
    is_external: bool = False
    values: tuple[Value, ...] | None = None
    raw_offset: int | None = None
    string_heads: tuple[bytes, ...] = ()
    all_zero: bool = False

    @property
    def numel(self) -> int:
        """Element count declared by `dims` (1 for a scalar; negative dims count as 0)."""
        n = 1
        for d in self.dims:
            n *= max(d, 0)
        return n

    @property
    def declared_bytes(self) -> int:
        """Bytes the dims and data type imply."""
        return self.numel * DTYPE_SIZES.get(self.data_type, 1)


@dataclass(slots=True)
class Attribute:
    """An `AttributeProto`: one of its value fields is set, per `type`."""

    name: str = ""
    type: int = 0
    i: int | None = None
    f: float | None = None
    s: bytes | None = None
    ints: tuple[int, ...] = ()
    floats: tuple[float, ...] = ()
    strings: tuple[bytes, ...] = ()
    t: Tensor | None = None
    tensors: tuple[Tensor, ...] = ()
    g: Graph | None = None
    graphs: tuple[Graph, ...] = ()
    ref_attr_name: str | None = None

    def subgraphs(self) -> tuple[Graph, ...]:
        """Graphs held by this attribute (``g`` and ``graphs``)."""
        return ((self.g,) if self.g is not None else ()) + self.graphs


@dataclass(slots=True)
class Node:
    """A `NodeProto`."""

    op_type: str = ""
    domain: str = ""
    name: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    attributes: dict[str, Attribute] = field(default_factory=dict)
    doc_string: str = ""
    offset: int = 0

    @property
    def label(self) -> str:
        """Name to show a user: the node name, else op type and first output."""
        return self.name or f"{self.op_type}->{self.outputs[0] if self.outputs else '?'}"

    @property
    def qualified_op(self) -> str:
        """``domain::op_type`` (``ai.onnx`` for the default domain)."""
        return f"{self.domain or 'ai.onnx'}::{self.op_type}"

    def subgraphs(self) -> Iterator[tuple[str, Graph]]:
        """(attribute name, graph) of every nested graph."""
        for attr in self.attributes.values():
            for g in attr.subgraphs():
                yield attr.name, g


@dataclass(slots=True)
class ValueInfo:
    """A `ValueInfoProto`: name, element type (0 when unknown) and dims (int, symbol or None)."""

    name: str = ""
    elem_type: int = 0
    dims: tuple[int | str | None, ...] | None = None


@dataclass(slots=True)
class Graph:
    """A `GraphProto`."""

    name: str = ""
    nodes: list[Node] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)
    sparse_initializers: list[Tensor] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    value_info: list[ValueInfo] = field(default_factory=list)
    doc_string: str = ""
    offset: int = 0
    depth: int = 0

    def walk(self) -> Iterator[tuple[Graph, Node]]:
        """Every (graph, node) of this graph and its nested graphs, depth first."""
        stack: list[Graph] = [self]
        while stack:
            g = stack.pop()
            for node in g.nodes:
                yield g, node
                stack.extend(sub for _, sub in node.subgraphs())


@dataclass(slots=True)
class Function:
    """A model-local `FunctionProto`."""

    name: str = ""
    domain: str = ""
    overload: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    attribute_names: tuple[str, ...] = ()
    nodes: list[Node] = field(default_factory=list)
    opset_import: dict[str, int] = field(default_factory=dict)
    doc_string: str = ""
    offset: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        """(domain, name, overload): how nodes call it."""
        return (self.domain, self.name, self.overload)


@dataclass(slots=True)
class Model:
    """A `ModelProto`."""

    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    domain: str = ""
    model_version: int | None = None
    doc_string: str = ""
    graph: Graph | None = None
    opset_import: dict[str, int] = field(default_factory=dict)
    duplicate_opsets: tuple[str, ...] = ()
    metadata_props: list[tuple[str, str]] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    training_graphs: list[Graph] = field(default_factory=list)
    node_count: int = 0

    def all_graphs(self) -> Iterator[Graph]:
        """The main graph, training graphs and every nested graph in them."""
        roots = ([self.graph] if self.graph is not None else []) + self.training_graphs
        stack = list(reversed(roots))
        while stack:
            g = stack.pop()
            yield g
            for node in g.nodes:
                stack.extend(sub for _, sub in node.subgraphs())

    def all_nodes(self) -> Iterator[tuple[str, Node]]:
        """(scope, node) for nodes of all graphs and functions; scope names the container."""
        for g in self.all_graphs():
            for node in g.nodes:
                yield g.name, node
        for fn in self.functions:
            for node in fn.nodes:
                yield f"function {fn.domain}::{fn.name}", node
            for node in fn.nodes:
                for _, sub in node.subgraphs():
                    for _, inner in sub.walk():
                        yield f"function {fn.domain}::{fn.name}", inner
