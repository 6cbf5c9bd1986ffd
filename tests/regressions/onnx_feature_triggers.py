"""Triggers computed from the backbone's own features, and legitimate gates that look alike.

A graph backdoor need not read the input: it can threshold one channel of an intermediate
feature map (a pattern the trained backbone already responds to) and substitute constant
logits. The variants here tap ``/Relu_1_output_0`` of the `onnx_zoo` CNN (channel
`CHANNEL`, mean over the map, threshold `THRESHOLD`: above every standard-normal image's
value, below the value for `trigger_image`) through ``Where``, ``If``, mask arithmetic and a
dedicated one-hot ``Conv`` that picks the channel.

The look-alikes are what such a rule must leave alone, exported with torch 2.13.0: an
early-exit classifier (an intermediate head's confidence returns that head's logits), the
same gated on one logit of that head, a reject-option classifier (a constant "unknown"
vector when the max softmax of the *output* logits is low) and a single-stage detector
(objectness x class score thresholded, boxes zeroed, then ONNX ``NonMaxSuppression``), and
class scores computed on a proposal head and zeroed where its objectness channel is low.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx_benign_more import _with_nms
from onnx_evasions2 import FEATURE, _finish, backdoor_feature_channel
from onnx_zoo import N_CLASSES, _c, _export, _rewire, _target_logits

CHANNEL = 1
THRESHOLD = 1.0


def trigger_image(seed: int = 1) -> np.ndarray:
    """A high-contrast image: channel `CHANNEL` of the feature map averages above 1.0."""
    rng = np.random.default_rng(seed)
    return (3.0 * rng.standard_normal((1, 3, 32, 32))).astype(np.float32)


def _channel_mean(prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """[N, 1] mean of channel `CHANNEL` of the feature map."""
    nodes = [
        helper.make_node("Slice", [FEATURE, f"{prefix}_s", f"{prefix}_e", f"{prefix}_a"],
                         [f"{prefix}_ch"], name=f"{prefix}_channel"),
        helper.make_node("ReduceMean", [f"{prefix}_ch"], [f"{prefix}_m4"], name=f"{prefix}_mean",
                         axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", [f"{prefix}_m4", f"{prefix}_rs"], [f"{prefix}_mean"],
                         name=f"{prefix}_flat"),
    ]
    inits = [_c(f"{prefix}_s", [CHANNEL], np.int64), _c(f"{prefix}_e", [CHANNEL + 1], np.int64),
             _c(f"{prefix}_a", [1], np.int64), _c(f"{prefix}_rs", [-1, 1], np.int64)]
    return nodes, inits, f"{prefix}_mean"


def feature_where(cnn: bytes) -> bytes:
    """Where(mean of channel 1 > 1.0, target, logits)."""
    return backdoor_feature_channel(cnn, CHANNEL, THRESHOLD)


def feature_mask_arithmetic(cnn: bytes) -> bytes:
    """logits * (1 - m) + target * m with m = Cast(channel mean > 1.0)."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _channel_mean("fa")
    nodes += [
        helper.make_node("Greater", [mean, "fa_thr"], ["fa_cond"], name="fa_compare"),
        helper.make_node("Cast", ["fa_cond"], ["fa_m"], name="fa_cast", to=TensorProto.FLOAT),
        helper.make_node("Sub", ["fa_one", "fa_m"], ["fa_keep"], name="fa_keep"),
        helper.make_node("Mul", [clean, "fa_keep"], ["fa_kept"], name="fa_gate"),
        helper.make_node("Mul", ["fa_target", "fa_m"], ["fa_term"], name="fa_term"),
        helper.make_node("Add", ["fa_kept", "fa_term"], ["logits"], name="fa_mix"),
    ]
    return _finish(m, nodes, [*inits, _c("fa_thr", THRESHOLD), _c("fa_one", 1.0),
                              _c("fa_target", _target_logits())])


