"""Triggers on the backbone's own features, and the legitimate gates they resemble.

Each variant of `onnx_feature_triggers` thresholds channel 1 of the CNN's second ReLU output
and substitutes constant logits; onnxruntime proves it fires on `trigger_image` and is exact
on standard-normal images, and MW-ONNX-001 must name the injected selector (before
``_Detector.feature_tap`` every one was missed: the condition shares main-computation nodes
with the result it switches). The look-alikes (early exits, reject option, thresholded
detector with NMS, objectness-gated class scores; legacy, dynamo and int8 exports) and the
int8 CNN must stay clean.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from modelward import scan_bytes
from modelward.findings import Severity

sys.path.insert(0, os.path.dirname(__file__))
import onnx_evasions2
import onnx_feature_triggers as ft
import onnx_zoo

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def cnn() -> bytes:
    return onnx_zoo.benign_models()["cnn"]


@pytest.fixture(scope="module")
def lookalikes() -> dict[str, bytes]:
    return ft.lookalikes()


_run = ft.run_image
_loud = ft.loud_findings


@pytest.mark.parametrize("variant", sorted(ft.FEATURE_VARIANTS))
@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_feature_trigger_fires_and_is_found(cnn: bytes, variant: str, int8: bool) -> None:
    build, selector = ft.FEATURE_VARIANTS[variant]
    clean = onnx_evasions2.quantized(cnn) if int8 else cnn
    model = build(clean)
    onnx.checker.check_model(onnx.load_from_string(model))
    trigger = ft.trigger_image()
    assert int(_run(model, trigger).argmax()) == onnx_zoo.TARGET
    assert int(_run(clean, trigger).argmax()) != onnx_zoo.TARGET
    rng = np.random.default_rng(11)
    for _ in range(5):
        image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        np.testing.assert_array_equal(_run(model, image), _run(clean, image))
    result = scan_bytes(model, "m.onnx", raise_internal=True)
    hits = [f for f in result.findings if f.rule.id == "MW-ONNX-001"]
    assert [f.location.node for f in hits] == [selector], [
        (f.rule.id, f.location.node, f.message) for f in result.findings]
    assert hits[0].severity is Severity.HIGH
    assert dict(hits[0].details)["outputs"] == "logits"
    assert onnx_evasions2.FEATURE in hits[0].message


def test_lookalikes_gate_on_features(lookalikes: dict[str, bytes]) -> None:
    """The look-alikes really contain the feature-derived selection they stand for."""
    assert len(lookalikes) == 10
    for name, data in lookalikes.items():
        ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
        assert "Where" in ops, name
        assert ("NonMaxSuppression" in ops) == name.startswith("detector"), name


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_lookalikes_are_clean(lookalikes: dict[str, bytes], int8: bool) -> None:
    for name, data in sorted(lookalikes.items()):
        model = onnx_evasions2.quantized(data) if int8 else data
        assert _loud(model, f"{name}.onnx") == [], name


def test_int8_cnn_is_clean(cnn: bytes) -> None:
    assert _loud(onnx_evasions2.quantized(cnn), "cnn_int8.onnx") == []
