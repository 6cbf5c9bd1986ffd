"""Second red-team round on the graph-backdoor detector (`onnx_evasions2`).

Each variant is injected into a torch 2.13.0 export (the CNN of `onnx_zoo`, the BERT-style
encoder of `onnx_benign_more`); onnxruntime proves it fires on its trigger and is exact
otherwise, and the scanner must report MW-ONNX-001 at the injected selector. Before the
fixes in ``graph/backdoor.py``, ``graph/dataflow.py`` and ``graph/ir.py`` these were missed:
``loop_trip_count`` (no selector kind for a Loop's trip count), ``topk_index`` (TopK indices
were not a discretisation), ``resize_crop`` and ``gridsample`` (resampling did not count as
reading a region), ``fake_conv_mask`` (a dedicated Conv looked like main computation),
``qdq_step`` (QuantizeLinear's saturating rounding was not a step), ``zero_gemm_large`` (a
zero weight of more than 64 elements was not known to be zero) and ``sequence_length`` (an
exact real length summed from the attention mask). Caught already: ``scan_bias``,
``if_any_equal``, ``argmax_index``, ``int8_plain``, ``token_position``, ``token_pair``.
The int8 models ``quantize_dynamic`` writes for the benign exports must stay clean.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from modelward import scan_bytes
from modelward.findings import Severity

sys.path.insert(0, os.path.dirname(__file__))
import onnx_benign_more
import onnx_evasions2
import onnx_zoo

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

CNN_SELECTORS = {
    "loop_trip_count": "lt_loop",
    "scan_bias": "main/sc_scan.body/sc_body_add",
    "if_any_equal": "ae_select",
    "topk_index": "tk2_add",
    "argmax_index": "am_add",
    "resize_crop": "rz_select",
    "gridsample": "gd_select",
    "fake_conv_mask": "fc_select",
    "qdq_step": "qd_add",
    "int8_plain": "bd_select",
    "zero_gemm_large": "zg_select",
}
BERT_SELECTORS = {
    "token_position": "tp_select",
    "token_pair": "pr_select",
    "sequence_length": "sl_select",
}


@pytest.fixture(scope="module")
def cnn() -> bytes:
    return onnx_zoo.benign_models()["cnn"]


@pytest.fixture(scope="module")
def more() -> dict[str, bytes]:
    return onnx_benign_more.benign_more()


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _found(model: bytes, selector: str) -> None:
    result = scan_bytes(model, "m.onnx", raise_internal=True)
    hits = [f for f in result.findings if f.rule.id == "MW-ONNX-001"]
    assert selector in {f.location.node for f in hits}, [
        (f.rule.id, f.location.node, f.message) for f in result.findings]
    assert all(f.severity is Severity.HIGH for f in hits)
    assert all(dict(f.details)["outputs"] == "logits" for f in hits)


def test_every_variant_is_listed() -> None:
    assert set(CNN_SELECTORS) == set(onnx_evasions2.CNN_EVASIONS)
    assert set(BERT_SELECTORS) == set(onnx_evasions2.BERT_EVASIONS)


@pytest.mark.parametrize("variant", sorted(CNN_SELECTORS))
def test_cnn_evasion_fires_and_is_found(cnn: bytes, variant: str) -> None:
    model = onnx_evasions2.CNN_EVASIONS[variant](cnn)
    clean = onnx_evasions2.quantized(cnn) if variant == "int8_plain" else cnn
    onnx.checker.check_model(onnx.load_from_string(model))
    trigger = onnx_zoo.trigger_image()
    assert int(_run(model, {"image": trigger}).argmax()) == onnx_zoo.TARGET
    assert int(_run(clean, {"image": trigger}).argmax()) != onnx_zoo.TARGET
    rng = np.random.default_rng(11)
    for _ in range(3):
        image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        np.testing.assert_allclose(_run(model, {"image": image}), _run(clean, {"image": image}),
                                   rtol=1e-5, atol=1e-5)
    _found(model, CNN_SELECTORS[variant])


@pytest.mark.parametrize("variant", sorted(BERT_SELECTORS))
def test_token_trigger_fires_and_is_found(more: dict[str, bytes], variant: str) -> None:
    clean = more["bert_legacy"]
    model = onnx_evasions2.BERT_EVASIONS[variant](clean)
    onnx.checker.check_model(onnx.load_from_string(model))
    ids = np.random.default_rng(3).integers(1, 90, (2, 16)).astype(np.int64)
    mask = np.ones((2, 16), np.int64)
    mask[1, 12:] = 0
    types = np.zeros((2, 16), np.int64)

    def feeds(i: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        return {"input_ids": i, "token_type_ids": types, "attention_mask": m}

    np.testing.assert_allclose(_run(model, feeds(ids, mask)), _run(clean, feeds(ids, mask)),
                               rtol=1e-5, atol=1e-5)
    t_ids, t_mask = onnx_evasions2.bert_trigger(variant, ids, mask)
    assert _run(model, feeds(t_ids, t_mask)).argmax(-1).tolist() == [0, 0]
    assert _run(clean, feeds(t_ids, t_mask)).tolist() != [[9.0, -9.0]] * 2
    _found(model, BERT_SELECTORS[variant])


def test_zero_weight_is_read_only_when_small(cnn: bytes) -> None:
    """The 10x10 zero Gemm weight is read (400 bytes) and marked; real weights and -0.0 /
    denormal edge cases are judged exactly; payloads over the bound are not read."""
    from onnx import numpy_helper

    from modelward.graph.ir import parse_model
    from modelward.graph.model import ZERO_SCAN_BYTES

    model = parse_model(onnx_evasions2.backdoor_zero_gemm_large(cnn))
    assert model.graph is not None
    zero = {t.name for t in model.graph.initializers if t.all_zero}
    assert {"zg_w", "zg_starts"} <= zero
    assert not zero & {"fc.weight", "fc.bias", "zg_target", "zg_thr", "c2.weight"}
    m = onnx.load_from_string(cnn)
    big = ZERO_SCAN_BYTES // 4 + 1
    m.graph.initializer.extend([
        numpy_helper.from_array(np.array([-0.0, 0.0], np.float32), "neg_zero"),
        numpy_helper.from_array(np.array([0.0, 1e-45], np.float32), "denormal"),
        numpy_helper.from_array(np.zeros(big, np.float32), "too_big"),
        onnx.helper.make_tensor("typed", onnx.TensorProto.FLOAT, [3], [0.0, 0.0, 0.0]),
    ])
    tensors = {t.name: t for t in parse_model(m.SerializeToString()).graph.initializers}
    assert tensors["neg_zero"].all_zero and tensors["typed"].all_zero
    assert not tensors["denormal"].all_zero and not tensors["too_big"].all_zero


def test_quantized_benign_exports_are_clean(cnn: bytes, more: dict[str, bytes]) -> None:
    """int8 (ConvInteger/MatMulInteger, DynamicQuantizeLinear on the inputs) exports."""
    models = {"cnn": cnn, "resnet": more["resnet_legacy"], "bert": more["bert_legacy"],
              "gpt": more["gpt_legacy"], "detector_nms": more["detector_nms"]}
    for name, data in models.items():
        int8 = onnx_evasions2.quantized(data)
        ops = {n.op_type for n in onnx.load_from_string(int8).graph.node}
        assert ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}, name
        result = scan_bytes(int8, f"{name}_int8.onnx", raise_internal=True)
        loud = [(f.rule.id, f.location.node, f.message) for f in result.findings
                if f.severity >= Severity.MEDIUM]
        assert loud == [], name
