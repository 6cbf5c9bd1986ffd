"""Trigger synthesis: build an input that satisfies an input-dependent condition.

For each switch the structural analysis finds (`modelward.graph.backdoor.Backdoor`), the
condition's *leaves* are found by walking back from the condition value through boolean
logic, casts, shape ops and arithmetic with constants: comparisons (``a > b``, ``a == b``)
and float values tested for non-zero (``Cast(Sign(Relu(u)))`` means ``u > 0``). A pruned copy
of the model computes the leaf operands and the condition, and the search flips the
condition starting from an ordinary input:

- float inputs: the elements the leaves depend on are found by perturbation; for each small
  set of leaves (smallest first) the margins are raised by sign-gradient steps from
  finite differences over those elements (ReduceMean/Slice/arithmetic triggers), and
  equalities are solved by a 1-D scan plus bisection on one element (checksums with
  ``Floor``/``Mod``);
- integer inputs (token ids): the integer constants the condition compares with are written
  at each position the condition depends on.

The condition changing from its value on the ordinary input is success; the caller then
runs both models on that input to *demonstrate* the trigger. Conditions inside ``Loop``/``If``
bodies are first hoisted into the main graph (`modelward.diff.hoist`) when they depend on
graph inputs only through outer-scope references; those reading a body's own inputs are
reported unsupported (local functions are inlined first by the caller).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from modelward.diff.hoist import hoist_condition
from modelward.diff.inputs import Feeds
from modelward.graph.backdoor import HEAVY_OPS

__all__ = ["Leaf", "Synthesis", "condition_leaves", "synthesise"]

_CMP: Final = frozenset({"Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal"})
_PASS: Final = frozenset({
    "Cast", "Not", "And", "Or", "Xor", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Expand",
    "Flatten", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "Add", "Sub", "Mul", "Div",
    "Neg", "Abs", "Sign", "Relu", "Transpose", "Concat", "Where", "Tile", "Floor", "Ceil",
    "Round", "Mod", "Slice", "Gather", "Min", "Max", "Sum", "Clip",
})
MAX_EVALUATIONS: Final = 20_000
_MAX_SENSITIVE: Final = 512
_PERTURB: Final = 0.37


@dataclass(frozen=True, slots=True)
class Leaf:
    """One atomic test: ``kind`` is a comparison op or ``nonzero``; operands are value names."""

    kind: str
    a: str
    b: str | None
    node: str


@dataclass(slots=True)
class Synthesis:
    """Outcome of one search: the input (when the condition flipped) and how it went."""

    feeds: Feeds | None
    detail: str
    evaluations: int
    unsupported: bool = False


def condition_leaves(model: Any, condition: str) -> tuple[list[Leaf], list[int]]:
    """Leaves of `condition` in ``onnx.ModelProto`` `model` and the integer constants seen."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consts = {t.name for t in model.graph.initializer}
    ints: set[int] = set()
    from onnx import numpy_helper

    values = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            consts.add(node.output[0])
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = attr.t
    leaves: list[Leaf] = []
    seen: set[str] = set()

    def note_ints(name: str) -> None:
        t = values.get(name)
        if t is not None and t.data_type in (6, 7) and np.prod(t.dims or [1]) <= 64:
            ints.update(int(v) for v in numpy_helper.to_array(t).reshape(-1))

    def walk(name: str, depth: int, want_bool: bool) -> None:
        if name in seen or depth > 64 or name in consts or name not in producer:
            return
        seen.add(name)
        node = producer[name]
        op = node.op_type
        label = node.name or f"{op}->{name}"
        for i in node.input:
            note_ints(i)
        if op in _CMP and len(node.input) == 2:
            leaves.append(Leaf(op, node.input[0], node.input[1], label))
            for i in node.input:
                walk(i, depth + 1, False)
            return
        if op in HEAVY_OPS or op not in _PASS:
            return
        if op == "Cast" and want_bool:
            src = producer.get(node.input[0])
            if src is not None and src.op_type not in _CMP | {"Not", "And", "Or", "Xor"}:
                inner = node.input[0]
                while inner in producer and producer[inner].op_type in ("Sign", "Abs", "Neg"):
                    inner = producer[inner].input[0]
                if inner in producer and producer[inner].op_type == "Relu":
                    leaves.append(Leaf("Greater", producer[inner].input[0], None, label))
                else:
                    leaves.append(Leaf("nonzero", inner, None, label))
        for i in node.input:
            walk(i, depth + 1, want_bool and op in ("Cast", "Not", "And", "Or", "Xor",
                                                      "Reshape", "Squeeze", "Unsqueeze",
                                                      "Identity", "Expand", "Flatten"))

    walk(condition, 0, True)
    return leaves, sorted(ints)


