"""Hoist a condition computed inside ``If``/``Loop``/``Scan`` bodies into the main graph.

Trigger synthesis runs a pruned copy of the model that exposes the condition as an output,
and ONNX cannot expose a value of a subgraph. Many conditions inside a body depend on graph
inputs only through *outer-scope references* (a Loop body comparing the mean of an image
patch computed outside, an If branch testing an input slice): such a condition has the
same value at every iteration, so the nodes computing it can be copied into the main
graph, with the body's own names prefixed so they cannot collide.

The condition is named by the label `modelward.graph.dataflow` gives it
(``main/<node>.<attribute>/.../<value>``). Hoisting is refused (None) when the condition
reads a body's formal inputs (the iteration number, loop-carried or scanned values), when a
node of its cone holds subgraphs itself, or when the path does not resolve.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["hoist_condition"]

_MAX_NODES: Final = 10_000


def _label(node: Any) -> str:
    return str(node.name) or f"{node.op_type}->{node.output[0] if node.output else '?'}"


def _scopes(model: Any, label: str) -> tuple[list[Any], str] | None:
    """The graphs from main down to the one defining `label`'s value, and the value name."""
    if not label.startswith("main/"):
        return None
    rest = label[len("main/"):]
    graphs = [model.graph]
    while True:
        for node in graphs[-1].node:
            for attr in node.attribute:
                if not attr.HasField("g"):
                    continue
                prefix = f"{_label(node)}.{attr.name}/"
                if rest.startswith(prefix):
                    graphs.append(attr.g)
                    rest = rest[len(prefix):]
                    break
            else:
                continue
            break
        else:
            return (graphs, rest) if len(graphs) > 1 else None


def hoist_condition(model: Any, label: str) -> tuple[Any, str] | None:
    """A copy of ``onnx.ModelProto`` `model` computing `label`'s value in the main graph.

    Returns:
        (new model, name of the hoisted condition), or None when it cannot be hoisted.
    """
    import onnx

    found = _scopes(model, label)
    if found is None:
        return None
    graphs, name = found
    depth = len(graphs) - 1
    producers = [{o: n for n in g.node for o in n.output} for g in graphs]
    inits = [{t.name: t for t in g.initializer} for g in graphs]
    formals = [{i.name for i in g.input} if k else set() for k, g in enumerate(graphs)]
    main_inputs = {i.name for i in model.graph.input}
    needed: list[set[str]] = [set() for _ in graphs]  # node outputs to copy, per level
    new_inits: dict[str, Any] = {}

    def renamed(level: int, value: str) -> str:
        return value if level == 0 else f"__mw_hoist{level}_{value}"

    def resolve(value: str, level: int) -> str | None:
        """The main-graph name of `value` as seen from `level`, marking what to copy."""
        for k in range(level, 0, -1):
            if value in formals[k]:
                return None
            if value in producers[k]:
                node = producers[k][value]
                if any(a.HasField("g") or len(a.graphs) for a in node.attribute):
                    return None
                if value not in needed[k]:
                    needed[k].update(node.output)
                    for i in node.input:
                        if i and resolve(i, k) is None:
                            return None
                return renamed(k, value)
            if value in inits[k]:
                if renamed(k, value) not in new_inits:
                    tensor = onnx.TensorProto()
                    tensor.CopyFrom(inits[k][value])
                    tensor.name = renamed(k, value)
                    new_inits[tensor.name] = tensor
                return renamed(k, value)
        known = value in producers[0] or value in inits[0] or value in main_inputs
        return value if known else None  # main graph: input, initializer or node output

    hoisted = resolve(name, depth)
    if hoisted is None or sum(len(n) for n in needed) > _MAX_NODES:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for k in range(1, depth + 1):
        for node in graphs[k].node:
            if not needed[k].intersection(node.output):
                continue
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = renamed(k, _label(node))
            for j, value in enumerate(node.input):
                if value:
                    copy.input[j] = resolve(value, k) or value
            for j, value in enumerate(node.output):
                if value:
                    copy.output[j] = renamed(k, value)
            out.graph.node.append(copy)
    out.graph.initializer.extend(new_inits.values())
    return out, hoisted
