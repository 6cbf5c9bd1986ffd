"""joblib files: inline arrays are skipped by length, object arrays analysed as pickles."""

from __future__ import annotations

import io
import math
import os
import pickle

import joblib
import numpy as np
import pytest

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.pickle_analysis import analyze, analyze_stream
from modelward.policy import Policy
from modelward.scanners.base import Artifact, ScanBudget, ScanContext


class Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (self.command,))


def dump(value: object, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf, **kwargs)
    return buf.getvalue()


def artifact(data: bytes) -> Artifact:
    return Artifact(data, path="m.joblib", context=ScanContext(Policy(), ScanBudget(math.inf)))


ARRAYS = {
    "float64": np.arange(1000, dtype="f8"),
    "int8 3d": np.arange(60, dtype="i1").reshape(3, 4, 5),
    "fortran": np.asfortranarray(np.ones((7, 3), dtype="f4")),
    "empty": np.zeros((0, 5)),
    "scalar": np.array(3.5),
    "bool": np.array([True, False, True]),
    "unicode": np.array(["ab", "cde"]),
    "bytes": np.array([b"x", b"yz"]),
    "complex": np.array([1 + 2j]),
    "datetime": np.array(["2020-01-01"], dtype="M8[s]"),
    "structured": np.zeros(4, dtype=[("a", "i4"), ("b", "f8", (2,))]),
    "big-endian": np.arange(5, dtype=">i4"),
    # Bytes that look like pickle opcodes must be skipped, not executed.
    "opcode-like": np.frombuffer(b"cos\nsystem\n(S'x'\ntR." * 4, dtype="u1").copy(),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_numeric_arrays_are_skipped_cleanly(name: str) -> None:
    data = dump({"w": ARRAYS[name], "after": [1, 2, 3]})
    (result,) = analyze_stream(artifact(data))
    assert result.complete and result.end == len(data)
    assert result.joblib
    assert not [f for f in result.findings if f.rule.id in ("MW-PKL-006", "MW-PKL-007")]
    assert "os.system" not in result.imports


def test_object_array_is_a_nested_pickle_and_is_analysed(marker_command: str) -> None:
    arr = np.empty(2, dtype=object)
    arr[0] = "fine"
    arr[1] = Payload(marker_command)
    data = dump({"o": arr, "tail": "t"})
    (result,) = analyze_stream(artifact(data))
    assert result.complete and result.end == len(data)
    (finding,) = [f for f in result.findings if f.rule.id == "MW-PKL-001"]
    assert finding.severity is Severity.CRITICAL
    assert f"system('{marker_command}')" in finding.evidence
    assert "joblib object array" in finding.message


def test_benign_object_array_parses() -> None:
    data = dump([np.array([1, "x", None], dtype=object), np.arange(3)])
    result = analyze(artifact(data))
    assert result.complete and result.end == len(data)
    assert not [f for f in result.findings if f.rule.id == "MW-PKL-006"]


def test_sklearn_estimator_parses_and_is_joblib() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0))
    model.fit(x, y)
    data = dump(model)
    (result,) = analyze_stream(artifact(data))
    assert result.complete and result.end == len(data)
    assert not [f for f in result.findings if f.rule.id in ("MW-PKL-006", "MW-PKL-007")]
    scanned = scan_bytes(data, "model.joblib", raise_internal=True)
    assert scanned.format == "joblib"
    assert all(f.severity < Severity.HIGH for f in scanned.findings)


def test_old_protocol_dump_parses() -> None:
    data = dump({"a": np.arange(10)}, protocol=2)
    result = analyze(artifact(data))
    assert result.complete and result.end == len(data) and result.joblib


def test_payload_after_an_array_is_found(marker_command: str) -> None:
    data = dump({"w": np.arange(100.0), "p": Payload(marker_command)})
    result = scan_bytes(data, "m.joblib", raise_internal=True)
    assert any(f.rule.id == "MW-PKL-001" for f in result.findings)


def test_truncated_array_is_malformed() -> None:
    data = dump({"w": np.arange(1000.0)})
    cut = data[: len(data) // 2]
    result = analyze(artifact(cut))
    assert not result.complete
    assert any(f.rule.id == "MW-PKL-006" for f in result.findings)


@pytest.mark.parametrize("compress", [("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_compressed_dumps_reach_the_pickle_scanner(compress: tuple[str, int],
                                                   marker_command: str) -> None:
    data = dump({"w": np.arange(50.0), "p": Payload(marker_command)}, compress=compress)
    result = scan_bytes(data, "m.joblib", raise_internal=True)
    assert any(f.rule.id == "MW-PKL-001" for f in result.findings), result.findings
    assert any(m.format == "joblib" for m in result.members)


def test_plain_pickle_of_a_wrapper_is_not_confused() -> None:
    # A stream that is not joblib: a dict mentioning the wrapper name as a string.
    data = pickle.dumps({"joblib.numpy_pickle.NumpyArrayWrapper": 1})
    result = analyze(artifact(data))
    assert result.complete and not result.joblib
