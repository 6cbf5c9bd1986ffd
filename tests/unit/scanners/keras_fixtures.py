"""Builders of Keras test files: real models saved by keras 3 and inert malicious edits.

Malicious variants are made by editing the saved JSON config (in the zip's config.json or
the HDF5 ``model_config`` attribute), never by running a payload: Lambda bytecode is
``marshal.dumps`` of a code object compiled here and never loaded.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest


def save_benign_models(folder: Path) -> dict[str, Path]:
    """Save an MLP (Sequential) and a CNN (functional) as .keras and legacy .h5."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    mlp = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dropout(0.1), keras.layers.Dense(1)])
    mlp.compile(optimizer="adam", loss="mse")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    cnn = keras.Model(inputs, outputs)
    cnn.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    paths = {}
    for name, model in (("mlp", mlp), ("cnn", cnn)):
        for ext in ("keras", "h5"):
            path = folder / f"{name}.{ext}"
            model.save(path)
            paths[f"{name}.{ext}"] = path
    weights = folder / "mlp.weights.h5"
    mlp.save_weights(weights)
    paths["mlp.weights.h5"] = weights
    return paths


def payload_bytecode(command: str) -> str:
    """Base64 marshalled code object that would run `command` (never executed)."""
    code = compile(f"import os\nos.system({command!r})", "<payload>", "exec")
    return base64.b64encode(marshal.dumps(code)).decode()


def keras_config(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


def rewrite_keras(src: Path, dst: Path, config: dict[str, Any],
                  extra: dict[str, bytes] | None = None) -> Path:
    """Copy a .keras zip with config.json replaced (and extra members added)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                data = json.dumps(config).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    dst.write_bytes(buf.getvalue())
    return dst


def h5_config(path: Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def rewrite_h5(src: Path, dst: Path, config: dict[str, Any]) -> Path:
    """Copy an HDF5 model with its model_config attribute replaced (with h5py)."""
    import h5py

    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        f.attrs["model_config"] = json.dumps(config)
    return dst


def add_layer(config: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """Append a layer to a Sequential config (a deep copy is returned)."""
    out = json.loads(json.dumps(config))
    out["config"]["layers"].append(layer)
    return out
