"""One flat dataflow graph for a whole ONNX model: subgraphs and local functions inlined.

Analyses that follow values from the model's inputs to its outputs (the backdoor detector,
later the structural ``diff``) should not care whether a computation sits in the main graph,
in an ``If`` branch, a ``Loop``/``Scan`` body or a model-local function. `flatten` turns an
IR `Model` into `Flow`: every value gets an integer id, every node lists the ids it reads and
writes, and synthetic ``@phi`` nodes wire scopes together:

- a subgraph's references to outer-scope names become ordinary edges;
- ``If`` outputs are ``@phi(cond, then_out, else_out)``;
- ``Loop``/``Scan`` body inputs are ``@phi(initial value, body output)`` (a back edge, so the
  flow may be cyclic: analyses iterate to a fixed point);
- a call of a local function is replaced by a fresh copy of its body (recursion stops at
  the first repeat; the call then stays an opaque node).

Nodes keep a reference to their IR `Node` and a scope path (``main/If_3.then_branch``) for
evidence. The construction is bounded by `max_nodes` (inlining can multiply nodes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from modelward.errors import ResourceLimitError
from modelward.graph.model import Function, Graph, Model, Node, Tensor, Value

__all__ = ["PHI", "Flow", "FlowNode", "FlowValue", "flatten"]

PHI: Final = "@phi"
_MAX_INLINE_DEPTH: Final = 16


@dataclass(slots=True)
class FlowValue:
    """One value: a name in a scope.

    Attributes:
        name: the ONNX value name.
        scope: scope path of its definition.
        producer: index of the node writing it, or -1 (graph input, initializer, missing).
        consumers: indices of nodes reading it.
        constant: the tensor when the value is an initializer or a ``Constant`` output.
        input_index: position among the main graph's inputs, or -1.
    """

    name: str
    scope: str
    producer: int = -1
    consumers: list[int] = field(default_factory=list)
    constant: Tensor | None = None
    input_index: int = -1

    @property
    def label(self) -> str:
        return self.name if self.scope == "main" else f"{self.scope}/{self.name}"


@dataclass(slots=True)
class FlowNode:
    """One node of the flat graph (or a synthetic ``@phi``)."""

    op: str
    domain: str
    inputs: list[int]
    outputs: list[int]
    scope: str
    node: Node | None = None

    @property
    def label(self) -> str:
        if self.node is None:
            return f"{self.scope}/{self.op}"
        name = self.node.label
        return name if self.scope == "main" else f"{self.scope}/{name}"

    def attr_int(self, name: str) -> int | None:
        if self.node is None:
            return None
        attr = self.node.attributes.get(name)
        return None if attr is None else attr.i


@dataclass(slots=True)
class Flow:
    """The flat graph: `values`, `nodes`, the main graph's `inputs` and `outputs` (ids)."""

    values: list[FlowValue] = field(default_factory=list)
    nodes: list[FlowNode] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    input_dtypes: list[int] = field(default_factory=list)
    branches: dict[int, tuple[list[int], list[int], list[int]]] = field(default_factory=dict)
    # Loop construct node -> (body formals of the carried values, body outputs carrying
    # them, the Loop's outputs), position k describing carried value k.
    loops: dict[int, tuple[list[int], list[int], list[int]]] = field(default_factory=dict)

    def constant_values(self, vid: int) -> tuple[Value, ...] | None:
        """Small constant's elements, when `vid` is an initializer or ``Constant`` output."""
        if vid < 0:
            return None
        tensor = self.values[vid].constant
        return None if tensor is None else tensor.values

    def ancestors(self, start: Sequence[int], limit: int = 10_000) -> Iterator[int]:
        """Node indices on the backward cone of the values `start` (bounded)."""
        seen_v: set[int] = set()
        seen_n: set[int] = set()
        stack = [v for v in start if v >= 0]
        while stack and len(seen_n) < limit:
            vid = stack.pop()
            if vid in seen_v:
                continue
            seen_v.add(vid)
            producer = self.values[vid].producer
            if producer >= 0 and producer not in seen_n:
                seen_n.add(producer)
                yield producer
                stack.extend(v for v in self.nodes[producer].inputs if v >= 0)


class _Scope:
    __slots__ = ("names", "parent", "path")

    def __init__(self, path: str, parent: _Scope | None) -> None:
        self.path = path
        self.parent = parent
        self.names: dict[str, int] = {}

    def lookup(self, name: str) -> int | None:
        scope: _Scope | None = self
        while scope is not None:
            vid = scope.names.get(name)
            if vid is not None:
                return vid
            scope = scope.parent
        return None


