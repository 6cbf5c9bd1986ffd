"""``modelward diff`` in process: exit codes 0/1/2, formats, evidence files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from modelward.cli import main

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "unit", "diff"))
import _models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_diff")
    paths = _models.build(folder)
    paths["plain"] = _models.backdoored(paths["cnn"], folder / "plain.onnx", "plain")
    return paths


def test_faithful_exits_0_json(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(models["cnn_ts"]), str(models["cnn"]), "--samples", "4",
                 "--search-budget", "0", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verdict"] == "faithful" and doc["schema_version"] == "1"


def test_backdoor_exits_1_with_evidence(models: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(models["cnn_ts"]), str(models["plain"]), "--samples", "4",
                 "--search-budget", "0", "--evidence-dir", str(tmp_path / "ev")])
    out = capsys.readouterr().out
    assert code == 1 and "MW-DIFF-006" in out and "bd_select" in out
    assert list((tmp_path / "ev").glob("trigger_*.npz"))


def test_html_report_file(models: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    code = main(["diff", str(models["cnn_ts"]), str(models["plain"]), "--samples", "2",
                 "--search-budget", "0", "--format", "html", "-o", str(page),
                 "--evidence-dir", str(tmp_path)])
    assert code == 1 and "<svg" in page.read_text()


def test_errors_exit_2(models: dict[str, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path / "missing.onnx"), str(models["cnn"])]) == 2
    assert main(["diff", str(models["cnn"])]) == 2
    assert main(["diff", str(models["cnn"]), "--backends", "cpu"]) == 2
    assert "error" in capsys.readouterr().err


def test_cross_backend_optimisation_levels(models: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(models["cnn"]), "--backends", "cpu+O0,cpu+O3", "--samples", "2",
                 "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["mode"] == "backends"
    assert [r["device"] for r in doc["runs"]] == ["cpu+O0", "cpu+O3"]


def test_cross_backend_cpu_vs_cuda(models: dict[str, Path]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert main(["diff", str(models["cnn"]), "--backends", "cpu,cuda"]) == 2
        pytest.skip("no CUDA execution provider here")
    assert main(["diff", str(models["cnn"]), "--backends", "cpu,cuda", "--samples", "4"]) == 0
