"""diff_models on real torch 2.13.0 exports: faithful conversions, backdoors, tampered weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import _models
import numpy as np
import pytest

from modelward.diff import DiffOptions, diff_models, report_digest, to_json
from modelward.diff.html import render_html
from modelward.errors import BackendUnavailableError, InputError

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

FAST = DiffOptions(samples=8, search_budget=0)


@pytest.mark.parametrize(("model", "kind", "precision"), [
    ("cnn", "opt", "fp32"), ("cnn", "fp16", "fp16"), ("cnn", "int8", "int8"),
    ("enc", "opt", "fp32"), ("enc", "fp16", "fp16"), ("enc", "int8", "int8"),
])
def test_faithful_conversions(diff_models_dir: dict[str, Path], model: str, kind: str,
                              precision: str) -> None:
    report = diff_models(diff_models_dir[f"{model}_ts"], diff_models_dir[f"{model}_{kind}"],
                         FAST)
    assert report.precision == precision
    assert report.verdict == "faithful", [f.message for f in report.findings]
    assert report.exit_code == 0
    assert all(o.passed for o in report.outputs)


def test_plain_export_is_faithful_with_search(diff_models_dir: dict[str, Path]) -> None:
    report = diff_models(diff_models_dir["cnn_ts"], diff_models_dir["cnn"],
                         DiffOptions(samples=4, search_budget=16))
    assert report.verdict == "faithful"
    assert report.search is not None and report.search.evaluations == 16
    assert report.graph["weights_changed"] == 0 and report.graph["weights_matched"] >= 6


def _run_pair(source: Path, target: Path, feeds: dict[str, np.ndarray]) -> tuple[
        np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    out_t = session.run(None, feeds)[0]
    module = torch.jit.load(str(source))  # trusted: the test's own export
    with torch.no_grad():
        out_s = module(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    return out_s, out_t


@pytest.mark.parametrize("variant", ["plain", "mask_arithmetic", "obfuscated", "if_branch",
                                     "local_function", "hash"])
def test_backdoor_is_demonstrated(diff_models_dir: dict[str, Path], tmp_path: Path,
                                  variant: str) -> None:
    target = _models.backdoored(diff_models_dir["cnn"], tmp_path / f"{variant}.onnx", variant)
    report = diff_models(diff_models_dir["cnn_ts"], target,
                         DiffOptions(samples=8, search_budget=0, evidence_dir=tmp_path / "ev"))
    assert report.verdict == "divergent" and report.exit_code == 1
    rules = {f.rule.id for f in report.findings}
    assert {"MW-DIFF-001", "MW-DIFF-006"} <= rules
    shown = [t for t in report.triggers if t.status == "demonstrated"]
    assert shown, [(t.status, t.detail) for t in report.triggers]
    for trig in shown:
        assert trig.input_file is not None
        with np.load(trig.input_file) as saved:
            feeds = {k: saved[k] for k in saved.files}
        out_s, out_t = _run_pair(diff_models_dir["cnn_ts"], target, feeds)
        # the synthesised input really flips the decision to the attacker's class
        assert int(out_t.argmax()) == _models.onnx_zoo.TARGET
        assert int(out_s.argmax()) != _models.onnx_zoo.TARGET


def test_condition_inside_if_branch_is_hoisted_and_solved(diff_models_dir: dict[str, Path],
                                                         tmp_path: Path) -> None:
    # graph.backdoor does not report a Where inside an If branch yet, so synthesis is
    # driven directly on the branch's condition label.
    import onnx

    from modelward.diff.triggers import synthesise

    target = _models.backdoor_inside_if(diff_models_dir["cnn"], tmp_path / "ii.onnx")
    base = {"image": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(
        np.float32)}
    found = synthesise(onnx.load(str(target)), "main/ii_if.then_branch/ii_c", base)
    assert found.feeds is not None and "hoisted" in found.detail, found.detail
    out_s, out_t = _run_pair(diff_models_dir["cnn_ts"], target, found.feeds)
    assert int(out_t.argmax()) == _models.onnx_zoo.TARGET
    assert int(out_s.argmax()) != _models.onnx_zoo.TARGET
    body_input = synthesise(onnx.load(str(target)), "main/ii_if.then_branch/missing", base)
    assert body_input.feeds is None


@pytest.mark.parametrize("variant", ["loop_body"])
def test_trigger_inside_subgraph_is_demonstrated(diff_models_dir: dict[str, Path],
                                                 tmp_path: Path, variant: str) -> None:
    path = tmp_path / f"{variant}.onnx"
    if variant == "inside_if":
        target = _models.backdoor_inside_if(diff_models_dir["cnn"], path)
    else:
        target = _models.backdoored(diff_models_dir["cnn"], path, variant)
    report = diff_models(diff_models_dir["cnn_ts"], target,
                         DiffOptions(samples=8, search_budget=0, evidence_dir=tmp_path / "ev"))
    assert report.exit_code == 1
    assert {"MW-DIFF-001", "MW-DIFF-006"} <= {f.rule.id for f in report.findings}
    (trig,) = report.triggers
    assert "/" in trig.condition  # the condition lives in the body / branch
    assert trig.status == "demonstrated" and "hoisted" in trig.detail, trig.detail
    assert trig.input_file is not None
    with np.load(trig.input_file) as saved:
        feeds = {k: saved[k] for k in saved.files}
    out_s, out_t = _run_pair(diff_models_dir["cnn_ts"], target, feeds)
    assert int(out_t.argmax()) == _models.onnx_zoo.TARGET
    assert int(out_s.argmax()) != _models.onnx_zoo.TARGET


def test_token_trigger_on_encoder(diff_models_dir: dict[str, Path], tmp_path: Path) -> None:
    target = _models.backdoored(diff_models_dir["enc"], tmp_path / "tok.onnx", "token")
    report = diff_models(diff_models_dir["enc_ts"], target,
                         DiffOptions(samples=2, search_budget=0, evidence_dir=tmp_path))
    (trig,) = report.triggers
    assert trig.status == "demonstrated" and "= 97" in trig.detail
    assert trig.input_file is not None
    with np.load(trig.input_file) as saved:
        feeds = {k: saved[k] for k in saved.files}
    assert (feeds["ids"] == 97).any()
    out_s, out_t = _run_pair(diff_models_dir["enc_ts"], target, feeds)
    np.testing.assert_allclose(out_t, [[9.0, -9.0, -9.0]] * out_t.shape[0])
    assert not np.allclose(out_s, out_t, atol=1e-3)


@pytest.mark.parametrize(("model", "weight", "factor"), [
    ("cnn", "c2.weight", 1.05), ("cnn", "fc.bias", 0.9), ("enc", "head.weight", 1.1)])
def test_changed_weight_is_caught(diff_models_dir: dict[str, Path], tmp_path: Path, model: str,
                                  weight: str, factor: float) -> None:
    target = _models.with_changed_weight(diff_models_dir[model], tmp_path / "w.onnx", weight,
                                         factor)
    report = diff_models(diff_models_dir[f"{model}_ts"], target, FAST)
    hits = [f for f in report.findings if f.rule.id == "MW-DIFF-002"]
    assert hits and weight in hits[0].message
    assert report.exit_code == 1


def test_changed_weight_in_quantised_model(diff_models_dir: dict[str, Path],
                                           tmp_path: Path) -> None:
    tampered = _models.with_changed_weight(diff_models_dir["enc"], tmp_path / "w.onnx",
                                           "head.weight", 1.3)
    target = _models.int8(tampered, tmp_path / "w8.onnx")
    report = diff_models(diff_models_dir["enc_ts"], target, FAST)
    assert report.precision == "int8"
    assert any(f.rule.id == "MW-DIFF-002" and "head.weight" in f.message
               for f in report.findings)


def test_onnx_vs_onnx_and_reports(diff_models_dir: dict[str, Path]) -> None:
    report = diff_models(diff_models_dir["cnn"], diff_models_dir["cnn_fp16"], FAST)
    assert report.verdict == "faithful"
    text = to_json(report)
    assert report_digest(report) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    page = render_html(report)
    assert "<svg" in page and "<script" not in page and "faithful" in page
    placed = report.runs[1].providers
    assert placed.get("CPUExecutionProvider", 0) > 0


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(InputError, match="pickled"):
        diff_models(path, path, FAST)


def test_missing_provider_is_unavailable(diff_models_dir: dict[str, Path]) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is installed here")
    with pytest.raises(BackendUnavailableError):
        diff_models(diff_models_dir["cnn"], diff_models_dir["cnn"],
                    DiffOptions(target_device="cuda", search_budget=0))
