"""Keras scanners: .keras zips, legacy HDF5 models, the HDF5 reader and the config walker."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras_fixtures import (
    add_layer,
    h5_config,
    keras_config,
    payload_bytecode,
    rewrite_h5,
    rewrite_keras,
    save_benign_models,
)

from modelward import Severity, scan_bytes, scan_path
from modelward._internal.hdf5 import read_root_attributes
from modelward.errors import FormatError
from modelward.scanners._keras_config import bytecode_strings, classify_reference


@pytest.fixture(scope="session")
def benign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_benign_models(tmp_path_factory.mktemp("keras"))


def findings(path: Path) -> list:
    report = scan_path(path, raise_internal=True)
    (result,) = report.files
    return result.findings


def rules_at_least(path: Path, level: Severity) -> set[str]:
    return {f.rule.id for f in findings(path) if f.severity >= level}


@pytest.mark.parametrize("name", ["mlp.keras", "cnn.keras", "mlp.h5", "cnn.h5", "mlp.weights.h5"])
def test_benign_models_have_no_medium_findings(benign: dict[str, Path], name: str) -> None:
    result = scan_path(benign[name], raise_internal=True).files[0]
    assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == []
    expected = {"keras": "keras-v3", "h5": "keras-hdf5"}[name.rsplit(".", 1)[1]]
    if name.endswith(".weights.h5"):
        expected = "hdf5"
    assert result.format == expected


def test_keras_weights_member_goes_to_hdf5_scanner(benign: dict[str, Path]) -> None:
    result = scan_path(benign["mlp.keras"], raise_internal=True).files[0]
    assert [(m.members, m.format) for m in result.members] == [(("model.weights.h5",), "hdf5")]


def test_lambda_in_keras_zip_is_high(benign: dict[str, Path], tmp_path: Path,
                                     marker_command: str) -> None:
    layer = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
                 "code": payload_bytecode(marker_command), "defaults": None, "closure": None}},
                        "arguments": {}}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "lambda.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    (hit,) = [f for f in findings(path) if f.rule.id == "MW-KERAS-001"]
    assert hit.severity is Severity.HIGH
    assert hit.location.members == ("config.json",)
    assert "evil" in (hit.location.node or "")
    assert "system" in (hit.evidence or "") and "touch" in (hit.evidence or "")


def test_lambda_in_h5_is_critical(benign: dict[str, Path], tmp_path: Path,
                                  marker_command: str) -> None:
    layer = {"class_name": "Lambda", "config": {
        "name": "evil", "function": [payload_bytecode(marker_command), None, None],
        "function_type": "lambda", "output_shape_type": "raw", "arguments": {}}}
    path = rewrite_h5(benign["mlp.h5"], tmp_path / "lambda.h5",
                      add_layer(h5_config(benign["mlp.h5"]), layer))
    hits = [f for f in findings(path) if f.rule.id == "MW-KERAS-001"]
    assert [f.severity for f in hits] == [Severity.CRITICAL]


@pytest.mark.parametrize(("module", "name", "rule", "level"), [
    ("os", "system", "MW-KERAS-002", Severity.CRITICAL),
    ("builtins", "exec", "MW-KERAS-002", Severity.CRITICAL),
    ("keras.utils", "get_file", "MW-KERAS-002", Severity.CRITICAL),
    ("keras.config", "enable_unsafe_deserialization", "MW-KERAS-002", Severity.CRITICAL),
    ("mycompany.layers", "helper", "MW-KERAS-003", Severity.MEDIUM),
])
def test_function_references(benign: dict[str, Path], tmp_path: Path, module: str, name: str,
                             rule: str, level: Severity) -> None:
    layer = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 1, "activation": {
                 "module": module, "class_name": "function", "config": name,
                 "registered_name": "function"}}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "fn.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    hits = [f for f in findings(path) if f.rule.id == rule]
    assert [f.severity for f in hits] == [level]
    assert hits[0].evidence == f"{module}.{name}"


def test_custom_class_outside_keras_is_medium(benign: dict[str, Path], tmp_path: Path) -> None:
    layer = {"module": "my_pkg.layers", "class_name": "Block", "registered_name": "my_pkg>Block",
             "config": {"name": "blk"}}
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "custom.keras",
                         add_layer(keras_config(benign["mlp.keras"]), layer))
    assert rules_at_least(path, Severity.MEDIUM) == {"MW-KERAS-003"}


def test_unknown_legacy_class_name_in_h5_is_medium(benign: dict[str, Path], tmp_path: Path) -> None:
    layer = {"class_name": "MyAttention", "config": {"name": "att"}}
    path = rewrite_h5(benign["mlp.h5"], tmp_path / "custom.h5",
                      add_layer(h5_config(benign["mlp.h5"]), layer))
    assert rules_at_least(path, Severity.MEDIUM) == {"MW-KERAS-003"}


def test_external_resources(benign: dict[str, Path], tmp_path: Path) -> None:
    config = add_layer(keras_config(benign["mlp.keras"]), {
        "module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
        "config": {"name": "lookup", "vocabulary": "/etc/passwd"}})
    config = add_layer(config, {
        "module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
        "config": {"name": "tfsm", "filepath": "/models/other"}})
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "ext.keras", config)
    hits = [f for f in findings(path) if f.rule.id == "MW-KERAS-004"]
    assert sorted(h.evidence or "" for h in hits) == ["/models/other", "vocabulary=/etc/passwd"]


def test_malformed_and_missing_config(benign: dict[str, Path], tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", b'{"class_name": ')
        zf.writestr("metadata.json", b"{}")
        zf.writestr("model.weights.h5", benign["mlp.weights.h5"].read_bytes())
        zf.writestr("run.py", b"print('hi')\n")
    path = tmp_path / "bad.keras"
    path.write_bytes(buf.getvalue())
    ids = {f.rule.id for f in findings(path)}
    assert {"MW-KERAS-005", "MW-KERAS-008"} <= ids


def test_deeply_nested_config_is_reported_not_crashed(benign: dict[str, Path],
                                                      tmp_path: Path) -> None:
    deep: object = {"class_name": "Dense", "config": {}}
    for _ in range(400):
        deep = {"x": [deep]}
    config = add_layer(keras_config(benign["mlp.keras"]), deep)  # type: ignore[arg-type]
    path = rewrite_keras(benign["mlp.keras"], tmp_path / "deep.keras", config)
    assert "MW-KERAS-005" in {f.rule.id for f in findings(path)}


def test_dense_attribute_storage_falls_back_to_byte_search(tmp_path: Path,
                                                           marker_command: str) -> None:
    path = tmp_path / "dense.h5"
    layer = {"class_name": "Lambda", "config": {"name": "l", "function": payload_bytecode(
        marker_command), "function_type": "lambda"}}
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(12):
            f.attrs[f"pad{i}"] = "x" * i
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"layers": [layer]}})
    # Dense storage (fractal heap + name index) is now read structurally.
    ids = {f.rule.id for f in findings(path)}
    assert "MW-KERAS-001" in ids and "MW-KERAS-007" not in ids
    # A heap the reader does not follow (declared I/O filters) still falls back.
    data = bytearray(path.read_bytes())
    heap = data.find(b"FRHP")
    data[heap + 7 : heap + 9] = (1).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    ids = {f.rule.id for f in findings(path)}
    assert {"MW-KERAS-007", "MW-KERAS-001"} <= ids


def test_unreadable_hdf5_without_config_fails_closed() -> None:
    data = b"\x89HDF\r\n\x1a\n" + b"\x00" * 8 + b"\xff" * 40
    result = scan_bytes(data, "broken.h5", raise_internal=True)
    assert "MW-KERAS-006" in {f.rule.id for f in result.findings}


@pytest.mark.parametrize("libver", ["earliest", "v108", "latest"])
def test_hdf5_reader_matches_h5py(tmp_path: Path, libver: str) -> None:
    path = tmp_path / "a.h5"
    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["model_config"] = '{"class_name": "Sequential"}'
        f.attrs["fixed"] = np.bytes_(b"fixed-value")
        f.attrs["names"] = np.array([b"ab", b"c"], dtype="S2")
        f.attrs["number"] = 7
        f.create_dataset("w", data=np.zeros(4))
    root = read_root_attributes(memoryview(path.read_bytes()))
    got = {a.name: a.values for a in root.attributes}
    assert got == {"model_config": (b'{"class_name": "Sequential"}',), "fixed": (b"fixed-value",),
                   "names": (b"ab", b"c"), "number": ()}
    assert root.problems == []


def test_hdf5_reader_with_user_block(tmp_path: Path) -> None:
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.attrs["model_config"] = "{}"
    root = read_root_attributes(memoryview(path.read_bytes()))
    assert root.superblock_offset == 512
    assert root.get("model_config") is not None


def test_hdf5_reader_rejects_garbage() -> None:
    with pytest.raises(FormatError):
        read_root_attributes(memoryview(b"not hdf5"))


def test_classification_table() -> None:
    assert classify_reference("keras.layers", "Dense", is_function=False) is None
    assert classify_reference("keras.activations", "relu", is_function=True) is None
    assert classify_reference("keras.src.utils.file_utils", "get_file",
                              is_function=True) is Severity.CRITICAL
    assert classify_reference("keras.src.saving", "Thing", is_function=False) is Severity.MEDIUM
    assert classify_reference("subprocess", "Popen", is_function=False) is Severity.CRITICAL
    assert classify_reference(None, "Conv2D", is_function=False) is None


def test_bytecode_strings_never_unmarshal(marker_command: str) -> None:
    strings = bytecode_strings(payload_bytecode(marker_command))
    assert "system" in strings
    assert bytecode_strings("!!!not base64") == []


@pytest.fixture(scope="session")
def h5_seed(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("seed") / "seed.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": {"layers": []}}'
        f.attrs["keras_version"] = "3.0"
    return path.read_bytes()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hdf5_property_mutations_never_crash(h5_seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(h5_seed)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(buf)))
    scan_bytes(bytes(buf[:cut]), "m.h5", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_hdf5_property_arbitrary_bytes(tail: bytes) -> None:
    scan_bytes(b"\x89HDF\r\n\x1a\n" + tail, "x.h5", raise_internal=True)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.sampled_from(["class_name", "module", "config",
                                                       "registered_name", "function", "name",
                                                       "vocabulary", "function_type"]),
                                      kids, max_size=5), max_leaves=40))
def test_config_walker_property(config: object) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", "{}")
    scan_bytes(buf.getvalue(), "x.keras", raise_internal=True)