class _Builder:
    def __init__(self, model: Model, max_nodes: int) -> None:
        self.flow = Flow()
        self.functions: dict[tuple[str, str, str], Function] = {f.key: f for f in model.functions}
        self.max_nodes = max_nodes
        self.calls: list[tuple[str, str, str]] = []

    def value(self, name: str, scope: _Scope, producer: int = -1) -> int:
        vid = len(self.flow.values)
        self.flow.values.append(FlowValue(name, scope.path, producer))
        scope.names[name] = vid
        return vid

    def read(self, name: str, scope: _Scope) -> int:
        if not name:
            return -1
        vid = scope.lookup(name)
        if vid is None:  # undefined name: an input the graph forgot to declare
            vid = self.value(name, scope)
        return vid

    def add(self, op: str, domain: str, inputs: list[int], scope: _Scope, node: Node | None,
            out_names: Sequence[str]) -> int:
        index = len(self.flow.nodes)
        if index >= self.max_nodes:
            raise ResourceLimitError(f"more than {self.max_nodes} nodes after inlining "
                                     "subgraphs and functions")
        outputs = [self.value(n, scope, index) if n else -1 for n in out_names]
        self.flow.nodes.append(FlowNode(op, domain, inputs, outputs, scope.path, node))
        for vid in inputs:
            if vid >= 0:
                self.flow.values[vid].consumers.append(index)
        return index

    def phi(self, inputs: list[int], scope: _Scope, name: str) -> int:
        index = self.add(PHI, "", inputs, scope, None, [name])
        return self.flow.nodes[index].outputs[0]

    def graph(self, g: Graph, scope: _Scope) -> None:
        for t in g.initializers + g.sparse_initializers:
            vid = self.value(t.name, scope)
            self.flow.values[vid].constant = t
        for node in g.nodes:
            self.node(node, scope)

    def node(self, node: Node, scope: _Scope) -> None:
        inputs = [self.read(n, scope) for n in node.inputs]
        key = (node.domain, node.op_type, "")
        fn = self.functions.get(key)
        if fn is not None and key not in self.calls and len(self.calls) < _MAX_INLINE_DEPTH:
            self.inline(fn, node, inputs, scope)
            return
        subgraphs = list(node.subgraphs())
        if not subgraphs:
            index = self.add(node.op_type, node.domain, inputs, scope, node, node.outputs)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                tensor = _constant_tensor(node)
                if tensor is not None and self.flow.nodes[index].outputs:
                    out = self.flow.nodes[index].outputs[0]
                    if out >= 0:
                        self.flow.values[out].constant = tensor
            return
        self.control_flow(node, inputs, subgraphs, scope)

    def control_flow(self, node: Node, inputs: list[int], subgraphs: list[tuple[str, Graph]],
                     scope: _Scope) -> None:
        label = node.name or node.op_type
        body_outputs: list[list[int]] = []
        body_formals: list[list[int]] = []
        for attr_name, sub in subgraphs:
            inner = _Scope(f"{scope.path}/{label}.{attr_name}", scope)
            formal = [vi.name for vi in sub.inputs]
            for name in formal:
                self.value(name, inner)
            formal_ids = [inner.names[n] for n in formal]
            self.graph(sub, inner)
            outs = [self.read(vi.name, inner) for vi in sub.outputs]
            body_outputs.append(outs)
            body_formals.append(formal_ids)
            self.bind_formals(node, inputs, formal_ids, outs, inner)
        op = node.op_type
        n_out = len(node.outputs)
        merged: list[list[int]] = [[] for _ in range(n_out)]
        if op in ("Loop", "Scan") and len(body_outputs) == 1:
            outs = body_outputs[0]
            # A Loop's body returns its condition first; final values come from the last
            # iteration (initial values only reach the outputs through the body's inputs).
            carried = outs[1:] if op == "Loop" else outs
            for k in range(n_out):
                if k < len(carried):
                    merged[k].append(carried[k])
        else:
            cond = inputs[:1] if op == "If" else list(inputs)
            for k in range(n_out):
                merged[k].extend(cond)
                for outs in body_outputs:
                    if k < len(outs):
                        merged[k].append(outs[k])
        # The construct itself is a node without outputs (for evidence); each of its
        # outputs is a @phi of the body values it comes from (and the If condition).
        index = self.add(op, node.domain, list(inputs), scope, node, [])
        out_ids: list[int] = []
        for k, name in enumerate(node.outputs):
            sources = [v for v in merged[k] if v >= 0]
            phi = self.add(PHI, "", sources, scope, node, [name])
            out_ids.append(self.flow.nodes[phi].outputs[0])
        if op == "If" and len(body_outputs) == 2:
            self.flow.branches[index] = (body_outputs[0], body_outputs[1], out_ids)
        elif op == "Loop" and len(body_outputs) == 1:
            n_carried = max(0, min(len(body_formals[0]) - 2, len(body_outputs[0]) - 1))
            self.flow.loops[index] = (body_formals[0][2:2 + n_carried],
                                      body_outputs[0][1:1 + n_carried], out_ids[:n_carried])

    def bind_formals(self, node: Node, inputs: list[int], formal: list[int], outs: list[int],
                     inner: _Scope) -> None:
        """Feed a body's formal inputs from the node's inputs (and back edges)."""
        op = node.op_type
        sources: list[list[int]] = [[] for _ in formal]
        if op == "Loop":
            for i in range(len(formal)):
                if i < len(inputs):
                    sources[i].append(inputs[i])
                if i >= 1 and i - 1 < len(outs):
                    sources[i].append(outs[i - 1])
        elif op == "Scan":
            tail = inputs[len(inputs) - len(formal):] if len(inputs) >= len(formal) else inputs
            for i in range(len(formal)):
                if i < len(tail):
                    sources[i].append(tail[i])
                if i < len(outs):
                    sources[i].append(outs[i])
        else:  # unknown constructs: every formal may see every input
            for i in range(len(formal)):
                sources[i].extend(inputs)
        for vid, src in zip(formal, sources, strict=False):
            src = [s for s in src if s >= 0]
            if not src:
                continue
            index = self.add(PHI, "", src, inner, None, [])
            fnode = self.flow.nodes[index]
            fnode.outputs = [vid]
            self.flow.values[vid].producer = index

    def inline(self, fn: Function, node: Node, inputs: list[int], scope: _Scope) -> None:
        self.calls.append(fn.key)
        try:
            inner = _Scope(f"{scope.path}/{node.name or fn.name}<{fn.name}>", None)
            for name, vid in zip(fn.inputs, inputs, strict=False):
                if vid >= 0:
                    inner.names[name] = vid
            for inner_node in fn.nodes:
                self.node(inner_node, inner)
            for name, out in zip(fn.outputs, node.outputs, strict=False):
                if not out:
                    continue
                src = inner.lookup(name)
                self.add(PHI, "", [src] if src is not None else [], scope, None, [out])
        finally:
            self.calls.pop()


