"""Structural diff: what the converted graph has that its source does not, and vice versa.

Converters rewrite graphs legitimately (constant folding, operator fusion, layout changes,
quantise/dequantise pairs, fp16 casts), so node-by-node matching would drown a user in noise.
The diff looks for what a rewrite cannot explain:

- input-dependent switches (`modelward.graph.backdoor`) in the target with no counterpart in
  the source: the backdoor analysis run on the *difference*;
- weights that match a source weight by name (or, failing that, by shape and mostly equal
  values) but differ by more than the conversion's precision: int8 weights are dequantised
  (``X_quantized``/``X_scale``/``X_zero_point`` and ``DequantizeLinear``) and compared
  within half a quantisation step, fp16 weights within half-precision rounding;
- outputs added or removed, and comparison operators that disappeared ("removed checks").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from modelward.diff.report import (
    ADDED_CONDITIONAL,
    CHANGED_OUTPUTS,
    CHANGED_WEIGHT,
    REMOVED_CHECK,
    DiffFinding,
)
from modelward.diff.tolerance import QUANT_OPS, Tolerance
from modelward.graph.backdoor import Backdoor, find_backdoors
from modelward.graph.dataflow import flatten
from modelward.graph.ir import Model, parse_model

__all__ = ["GraphSide", "StructuralDiff", "compare_weights", "dequantized", "structural_diff"]

CHECK_OPS: Final = frozenset({
    "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "IsNaN", "IsInf", "Clip",
})
REWRITE_OPS: Final = QUANT_OPS | frozenset({
    "Cast", "CastLike", "Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten",
    "Constant", "FusedConv", "FusedGemm", "FusedMatMul", "Gemm", "MatMul", "Add", "Mul",
    "LayerNormalization", "SkipLayerNormalization", "BiasGelu", "FastGelu", "Gelu",
    "Attention", "MultiHeadAttention", "EmbedLayerNormalization", "BiasAdd",
    "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "QuickGelu",
})
_SUFFIXES: Final = ("_quantized", "_Transposed", "_fp16", "_float16", "_QuantizeLinear_Output")


@dataclass(slots=True)
class GraphSide:
    """What the diff knows about one model's graph (``model`` is None for non-ONNX)."""

    model: Model | None
    backdoors: list[Backdoor] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    outputs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StructuralDiff:
    """Findings plus a summary of the graph difference (for the report and its plot)."""

    findings: list[DiffFinding]
    new_backdoors: list[Backdoor]
    summary: dict[str, Any]


def graph_side(data: bytes | None) -> GraphSide:
    """Parse ONNX bytes (None for a non-ONNX model) into a `GraphSide`."""
    if data is None:
        return GraphSide(None)
    model = parse_model(data)
    flow = flatten(model)
    ops = Counter(node.op_type for _, node in model.all_nodes())
    outputs = [vi.name for vi in model.graph.outputs] if model.graph else []
    return GraphSide(model, find_backdoors(flow), ops, outputs)


def _signature(b: Backdoor) -> tuple[str, frozenset[str]]:
    """What identifies a switch across conversions: its kind and the ops/constants it uses."""
    parts = frozenset(t.split(" (", 1)[1] if " (" in t else t for t in b.trigger_nodes)
    return b.kind, parts


