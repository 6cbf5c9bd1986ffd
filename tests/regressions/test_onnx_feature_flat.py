"""Feature-tap triggers with a flat substitute or a whole-map threshold (`onnx_feature_flat`).

onnxruntime proves each variant fires on `onnx_feature_triggers.trigger_image` (the argmax
moves to the attacker's class: 0 for the flat ones, 7 for the whole-map target) and is exact
on standard-normal images, on the rebalanced CNN in fp32 and int8. Before this change every
one was missed (`_Detector.feature_tap` accepted only non-flat constants on a chosen part).
The whole-map flat variant is a blank-input guard's exact shape and stays unreported; the
look-alikes (blank guard, feature-norm OOD guard, image-level objectness gate) stay clean.
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
import onnx_feature_flat as ff
import onnx_feature_triggers as ft
import onnx_zoo

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def clean_models() -> dict[str, bytes]:
    cnn = ff.rebalanced(onnx_zoo.benign_models()["cnn"])
    return {"fp32": cnn, "int8": onnx_evasions2.quantized(cnn)}


@pytest.fixture(scope="module")
def lookalikes() -> dict[str, bytes]:
    return ff.lookalikes()


_run = ft.run_image
_loud = ft.loud_findings


def _check_fires(clean: bytes, model: bytes, target: int) -> None:
    onnx.checker.check_model(onnx.load_from_string(model))
    for seed in (1, 2):
        trigger = ft.trigger_image(seed)
        assert int(_run(model, trigger).argmax()) == target
        assert int(_run(clean, trigger).argmax()) != target
    rng = np.random.default_rng(11)
    for _ in range(5):
        image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        assert int(_run(clean, image).argmax()) != 0
        np.testing.assert_array_equal(_run(model, image), _run(clean, image))


@pytest.mark.parametrize("variant", sorted(ff.FOUND))
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_flat_or_whole_map_trigger_fires_and_is_found(clean_models: dict[str, bytes],
                                                      variant: str, precision: str) -> None:
    build, selector, target = ff.FOUND[variant]
    clean = clean_models[precision]
    model = build(clean)
    _check_fires(clean, model, target)
    result = scan_bytes(model, "m.onnx", raise_internal=True)
    hits = [f for f in result.findings if f.rule.id == "MW-ONNX-001"]
    assert [f.location.node for f in hits] == [selector], [
        (f.rule.id, f.location.node, f.message) for f in result.findings]
    assert hits[0].severity is Severity.HIGH
    assert dict(hits[0].details)["outputs"] == "logits"
    assert onnx_evasions2.FEATURE in hits[0].message


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_whole_map_flat_fires_but_is_a_known_gap(clean_models: dict[str, bytes],
                                                 precision: str) -> None:
    """Documented gap: the blank-input guard's shape with an attacker's threshold."""
    build, _, target = ff.MISSED["whole_map_flat"]
    clean = clean_models[precision]
    model = build(clean)
    _check_fires(clean, model, target)
    assert _loud(model, "m.onnx") == []


def test_lookalikes_gate_on_features(lookalikes: dict[str, bytes]) -> None:
    """The look-alikes really select a flat value on a feature-derived condition."""
    assert len(lookalikes) == 6
    for name, data in lookalikes.items():
        graph = onnx.load_from_string(data).graph
        ops = {n.op_type for n in graph.node}
        assert "Where" in ops, name
        assert ops & {"ReduceMean", "ReduceMax", "ReduceL2", "ReduceSumSquare"}, name


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_flat_lookalikes_are_clean(lookalikes: dict[str, bytes], int8: bool) -> None:
    for name, data in sorted(lookalikes.items()):
        model = onnx_evasions2.quantized(data) if int8 else data
        assert _loud(model, f"{name}.onnx") == [], name


def test_rebalanced_cnn_is_clean(clean_models: dict[str, bytes]) -> None:
    for precision, model in clean_models.items():
        assert _loud(model, f"cnn_{precision}.onnx") == [], precision
