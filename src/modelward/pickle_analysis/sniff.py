"""Is this a pickle? A content sniff that claims real pickles and not text files.

Protocol 2+ pickles start with ``PROTO`` (``\\x80`` and a protocol byte). Protocol 0 and 1
pickles have no magic: they start with an ordinary opcode such as ``(``, ``c``, ``]`` or
``N``, which is also how plenty of text starts. For those the machine runs on the head
and the bytes count as a pickle only when they parse: STOP reached without error, or the
data ran out after several opcodes that import or call something (a payload with no STOP
still runs before the loader fails), or the stream breaks the VM's rules only after it
called something off the allowlist (the loader ran that call before failing).

Protocol 2+ opcodes (``NEWTRUE``, ``SHORT_BINUNICODE``, ``FRAME``...) need no ``PROTO``
opcode before them: the unpicklers run them in any stream, so they can start one too. A
first line longer than the head (a long ``S'...'`` string) is read from the whole data.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from modelward.policy import Policy
from modelward.scanners.base import Artifact, ScanBudget, ScanContext

__all__ = ["looks_like_pickle"]

#: Opcodes that can start a protocol 0/1 pickle (they push without popping).
START_OPCODES: Final = frozenset(b"(c]})NIFLSVXUTJKMGPBC") | frozenset(
    (0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x95, 0x96))
VALID_OPCODES: Final = frozenset(b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])GBC") | frozenset(
    range(0x80, 0x99))
#: Opcodes the trial run may execute.
TRIAL_OPS: Final = 4096
#: Opcodes a truncated text stream must execute to count as a pickle.
MIN_TRUNCATED_OPS: Final = 3

_TRIAL_POLICY: Final = Policy(limits=replace(Policy().limits, max_pickle_ops=TRIAL_OPS))


def looks_like_pickle(head: bytes, data: bytes | memoryview | None = None) -> bool:
    """Whether `head` (the first bytes of a stream) is the start of a pickle.

    Args:
        head: the first bytes.
        data: the whole stream, when available: read when the trial run is cut off by the
            end of `head` before it could decide.
    """
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
    if machine.truncated and data is not None and len(data) > len(head) \
            and machine.ops < MIN_TRUNCATED_OPS:
        # Cut off by the end of the head (a first line longer than it): decide on all of it.
        machine = Machine(Artifact(data, path="<sniff>", context=context), 0, None)
        machine.run()
    if machine.complete:
        return machine.pos >= 2
    if not machine.truncated and machine.limit_hit is None:
        # Broken after the loader already called something off the allowlist: a payload
        # followed by a deliberate error still runs.
        return machine.ops >= MIN_TRUNCATED_OPS and any(
            call.kind in ("call", "new") for call in machine.events)
    return machine.ops >= MIN_TRUNCATED_OPS and (bool(machine.records) or machine.ops >= 64)