def dequantized(model: Any) -> dict[str, tuple[np.ndarray, np.ndarray | float]]:
    """Target weights as float32 with their per-element rounding bound, by source-side name.

    `model` is an ``onnx.ModelProto``: quantised initializers are dequantised (bound: half a
    step), fp16 ones widened (bound: half-precision rounding), others kept (bound 0).
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def arr(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    out: dict[str, tuple[np.ndarray, np.ndarray | float]] = {}
    dq_inputs: dict[str, tuple[str, str, int]] = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) >= 2 and node.input[0] in inits:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            zp = node.input[2] if len(node.input) > 2 else ""
            dq_inputs[node.input[0]] = (node.input[1], zp, axis)
    for name, tensor in inits.items():
        base = name
        for suffix in _SUFFIXES:
            base = base.removesuffix(suffix)
        qbase = name.removesuffix("_quantized")
        if tensor.data_type in (2, 3) and (name in dq_inputs or f"{qbase}_scale" in inits):
            scale_name, zp_name, axis = dq_inputs.get(
                name, (f"{qbase}_scale", f"{qbase}_zero_point", -1))
            if scale_name not in inits:
                continue
            q = arr(name).astype(np.float32)
            scale = arr(scale_name).astype(np.float32)
            zp = arr(zp_name).astype(np.float32) if zp_name in inits else np.float32(0)
            if scale.ndim == 1 and scale.size > 1 and q.ndim > 0:
                ax = axis if axis >= 0 and q.shape[axis] == scale.size else next(
                    (i for i, d in enumerate(q.shape) if d == scale.size), 0)
                shape = [1] * q.ndim
                shape[ax] = scale.size
                scale = scale.reshape(shape)
                zp = zp.reshape(shape) if np.ndim(zp) == 1 else zp
            value = (q - zp) * scale
            bound = np.broadcast_to(np.abs(scale) * 0.501 + 1e-7, value.shape)
            if "_Transposed" in name and value.ndim == 2:  # ORT stored Gemm's B transposed
                value, bound = value.T, bound.T
            out[base] = (value, bound)
        elif tensor.data_type in (10, 16):
            w = arr(name).astype(np.float32)
            out[base] = (w, np.abs(w) * 2.0 ** -10 + 6.2e-8)
        elif tensor.data_type == 1 and base not in out:
            out[base] = (arr(name), 0.0)
    return out


def _compare(src: np.ndarray, tgt: np.ndarray, bound: np.ndarray | float,
             tol: Tolerance) -> tuple[bool, float, int]:
    """(within precision, max abs difference, count of elements out of bound)."""
    if src.shape != tgt.shape:
        if src.size == tgt.size and src.ndim == 2 and tgt.shape == src.shape[::-1]:
            tgt = tgt.T
            bound = bound.T if isinstance(bound, np.ndarray) else bound
        else:
            return False, float("inf"), int(src.size)
    diff = np.abs(src.astype(np.float64) - tgt.astype(np.float64))
    scale = float(np.abs(src).max()) if src.size else 0.0
    allowed = np.maximum(bound, tol.weight_rtol * scale) + 1e-7 * max(scale, 1.0)
    bad = int((diff > allowed).sum())
    return bad == 0, float(diff.max()) if diff.size else 0.0, bad


def compare_weights(source: dict[str, np.ndarray],
                    target: dict[str, tuple[np.ndarray, np.ndarray | float]],
                    tol: Tolerance, consumers: dict[str, list[str]] | None = None) -> tuple[
                        list[DiffFinding], dict[str, int]]:
    """Findings for changed weights and counts (matched, changed, unmatched)."""
    consumers = consumers or {}
    findings: list[DiffFinding] = []
    matched = changed = 0
    used: set[str] = set()
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, w in source.items():
        by_shape.setdefault(tuple(w.shape), []).append(name)
    for name, (w, bound) in sorted(target.items()):
        candidates = [name] if name in source else [
            n for n in by_shape.get(tuple(w.shape), []) if n not in used]
        for cand in candidates:
            ok, worst, bad = _compare(source[cand], w, bound, tol)
            by_name = cand == name
            if ok:
                matched += 1
                used.add(cand)
                break
            mostly = np.isfinite(worst) and bad <= max(1, source[cand].size // 10)
            if by_name or mostly:
                matched += 1
                changed += 1
                used.add(cand)
                nodes = consumers.get(name) or consumers.get(f"{name}_quantized") or []
                findings.append(DiffFinding(
                    CHANGED_WEIGHT, CHANGED_WEIGHT.severity,
                    f"weight '{name}' differs from source '{cand}' in {bad} of "
                    f"{source[cand].size} elements (max |change| {worst:.4g}) beyond "
                    f"{tol.precision} precision",
                    node=nodes[0] if nodes else name,
                    evidence=f"used by {', '.join(nodes[:5]) or '?'}; max change {worst:.4g}"))
                break
    return findings, {"weights_matched": matched, "weights_changed": changed,
                      "weights_unmatched": len(target) - matched}


def _consumers(model: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node.name or f"{node.op_type}->{node.output[0]}")
    return found


def structural_diff(source: GraphSide, target: GraphSide, source_weights: dict[str, np.ndarray],
                    target_proto: Any, tol: Tolerance,
                    source_outputs: list[str] | None = None) -> StructuralDiff:
    """Compare two graphs (see the module docstring).

    Args:
        source: the source's graph side (``model`` None when it is not ONNX).
        target: the target's graph side (ONNX).
        source_weights: the source's float weights by name.
        target_proto: the target as ``onnx.ModelProto`` (for weight values), or None.
        tol: precision-dependent bounds.
        source_outputs: output names of a non-ONNX source (count compared only).
    """
    findings: list[DiffFinding] = []
    known = {_signature(b) for b in source.backdoors}
    new = [b for b in target.backdoors if _signature(b) not in known]
    for b in new:
        findings.append(DiffFinding(
            ADDED_CONDITIONAL, ADDED_CONDITIONAL.severity,
            f"target adds a {b.kind} switch at '{b.selector}': when the trigger holds, "
            f"outputs {', '.join(b.outputs)} get {b.substitute} instead of '{b.main}'",
            node=b.selector, evidence="trigger: " + " -> ".join(b.trigger_nodes)))
    summary: dict[str, Any] = {
        "source_ops": dict(source.ops), "target_ops": dict(target.ops),
        "new_switches": [b.selector for b in new],
        "switches_in_both": [b.selector for b in target.backdoors if b not in new],
    }
    if source.model is not None:
        added = sorted(set(target.outputs) - set(source.outputs))
        removed = sorted(set(source.outputs) - set(target.outputs))
        removed_checks = sorted(op for op in CHECK_OPS if source.ops[op] > target.ops[op])
        summary["unexplained_new_ops"] = sorted(
            op for op in target.ops if op not in source.ops and op not in REWRITE_OPS)
    else:
        n_src = len(source_outputs or [])
        added = target.outputs[n_src:] if n_src and len(target.outputs) > n_src else []
        removed = [f"#{i}" for i in range(len(target.outputs), n_src)]
        removed_checks = []
    if added or removed:
        findings.append(DiffFinding(
            CHANGED_OUTPUTS, CHANGED_OUTPUTS.severity,
            f"outputs added: {added or 'none'}; removed: {removed or 'none'}",
            node=(added or removed)[0]))
    for op in removed_checks:
        findings.append(DiffFinding(
            REMOVED_CHECK, REMOVED_CHECK.severity,
            f"{op}: {source.ops[op]} in the source, {target.ops[op]} in the target", node=op))
    if target_proto is not None and source_weights:
        weight_findings, counts = compare_weights(
            source_weights, dequantized(target_proto), tol, _consumers(target_proto))
        findings += weight_findings
        summary.update(counts)
    return StructuralDiff(findings, new, summary)
