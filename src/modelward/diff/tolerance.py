"""How far a converted model may drift from its source, per kind of conversion.

A float32 re-export or graph optimisation changes results only by rounding order, so the
bound is tight; a float16 cast loses ~3 decimal digits; int8 quantisation moves logits by
a few percent and may flip near-tied top-1 decisions. `Tolerance` carries the bounds and
`PROFILES` the defaults per precision, which `detect_precision` infers from a model's graph
(initializer types, quantisation operators). Every bound can be overridden by the user.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from modelward.graph.ir import Model

__all__ = ["PROFILES", "QUANT_OPS", "Tolerance", "detect_precision", "looser"]

QUANT_OPS: Final = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
    "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm", "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat", "QLinearAdd", "QLinearMul", "MatMulNBits", "QAttention",
})
_ORDER: Final = ("fp32", "fp16", "int8")


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Bounds for one comparison.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8`` (the looser of the two models).
        rtol: largest error allowed, relative to the source output's largest magnitude.
        min_top1: least fraction of *decisive* inputs (source top-2 margin above the allowed
            error) whose top-1 class must agree (classifier outputs).
        min_cosine: least per-sample cosine similarity (embedding outputs).
        weight_rtol: largest change of a matched weight, relative to its largest magnitude
            (int8: per-element bound of half a quantisation step is used instead).
    """

    precision: str
    rtol: float
    min_top1: float
    min_cosine: float
    weight_rtol: float

    def with_overrides(self, *, rtol: float | None = None, min_top1: float | None = None,
                       min_cosine: float | None = None) -> Tolerance:
        """A copy with the given bounds replaced (``None`` keeps the profile's)."""
        return dataclasses.replace(
            self, rtol=self.rtol if rtol is None else rtol,
            min_top1=self.min_top1 if min_top1 is None else min_top1,
            min_cosine=self.min_cosine if min_cosine is None else min_cosine)


PROFILES: Final[dict[str, Tolerance]] = {
    "fp32": Tolerance("fp32", rtol=1e-4, min_top1=1.0, min_cosine=0.99999, weight_rtol=1e-5),
    "fp16": Tolerance("fp16", rtol=2e-2, min_top1=1.0, min_cosine=0.999, weight_rtol=2e-3),
    "int8": Tolerance("int8", rtol=0.2, min_top1=0.85, min_cosine=0.98, weight_rtol=0.02),
}


def detect_precision(model: Model) -> str:
    """``int8`` when quantisation operators appear, ``fp16`` when most float weights are
    half precision, else ``fp32``."""
    if any(node.op_type in QUANT_OPS for _, node in model.all_nodes()):
        return "int8"
    half = full = 0
    for graph in model.all_graphs():
        for tensor in graph.initializers:
            if tensor.data_type in (10, 16):
                half += tensor.numel
            elif tensor.data_type == 1:
                full += tensor.numel
    return "fp16" if half > full else "fp32"


def looser(a: str, b: str) -> str:
    """The looser of two precisions."""
    return a if _ORDER.index(a) >= _ORDER.index(b) else b