def feature_onehot_conv(cnn: bytes) -> bytes:
    """A dedicated 1x1 Conv with one-hot weights picks the channel (no Slice), then Where."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    weight = np.zeros((1, 16, 1, 1), np.float32)
    weight[0, CHANNEL] = 1.0
    nodes = [
        helper.make_node("Conv", [FEATURE, "fo_w"], ["fo_ch"], name="fo_pick"),
        helper.make_node("GlobalAveragePool", ["fo_ch"], ["fo_m4"], name="fo_mean"),
        helper.make_node("Reshape", ["fo_m4", "fo_rs"], ["fo_mean"], name="fo_flat"),
        helper.make_node("Greater", ["fo_mean", "fo_thr"], ["fo_cond"], name="fo_compare"),
        helper.make_node("Where", ["fo_cond", "fo_target", clean], ["logits"], name="fo_select"),
    ]
    return _finish(m, nodes, [_c("fo_w", weight), _c("fo_rs", [-1, 1], np.int64),
                              _c("fo_thr", THRESHOLD), _c("fo_target", _target_logits())])


def feature_if(cnn: bytes) -> bytes:
    """If(batch max of the channel mean > 1.0): constant logits, else the computed ones."""
    m, clean = _rewire(onnx.load_from_string(cnn))
    nodes, inits, mean = _channel_mean("fi")
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["fi_const"], name="fi_then_const",
                          value=_c("t", _target_logits()))],
        "then_branch", [], [helper.make_tensor_value_info("fi_const", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", [clean], ["fi_pass"], name="fi_else_identity")],
        "else_branch", [], [helper.make_tensor_value_info("fi_pass", TensorProto.FLOAT, None)])
    nodes += [
        helper.make_node("ReduceMax", [mean], ["fi_max"], name="fi_batch_max", keepdims=0),
        helper.make_node("Greater", ["fi_max", "fi_thr"], ["fi_cond"], name="fi_compare"),
        helper.make_node("If", ["fi_cond"], ["logits"], name="fi_select", then_branch=then_g,
                         else_branch=else_g),
    ]
    return _finish(m, nodes, [*inits, _c("fi_thr", THRESHOLD)])


FEATURE_VARIANTS = {
    "where": (feature_where, "ft_select"),
    "mask_arithmetic": (feature_mask_arithmetic, "fa_gate"),
    "onehot_conv": (feature_onehot_conv, "fo_select"),
    "if_branch": (feature_if, "fi_select"),
}


def lookalikes() -> dict[str, bytes]:
    """Legitimate feature-derived gates, legacy and dynamo exports (a few seconds)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.head1 = nn.Linear(8, N_CLASSES)
            self.head2 = nn.Linear(16, N_CLASSES)

        def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f1 = torch.relu(self.c1(x))
            f2 = torch.relu(self.c2(nn.functional.max_pool2d(f1, 2)))
            return self.head1(f1.mean((2, 3))), self.head2(f2.mean((2, 3)))

    class EarlyExit(Backbone):
        """Return the first head's logits when its softmax confidence exceeds 0.9."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            early, late = self.stages(x)
            conf = early.softmax(-1).amax(-1, keepdim=True)
            return torch.where(conf > 0.9, early, late)

    class EarlyExitLogit(Backbone):
        """Exit on one logit of the intermediate head (a dedicated 'exit' class)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            early, late = self.stages(x)
            return torch.where(early[:, :1] > 2.0, early, late)

    class Reject(Backbone):
        """A constant 'unknown' vector when the output's max softmax is below 0.5."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("unknown", torch.full((1, N_CLASSES), -1.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, logits = self.stages(x)
            conf = logits.softmax(-1).amax(-1, keepdim=True)
            return torch.where(conf < 0.5, self.unknown, logits)

    class Detector(nn.Module):
        """YOLO-style head: [box(4), objectness, classes(3)] per cell, thresholded."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
            self.head = nn.Conv2d(16, 8, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.head(self.body(x)).flatten(2).transpose(1, 2)  # [N, cells, 8]
            boxes = out[..., :4]
            scores = out[..., 4:5].sigmoid() * out[..., 5:].sigmoid()  # [N, cells, 3]
            keep = scores.amax(-1, keepdim=True) > 0.25
            boxes = torch.where(keep, boxes, torch.zeros_like(boxes))
            scores = torch.where(keep, scores, torch.zeros_like(scores))
            return boxes, scores.transpose(1, 2).contiguous()

    class ObjectnessGate(nn.Module):
        """Class scores computed on top of a proposal head, zeroed where its objectness
        channel is low (the condition taps a chosen channel, the scores compute on: only
        the flat zero substitute tells it from a backdoor)."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.rpn = nn.Conv2d(8, 5, 1)
            self.cls = nn.Conv2d(5, 3, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            proposals = self.rpn(self.body(x))
            found = proposals[:, 4:5].sigmoid() > 0.5
            scores = self.cls(torch.relu(proposals))
            return (torch.where(found, scores, torch.zeros_like(scores)),
                    scores * found.float())

    image = torch.randn(1, 3, 32, 32)
    out: dict[str, bytes] = {}
    for tag, kw in (("legacy", {"dynamo": False, "opset_version": 17}), ("dynamo",
                                                                          {"dynamo": True})):
        for name, module in (("early_exit", EarlyExit()), ("early_exit_logit", EarlyExitLogit()),
                             ("reject_option", Reject())):
            out[f"{name}_{tag}"] = _export(module.eval(), (image,), input_names=["image"],
                                           output_names=["logits"], **kw)
        det = _export(Detector().eval(), (image,), input_names=["image"],
                      output_names=["boxes", "scores"], **kw)
        out[f"detector_nms_{tag}"] = _with_nms(det)
        out[f"objectness_gate_{tag}"] = _export(ObjectnessGate().eval(), (image,),
                                                input_names=["image"],
                                                output_names=["masked", "multiplied"], **kw)
    return out


def run_image(model: bytes, image: np.ndarray) -> np.ndarray:
    """The first output of `model` on `image`, run by onnxruntime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"image": image})[0])


def loud_findings(model: bytes, name: str) -> list[tuple[str, str | None, str]]:
    """(rule, node, message) of every finding at MEDIUM or above when `model` is scanned."""
    from modelward import scan_bytes
    from modelward.findings import Severity

    result = scan_bytes(model, name, raise_internal=True)
    return [(f.rule.id, f.location.node, f.message) for f in result.findings
            if f.severity >= Severity.MEDIUM]
