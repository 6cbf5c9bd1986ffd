"""diff_backends across real ONNX Runtime configurations (graph optimisations off vs all on)."""

from __future__ import annotations

from pathlib import Path

import _models
import pytest

from modelward.diff import DiffOptions, diff_backends
from modelward.errors import InputError

ort = pytest.importorskip("onnxruntime")

DEVICES = ["cpu+O0", "cpu+O3"]


@pytest.mark.parametrize("model", ["cnn", "enc", "cnn_int8"])
def test_optimisation_levels_agree(diff_models_dir: dict[str, Path], model: str) -> None:
    report = diff_backends(diff_models_dir[model], DEVICES, DiffOptions(samples=4))
    assert report.mode == "backends" and report.verdict == "faithful", [
        f.message for f in report.findings]
    assert [r.device for r in report.runs] == DEVICES
    for run in report.runs:  # per-node provider recording from ORT's profile
        assert run.providers.get("CPUExecutionProvider", 0) > 0 and run.runs >= 4
    # the optimised session really is a different graph (fusions): fewer kernels ran
    assert sum(report.runs[1].providers.values()) <= sum(report.runs[0].providers.values())


def test_trigger_checked_on_every_backend(diff_models_dir: dict[str, Path],
                                          tmp_path: Path) -> None:
    target = _models.backdoored(diff_models_dir["cnn"], tmp_path / "plain.onnx", "plain")
    report = diff_backends(target, DEVICES, DiffOptions(samples=4, evidence_dir=tmp_path))
    assert "MW-DIFF-001" in {f.rule.id for f in report.findings}
    (trig,) = report.triggers
    # the trigger fires identically on both configurations: found, not a backend divergence
    assert trig.status == "no-effect" and trig.input_file is not None
    assert report.verdict == "suspicious" and report.exit_code == 1


def test_bad_level_is_an_input_error(diff_models_dir: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="optimisation level"):
        diff_backends(diff_models_dir["cnn"], ["cpu+O9", "cpu"], DiffOptions(samples=1))


def test_cuda_against_cpu(diff_models_dir: dict[str, Path]) -> None:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA execution provider here")
    report = diff_backends(diff_models_dir["cnn"], ["cpu", "cuda"], DiffOptions(samples=4))
    assert report.verdict == "faithful"
    assert report.runs[1].providers.get("CUDAExecutionProvider", 0) > 0
