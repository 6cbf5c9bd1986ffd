"""Architectural backdoors: input-triggered switches that replace a model's computed result.

A graph backdoor (HiddenLayer's "ShadowLogic", JFrog's ONNX backdoor research) adds a few
nodes to a trained model: a *trigger* computed straight from the input (the mean of a pixel
patch compared with a constant, a token id test, a checksum of the input bytes) and a
*selector* (``Where``, ``If``, ``Gather`` from a stacked ``[computed, constant]`` tensor,
multiplication by a 0/1 mask, an added masked constant) that,
when the trigger holds, substitutes the model's output with an attacker-chosen value. The
weights are untouched, so accuracy tests pass.

The detector reasons over the flat dataflow graph (`modelward.graph.dataflow`), with three
facts per value, iterated to a fixed point (loops make the graph cyclic; computed in
`modelward.graph.dependence`):

- ``inp``: which graph inputs it depends on as *data* (``Shape``/``Size`` cut the
  dependency: shape logic is legitimate);
- ``heavy``: which *main-computation* nodes it depends on: parameterised operators
  (``Conv``, ``Gemm``, ``MatMul``, recurrent, attention, tree ensembles...) applied to
  input-dependent data; constants folded through those operators stay constants;
- ``disc``: which inputs reach it through a discretisation (comparison, cast to bool or
  integer, ``Sign``/``Round``/``Mod``/``ArgMax``..., or a step built by saturating raw-input
  arithmetic: ``Clip(k * (x - t), 0, 1)``, ``Min(Relu(..), 1)``, ``Sigmoid``): the "is the
  trigger present" bit.

Values known to be zero (``x * 0``, ``Sub(x, x)``, ``Gemm`` with zero weights) carry no
dependency, so a substitute dressed up as computed (``logits * 0 + target``) stays one.

A *trigger* is a value computed by discretising a region of input data (other than
attention/padding mask inputs that mask the main computation; a "mask" that masks nothing
counts when chosen positions of it are read) that shares no main-computation node with the
result it switches. A projection of the raw input on a constant ``[K, 1]`` vector is a
weighted reduction (a region), not main computation. A finding
needs a selector whose condition is such a trigger, one operand carrying the main
computation and the other independent of it (a constant, a value derived from constants
only, or a shortcut from the input), and an effect on the output: with the substitution
made, some model output no longer depends on the main computation (a *cut*), or, for an
added term or a gated correction (``logits + m * (target - logits)``), no main computation
sits between the selector and the output.

This keeps legitimate patterns quiet: attention masks switch values that flow into more
attention (the output still depends on the main computation); NMS, top-k and confidence
thresholds derive their condition from the main computation itself; shape-dependent ``If``
and padding logic have no data-dependent condition; dropout/training switches select
between two computed branches. A parameterised node whose result reaches no output as data
(only as a ``Where``/``If`` condition or through a comparison: a dedicated ``Conv``
averaging a patch) reads a region rather than doing main computation; a ``Loop`` whose trip
count or condition is a trigger selects between its initial carried value and the body's
update; a real attention mask compared, once summarised, with a count other than 0 or 1
("exactly 13 real tokens") is a trigger, padding logic is not.

A trigger may also read the backbone's own features (the mean of one channel of an
intermediate ReLU output, thresholded): the condition then shares main computation with the
result. It is reported only when its main-computation nodes are a strict subset of the
switched value's (it taps part-way and the result computes on), it discretises the feature
after the tap, and either the substitute is a constant with differing elements (or a mask
with a gated term added back) and the condition reads a chosen channel or position or
summarises the whole map, or the substitute is *flat* (zeros, all equal, a mask alone: the
scores tie and ``ArgMax`` falls to class 0) and the condition summarises a chosen part over
the sample while the switched value pools the features after the tap (a classifier's
logits); the cut counts only the nodes after the tap (`_Detector.feature_tap`). Early exits
return computed logits; a reject option or a confidence gate thresholds the output itself
(all its nodes); objectness gates threshold each location; image-level "anything found"
gates zero a per-cell score map; blank-input and out-of-distribution guards return a flat
row on a whole-map summary.

Known gaps: a flat substitute on a whole-map summary (the exact shape of a blank-input
guard, whatever the threshold) or on a per-location condition (an objectness gate's shape);
a flat substitute on a score map that the consumer argmaxes outside the graph; a dedicated
trigger ``Conv`` that also leaks a negligible term into the output (it then reaches an
output as data and counts as main computation); zero weights stored externally or larger
than ``ZERO_SCAN_BYTES`` (not read).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from modelward.graph.dataflow import PHI, Flow
from modelward.graph.dependence import HEAVY_OPS, Facts

__all__ = ["HEAVY_OPS", "Backdoor", "find_backdoors"]

_COUNT_COMPARE: Final = frozenset({"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"})
_MIX: Final = frozenset({"Add", "Sub", "Sum", "Max", "Min"})
_POSITIONAL: Final = frozenset({
    "Slice", "Gather", "GatherElements", "GatherND", "Split", "Compress", "CenterCropPad",
})
# Selection by index from a stacked [computed, substitute] tensor.
_PICK: Final = frozenset({"Gather", "GatherElements", "GatherND"})
_PASS: Final = frozenset({"Reshape", "Identity", "Unsqueeze", "Squeeze", "Transpose", "Flatten"})
_MAX_CANDIDATES: Final = 256
# A threshold taken on the backbone's own features (see `_Detector.feature_tap`): a
# comparison, a rounding or a cast to an integer/bool type, or a clamp with constant bounds.
_STEP: Final = _COUNT_COMPARE | frozenset({
    "Sign", "Round", "Floor", "Ceil", "ArgMax", "ArgMin", "Clip", "Min"})
_STEP_CAST: Final = frozenset({2, 3, 4, 5, 6, 7, 9, 12, 13})
_FEATURE_KINDS: Final = frozenset({"where", "if", "gather", "mask-multiply"})
_TAP_WALK: Final = 2000
_BROADCAST: Final = _PASS | frozenset({"Expand", "Tile", "Cast"})
# Summaries of a feature map over its positions (a per-sample statistic).
_SUMMARY: Final = frozenset({
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ReduceProd", "GlobalAveragePool",
    "GlobalMaxPool", "GlobalLpPool"})


@dataclass(frozen=True, slots=True)
class Backdoor:
    """One detected input-triggered substitution.

    Attributes:
        kind: selector kind (``where``, ``if``, ``gather``, ``mask-multiply``, ``masked-add``).
        selector: label of the selecting node.
        trigger_nodes: labels of nodes computing the condition, input side first.
        trigger_inputs: graph inputs the trigger reads.
        substitute: description of the value swapped in.
        outputs: model outputs the substitution reaches.
        main: label of the value carrying the computed result that gets replaced.
        condition: label of the value the selector switches on (the trigger bit, or the
            mask/term for ``mask-multiply``/``masked-add``); used to synthesise triggers.
    """

    kind: str
    selector: str
    trigger_nodes: tuple[str, ...]
    trigger_inputs: tuple[str, ...]
    substitute: str
    outputs: tuple[str, ...]
    main: str
    condition: str = ""


def _describe_trigger(flow: Flow, cond: int,
                      limit: int = 16) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Nodes computing `cond` back to the inputs (input side first) and the inputs read."""
    nodes: list[str] = []
    inputs: set[str] = set()
    for index in flow.ancestors([cond], limit=2000):
        node = flow.nodes[index]
        if node.op not in (PHI, "Constant") and len(nodes) < limit:
            text = f"{node.label} ({node.op}"
            consts = [flow.constant_values(v) for v in node.inputs[1:]]
            shown = [str(tuple(round(x, 4) if isinstance(x, float) else x for x in cv[:8]))
                     for cv in consts if cv]
            if shown:
                text += " " + ", ".join(shown)
            nodes.append(text + ")")
        for v in node.inputs:
            if v >= 0 and flow.values[v].input_index >= 0:
                inputs.add(flow.values[v].name)
    if flow.values[cond].input_index >= 0:
        inputs.add(flow.values[cond].name)
    return tuple(reversed(nodes)), tuple(sorted(inputs))


