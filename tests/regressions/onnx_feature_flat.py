"""Feature-tap triggers with a *flat* substitute or a whole-map threshold, and their look-alikes.

`onnx_feature_triggers` covers a thresholded chosen channel of the CNN's second ReLU output
selecting a non-flat constant. The gaps it left:

- a flat substitute (every logit zero, or all equal; ``logits * (1 - m)`` with no term added
  back): the scores tie and ``ArgMax`` falls to class 0, a targeted attack when the
  attacker's class is 0;
- a threshold on the whole feature map's mean rather than a chosen channel.

To show a flat substitute really *changes* the answer, the CNN is first rebalanced
(`rebalanced`: its class-0 bias lowered by 1, so no image of the tests is class 0 to begin
with). Standard-normal images average about 0.17 over the whole feature map and 0.52 over
channel 1; `onnx_feature_triggers.trigger_image` gives about 0.48 and 1.33.

The look-alikes, exported with torch 2.13.0, stand for the legitimate patterns such rules must
leave alone: a blank-input guard (zero logits when the whole map's mean is near zero), an
out-of-distribution guard (a flat "unknown" row when the whole map's norm is low), and a
detector whose class scores are zeroed when *no* cell's objectness channel is high (a chosen
channel, summarised over the image, flat substitute, but the scores stay a per-cell map).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_evasions2 import FEATURE, _finish
from onnx_feature_triggers import THRESHOLD, _channel_mean
from onnx_zoo import N_CLASSES, _c, _export, _rewire, _target_logits

WHOLE_THRESHOLD = 0.3  # whole-map mean: ~0.17 on standard-normal images, ~0.48 on the trigger


def rebalanced(cnn: bytes) -> bytes:
    """The CNN with its class-0 bias lowered by 1 (argmax is never 0 on the test images)."""
    m = onnx.load_from_string(cnn)
    for i, init in enumerate(m.graph.initializer):
        if init.name == "fc.bias":
            bias = numpy_helper.to_array(init).copy()
            bias[0] -= 1.0
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(bias, init.name))
    return m.SerializeToString()


def _select(prefix: str, mean: str, clean: str, substitute: str) -> list[onnx.NodeProto]:
    return [
        helper.make_node("Greater", [mean, f"{prefix}_thr"], [f"{prefix}_cond"],
                         name=f"{prefix}_compare"),
        helper.make_node("Where", [f"{prefix}_cond", substitute, clean], ["logits"],
                         name=f"{prefix}_select"),
    ]


def flat_zero(cnn: bytes) -> bytes:
    """Where(mean of channel 1 > 1.0, zeros, logits): every logit 0, argmax -> class 0."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _channel_mean("fz")
    nodes += _select("fz", mean, clean, "fz_zero")
    return _finish(m, nodes, [*inits, _c("fz_thr", THRESHOLD),
                              _c("fz_zero", np.zeros((1, N_CLASSES)))])


def flat_equal(cnn: bytes) -> bytes:
    """Where(channel mean > 1.0, ConstantOfShape(Shape(logits), -3), logits): all equal."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _channel_mean("fe")
    nodes += [
        helper.make_node("Shape", [clean], ["fe_shape"], name="fe_shape"),
        helper.make_node("ConstantOfShape", ["fe_shape"], ["fe_flat"], name="fe_fill",
                         value=numpy_helper.from_array(np.array([-3.0], np.float32))),
        *_select("fe", mean, clean, "fe_flat"),
    ]
    return _finish(m, nodes, [*inits, _c("fe_thr", THRESHOLD)])


def mask_only(cnn: bytes) -> bytes:
    """logits * (1 - Cast(channel mean > 1.0)): the logits are zeroed on trigger."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _channel_mean("fm")
    nodes += [
        helper.make_node("Greater", [mean, "fm_thr"], ["fm_cond"], name="fm_compare"),
        helper.make_node("Cast", ["fm_cond"], ["fm_m"], name="fm_cast", to=TensorProto.FLOAT),
        helper.make_node("Sub", ["fm_one", "fm_m"], ["fm_keep"], name="fm_keep"),
        helper.make_node("Mul", [clean, "fm_keep"], ["logits"], name="fm_gate"),
    ]
    return _finish(m, nodes, [*inits, _c("fm_thr", THRESHOLD), _c("fm_one", 1.0)])


