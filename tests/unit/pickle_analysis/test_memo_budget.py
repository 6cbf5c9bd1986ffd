"""The memo is the one part of the machine's memory that grows with the pickle: it has a budget."""

from __future__ import annotations

import pickle
from dataclasses import replace

from modelward import Policy, Status, scan_bytes
from modelward.policy import Limits


def _policy(memo: int) -> Policy:
    return Policy(limits=replace(Limits(), max_pickle_memo=memo))


def test_memo_beyond_budget_stops_analysis_and_fails_closed() -> None:
    data = pickle.dumps([f"token{i}" for i in range(50)], protocol=4)  # MEMOIZE per string
    result = scan_bytes(data, "vocab.pkl", policy=_policy(10), raise_internal=True)
    assert result.status is Status.FAILED
    assert any(f.rule.id in {"MW-PKL-010", "MW-CORE-003"} and "memoizes more than 10" in f.message
               for f in result.findings)


def test_memo_budget_counts_put_opcodes_too() -> None:
    data = pickle.dumps([f"token{i}" for i in range(50)], protocol=2)  # BINPUT per string
    result = scan_bytes(data, "vocab.pkl", policy=_policy(10), raise_internal=True)
    assert result.status is Status.FAILED


def test_memo_within_budget_is_analysed() -> None:
    data = pickle.dumps([f"token{i}" for i in range(50)], protocol=4)
    result = scan_bytes(data, "vocab.pkl", policy=_policy(1000), raise_internal=True)
    assert result.status is Status.SCANNED
    assert not result.findings
