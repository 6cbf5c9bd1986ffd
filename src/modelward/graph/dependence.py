"""What each value of a model's dataflow graph depends on: the facts the backdoor detector uses.

`modelward.graph.backdoor` looks for input-triggered switches; before it can, every value
needs four dependency bitsets, computed here to a fixed point (loops make the graph cyclic):
``inp`` (graph inputs it depends on as data), ``disc`` (inputs reaching it through a
discretisation), ``region`` (inputs of which it reads a region) and ``heavy``
(main-computation nodes it depends on). The module docstring of `backdoor` explains what
each fact means for detection; this module only computes them, so the detector's search for
selectors and the fact propagation each stay readable on their own.
"""

from __future__ import annotations

from typing import Final

from modelward.graph.dataflow import PHI, Flow, FlowNode

__all__ = ["HEAVY_OPS", "Facts"]

HEAVY_OPS: Final = frozenset({
    "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "Gemm", "MatMul",
    "MatMulInteger", "QLinearMatMul", "Einsum", "LSTM", "GRU", "RNN", "Attention",
    "MultiHeadAttention", "GroupQueryAttention", "QAttention", "FusedConv", "FusedGemm",
    "FusedMatMul", "QGemm", "MatMulNBits", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "NhwcConv", "TransposeMatMul", "EmbedLayerNormalization",
    "TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble", "LinearClassifier",
    "LinearRegressor", "SVMClassifier", "SVMRegressor",
})
_COMPARE: Final = frozenset({
    "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "IsNaN", "IsInf", "Sign",
    "Round", "Floor", "Ceil", "Mod", "ArgMax", "ArgMin", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", "BitwiseNot", "Not", "And", "Or", "Xor", "NonZero",
    # rounding onto an integer grid with saturation: a step as good as a comparison
    # (DynamicQuantizeLinear: its first output only, see `Facts.propagate`)
    "QuantizeLinear",
})
# Operators whose output is a truth value: what passes through them is a condition, not data.
_BOOLEAN: Final = frozenset({
    "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "IsNaN", "IsInf", "Not",
    "And", "Or", "Xor",
})
# Functions bounded on both sides turn a scaled difference into a 0/1 step as well as a
# comparison does: Clip((x - t) * 1e4, 0, 1), Sigmoid(1e4 * (x - t)), Min(Relu(...), 1)
# (``Clip`` needs both bounds, ``Min`` a constant bound: see `Facts.saturates`).
_SATURATE: Final = frozenset({"Clip", "Sigmoid", "HardSigmoid", "Tanh", "Softsign", "Erf"})
_SHAPE_ONLY: Final = frozenset({
    "Shape", "Size", "ConstantOfShape", "EyeLike", "RandomNormalLike", "RandomUniformLike",
})
_REGION: Final = frozenset({
    "Slice", "Gather", "GatherElements", "GatherND", "Split", "ReduceMean", "ReduceMax",
    "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "GlobalAveragePool",
    "GlobalMaxPool", "GlobalLpPool", "MaxPool", "AveragePool", "LpPool", "TopK", "Compress",
    "CumSum", "CenterCropPad", "NonZero", "Unique",
    # resampling at chosen coordinates reads a region as well as a Slice does
    "Resize", "Upsample", "GridSample", "RoiAlign", "MaxRoiPool",
})
_INT_TYPES: Final = frozenset({2, 3, 4, 5, 6, 7, 9, 12, 13})
_MAX_PASSES: Final = 12