def whole_map(cnn: bytes) -> bytes:
    """Where(mean of the whole feature map > 0.3, target, logits): no chosen channel."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes = [
        helper.make_node("ReduceMean", [FEATURE], ["fw_m4"], name="fw_mean", axes=[1, 2, 3],
                         keepdims=1),
        helper.make_node("Reshape", ["fw_m4", "fw_rs"], ["fw_mean"], name="fw_flat"),
        *_select("fw", "fw_mean", clean, "fw_target"),
    ]
    return _finish(m, nodes, [_c("fw_rs", [-1, 1], np.int64), _c("fw_thr", WHOLE_THRESHOLD),
                              _c("fw_target", _target_logits())])


def whole_map_flat(cnn: bytes) -> bytes:
    """Where(whole-map mean > 0.3, zeros, logits): a blank-input guard's very shape."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes = [
        helper.make_node("ReduceMean", [FEATURE], ["fwz_m4"], name="fwz_mean", axes=[1, 2, 3],
                         keepdims=1),
        helper.make_node("Reshape", ["fwz_m4", "fwz_rs"], ["fwz_mean"], name="fwz_flat"),
        *_select("fwz", "fwz_mean", clean, "fwz_zero"),
    ]
    return _finish(m, nodes, [_c("fwz_rs", [-1, 1], np.int64), _c("fwz_thr", WHOLE_THRESHOLD),
                              _c("fwz_zero", np.zeros((1, N_CLASSES)))])


# name -> (builder, selector reported, class the trigger image gets)
FOUND = {
    "flat_zero": (flat_zero, "fz_select", 0),
    "flat_equal": (flat_equal, "fe_select", 0),
    "mask_only": (mask_only, "fm_gate", 0),
    "whole_map": (whole_map, "fw_select", 7),
}
# Fires like the others, indistinguishable from a blank-input guard: not reported.
MISSED = {"whole_map_flat": (whole_map_flat, "", 0)}


def lookalikes() -> dict[str, bytes]:
    """Legitimate flat gates on features, legacy and dynamo exports (a few seconds)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.fc = nn.Linear(16, N_CLASSES)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.c2(nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)))

    class BlankGuard(Backbone):
        """Zero logits when the feature map's mean is near zero (a blank image)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            logits = self.fc(f.mean((2, 3)))
            blank = f.mean((1, 2, 3)).unsqueeze(-1) < 1e-3
            return torch.where(blank, torch.zeros_like(logits), logits)

    class NormGuard(Backbone):
        """A flat 'unknown' row when the feature map's norm is low (out of distribution)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            logits = self.fc(f.mean((2, 3)))
            ood = f.flatten(1).norm(dim=1, keepdim=True) < 5.0
            return torch.where(ood, torch.full_like(logits, -1.0), logits)

    class ImageObjectness(nn.Module):
        """Per-cell class scores computed on a proposal head, all zeroed when no cell's
        objectness channel (chosen, summarised over the image) is high."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.rpn = nn.Conv2d(8, 5, 1)
            self.cls = nn.Conv2d(5, 3, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            proposals = self.rpn(self.body(x))
            anything = proposals[:, 4:5].sigmoid().amax((2, 3), keepdim=True) > 0.5
            scores = self.cls(torch.relu(proposals))
            return (torch.where(anything, scores, torch.zeros_like(scores)),
                    scores * anything.float())

    image = torch.randn(1, 3, 32, 32)
    out: dict[str, bytes] = {}
    for tag, kw in (("legacy", {"dynamo": False, "opset_version": 17}), ("dynamo",
                                                                          {"dynamo": True})):
        for name, module, outputs in (
                ("blank_guard", BlankGuard(), ["logits"]), ("norm_guard", NormGuard(), ["logits"]),
                ("image_objectness", ImageObjectness(), ["masked", "multiplied"])):
            out[f"{name}_{tag}"] = _export(module.eval(), (image,), input_names=["image"],
                                           output_names=outputs, **kw)
    return out
