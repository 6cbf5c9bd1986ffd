"""Red-team regressions for the Keras config walker and the HDF5 attribute reader.

Each test is named after the evasion it pins down; the docstring says where the idea comes
from and what the scanner reported before the fix. Payloads only ever name the
`marker_command` (never run) or harmless module names; HDF5 files are written by h5py.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import Severity, scan_bytes
from modelward._internal.hdf5 import read_root_attributes
from modelward.errors import FormatError

h5py = pytest.importorskip("h5py")


def _worst(data: bytes, name: str) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name, raise_internal=True).findings:
        out[f.rule.id] = max(out.get(f.rule.id, Severity.INFO), f.severity)
    return out


def _keras_zip(config: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
    return buf.getvalue()


def _sequential(layer: dict[str, object]) -> dict[str, object]:
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "s", "layers": [layer]}}


def _dense(**extra: object) -> dict[str, object]:
    return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": {"name": "d", "units": 1, **extra}}


def _function(module: str, name: str) -> dict[str, object]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def test_keras_typespec_imports_module_class() -> None:
    """``__typespec__`` objects name ``module`` + ``spec_name`` that Keras imports.

    Source: keras/src/saving/serialization_lib.py (``deserialize_keras_object`` hands
    ``spec_name``/``module`` to ``_retrieve_class_or_fn``; Keras < 3.9 imports any module).
    Before: only "unusual serialized type" at MEDIUM, whatever the module.
    """
    spec = {"class_name": "__typespec__", "spec_name": "system", "module": "os",
            "registered_name": None, "config": []}
    worst = _worst(_keras_zip(_sequential(_dense(bias_constraint=spec))), "m.keras")
    assert worst.get("MW-KERAS-002") == Severity.CRITICAL


def test_keras_function_from_catalogued_capability_module() -> None:
    """Functions of modules outside the short root list that still run code or commands.

    Idea: CVE-2025-1550 needs any importable callable; ``pydoc.pipepager`` pipes text to a
    shell command, ``cProfile.run`` execs a string. Before: MEDIUM (unknown module) only;
    now judged with the pickle capability catalogue like any imported global.
    """
    for module, name in (("pydoc", "pipepager"), ("cProfile", "run"),
                         ("logging.config", "listen"), ("shelve", "open")):
        config = _sequential(_dense(activation=_function(module, name)))
        assert _worst(_keras_zip(config), "m.keras").get("MW-KERAS-002") == Severity.CRITICAL


def test_keras_unknown_module_stays_medium() -> None:
    """Guard against over-reach: an unknown but harmless module is MEDIUM, not CRITICAL."""
    config = _sequential(_dense(activation=_function("my_package.acts", "scaled_relu")))
    worst = _worst(_keras_zip(config), "m.keras")
    assert worst.get("MW-KERAS-003") == Severity.MEDIUM
    assert "MW-KERAS-002" not in worst


def test_keras_lambda_bytecode_under_value_key(marker_command: str) -> None:
    """Keras 3 ``__lambda__`` keeps bytecode under ``config.value`` (not ``code``).

    Source: serialization_lib ``python_utils.func_load(inner_config["value"])``. Before: the
    finding was raised but its evidence showed no bytecode strings.
    """
    code = compile(f"import os\nos.system({marker_command!r})", "<payload>", "exec")
    encoded = base64.b64encode(marshal.dumps(code)).decode()
    layer = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"name": "l", "function": {"class_name": "__lambda__",
                                                   "config": {"value": encoded}}}}
    result = scan_bytes(_keras_zip(_sequential(layer)), "m.keras", raise_internal=True)
    lam = [f for f in result.findings if f.rule.id == "MW-KERAS-001"]
    assert lam and any("system" in (f.evidence or "") for f in lam)


def _h5(attrs: dict[str, object], *, padding: int = 0, fixed: bool = False) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w", libver="latest") as f:
        for i in range(padding):
            value = f"value-{i}-" + "x" * (i % 50)
            f.attrs[f"attr_{i:05d}"] = np.bytes_(value) if fixed else value
        for key, value in attrs.items():
            f.attrs[key] = value
    return buf.getvalue()


_EVIL_REORDERED = json.dumps({
    # Keys not in Keras' order and "class_name" spelt with a \u escape: invisible to a
    # byte search for '{"class_name"', identical for json.loads.
    "config": {"name": "s", "layers": [{"config": {"name": "d", "units": 1, "activation": {
        "config": "system", "module": "os", "class_name": "function"}},
        "module": "keras.layers", "class_name": "Dense"}]},
    "module": "keras", "class_name": "Sequential"}).replace('"class_name"', '"\\u0063lass_name"')


def test_h5_dense_attribute_storage_hides_reordered_config() -> None:
    """More than 8 root attributes (libver latest) move them into a fractal heap.

    Idea: Keras/h5py read dense attributes transparently; modelward fell back to a byte
    search for '{"class_name"'. Before: reordered/escaped JSON there gave only MW-KERAS-006
    (MEDIUM, "could not locate model_config"); now dense storage is read structurally.
    """
    data = _h5({"model_config": _EVIL_REORDERED, "keras_version": "3.15.0"}, padding=20)
    with h5py.File(io.BytesIO(data), "r") as f:  # the real reader sees the config
        assert json.loads(f.attrs["model_config"])["class_name"] == "Sequential"
    worst = _worst(data, "m.h5")
    assert worst.get("MW-KERAS-002") == Severity.CRITICAL
    assert "MW-KERAS-007" not in worst


@pytest.mark.parametrize(("count", "big", "fixed"), [
    (9, 0, False), (200, 0, False), (3000, 0, False), (20, 2, True), (20, 2, False),
])
def test_hdf5_dense_attributes_match_h5py(count: int, big: int, fixed: bool) -> None:
    """Differential: every root attribute h5py reads, we read with the same bytes.

    Covers a root direct block, indirect blocks, a depth-2 name-index B-tree (3000) and
    huge objects (200 KB fixed-length strings live outside the managed heap).
    """
    attrs: dict[str, object] = {f"big{j}": (np.bytes_(b"B" * 200_000) if fixed
                                            else "B" * 200_000 + str(j)) for j in range(big)}
    data = _h5(attrs, padding=count, fixed=fixed)
    root = read_root_attributes(memoryview(data))
    assert root.problems == []
    ours = {a.name: a.values[0] for a in root.attributes}
    with h5py.File(io.BytesIO(data), "r") as f:
        ref = {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in f.attrs.items()}
    assert ours == ref


def test_hdf5_dense_btree_self_loop_is_bounded() -> None:
    """A name-index B-tree internal node pointing at itself must not loop.

    Idea: cyclic offsets in tree structures (classic parser DoS). The loop is reported as
    a problem and the scan falls back, finishing quickly.
    """
    data = bytearray(_h5({"model_config": "{}"}, padding=3000))
    node = data.find(b"BTIN")
    header = data.find(b"BTHD")
    assert node > 0 and header > 0
    rec_size = int.from_bytes(data[header + 10 : header + 12], "little")
    root_count = int.from_bytes(data[header + 16 + 8 : header + 16 + 10], "little")
    root = int.from_bytes(data[header + 16 : header + 24], "little")
    child0 = root + 6 + root_count * rec_size
    data[child0 : child0 + 8] = root.to_bytes(8, "little")
    started = time.monotonic()
    result = read_root_attributes(memoryview(bytes(data)))
    assert any("dense storage" in p for p in result.problems)
    scan_bytes(bytes(data), "m.h5", raise_internal=True)
    assert time.monotonic() - started < 5


_DENSE_SAMPLE = _h5({"model_config": json.dumps(_sequential(_dense()))}, padding=40) \
    if h5py is not None else b""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_DENSE_SAMPLE) - 1), st.integers(0, 255)),
                min_size=1, max_size=12))
def test_hdf5_dense_mutations_never_crash(edits: list[tuple[int, int]]) -> None:
    """Arbitrary byte edits of a dense-storage file: findings only, never an exception."""
    data = bytearray(_DENSE_SAMPLE)
    for pos, value in edits:
        data[pos] = value
    try:
        read_root_attributes(memoryview(bytes(data)))
    except FormatError:
        pass  # malformed structure on the path: the documented outcome
    scan_bytes(bytes(data), "m.h5", raise_internal=True)