def _describe_value(flow: Flow, vid: int, inp: list[int], heavy: list[int]) -> str:
    value = flow.values[vid]
    if value.constant is not None:
        kind = "initializer" if value.producer < 0 else "constant"
        vals = value.constant.values
        shown = f" = {tuple(vals[:6])}" if vals else ""
        return f"{kind} '{value.label}'{shown}"
    producer = flow.nodes[value.producer].label if value.producer >= 0 else "?"
    if not inp[vid] and not heavy[vid]:
        return f"'{value.label}' (input-independent, computed by {producer})"
    return f"'{value.label}' (computed by {producer}, bypassing the main computation)"


class _Detector:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.facts = Facts(flow)
        self.inp, self.disc, self.region, self.heavy = self.facts.propagate()
        masking = 0  # inputs that reach the main computation's parameterised operators
        for i in self.facts.heavy_bit:
            for v in flow.nodes[i].inputs:
                if v >= 0:
                    masking |= self.inp[v]
        mask = side = real = 0
        for vid, dtype in zip(flow.inputs, flow.input_dtypes, strict=False):
            name = flow.values[vid].name.lower()
            bit = 1 << flow.values[vid].input_index
            if dtype == 9 or "mask" in name:
                # attention/padding masks drive legitimate selections; a "mask" that masks
                # nothing of the main computation is a side input, a trigger when particular
                # positions of it are read (see `is_trigger`)
                if not masking & bit:
                    side |= bit
                else:
                    real |= bit
                continue
            mask |= bit
        self.data_inputs = mask
        self.side_masks = side
        self.real_masks = real

    def is_trigger(self, cond: int, main: int) -> bool:
        if self.heavy[cond] & self.heavy[main]:
            return False
        read = self.disc[cond] & self.region[cond]
        if read & self.data_inputs:
            return True
        side = read & self.side_masks
        if side and self.reads_positions(cond, side):
            return True
        real = read & self.real_masks
        return bool(real) and self.counts_tokens(cond, real)

    def counts_tokens(self, cond: int, bits: int) -> bool:
        """Whether `cond` compares a summary of mask `bits` with a count other than 0 or 1.

        Padding logic asks whether a position (or any position) is real: comparisons with 0
        or 1. "Exactly 13 real tokens" is a trigger on the input's length an attacker chose.
        """
        flow = self.flow
        for index in flow.ancestors([cond], limit=2000):
            node = flow.nodes[index]
            if node.op not in _COUNT_COMPARE or len(node.inputs) != 2:
                continue
            for data, other in ((node.inputs[0], node.inputs[1]),
                                (node.inputs[1], node.inputs[0])):
                vals = flow.constant_values(other)
                if (data >= 0 and self.inp[data] & bits and self.region[data] & bits and vals
                        and any(abs(v) > 1 for v in vals)):
                    return True
        return False

    def light_update(self, formal: int, result: int) -> bool:
        """Whether a loop body turns carried value `formal` into `result` with no heavy op."""
        if formal < 0 or result < 0 or formal == result:
            return False
        flow = self.flow
        seen = {formal}
        stack = [formal]
        while stack:
            vid = stack.pop()
            if vid == result:
                return True
            for c in flow.values[vid].consumers:
                node = flow.nodes[c]
                if node.op in HEAVY_OPS or node.op == PHI:
                    continue
                for out in node.outputs:
                    if out >= 0 and out not in seen:
                        seen.add(out)
                        stack.append(out)
        return False

    def reads_positions(self, cond: int, bits: int) -> bool:
        """Whether `cond` reads particular positions (not a whole-mask summary) of `bits`.

        "Is any token present" (ReduceMax/ReduceSum of the whole mask) is sequence logic;
        slicing or gathering chosen positions of an input named like a mask, or projecting
        it on a constant vector, is a side channel an attacker can name as they like.
        """
        flow = self.flow
        for index in flow.ancestors([cond], limit=2000):
            node = flow.nodes[index]
            if node.op in _POSITIONAL or node.op in HEAVY_OPS:
                src = node.inputs[0] if node.inputs else -1
                if src >= 0 and self.inp[src] & bits:
                    return True
        return False

    def feature_tap(self, kind: str, cond: int, main: int, other: int,
                    selected: int) -> str | None:
        """The tapped feature when `cond` thresholds a chosen part of the backbone's features.

        A trigger may read the model's own intermediate features instead of the input (the
        mean of one channel of a ReLU output, thresholded). Confidence gates, early exits,
        reject options and score thresholds look alike at first sight; what sets the
        backdoor apart, all required:

        - the condition's main-computation nodes are a strict subset of the switched
          value's: it taps the backbone part-way, and the result goes on computing (a
          confidence over the output logits shares *all* of them; an early-exit or
          objectness head adds a node of its own);
        - the substitute is a constant (independent of the input), or a mask with a
          trigger-gated term added back (``logits * (1 - m) + target * m``);
        - after the tap, the condition discretises the feature (comparison, rounding,
          integer cast, constant clamp) and reads a chosen channel or position of it
          (``Slice``, ``Gather``..., or a dedicated kernel that reaches no output as data)
          or, for a substitute whose elements differ, summarises the whole map (a blank
          or out-of-distribution guard returns a flat row, never a favoured class);
        - a *flat* substitute (zeros, all elements equal, or a mask alone: the scores tie
          and ``ArgMax`` falls to class 0) counts only when the condition reads a chosen
          part *and* summarises it over the sample, and the switched value is a per-sample
          vector (the main computation pools the feature after the tap: a classifier's
          logits). An objectness gate thresholds each location; an image-level "anything
          found" gate switches a per-cell score map; neither is reported.

        Returns:
            The label of the tapped feature, or None.
        """
        if kind not in _FEATURE_KINDS:
            return None
        bits, main_bits = self.heavy[cond], self.heavy[main]
        if not bits or bits & ~main_bits or bits == main_bits:
            return None
        if kind == "mask-multiply":
            flat = not self.added_term(selected, bits)
        elif other < 0 or self.inp[other] or self.heavy[other]:
            return None
        else:
            flat = self.uniform(other)
        flow = self.flow
        side = self.facts.side
        tapped = whole = ""
        step = False
        seen: set[int] = set()
        stack = [cond]
        while stack and len(seen) < _TAP_WALK:
            vid = stack.pop()
            if vid in seen or self.heavy[vid] != bits:
                continue  # before the tap point
            seen.add(vid)
            index = flow.values[vid].producer
            if index < 0:
                continue
            node = flow.nodes[index]
            if node.op in HEAVY_OPS and index not in side:
                continue  # the last main-computation node: the tap point
            data = node.inputs[0] if node.inputs else -1
            on_feature = data >= 0 and self.heavy[data] == bits and bool(self.inp[data])
            if on_feature and (node.op in _POSITIONAL or index in side):
                tapped = flow.values[data].label
            if on_feature and node.op in _SUMMARY:
                whole = flow.values[data].label
            if on_feature and (
                    (node.op in _STEP and (node.op not in ("Clip", "Min")
                                           or self.facts.saturates(node)))
                    or (node.op == "Cast" and node.attr_int("to") in _STEP_CAST)):
                step = True
            stack.extend(v for v in node.inputs if v >= 0)
        if not step:
            return None
        if flat:
            return tapped if tapped and whole and self.pooled(main, bits) else None
        return tapped or whole or None

    def pooled(self, main: int, bits: int) -> bool:
        """Whether `main` pools, after the tap `bits`, a feature over its positions."""
        flow = self.flow
        seen = {main}
        stack = [main]
        while stack and len(seen) < _TAP_WALK:
            index = flow.values[stack.pop()].producer
            if index < 0:
                continue
            node = flow.nodes[index]
            data = node.inputs[0] if node.inputs else -1
            if data >= 0 and self.heavy[data] & bits == bits and (
                    node.op in _SUMMARY or (node.op == "Flatten"
                                            and node.attr_int("axis") in (None, 1))):
                return True
            for v in node.inputs:
                if v >= 0 and v not in seen and self.heavy[v] & bits == bits:
                    seen.add(v)
                    stack.append(v)
        return False

    def uniform(self, vid: int) -> bool:
        """Whether constant `vid` has all elements equal (through broadcasts and reshapes)."""
        flow = self.flow
        for _ in range(8):
            value = flow.values[vid]
            if value.constant is not None:
                vals = value.constant.values
                return value.constant.all_zero or (bool(vals) and len(set(vals or ())) == 1)
            if value.producer < 0:
                return False
            node = flow.nodes[value.producer]
            if node.op == "ConstantOfShape":
                return True  # one scalar repeated
            if node.op not in _BROADCAST or not node.inputs or node.inputs[0] < 0:
                return False
            vid = node.inputs[0]
        return False

    def added_term(self, product: int, bits: int) -> bool:
        """Whether masked `product` is added to a term gated by the same feature trigger."""
        flow = self.flow
        seen = {product}
        stack = [product]
        while stack:
            vid = stack.pop()
            for c in flow.values[vid].consumers:
                node = flow.nodes[c]
                if node.op in ("Add", "Sum", "Sub") and any(
                        v >= 0 and v not in seen and self.heavy[v] & bits
                        and not self.heavy[v] & ~bits for v in node.inputs):
                    return True
                if node.op in _PASS and len(seen) < 64:
                    for out in node.outputs:
                        if out >= 0 and out not in seen:
                            seen.add(out)
                            stack.append(out)
        return False

    def is_bypass(self, other: int, main: int) -> bool:
        return other < 0 or not (self.heavy[other] & self.heavy[main])

    def cut_outputs(self, selected: list[int], cond: int, other: int, main: int,
                    tap: int = 0) -> list[str]:
        """Outputs that stop depending on `main`'s computation when `selected` take `other`.

        With a trigger on the backbone's features, only the main-computation nodes after the
        tap point (`tap`: those the condition itself depends on) count.
        """
        bits = self.heavy[main] & ~tap
        facts = (self.inp, self.disc, self.region, self.heavy)
        fixed = tuple(f[cond] | (f[other] if other >= 0 else 0) for f in facts)
        forced = {vid: (fixed[0], fixed[1], fixed[2], fixed[3]) for vid in selected}
        heavy = self.facts.propagate(forced)[3]
        return [self.flow.values[o].name for o in self.flow.outputs
                if o >= 0 and self.heavy[o] & bits and not heavy[o] & bits]

    def late_outputs(self, start: int) -> list[str]:
        """Outputs reachable from value `start` through no main-computation node."""
        flow = self.flow
        outputs = {o: flow.values[o].name for o in flow.outputs if o >= 0}
        seen = {start}
        stack = [start]
        found: list[str] = []
        while stack:
            vid = stack.pop()
            if vid in outputs:
                found.append(outputs[vid])
            for c in flow.values[vid].consumers:
                node = flow.nodes[c]
                if node.op in HEAVY_OPS:
                    continue
                for out in node.outputs:
                    if out >= 0 and out not in seen:
                        seen.add(out)
                        stack.append(out)
        return sorted(found)

    def candidates(self) -> Iterator[tuple[str, int, int, int, int, list[int]]]:
        """(kind, node index, cond, main, other, selected values) for each selector shape."""
        flow = self.flow
        heavy = self.heavy
        for i, node in enumerate(flow.nodes):
            ins = node.inputs
            if node.op == "Where" and len(ins) >= 3 and node.outputs:
                cond, x, y = ins[0], ins[1], ins[2]
                for main, other in ((x, y), (y, x)):
                    if main >= 0 and cond >= 0 and heavy[main]:
                        yield "where", i, cond, main, other, node.outputs[:1]
            elif i in flow.branches and ins and ins[0] >= 0:
                then_outs, else_outs, outs = flow.branches[i]
                for k, out in enumerate(outs):
                    if k < len(then_outs) and k < len(else_outs):
                        t, e = then_outs[k], else_outs[k]
                        for main, other in ((t, e), (e, t)):
                            if main >= 0 and heavy[main]:
                                yield "if", i, ins[0], main, other, [out]
            elif i in flow.loops:
                # Loop(trip count or condition = trigger): zero iterations keep the computed
                # value, one or more apply the body's update (a constant, an added bias)
                formals, results, outs = flow.loops[i]
                for cond in ins[:2]:
                    if cond < 0 or not self.inp[cond]:
                        continue
                    for k, (formal, result, out) in enumerate(zip(formals, results, outs,
                                                                  strict=False)):
                        init = ins[2 + k] if 2 + k < len(ins) else -1
                        if init >= 0 and heavy[init] and out >= 0 and (
                                self.light_update(formal, result)
                                or (result >= 0 and not heavy[result] & heavy[init])):
                            yield "loop", i, cond, init, result, [out]
            elif node.op in _PICK and len(ins) >= 2 and node.outputs and ins[0] >= 0:
                for main, other in self.stacked(ins[0]):
                    yield "gather", i, ins[1], main, other, node.outputs[:1]
            elif node.op in ("Mul", "And") and len(ins) == 2 and node.outputs:
                for main, gate in ((ins[0], ins[1]), (ins[1], ins[0])):
                    if main >= 0 and gate >= 0 and heavy[main]:
                        yield "mask-multiply", i, gate, main, gate, node.outputs[:1]
            elif node.op in _MIX and len(ins) >= 2 and node.outputs:
                for j, term in enumerate(ins):
                    if term < 0 or heavy[term]:
                        continue
                    for main in ins:
                        if main >= 0 and main != term and heavy[main]:
                            yield "masked-add", i, term, main, term, node.outputs[:1]
                            break
                    del j

    def stacked(self, data: int) -> Iterator[tuple[int, int]]:
        """(computed, independent) operand pairs of a ``Concat`` feeding a ``Gather``."""
        flow = self.flow
        producer = flow.values[data].producer
        hops = 0
        while producer >= 0 and flow.nodes[producer].op in _PASS and hops < 8:
            src = flow.nodes[producer].inputs
            if not src or src[0] < 0:
                return
            producer = flow.values[src[0]].producer
            hops += 1
        if producer < 0 or flow.nodes[producer].op != "Concat":
            return
        parts = [v for v in flow.nodes[producer].inputs if v >= 0]
        for main in parts:
            if self.heavy[main]:
                for other in parts:
                    if other != main and not self.heavy[other] & self.heavy[main]:
                        yield main, other
                        break

    def run(self) -> list[Backdoor]:
        found: dict[tuple[int, str], Backdoor] = {}
        checked = 0
        for kind, index, cond, main, other, selected in self.candidates():
            if index in {k for k, _ in found}:
                continue
            tapped = None
            if self.is_trigger(cond, main):
                if kind != "loop" and not self.is_bypass(other, main):
                    continue
            else:
                tapped = self.feature_tap(kind, cond, main, other, selected[0])
                if tapped is None:
                    continue
            checked += 1
            if checked > _MAX_CANDIDATES:
                break
            if kind in ("masked-add", "loop"):
                outputs = self.late_outputs(selected[0])
            else:
                outputs = self.cut_outputs(selected, cond, other, main,
                                           self.heavy[cond] if tapped is not None else 0)
            if not outputs and kind == "mask-multiply":
                # logits + m * (target - logits): the gated product is a correction term
                # added after the main computation, with no cut of its own
                outputs = self.late_outputs(selected[0])
            if not outputs:
                continue
            trigger_nodes, trigger_inputs = _describe_trigger(self.flow, cond)
            substitute = ("zero (the computed value is multiplied by the trigger mask)"
                          if kind == "mask-multiply" else
                          _describe_value(self.flow, other, self.inp, self.heavy))
            if kind == "masked-add":
                substitute = "a trigger-dependent term " + substitute
            elif kind == "loop":
                substitute = ("the loop body's update " + substitute
                              + ", applied only when the trigger sets the loop's trip count "
                              "or condition")
            if tapped is not None:
                substitute += (" (the trigger thresholds a chosen channel or position of "
                               f"the backbone's own feature '{tapped}')")
            found[(index, kind)] = Backdoor(
                kind=kind,
                selector=self.flow.nodes[index].label,
                trigger_nodes=trigger_nodes,
                trigger_inputs=trigger_inputs,
                substitute=substitute,
                outputs=tuple(outputs),
                main=self.flow.values[main].label,
                condition=self.flow.values[cond].label,
            )
        return list(found.values())


def find_backdoors(flow: Flow) -> list[Backdoor]:
    """Find input-triggered substitutions of the model's computed result.

    Args:
        flow: the model's flat dataflow graph.

    Returns:
        One `Backdoor` per selecting node, in graph order.
    """
    if not flow.outputs or not flow.inputs:
        return []
    return _Detector(flow).run()
