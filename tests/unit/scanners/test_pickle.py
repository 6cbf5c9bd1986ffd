"""The raw-pickle scanner: what it claims, and findings end to end through the engine."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.policy import Limits, Policy
from modelward.results import Status
from modelward.scanners import pickle as pickle_scanner
from modelward.scanners.base import Artifact, ScanBudget, ScanContext
from modelward.scanners.pickle import SCANNER


class Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (self.command,))


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def claims(data: bytes) -> bool:
    context = ScanContext(Policy(), ScanBudget(math.inf))
    return SCANNER.claims(Artifact(data, path="f", context=context))


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("value", [{"a": 1}, [1.5, "x"], None, (b"b",), 7])
def test_claims_real_pickles_of_every_protocol(proto: int, value: object) -> None:
    assert claims(pickle.dumps(value, protocol=proto))


def test_claims_protocol_zero_payload_without_stop(marker_command: str) -> None:
    assert claims(pickle.dumps(Payload(marker_command), protocol=0))
    assert claims(b"cos\nsystem\n(S'" + marker_command.encode() + b"'\ntR")


@pytest.mark.parametrize("text", [
    json.dumps({"a": [1, 2]}).encode(),
    b"Name,Age\nBob,3\n",
    b"I am a text file\n",
    b"(not a pickle)\n",
    b"Some notes\nmore\n",
    b"# comment\nx = 1\n",
    b"[1, 2, 3]",
    b"Lorem ipsum dolor sit amet",
    b"cat\ndog\n",
    b"\x80\x09 not a protocol",
    b"",
    b"N",
])
def test_does_not_claim_text(text: bytes) -> None:
    assert not claims(text)


def test_csv_written_by_python_is_not_claimed() -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([["Name", "Score"], ["ann", 1], ["bob", 2]])
    assert not claims(buf.getvalue().encode())


def test_malicious_pickle_end_to_end(marker_command: str) -> None:
    result = scan_bytes(pickle.dumps(Payload(marker_command)), "model.pkl", raise_internal=True)
    assert result.format == "pickle"
    (finding,) = [f for f in result.findings if f.rule.id == "MW-PKL-001"]
    assert finding.severity is Severity.CRITICAL
    assert f"system('{marker_command}')" in (finding.evidence or "")
    assert finding.location.path == "model.pkl" and finding.location.offset


def test_benign_pickle_is_clean() -> None:
    result = scan_bytes(pickle.dumps({"lr": 0.1, "layers": [1, 2]}), "cfg.pkl",
                        raise_internal=True)
    assert result.findings == []
    assert result.status is Status.SCANNED


def test_disguised_pickle_is_flagged_as_extension_mismatch(marker_command: str) -> None:
    result = scan_bytes(pickle.dumps(Payload(marker_command)), "weights.safetensors",
                        raise_internal=True)
    assert {"MW-PKL-001", "MW-CORE-004"} <= ids(result)


def test_appended_payload_and_trailing_bytes(marker_command: str) -> None:
    data = pickle.dumps([1]) + pickle.dumps(Payload(marker_command)) + b"\x00\x00junk"
    result = scan_bytes(data, "x.pkl", raise_internal=True)
    assert {"MW-PKL-001", "MW-PKL-007", "MW-PKL-008"} <= ids(result)


def test_budget_stops_the_file_as_failed() -> None:
    policy = Policy(limits=Limits(max_pickle_ops=50))
    result = scan_bytes(pickle.dumps(list(range(500)), protocol=0), "x.pkl", policy=policy,
                        raise_internal=True)
    assert result.status is Status.FAILED
    assert "MW-CORE-003" in ids(result)


def test_scanner_declares_its_rules() -> None:
    doc = pickle_scanner.__doc__ or ""
    for rule in SCANNER.rules:
        assert f"{rule.id} {rule.name} ({rule.severity.name})" in doc
    assert SCANNER.executes_code and SCANNER.name == "pickle"
    assert ".pt" not in SCANNER.suffixes and ".pkl" in SCANNER.suffixes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"\x80\x02", b"\x80\x05", b"(", b"c", b"]"]), st.binary(max_size=300))
def test_any_bytes_scan_without_exception(prefix: bytes, body: bytes) -> None:
    scan_bytes(prefix + body, "fuzz.pkl", raise_internal=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 5), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)),
                                    max_size=4))
def test_mutated_pickles_scan_without_exception(proto: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(pickle.dumps({"a": [1, 2.0, "s", b"b" * 300], "t": (None, True)}, proto))
    for where, byte in edits:
        data[where % len(data)] = byte
    scan_bytes(bytes(data), "fuzz.pkl", raise_internal=True)
