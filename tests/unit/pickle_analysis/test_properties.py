"""Property tests: any bytes, and real pickles mutated, never crash or hang the machine."""

from __future__ import annotations

import pickle
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pickle_helpers import make_artifact

from modelward.pickle_analysis import analyze, analyze_stream, looks_like_pickle
from modelward.policy import Limits, Policy

SEEDS = [
    pickle.dumps(value, protocol=proto)
    for proto in range(6)
    for value in ({"a": [1, 2.5, "x", b"y" * 40]}, (None, True, {1, 2}), [[1], {"k": (3,)}] * 3)
]
POLICY = Policy(limits=Limits(max_pickle_ops=20_000, max_pickle_depth=200))


def check(data: bytes) -> None:
    started = time.monotonic()
    artifact = make_artifact(data, POLICY)
    result = analyze(artifact)
    assert 0 <= result.end <= len(data)
    for finding in result.findings:
        assert finding.rule.id.startswith("MW-PKL-")
    analyze_stream(artifact)
    looks_like_pickle(data[:4096])
    assert time.monotonic() - started < 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)
    check(b"\x80\x04" + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                         max_size=6), st.integers(0, 10_000))
def test_mutated_real_pickles(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for where, byte in edits:
        data[where % len(data)] = byte
    check(bytes(data))
    check(bytes(data[: cut % (len(data) + 1)]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])GBC")
                                + list(range(0x80, 0x99))), max_size=64),
       st.binary(max_size=64))
def test_opcode_soup(ops: list[int], tail: bytes) -> None:
    check(bytes(ops) + tail)
