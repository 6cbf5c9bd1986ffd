"""Shared helpers for the pickle-machine tests: artifacts over bytes, a run helper."""

from __future__ import annotations

import math

from modelward.pickle_analysis.machine import Machine
from modelward.policy import Policy
from modelward.scanners.base import Artifact, ScanBudget, ScanContext


def make_artifact(data: bytes, policy: Policy | None = None, name: str = "x.pkl") -> Artifact:
    context = ScanContext(policy or Policy(), ScanBudget(math.inf))
    return Artifact(data, path=name, context=context)


def run_machine(data: bytes, policy: Policy | None = None) -> Machine:
    machine = Machine(make_artifact(data, policy), 0, None)
    machine.run()
    return machine
