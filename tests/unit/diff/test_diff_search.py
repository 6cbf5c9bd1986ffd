"""Divergence search: the torch-guided boundary walk finds what random restarts + ES miss."""

from __future__ import annotations

from pathlib import Path

import _models
import numpy as np
import pytest

from modelward.diff import DiffOptions, diff_models
from modelward.diff.search import ES_METHOD, GRADIENT_METHOD
from modelward.errors import InputError

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def close_calls(diff_models_dir: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    return _models.close_calls(diff_models_dir["cnn"],
                               tmp_path_factory.mktemp("search") / "close_calls.onnx")


def _opts(method: str, tmp_path: Path, seed: int = 0) -> DiffOptions:
    return DiffOptions(samples=16, seed=seed, search_budget=48, search_method=method,
                       synthesise=False, evidence_dir=tmp_path)


@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_walk_finds_narrow_band_es_misses(diff_models_dir: dict[str, Path],
                                                    close_calls: Path, tmp_path: Path,
                                                    seed: int) -> None:
    es = diff_models(diff_models_dir["cnn_ts"], close_calls, _opts("es", tmp_path, seed))
    assert es.search is not None and es.search.method == ES_METHOD
    assert es.verdict == "faithful" and not es.search.divergent  # random inputs: identical
    grad = diff_models(diff_models_dir["cnn_ts"], close_calls, _opts("auto", tmp_path, seed))
    assert grad.search is not None and grad.search.method == GRADIENT_METHOD
    assert grad.search.evaluations <= 48
    assert grad.search.divergent and grad.verdict == "divergent" and grad.exit_code == 1
    assert any(f.rule.id == "MW-DIFF-005" and "search" in f.message for f in grad.findings)
    # the saved input really makes the two models decide differently
    assert grad.search.input_file is not None
    with np.load(grad.search.input_file) as saved:
        image = saved["image"]
    session = ort.InferenceSession(str(close_calls), providers=["CPUExecutionProvider"])
    module = torch.jit.load(str(diff_models_dir["cnn_ts"]))  # trusted: the test's own export
    with torch.no_grad():
        src = module(torch.from_numpy(image)).numpy()
    tgt = session.run(None, {"image": image})[0]
    assert (src.argmax(-1) != tgt.argmax(-1)).any()


def test_search_is_deterministic(diff_models_dir: dict[str, Path], close_calls: Path,
                                 tmp_path: Path) -> None:
    a = diff_models(diff_models_dir["cnn_ts"], close_calls, _opts("gradient", tmp_path / "a"))
    b = diff_models(diff_models_dir["cnn_ts"], close_calls, _opts("gradient", tmp_path / "b"))
    assert a.search is not None and b.search is not None
    assert (a.search.best_rel_error, a.search.evaluations) == (
        b.search.best_rel_error, b.search.evaluations)


def test_faithful_export_stays_faithful_at_the_boundary(diff_models_dir: dict[str, Path],
                                                        tmp_path: Path) -> None:
    for target in ("cnn", "cnn_fp16", "cnn_int8"):
        report = diff_models(diff_models_dir["cnn_ts"], diff_models_dir[target],
                             _opts("gradient", tmp_path))
        assert report.verdict == "faithful", (target, [f.message for f in report.findings])


def test_gradient_needs_torch_source(diff_models_dir: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="PyTorch source"):
        diff_models(diff_models_dir["cnn"], diff_models_dir["cnn_opt"],
                    _opts("gradient", tmp_path))
    report = diff_models(diff_models_dir["enc_ts"], diff_models_dir["enc"],
                         _opts("auto", tmp_path))  # integer token ids: evolution strategy
    assert report.search is not None and report.search.method == ES_METHOD