class Facts:
    """Per-value bitsets: ``inp`` (input data), ``heavy`` (main computation), ``disc``."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        n = len(flow.values)
        self.inp = [0] * n
        for vid in flow.inputs:
            self.inp[vid] = 1 << flow.values[vid].input_index
        self.heavy_bit: dict[int, int] = {}
        self.order = self._order()
        self.live = self._live_inputs()
        self.side = self._side_heavy()

    def _live_inputs(self) -> list[list[int]]:
        """Inputs each node really depends on: a product with a known zero depends on none.

        ``logits * (c - c)`` or ``Gemm(h, zeros, b)`` make a substitute *look* computed
        from the model while it is a constant; values known to be zero (all-zero small
        constants, ``Sub(x, x)``, products with a zero) are followed in graph order.
        """
        flow = self.flow
        zero = [False] * len(flow.values)
        for vid, value in enumerate(flow.values):
            vals = value.constant.values if value.constant is not None else None
            zero[vid] = value.constant is not None and (
                value.constant.all_zero or (bool(vals) and all(v == 0 for v in vals)))  # type: ignore[union-attr]
        live = [list(node.inputs) for node in flow.nodes]
        for i in self.order:
            node = flow.nodes[i]
            ins = node.inputs
            is_zero = False
            if node.op in ("Mul", "MatMul", "And") and any(v >= 0 and zero[v] for v in ins):
                live[i] = []
                is_zero = True
            elif node.op == "Sub" and len(ins) == 2 and ins[0] >= 0 and ins[0] == ins[1]:
                live[i] = []
                is_zero = True
            elif node.op == "Gemm" and any(v >= 0 and zero[v] for v in ins[:2]):
                live[i] = ins[2:3]
                is_zero = len(ins) < 3 or ins[2] < 0 or zero[ins[2]]
            if is_zero:
                for out in node.outputs:
                    if out >= 0:
                        zero[out] = True
        return live

    def _side_heavy(self) -> set[int]:
        """Parameterised nodes whose result reaches no model output as data.

        Walking back from the outputs, a ``Where``/``If`` condition and the operand of a
        comparison carry a truth value, not data. A ``Conv`` or ``MatMul`` seen only that way
        (a dedicated kernel averaging a patch, then compared) is not main computation: it
        reads a region of its input, like a projection on a constant vector.
        """
        flow = self.flow
        reached: set[int] = set()
        seen: set[int] = set()
        stack = [o for o in flow.outputs if o >= 0]
        while stack:
            vid = stack.pop()
            if vid in seen:
                continue
            seen.add(vid)
            p = flow.values[vid].producer
            if p < 0 or p in reached:
                continue
            reached.add(p)
            node = flow.nodes[p]
            if node.op in _BOOLEAN or (node.op == "Cast" and node.attr_int("to") == 9):
                continue
            ins = self.live[p]
            if node.op == "Where" or (node.op == PHI and node.node is not None
                                      and node.node.op_type == "If"):
                ins = ins[1:]
            stack.extend(v for v in ins if v >= 0)
        return {i for i, node in enumerate(flow.nodes)
                if node.op in HEAVY_OPS and i not in reached}

    def _order(self) -> list[int]:
        """Nodes in an order that is topological where the graph allows (Kahn)."""
        flow = self.flow
        pending = [0] * len(flow.nodes)
        for i, node in enumerate(flow.nodes):
            pending[i] = sum(1 for v in node.inputs if v >= 0 and flow.values[v].producer >= 0)
        ready = [i for i, p in enumerate(pending) if p == 0]
        order: list[int] = []
        done = [False] * len(flow.nodes)
        while ready:
            i = ready.pop()
            if done[i]:
                continue
            done[i] = True
            order.append(i)
            for out in flow.nodes[i].outputs:
                if out < 0:
                    continue
                for c in flow.values[out].consumers:
                    pending[c] -= 1
                    if pending[c] <= 0 and not done[c]:
                        ready.append(c)
        order.extend(i for i, d in enumerate(done) if not d)  # cycles: fixed-point passes
        return order

    def propagate(self, forced: dict[int, tuple[int, int, int, int]] | None = None) -> list[
            list[int]]:
        """Compute ``[inp, disc, region, heavy]`` bitsets per value, some values `forced`."""
        facts = [list(self.inp), [0] * len(self.inp), [0] * len(self.inp), [0] * len(self.inp)]
        inp, disc, region, heavy = facts
        forced = forced or {}
        for vid, fixed in forced.items():
            for k in range(4):
                facts[k][vid] = fixed[k]
        flow = self.flow
        for _ in range(_MAX_PASSES):
            changed = False
            for i in self.order:
                node = flow.nodes[i]
                a = b = r = c = 0
                for v in self.live[i]:
                    if v >= 0:
                        a |= inp[v]
                        b |= disc[v]
                        r |= region[v]
                        c |= heavy[v]
                a, b, r, c = self._transfer(i, node, a, b, r, c)
                for k, out in enumerate(node.outputs):
                    if out < 0 or out in forced:
                        continue
                    ob = b
                    if (k == 1 and node.op == "TopK") or (k == 0 and node.op
                                                          == "DynamicQuantizeLinear"):
                        ob = b | a  # TopK's indices, the rounded values (not scale, zero point)
                    if (inp[out] | a != inp[out] or disc[out] | ob != disc[out]
                            or region[out] | r != region[out] or heavy[out] | c != heavy[out]):
                        inp[out] |= a
                        disc[out] |= ob
                        region[out] |= r
                        heavy[out] |= c
                        changed = True
            if not changed:
                break
        return facts

    def _scalar_projection(self, node: FlowNode) -> bool:
        """``MatMul``/``Gemm`` by a constant weight with a single output column."""
        if node.op not in ("MatMul", "Gemm") or len(node.inputs) < 2 or node.inputs[1] < 0:
            return False
        weight = self.flow.values[node.inputs[1]].constant
        if weight is None or len(weight.dims) < 2:
            return False
        trans = node.op == "Gemm" and bool(node.attr_int("transB"))
        return (weight.dims[-2] if trans else weight.dims[-1]) == 1

    def saturates(self, node: FlowNode) -> bool:
        """A function bounded on both sides (``Clip(x, lo, hi)``) or capped (``Min(x, c)``)."""
        ins = node.inputs
        if node.op == "Clip":
            if node.node is not None and "min" in node.node.attributes:  # opset < 11
                return "max" in node.node.attributes
            return len(ins) >= 3 and ins[1] >= 0 and ins[2] >= 0
        if node.op == "Min":
            return any(v >= 0 and self.flow.values[v].constant is not None for v in ins)
        return node.op in _SATURATE

    def _transfer(self, i: int, node: FlowNode, a: int, b: int, r: int,
                  c: int) -> tuple[int, int, int, int]:
        op = node.op
        if op == PHI:
            return a, b, r, c
        if op in _SHAPE_ONLY:
            return 0, 0, 0, 0
        if op in HEAVY_OPS and (a or c):
            if i in self.side or (not c and self._scalar_projection(node)):
                # raw input times a constant [K, 1] vector (one-hot, averaging weights):
                # a weighted reduction that reads a region, not main computation
                return a, b, r | a, c
            bit = self.heavy_bit.setdefault(i, 1 << len(self.heavy_bit))
            return a, b, r, c | bit
        if op in _REGION:
            r |= a
        if op in _COMPARE or (op == "Cast" and node.attr_int("to") in _INT_TYPES):
            b |= a
        elif not c and self.saturates(node):
            b |= a  # a step built from the raw input, not an activation of learned features
        return a, b, r, c