def _constant_tensor(node: Node) -> Tensor | None:
    for name in ("value", "sparse_value"):
        attr = node.attributes.get(name)
        if attr is not None and attr.t is not None:
            return attr.t
    for name, dtype in (("value_int", 7), ("value_float", 1)):
        attr = node.attributes.get(name)
        if attr is not None:
            val = attr.i if dtype == 7 else attr.f
            return Tensor(data_type=dtype, values=(val,) if val is not None else None)
    for name, dtype in (("value_ints", 7), ("value_floats", 1)):
        attr = node.attributes.get(name)
        if attr is not None:
            vals = attr.ints if dtype == 7 else attr.floats
            return Tensor(data_type=dtype, dims=(len(vals),), values=tuple(vals[:64]))
    return None


def flatten(model: Model, max_nodes: int = 2_000_000) -> Flow:
    """Build the flat dataflow graph of `model`'s main graph.

    Args:
        model: the parsed model (needs a main graph; an empty flow otherwise).
        max_nodes: budget for nodes after inlining.

    Raises:
        ResourceLimitError: inlining would exceed `max_nodes`.
    """
    builder = _Builder(model, max_nodes)
    flow = builder.flow
    if model.graph is None:
        return flow
    g = model.graph
    top = _Scope("main", None)
    init_names = {t.name for t in g.initializers}
    for vi in g.inputs:
        if vi.name in init_names:  # IR < 4 lists weights as inputs too: they are constants
            continue
        vid = builder.value(vi.name, top)
        flow.values[vid].input_index = len(flow.inputs)
        flow.inputs.append(vid)
        flow.input_dtypes.append(vi.elem_type)
    builder.graph(g, top)
    flow.outputs = [builder.read(vi.name, top) for vi in g.outputs]
    return flow
