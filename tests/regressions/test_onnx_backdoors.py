"""Graph backdoors (HiddenLayer ShadowLogic, JFrog ONNX backdoors) on real torch exports.

Each variant is injected into a classifier exported by torch 2.13.0; onnxruntime proves it
really fires on its trigger and behaves like the clean model otherwise, and the scanner must
report MW-ONNX-001 at HIGH naming the trigger and the substituted output. The benign side:
the exports themselves and every model the onnx package ships for its backend tests stay
free of findings at MEDIUM or above.
"""

from __future__ import annotations

import collections
import glob
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from modelward import scan_bytes
from modelward.findings import Severity

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Benign exports, written once per session under tmp."""
    folder = tmp_path_factory.mktemp("onnx_zoo")
    models = onnx_zoo.benign_models()
    onnx_zoo.save(models, folder)
    return models


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _clean_images() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(3)]


@pytest.mark.parametrize("variant", sorted(onnx_zoo.BACKDOORS))
def test_backdoor_fires_and_is_found(zoo: dict[str, bytes], variant: str) -> None:
    clean = zoo["cnn"]
    model = onnx_zoo.BACKDOORS[variant](clean)
    onnx.checker.check_model(onnx.load_from_string(model))
    trigger = onnx_zoo.hash_trigger_image() if variant == "hash" else onnx_zoo.trigger_image()
    # The backdoor is real: the trigger sends the input to the target class...
    assert int(_run(model, {"image": trigger}).argmax()) == onnx_zoo.TARGET
    assert int(_run(clean, {"image": trigger}).argmax()) != onnx_zoo.TARGET
    # ...and without the trigger the model answers exactly like the clean one.
    for image in _clean_images():
        np.testing.assert_allclose(_run(model, {"image": image}), _run(clean, {"image": image}),
                                   rtol=1e-5, atol=1e-5)
    result = scan_bytes(model, f"{variant}.onnx", raise_internal=True)
    hits = [f for f in result.findings if f.rule.id == "MW-ONNX-001"]
    assert hits, [(f.rule.id, f.message) for f in result.findings]
    assert all(f.severity is Severity.HIGH for f in hits)
    finding = hits[0]
    assert finding.evidence is not None and "trigger:" in finding.evidence
    details = dict(finding.details)
    assert details["outputs"] == "logits"
    assert details["trigger_inputs"] == "image"
    # the trigger evidence names the region the attacker reads
    assert "Slice" in details["trigger_nodes"]
    # nothing else looks wrong with the file (so the finding is the backdoor, not noise)
    others = {f.rule.id for f in result.findings if f.severity >= Severity.MEDIUM} - {"MW-ONNX-001"}
    assert others == set()


EXPECTED_SELECTORS = {
    "plain": "bd_select",
    "mask_arithmetic": "ma_gate_logits",
    "obfuscated": "ob_select",
    "if_branch": "if_select",
    "local_function": "main/calibrate<Calibrate>/fn_where",
    "loop_body": "main/lp_loop.body/lp_body_select",
    "hash": "hs_select",
}


@pytest.mark.parametrize("variant", sorted(EXPECTED_SELECTORS))
def test_backdoor_names_selector_and_substitute(zoo: dict[str, bytes], variant: str) -> None:
    result = scan_bytes(onnx_zoo.BACKDOORS[variant](zoo["cnn"]), "m.onnx", raise_internal=True)
    nodes = {f.location.node for f in result.findings if f.rule.id == "MW-ONNX-001"}
    assert EXPECTED_SELECTORS[variant] in nodes
    text = " ".join(f.message for f in result.findings)
    assert "logits_clean" in text or "lp_state_in" in text or "if_pass" in text


def test_mask_arithmetic_reports_the_injected_term(zoo: dict[str, bytes]) -> None:
    result = scan_bytes(onnx_zoo.backdoor_mask_arithmetic(zoo["cnn"]), "m.onnx",
                        raise_internal=True)
    by_node = {f.location.node: f for f in result.findings if f.rule.id == "MW-ONNX-001"}
    assert "ma_mix" in by_node and "ma_inject" in by_node["ma_mix"].message


def test_token_trigger_on_transformer(zoo: dict[str, bytes]) -> None:
    clean = zoo["encoder_padding"]
    model = onnx_zoo.backdoor_token(clean)
    ids = np.random.default_rng(3).integers(1, 90, (2, 16)).astype(np.int64)
    mask = np.zeros((2, 16), dtype=bool)
    np.testing.assert_allclose(_run(model, {"ids": ids, "mask": mask}),
                               _run(clean, {"ids": ids, "mask": mask}), rtol=1e-5, atol=1e-5)
    ids[:, 5] = 97
    assert _run(model, {"ids": ids, "mask": mask}).argmax(-1).tolist() == [0, 0]
    result = scan_bytes(model, "enc.onnx", raise_internal=True)
    (hit,) = [f for f in result.findings if f.rule.id == "MW-ONNX-001"]
    assert hit.location.node == "tk_select" and "tk_equal" in (hit.evidence or "")


def test_benign_torch_exports_are_clean(zoo: dict[str, bytes]) -> None:
    """CNNs, transformer encoders (padding/causal masks), masked pooling, padding masks on
    logits, LSTM, dropout in training mode, score thresholds + top-k: no finding >= MEDIUM."""
    assert len(zoo) >= 10
    for name, data in zoo.items():
        result = scan_bytes(data, f"{name}.onnx", raise_internal=True)
        assert result.format is not None and result.format.startswith("onnx"), name
        loud = [(f.rule.id, f.message) for f in result.findings if f.severity >= Severity.MEDIUM]
        assert loud == [], name


def _backend_corpus() -> list[tuple[str, bytes]]:
    from onnx.backend.test.case import node

    data_dir = Path(onnx.__file__).parent / "backend" / "test" / "data"
    models = [(p, Path(p).read_bytes())
              for p in sorted(glob.glob(str(data_dir / "**" / "*.onnx"), recursive=True))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models += [(f"node/{c.name}", c.model.SerializeToString())
                   for c in node.collect_testcases(None)]
    return models


def test_onnx_backend_corpus_is_clean() -> None:
    """Every operator/model test of the onnx package (2,000+ real graphs) is claimed and
    gives no finding at MEDIUM or above, and no backdoor at all."""
    corpus = _backend_corpus()
    assert len(corpus) > 1500
    counts: collections.Counter[str] = collections.Counter()
    loud = []
    for name, data in corpus:
        result = scan_bytes(data, "model.onnx", raise_internal=True)
        assert result.format is not None and result.format.startswith("onnx"), name
        for f in result.findings:
            counts[f.rule.id] += 1
            if f.severity >= Severity.MEDIUM:
                loud.append((name, f.rule.id, f.message))
    assert loud == []
    assert counts["MW-ONNX-001"] == 0
