"""Session fixture: the diff test models, built once (a few seconds) under tmp."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
sys.path.insert(0, os.path.dirname(__file__))
import _models


@pytest.fixture(scope="session")
def diff_models_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("diff_models")
    paths = _models.build(folder)
    for name in ("cnn", "enc"):
        paths[f"{name}_opt"] = _models.optimised(paths[name], folder / f"{name}_opt.onnx")
        paths[f"{name}_fp16"] = _models.fp16(paths[name], folder / f"{name}_fp16.onnx")
        paths[f"{name}_int8"] = _models.int8(paths[name], folder / f"{name}_int8.onnx")
    return paths