def _pruned(model: Any, outputs: list[str]) -> bytes:
    """`model` reduced to the nodes computing `outputs` (which become its outputs)."""
    import onnx

    producer = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    keep: set[int] = set()
    stack = list(outputs)
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        index = producer.get(name)
        if index is None or index in keep:
            continue
        keep.add(index)
        node = model.graph.node[index]
        stack.extend(node.input)
        for attr in node.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                stack.extend(i for n in g.node for i in n.input)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.node[:]
    m.graph.node.extend(n for i, n in enumerate(model.graph.node) if i in keep)
    del m.graph.output[:]
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in outputs)
    kept_init = [t for t in model.graph.initializer if t.name in seen]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept_init)
    return bytes(m.SerializeToString())


class _Search:
    def __init__(self, run: Callable[[Feeds], dict[str, np.ndarray]], leaves: list[Leaf],
                 condition: str, base: Feeds, budget: int) -> None:
        self.run = run
        self.leaves = leaves
        self.condition = condition
        self.base = {k: v.copy() for k, v in base.items()}
        self.budget = budget
        self.evals = 0
        first = self.eval(self.base)
        self.cond0 = first[condition].astype(bool)
        self.state0 = [self.truth(leaf, first) for leaf in leaves]

    def eval(self, feeds: Feeds) -> dict[str, np.ndarray]:
        self.evals += 1
        if self.evals > self.budget:
            raise _Exhausted
        return self.run(feeds)

    def flipped(self, out: dict[str, np.ndarray]) -> bool:
        cond = out[self.condition].astype(bool)
        return cond.shape != self.cond0.shape or bool((cond != self.cond0).any())

    @staticmethod
    def _ab(leaf: Leaf, out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        a = out[leaf.a].astype(np.float64)
        b = out[leaf.b].astype(np.float64) if leaf.b else np.zeros(1)
        return a, b

    def truth(self, leaf: Leaf, out: dict[str, np.ndarray]) -> bool:
        return bool(self.margin(leaf, out, want=True) > 0)

    def margin(self, leaf: Leaf, out: dict[str, np.ndarray], want: bool) -> float:
        """How far the leaf is past the point of being `want` (positive: it is)."""
        a, b = self._ab(leaf, out)
        if leaf.kind in ("Greater", "GreaterOrEqual"):
            d = a - b + (1e-9 if leaf.kind == "GreaterOrEqual" else 0.0)
        elif leaf.kind in ("Less", "LessOrEqual"):
            d = b - a + (1e-9 if leaf.kind == "LessOrEqual" else 0.0)
        elif leaf.kind == "Equal":
            d = np.where(a == b, 1.0, -np.abs(a - b))
        else:
            d = np.abs(a) - 1e-12
        d = np.broadcast_to(d, np.broadcast(d, np.zeros(1)).shape)
        return float(d.max()) if want else float((-d).max() + (1e-9 if leaf.kind in (
            "GreaterOrEqual", "LessOrEqual", "nonzero") else 0.0))

    def objective(self, subset: tuple[int, ...], out: dict[str, np.ndarray]) -> float:
        return min(self.margin(self.leaves[i], out, not self.state0[i]) for i in subset)


class _Exhausted(Exception):
    pass


def _sensitive(search: _Search, name: str, watch: list[str]) -> list[int]:
    """Flat indices of `name` whose change moves any watched value."""
    base = search.base
    ref = search.eval(base)
    flat = base[name].reshape(-1)
    found: list[int] = []
    integer = np.issubdtype(flat.dtype, np.integer)
    for idx in range(flat.size):
        trial = {k: v.copy() for k, v in base.items()}
        t = trial[name].reshape(-1)
        t[idx] = t[idx] + 1 if integer else t[idx] + _PERTURB
        out = search.eval(trial)
        if any(not np.array_equal(out[w], ref[w]) for w in watch):
            found.append(idx)
            if len(found) >= _MAX_SENSITIVE:
                break
    return found


def _ascend(search: _Search, subset: tuple[int, ...], name: str, idx: list[int],
            steps: int = 60) -> Feeds | None:
    feeds = {k: v.copy() for k, v in search.base.items()}
    x = feeds[name].reshape(-1)
    step = 0.25
    for _ in range(steps):
        out = search.eval(feeds)
        if search.flipped(out):
            return feeds
        f0 = search.objective(subset, out)
        grad = np.zeros(len(idx))
        h = 1e-2
        for j, i in enumerate(idx):
            old = x[i]
            x[i] = old + h
            grad[j] = (search.objective(subset, search.eval(feeds)) - f0) / h
            x[i] = old
        if not grad.any():
            return None
        x[idx] += step * np.sign(grad)
        step *= 1.5
    return None


class _Gap:
    """``a - b`` of an equality leaf as a function of one input element."""

    def __init__(self, search: _Search, leaf: Leaf, feeds: Feeds, name: str, index: int) -> None:
        self.search, self.leaf, self.feeds, self.index = search, leaf, feeds, index
        self.flat = feeds[name].reshape(-1)

    def __call__(self, t: float) -> float:
        self.flat[self.index] = t
        a, b = self.search._ab(self.leaf, self.search.eval(self.feeds))
        return float((a - b).reshape(-1)[0])


def _root(search: _Search, leaf: Leaf, name: str, idx: list[int]) -> Feeds | None:
    """Solve ``a == b`` along one element at a time (scan, then bisection)."""
    for i in idx[:8]:
        feeds = {k: v.copy() for k, v in search.base.items()}
        gap = _Gap(search, leaf, feeds, name, i)
        origin = float(gap.flat[i])
        grid = origin + np.linspace(-12.0, 12.0, 481)
        prev_t, prev = grid[0], gap(grid[0])
        for t in grid[1:]:
            cur = gap(t)
            if prev < 0 <= cur or prev > 0 >= cur:
                lo, hi = prev_t, t
                for _ in range(60):
                    mid = (lo + hi) / 2
                    g = gap(mid)
                    if g == 0:
                        break
                    if (g < 0) == (prev < 0):
                        lo = mid
                    else:
                        hi = mid
                else:
                    gap(hi)
                if search.flipped(search.eval(feeds)):
                    return feeds
            prev_t, prev = t, cur
    return None


def synthesise(model: Any, condition: str, base: Feeds,
               budget: int = MAX_EVALUATIONS) -> Synthesis:
    """Search an input that changes `condition`'s value from its value on `base`.

    Args:
        model: the target as ``onnx.ModelProto`` (local functions inlined).
        condition: name of the condition value (main graph).
        base: an ordinary input to start from.
        budget: most evaluations of the pruned trigger model.
    """
    import onnxruntime as ort  # type: ignore[import-untyped]

    hoisted = ""
    if "/" in condition:
        lifted = hoist_condition(model, condition)
        if lifted is None:
            return Synthesis(None, "condition inside a Loop/If/Scan body reads the body's own "
                             "inputs (iteration or carried state)", 0, unsupported=True)
        model, condition = lifted
        hoisted = " (condition hoisted out of its subgraph)"
    leaves, ints = condition_leaves(model, condition)
    operands = sorted({n for leaf in leaves for n in (leaf.a, leaf.b) if n})
    graph_inputs = {i.name for i in model.graph.input}
    extra = [n for n in operands if n not in graph_inputs]
    pruned = _pruned(model, [condition, *extra])
    # The model is run because the user asked diff to execute it (trusted input by contract).
    session = ort.InferenceSession(pruned, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    needed = {i.name for i in session.get_inputs()}

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        outs = dict(zip(names, session.run(None, {k: v for k, v in feeds.items()
                                                   if k in needed}), strict=True))
        for n in operands:
            if n in feeds:
                outs[n] = feeds[n]
        return outs

    try:
        search = _Search(run, leaves, condition, base, budget)
        watch = [condition, *extra]
        for name in sorted(needed):
            arr = base[name]
            if arr.dtype == np.bool_:
                continue
            if name in operands:  # compared directly: every element matters
                idx = list(range(min(arr.size, _MAX_SENSITIVE)))
            else:
                idx = _sensitive(search, name, watch)
            if not idx:
                continue
            if np.issubdtype(arr.dtype, np.integer):
                for value in ints:
                    for i in idx:
                        feeds = {k: v.copy() for k, v in search.base.items()}
                        feeds[name].reshape(-1)[i] = value
                        if search.flipped(search.eval(feeds)):
                            return Synthesis(feeds, f"{name}[{i}] = {value}{hoisted}",
                                             search.evals)
                continue
            n = len(leaves)
            for size in range(1, min(n, 3) + 1):
                for subset in itertools.combinations(range(n), size):
                    found = _ascend(search, subset, name, idx)
                    if found is not None:
                        nodes = ", ".join(leaves[i].node for i in subset)
                        return Synthesis(found, f"raised {nodes} over {len(idx)} elements of "
                                         f"{name}{hoisted}", search.evals)
            for leaf in leaves:
                if leaf.kind == "Equal":
                    found = _root(search, leaf, name, idx)
                    if found is not None:
                        return Synthesis(found, f"solved {leaf.node} on {name}{hoisted}",
                                         search.evals)
        return Synthesis(None, f"no input found for {len(leaves)} condition leaves",
                         search.evals)
    except _Exhausted:
        return Synthesis(None, f"budget of {budget} evaluations spent", budget)
