"""Keras v3 ``.keras`` archives.

A ``.keras`` file is a zip holding ``config.json`` (the architecture Keras rebuilds by
importing and calling what it names), ``metadata.json`` (Keras version, date) and the
weights (``model.weights.h5``, or ``.npz``), plus optional ``assets/``. The risks sit in
``config.json``: Lambda bytecode (CVE-2024-3660), ``module``/``class_name`` pointing outside
Keras (CVE-2025-1550), Keras' own non-modelling functions as gadgets (CVE-2025-8747
``get_file``, CVE-2025-9906 ``enable_unsafe_deserialization``), layers that read outside the
archive (``TFSMLayer``, vocabulary paths). Archive checks come from the generic zip
scanner; the weights file goes back to the engine (the HDF5 scanner analyses it).

Rules:
    MW-KERAS-001 lambda-bytecode (CRITICAL): Lambda layer with marshalled Python bytecode.
    MW-KERAS-002 dangerous-reference (CRITICAL): config names os, builtins or a Keras gadget.
    MW-KERAS-003 custom-object (MEDIUM): class or function outside Keras' own API.
    MW-KERAS-004 external-resource (HIGH): layer reads a file or URL (TFSMLayer, vocabulary path).
    MW-KERAS-005 malformed-config (MEDIUM): config.json or metadata.json is not valid JSON.
    MW-KERAS-006 missing-config (MEDIUM): config.json cannot be read.
    MW-KERAS-008 unexpected-member (LOW): a member outside the .keras layout.
    MW-ZIP-001 path-traversal (HIGH): a member name escapes the extraction folder.
    MW-ZIP-002 link-member (HIGH): a member is a symbolic link.
    MW-ZIP-003 decompression-bomb (MEDIUM): members inflate beyond the limits.
    MW-ZIP-004 parser-disagreement (MEDIUM): zip readers could see different members or bytes.
    MW-ZIP-005 unreadable-member (MEDIUM): a member is encrypted or uses an unsupported method.
    MW-ZIP-006 crc-mismatch (LOW): a member's CRC-32 does not match its content.
    MW-ZIP-007 trailing-data (LOW): bytes hide after the archive.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.zipread import ZipArchive, ZipEntry, is_zip_head, parse_zip
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners._keras_config import (
    CONFIG_RULES,
    MALFORMED_CONFIG,
    MISSING_CONFIG,
    analyze_config,
    decode_config,
)
from modelward.scanners.base import Artifact, Scanner, ScanOutput
from modelward.scanners.zip import (
    ZIP_RULES,
    archive_findings,
    crc_findings,
    member_finding,
    member_nested,
    open_archive,
)

__all__ = ["SCANNER", "UNEXPECTED_MEMBER", "KerasScanner"]

UNEXPECTED_MEMBER: Final = Rule(
    RuleId("MW-KERAS-008"), "unexpected-member", Severity.LOW,
    "The archive holds a member outside the .keras layout (config.json, metadata.json, "
    "model.weights.*, assets/); Keras ignores it, but it travels with the model and may be "
    "picked up by other tools.",
    "Find out why the file is there; remove it or scan it on its own.",
)

_LAYOUT: Final = frozenset({"config.json", "metadata.json", "model.weights.h5",
                            "model.weights.npz", "model.weights.json"})
_WEIGHTS_EXPECT: Final = {"model.weights.h5": "hdf5"}


def _names(archive: ZipArchive) -> set[str]:
    return {e.zipfile_name for e in archive.entries}


class KerasScanner(Scanner):
    """Keras v3 zips: config.json analysed, weights and assets handed to the engine."""

    name: ClassVar[str] = "keras"
    suffixes: ClassVar[frozenset[str]] = frozenset({".keras"})
    rules: ClassVar[tuple[Rule, ...]] = (*CONFIG_RULES, UNEXPECTED_MEMBER, *ZIP_RULES)
    priority: ClassVar[int] = 20
    executes_code: ClassVar[bool] = True

    @override
    def claims(self, artifact: Artifact) -> bool:
        if not is_zip_head(artifact.head):
            return False
        try:
            archive = parse_zip(artifact.data, artifact.limits)
        except FormatError:
            return False
        names = _names(archive)
        return "config.json" in names and bool(
            names & {"metadata.json", "model.weights.h5", "model.weights.npz"})

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        archive = open_archive(artifact)
        yield from archive_findings(artifact, archive)
        configs = [e for e in archive.entries if e.zipfile_name == "config.json"]
        if not configs:
            yield artifact.finding(MISSING_CONFIG, "the archive has no config.json")
        for entry in configs:
            yield from self._config(artifact, archive, entry)
        for entry in archive.entries:
            if entry.zipfile_name == "metadata.json":
                yield from self._metadata(artifact, archive, entry)
        bad: list[ZipEntry] = []
        for entry in archive.entries:
            name = entry.zipfile_name
            if entry.is_dir or entry.is_symlink or entry.is_encrypted:
                continue
            if name not in _LAYOUT and not name.startswith("assets/"):
                yield member_finding(artifact, UNEXPECTED_MEMBER, entry,
                                     "member outside the .keras layout", offset=entry.cd_offset,
                                     evidence=name[:200])
            if name in ("config.json", "metadata.json"):
                continue
            if entry.data_offset is None or entry.method not in (0, 8, 12, 14):
                continue
            yield member_nested(artifact, archive, entry, expect=_WEIGHTS_EXPECT.get(name),
                                crc_sink=bad)
            yield from crc_findings(artifact, bad)
        artifact.format_detail = "keras-v3"

    def _read(self, artifact: Artifact, archive: ZipArchive, entry: ZipEntry) -> bytes | None:
        limits = artifact.limits
        if entry.size > limits.max_header_bytes:
            raise ResourceLimitError(
                f"{entry.name} declares {entry.size} bytes, over the "
                f"{limits.max_header_bytes}-byte header limit", offset=entry.cd_offset)
        budget = artifact.context.budget
        try:
            data = archive.member_bytes(entry, limits,
                                        lambda n: budget.spend_decompressed(n, limits))
        except ResourceLimitError:
            raise
        except FormatError:
            return None
        return bytes(data)

    def _config(self, artifact: Artifact, archive: ZipArchive,
                entry: ZipEntry) -> Iterator[ScanOutput]:
        data = self._read(artifact, archive, entry)
        if data is None:
            yield member_finding(artifact, MISSING_CONFIG, entry,
                                 "config.json cannot be read (encrypted, corrupt or unsupported "
                                 "compression)", offset=entry.cd_offset)
            return
        # Findings point at the member, not just the archive.
        member = Artifact(data, path=artifact.path, members=(*artifact.members, entry.name),
                          depth=artifact.depth + 1, context=artifact.context)
        config, bad = decode_config(member, data, "config.json")
        if bad is not None:
            yield bad
            return
        yield from analyze_config(member, config, what="config.json", legacy_h5=False)

    def _metadata(self, artifact: Artifact, archive: ZipArchive,
                  entry: ZipEntry) -> Iterator[ScanOutput]:
        data = self._read(artifact, archive, entry)
        if data is None:
            return
        meta, bad = decode_config(artifact, data, "metadata.json", entry.data_offset)
        if bad is not None:
            yield bad
        elif not isinstance(meta, dict):
            yield member_finding(artifact, MALFORMED_CONFIG, entry,
                                 "metadata.json is not a JSON object", offset=entry.data_offset)


SCANNER: Final = KerasScanner()
