"""Raw pickle streams (``pickle.dump``, ``joblib.dump``, ``dill``, ``cloudpickle``).

Loading a pickle runs whatever callables it names: the format *is* a program. The scanner
runs modelward's symbolic pickle machine (`modelward.pickle_analysis`) over every pickle in
the stream, back to back, and reports what loading would import and call. joblib files are
pickles whose NumPy arrays sit inline after each ``NumpyArrayWrapper``; the machine skips
those bytes (or analyses object arrays' nested pickles) and the format is reported as
``joblib``. Compressed joblib files reach this scanner as the decompressed nested stream.

Rules:
    MW-PKL-001 dangerous-global (CRITICAL): imports or calls a known code-running callable.
    MW-PKL-002 unknown-global (MEDIUM): imports a callable outside the allowlist.
    MW-PKL-003 reflective-call (CRITICAL): calls a callable computed at load time (getattr...).
    MW-PKL-004 attribute-poisoning (HIGH): BUILD sets attributes on a module, class or function.
    MW-PKL-005 nested-pickle (HIGH): a pickle hidden in bytes handed to a loader or call.
    MW-PKL-006 malformed-pickle (LOW): the stream is truncated or breaks the pickle VM's rules.
    MW-PKL-007 data-after-stop (LOW): bytes after the final STOP opcode that are not a pickle.
    MW-PKL-008 multiple-pickles (LOW): several pickles stacked back to back in one stream.
    MW-PKL-009 suspicious-persistent-id (MEDIUM): a persistent id built by calls or imports.
    MW-PKL-010 pickle-resource-limit (MEDIUM): a budget stopped the analysis early.
    MW-PKL-011 unregistered-extension (MEDIUM): an EXT code absent from copyreg's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward.errors import ResourceLimitError
from modelward.pickle_analysis import PICKLE_RULES, analyze_stream, looks_like_pickle
from modelward.pickle_analysis.rules import PICKLE_RESOURCE_LIMIT
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "PickleScanner"]


class PickleScanner(Scanner):
    """Plain pickle streams, including joblib and dill files."""

    name: ClassVar[str] = "pickle"
    suffixes: ClassVar[frozenset[str]] = frozenset({
        ".pkl", ".pickle", ".joblib", ".dill", ".p", ".pck", ".pcl", ".pkl3", ".cloudpickle",
    })
    rules: ClassVar[tuple] = PICKLE_RULES  # type: ignore[type-arg]
    priority: ClassVar[int] = 10
    executes_code: ClassVar[bool] = True

    @override
    def claims(self, artifact: Artifact) -> bool:
        return looks_like_pickle(artifact.head, artifact.data)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        limit: str | None = None
        for analysis in analyze_stream(artifact):
            if analysis.joblib:
                artifact.format_detail = "joblib"
            for finding in analysis.findings:
                if finding.rule is PICKLE_RESOURCE_LIMIT and analysis.limit_hit is not None:
                    continue  # reported by the engine as MW-CORE-003, and the file FAILED
                yield finding
            limit = limit or analysis.limit_hit
        if limit is not None:
            raise ResourceLimitError(
                f"pickle analysis stopped: {limit}",
                hint="raise the pickle limits in [tool.modelward.limits] if the file is trusted",
            )


SCANNER: Final = PickleScanner()
