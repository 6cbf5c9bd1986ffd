"""Pickles hidden inside a pickle's data, analysed with the same machine.

A payload can carry a second pickle as bytes (or as latin-1 text, the way protocols 0-2
store bytes) and hand it to ``pickle.loads``, ``torch.load`` or ``io.BytesIO``: the outer
pickle then looks harmless. `DataFlow.assess` (`modelward.pickle_analysis.dataflow`) calls
`analyse_nested` for each such value reaching a loader or a risky call; it lives apart
because it is one self-contained job (spawn a machine, re-home its findings), not part of
rating calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelward.findings import Finding, Severity
from modelward.pickle_analysis.rules import NESTED_PICKLE, PICKLE_RESOURCE_LIMIT
from modelward.pickle_analysis.symbols import Blob, Call, Value, render

if TYPE_CHECKING:
    from modelward.pickle_analysis.dataflow import DataFlow

__all__ = ["analyse_nested"]


def analyse_nested(flow: DataFlow, call: Call, value: Value) -> bool:
    """Analyse `value` as a pickle nested in `call`'s data, if it looks like one.

    Raw byte payloads are analysed in place (findings keep their offsets in the file);
    text (protocols 0-2 carry bytes as latin-1 text for ``_codecs.encode``) is encoded
    the way the loader would and analysed as a member of its own.
    """
    from modelward.pickle_analysis.sniff import looks_like_pickle
    from modelward.scanners.base import Artifact

    if isinstance(value, Blob):
        key: object = value.start if value.start is not None else id(value)
        head = value.head if isinstance(value.head, bytes) else \
            value.head.encode("latin-1", "replace")
    elif isinstance(value, (bytes, str)):
        key = value
        head = value[:64] if isinstance(value, bytes) else \
            value[:64].encode("latin-1", "replace")
    else:
        return False
    if key in flow._nested_done or not looks_like_pickle(head):
        return False
    flow._nested_done.add(key)
    limits = flow.artifact.limits
    if isinstance(value, Blob) and value.length > limits.max_member_bytes:
        flow.add(flow.artifact.finding(
            PICKLE_RESOURCE_LIMIT, f"nested pickle of {value.length} bytes not analysed",
            offset=value.start if value.start is not None else call.offset))
        return True
    if isinstance(value, Blob) and value.start is not None and value.kind != "str":
        sub = flow.spawn(value.start, value.start + value.length)
    else:
        raw: str | bytes | None
        if isinstance(value, Blob):
            raw = value.full
            if raw is None and value.start is not None:
                raw = str(flow.data[value.start : value.start + value.length], "utf-8",
                          "replace")
        else:
            raw = value
        if raw is None:
            return False
        payload = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
        child = Artifact(payload, path=flow.artifact.path,
                         members=(*flow.artifact.members, f"<pickle@{call.offset}>"),
                         depth=flow.artifact.depth, context=flow.artifact.context)
        sub = flow.spawn(0, None, child)
    sub.run()
    where = f"nested pickle passed to {render(call, 160)} at byte {call.offset}"
    worst = max((f.severity for f in sub.findings), default=Severity.INFO)
    for finding in sub.findings:
        flow.add(Finding(finding.rule, finding.severity, f"{where}: {finding.message}",
                         finding.location, finding.evidence, finding.remediation,
                         (*finding.details, ("nested_in", str(call.offset)))))
    flow.add(flow.artifact.finding(
        NESTED_PICKLE, f"a pickle is hidden in data handed to {render(call.func, 80)}; "
        f"it was analysed too (worst finding inside: {worst.label})",
        severity=max(Severity.HIGH, worst), offset=call.offset,
        evidence=render(call)))
    return True
