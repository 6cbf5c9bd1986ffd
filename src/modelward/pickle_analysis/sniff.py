"""Is this a pickle? A content sniff that claims real pickles and not text files.

Protocol 2+ pickles start with ``PROTO`` (``\\x80`` and a protocol byte). Protocol 0 and 1
pickles have no magic: they start with an ordinary opcode such as ``(``, ``c``, ``]`` or
``N``, which is also how plenty of text starts. For those the machine runs on the head
and the bytes count as a pickle only when they parse: STOP reached without error, or the
data ran out after several opcodes that import or call something (a payload with no STOP
still runs before the loader fails).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from modelward.policy import Policy
from modelward.scanners.base import Artifact, ScanBudget, ScanContext

__all__ = ["looks_like_pickle"]

#: Opcodes that can start a protocol 0/1 pickle (they push without popping).
START_OPCODES: Final = frozenset(b"(c]})NIFLSVXUTJKMGPBC")
VALID_OPCODES: Final = frozenset(b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])GBC") | frozenset(
    range(0x80, 0x99))
#: Opcodes the trial run may execute.
TRIAL_OPS: Final = 4096
#: Opcodes a truncated text stream must execute to count as a pickle.
MIN_TRUNCATED_OPS: Final = 3

_TRIAL_POLICY: Final = Policy(limits=replace(Policy().limits, max_pickle_ops=TRIAL_OPS))


def looks_like_pickle(head: bytes) -> bool:
    """Whether `head` (the first bytes of a stream) is the start of a pickle."""
    if len(head) < 2:
        return False
    first = head[0]
    if first == 0x80:
        return head[1] <= 5 and (len(head) == 2 or head[2] in VALID_OPCODES)
    if first not in START_OPCODES:
        return False
    from modelward.pickle_analysis.machine import Machine

    context = ScanContext(_TRIAL_POLICY, ScanBudget(math.inf))
    machine = Machine(Artifact(head, path="<sniff>", context=context), 0, None)
    machine.run()
    if machine.complete:
        return machine.pos >= 2
    if not machine.truncated and machine.limit_hit is None:
        return False
    return machine.ops >= MIN_TRUNCATED_OPS and (bool(machine.records) or machine.ops >= 64)
