"""PyTorch zip checkpoints (``torch.save``) and TorchScript archives (``torch.jit.save``).

``torch.load`` takes the zip path only when a file starts with ``PK\\x03\\x04``, then reads
it with miniz (``caffe2/serialize/inline_container.cc``): the archive folder is the part
before the first ``/`` of the *first* central directory name, records are looked up as
``<folder>/<name>`` case-insensitively, local header names, CRCs and general-purpose flags
are ignored. It unpickles ``<folder>/data.pkl`` (this is where code runs) and reads each
storage from ``<folder>/data/<key>``. When the records include ``constants.pkl`` it
dispatches to ``torch.jit.load`` instead, which compiles the TorchScript source in
``code/`` and unpickles ``data.pkl`` and ``constants.pkl`` with its own unpickler.

This scanner mirrors those lookups on `modelward._internal.zipread` (sharing the archive
checks of `modelward.scanners.zip`, rules MW-ZIP-*), analyses every ``data.pkl`` candidate
with the pickle machine (MW-PKL-*), cross-checks the persistent ids against the storage
records, and hands every other non-storage member back to the engine. Tensor payloads are
never read.

Rules:
    MW-PT-001 missing-pickle (MEDIUM): no data.pkl where torch.load looks for it.
    MW-PT-002 layout-anomaly (LOW): records outside the archive folder, bad version or byteorder.
    MW-PT-003 unexpected-member (LOW): a member torch.load never reads; scanned anyway.
    MW-PT-004 storage-mismatch (LOW): a persistent id names a missing or wrongly sized storage.
    MW-PT-005 torchscript-code (LOW): TorchScript source that torch.jit.load compiles and runs.
    MW-PT-006 torchscript-custom-op (MEDIUM): TorchScript calls a non-PyTorch operator.
    MW-PT-007 torchscript-dangerous-call (HIGH): TorchScript reaches file, process or code loading.
    MW-PT-011 torchscript-extra-file (INFO): an extra/ file torch.jit.load hands to its caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.zipread import LOCAL_SIG, ZipArchive, ZipEntry
from modelward.errors import FormatError
from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.pickle_analysis.rules import PICKLE_RULES
from modelward.scanners._torchscript import read_code
from modelward.scanners.base import Artifact, Scanner, ScanOutput
from modelward.scanners.zip import (
    PARSER_DISAGREEMENT,
    ZIP_RULES,
    archive_findings,
    crc_findings,
    member_finding,
    member_nested,
    open_archive,
)

__all__ = ["ELEMENT_SIZES", "PyTorchScanner", "member_artifact", "pickle_findings"]

_TORCH_SER: Final = "https://pytorch.org/docs/stable/notes/serialization.html"

MISSING_PICKLE: Final = Rule(
    RuleId("MW-PT-001"),
    "missing-pickle",
    Severity.MEDIUM,
    "The archive looks like a PyTorch checkpoint but has no data.pkl where torch.load "
    "looks for it (<first folder>/data.pkl); what the loader runs cannot be determined.",
    "Do not load it; re-save the model with torch.save from a trusted source.",
    (_TORCH_SER,),
)
LAYOUT_ANOMALY: Final = Rule(
    RuleId("MW-PT-002"),
    "layout-anomaly",
    Severity.LOW,
    "The archive departs from the layout torch.save writes (records outside the archive "
    "folder, unreadable version or byteorder records).",
    "Re-save the model with torch.save; find out what modified the file.",
    (_TORCH_SER,),
)
UNEXPECTED_MEMBER: Final = Rule(
    RuleId("MW-PT-003"),
    "unexpected-member",
    Severity.LOW,
    "A member that torch.load never reads; it was analysed anyway, since other tools or a "
    "second-stage payload may use it.",
    "Remove members that torch.save did not write.",
)
STORAGE_MISMATCH: Final = Rule(
    RuleId("MW-PT-004"),
    "storage-mismatch",
    Severity.LOW,
    "A storage named by data.pkl is missing, or its size disagrees with the element count "
    "and type data.pkl declares; the checkpoint was edited after torch.save.",
    "Obtain the checkpoint again from a trusted source.",
)
TORCHSCRIPT_CODE: Final = Rule(
    RuleId("MW-PT-005"),
    "torchscript-code",
    Severity.LOW,
    "A TorchScript archive: torch.jit.load (and torch.load, which dispatches to it) compiles "
    "the source under code/ and runs it (__setstate__ at load, forward at inference). The "
    "source was read statically.",
    "Load TorchScript only from trusted publishers; prefer weights-only formats "
    "(safetensors) when only weights are needed.",
    ("https://pytorch.org/docs/stable/jit.html",),
)
TORCHSCRIPT_CUSTOM_OP: Final = Rule(
    RuleId("MW-PT-006"),
    "torchscript-custom-op",
    Severity.MEDIUM,
    "TorchScript source calls an operator outside PyTorch's own namespaces; custom "
    "operators are native code loaded from a library and cannot be verified.",
    "Find out which library provides the operator and review it before loading.",
)
TORCHSCRIPT_DANGEROUS_CALL: Final = Rule(
    RuleId("MW-PT-007"),
    "torchscript-dangerous-call",
    Severity.HIGH,
    "TorchScript source calls an operator or builtin that reads or writes files, loads "
    "libraries or code.",
    "Do not load the archive until the code is reviewed.",
)

TORCHSCRIPT_EXTRA_FILE: Final = Rule(
    RuleId("MW-PT-011"),
    "torchscript-extra-file",
    Severity.INFO,
    "A file under extra/ in a TorchScript archive. torch.jit.load never interprets it: it "
    "returns the raw bytes to callers that name it in _extra_files, and what the caller "
    "does with them (json.loads, pickle.loads) is up to the caller. Its content was "
    "analysed as a nested stream (see the findings on the member).",
    "Check what the loading code does with the extra files it requests.",
    ("https://pytorch.org/docs/stable/generated/torch.jit.load.html",),
)

PT_RULES: Final[tuple[Rule, ...]] = (
    MISSING_PICKLE,
    LAYOUT_ANOMALY,
    UNEXPECTED_MEMBER,
    STORAGE_MISMATCH,
    TORCHSCRIPT_CODE,
    TORCHSCRIPT_CUSTOM_OP,
    TORCHSCRIPT_DANGEROUS_CALL,
    TORCHSCRIPT_EXTRA_FILE,
)

#: Bytes per element of each legacy storage class (``torch.<Name>``) torch.save names.
ELEMENT_SIZES: Final[dict[str, int]] = {
    "torch.DoubleStorage": 8,
    "torch.FloatStorage": 4,
    "torch.HalfStorage": 2,
    "torch.BFloat16Storage": 2,
    "torch.LongStorage": 8,
    "torch.IntStorage": 4,
    "torch.ShortStorage": 2,
    "torch.CharStorage": 1,
    "torch.ByteStorage": 1,
    "torch.BoolStorage": 1,
    "torch.ComplexDoubleStorage": 16,
    "torch.ComplexFloatStorage": 8,
    "torch.QInt8Storage": 1,
    "torch.QUInt8Storage": 1,
    "torch.QInt32Storage": 4,
    "torch.QUInt4x2Storage": 1,
    "torch.QUInt2x4Storage": 1,
    "torch.UntypedStorage": 1,
    "torch.cuda.FloatStorage": 4,
    "torch.cuda.DoubleStorage": 8,
    "torch.cuda.HalfStorage": 2,
    "torch.cuda.LongStorage": 8,
    "torch.cuda.IntStorage": 4,
    "torch.cuda.ByteStorage": 1,
    "torch.cuda.BFloat16Storage": 2,
    "torch.cuda.BoolStorage": 1,
}

#: Records torch.save / torch.jit.save write besides data.pkl and data/<key>.
_KNOWN_RECORDS: Final = frozenset(
    {
        b"version",
        b".data/version",
        b"byteorder",
        b".format_version",
        b".storage_alignment",
        b".data/serialization_id",
        b"constants.pkl",
    }
)
#: TorchScript folders torch.jit.load reads from (constants/ holds constants.pkl's tensors).
#: Other ``.data/`` records are never read (checked against torch 2.13: torch.jit.load
#: succeeds with an unreadable pickle there), so they count as unexpected members.
_TORCHSCRIPT_DIRS: Final = (b"code/", b"constants/")
_MAX_SMALL_RECORD: Final = 64


def member_artifact(artifact: Artifact, name: str, data: memoryview | bytes) -> Artifact:
    """A child artifact for a member analysed in place (findings point at the member)."""
    return Artifact(
        data,
        path=artifact.path,
        members=(*artifact.members, name),
        depth=artifact.depth + 1,
        context=artifact.context,
    )


def pickle_findings(
    child: Artifact, start: int = 0
) -> tuple[list[Finding], list[object], int, bool]:
    """Run the pickle machine on the pickle at `start` of `child`, then on any bytes after it.

    Loaders run one pickle and ignore the rest, but other tools may not: what follows the
    STOP opcode is analysed too (fail closed).

    Returns:
        Findings, persistent ids, the offset after the first pickle, and whether it completed.
    """
    from modelward.pickle_analysis import analyze_stream

    results = analyze_stream(child, start)
    findings = [f for result in results for f in result.findings]
    first = results[0]
    return findings, list(first.persistent_ids), first.end, first.complete


class PyTorchScanner(Scanner):
    """``torch.save`` zip checkpoints and ``torch.jit.save`` TorchScript archives."""

    name: ClassVar[str] = "pytorch"
    suffixes: ClassVar[frozenset[str]] = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".ptc"})
    rules: ClassVar[tuple[Rule, ...]] = PT_RULES + ZIP_RULES + PICKLE_RULES
    priority: ClassVar[int] = 30
    executes_code: ClassVar[bool] = True

    @override
    def claims(self, artifact: Artifact) -> bool:
        if not artifact.head.startswith(LOCAL_SIG):
            return False
        try:
            archive = open_archive(artifact)
        except FormatError:
            return False
        return any(
            e.raw_name.lower().endswith((b"/data.pkl", b"/constants.pkl"))
            or e.raw_name.lower() in (b"data.pkl", b"constants.pkl")
            for view in archive.views()
            for e in view.entries
        )

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        archive = open_archive(artifact)
        yield from archive_findings(artifact, archive)
        for other in archive.alternates:
            yield artifact.finding(
                PARSER_DISAGREEMENT,
                f"zipfile and PyTorch's reader find two different central directories "
                f"({len(archive.entries)} and {len(other.entries)} members); both archives "
                "were analysed",
                offset=other.entries[0].cd_offset if other.entries else None,
                evidence=", ".join(e.name for e in other.entries[:4])[:200],
            )
        for view in archive.views():
            yield from self._scan_view(artifact, view)

    def _scan_view(self, artifact: Artifact, archive: ZipArchive) -> Iterator[ScanOutput]:
        """Mirror torch.load's lookups on one reader's view of the archive."""
        first = archive.entries[0].raw_name if archive.entries else b""
        folder = first.split(b"/", 1)[0] + b"/" if b"/" in first else b""
        if not folder:
            yield artifact.finding(
                LAYOUT_ANOMALY,
                "the first member is not in a folder; torch.load refuses the "
                "archive, other loaders may not",
                evidence=repr(first[:120]),
            )
        outside = [e for e in archive.entries if not e.raw_name.startswith(folder)]
        for entry in outside[:20]:
            yield member_finding(
                artifact,
                LAYOUT_ANOMALY,
                entry,
                f"record outside the archive folder {folder.decode('utf-8', 'replace')!r}; "
                "torch.load refuses the archive",
                offset=entry.cd_offset,
            )
        records = {
            e.raw_name[len(folder) :] for e in archive.entries if e.raw_name.startswith(folder)
        }
        torchscript = b"constants.pkl" in records
        if torchscript:
            artifact.format_detail = "torchscript"
        yield from self._check_small_records(artifact, archive, folder)

        bad_crc: list[ZipEntry] = []
        handled: set[int] = set()
        storages: dict[str, tuple[str, int]] = {}
        candidates = archive.find_ci(folder + b"data.pkl")
        if not candidates:
            # Fail closed: analyse every */data.pkl even if torch.load would look elsewhere.
            candidates = [
                e
                for e in archive.entries
                if e.raw_name.lower().endswith(b"data.pkl")
                and not e.is_dir
                and e.raw_name.lower().split(b"/")[-1] == b"data.pkl"
            ]
            yield artifact.finding(
                MISSING_PICKLE,
                f"no {(folder + b'data.pkl').decode('utf-8', 'replace')} record"
                + (f"; analysing {len(candidates)} other data.pkl member(s)" if candidates else ""),
            )
        for entry in candidates:
            handled.add(entry.index)
            yield from self._analyse_data_pkl(artifact, archive, entry, storages, bad_crc)
        yield from self._check_storages(artifact, archive, folder, storages, handled)

        code_files = 0
        for entry in archive.entries:
            if entry.index in handled or entry.is_dir or entry.is_symlink or entry.is_encrypted:
                continue
            if entry.data_offset is None or entry.method not in (0, 8, 12, 14):
                continue
            rel = (
                entry.raw_name[len(folder) :]
                if entry.raw_name.startswith(folder)
                else entry.raw_name
            )
            if rel in _KNOWN_RECORDS:
                if rel == b"constants.pkl":
                    yield member_nested(artifact, archive, entry, expect="pickle", crc_sink=bad_crc)
                continue
            if torchscript and rel.startswith(b"code/"):
                if rel.endswith(b".debug_pkl"):
                    yield member_nested(artifact, archive, entry, expect="pickle", crc_sink=bad_crc)
                else:
                    code_files += 1
                    yield from self._scan_code(artifact, archive, entry, bad_crc)
                continue
            if torchscript and rel.startswith(b"extra/"):
                yield member_finding(
                    artifact,
                    TORCHSCRIPT_EXTRA_FILE,
                    entry,
                    "extra file: torch.jit.load returns its raw bytes to callers that request "
                    "it with _extra_files and never interprets it; content analysed",
                    offset=entry.data_offset,
                    evidence=entry.name[:200],
                )
                yield member_nested(artifact, archive, entry, crc_sink=bad_crc)
                continue
            if torchscript and rel.startswith(_TORCHSCRIPT_DIRS):
                yield member_nested(artifact, archive, entry, crc_sink=bad_crc)
                continue
            yield member_finding(
                artifact,
                UNEXPECTED_MEMBER,
                entry,
                "member that torch.load never reads; analysed anyway",
                offset=entry.data_offset,
                evidence=entry.name[:200],
            )
            yield member_nested(artifact, archive, entry, crc_sink=bad_crc)
            yield from crc_findings(artifact, bad_crc)
        yield from crc_findings(artifact, bad_crc)
        if torchscript:
            yield artifact.finding(
                TORCHSCRIPT_CODE,
                f"TorchScript archive with {code_files} source file(s) that torch.jit.load "
                "compiles and runs",
                evidence=f"{code_files} file(s) under code/",
            )

    def _check_small_records(
        self, artifact: Artifact, archive: ZipArchive, folder: bytes
    ) -> Iterator[Finding]:
        for name, allowed in ((b"byteorder", (b"little", b"big")),):
            for entry in archive.find_ci(folder + name):
                value = self._small(archive, entry, artifact)
                if value is not None and value not in allowed:
                    yield member_finding(
                        artifact,
                        LAYOUT_ANOMALY,
                        entry,
                        "byteorder record is neither 'little' nor 'big'",
                        offset=entry.data_offset,
                        evidence=repr(value[:40]),
                    )
        for name in (b".data/version", b"version"):
            for entry in archive.find_ci(folder + name):
                value = self._small(archive, entry, artifact)
                if value is not None and not value.strip().isdigit():
                    yield member_finding(
                        artifact,
                        LAYOUT_ANOMALY,
                        entry,
                        "version record is not a number",
                        offset=entry.data_offset,
                        evidence=repr(value[:40]),
                    )

    @staticmethod
    def _small(archive: ZipArchive, entry: ZipEntry, artifact: Artifact) -> bytes | None:
        if entry.size > _MAX_SMALL_RECORD or entry.compressed_size > _MAX_SMALL_RECORD * 4:
            return b"<" + str(entry.size).encode() + b" bytes>"
        try:
            return bytes(archive.member_bytes(entry, artifact.limits))
        except FormatError:
            return None

    def _analyse_data_pkl(
        self,
        artifact: Artifact,
        archive: ZipArchive,
        entry: ZipEntry,
        storages: dict[str, tuple[str, int]],
        bad_crc: list[ZipEntry],
    ) -> Iterator[Finding]:
        crc: list[bool] = []

        def spend(n: int) -> None:
            artifact.context.budget.spend_decompressed(n, artifact.limits)

        try:
            data = archive.member_bytes(entry, artifact.limits, spend, crc)
        except FormatError as err:
            yield member_finding(
                artifact,
                MISSING_PICKLE,
                entry,
                f"data.pkl cannot be read: {err.message}",
                offset=err.offset,
            )
            return
        if crc and not crc[0]:
            bad_crc.append(entry)
        child = member_artifact(artifact, entry.name, data)
        findings, pids, _, _ = pickle_findings(child)
        yield from findings
        for pid in pids:
            if (
                isinstance(pid, tuple)
                and len(pid) >= 5
                and pid[0] == "storage"
                and isinstance(pid[2], str)
            ):
                numel = pid[4] if isinstance(pid[4], int) else -1
                storages.setdefault(pid[2], (str(pid[1]), numel))
            else:
                yield member_finding(
                    artifact,
                    STORAGE_MISMATCH,
                    entry,
                    "persistent id is not a ('storage', type, key, location, "
                    "numel) tuple; torch.load cannot resolve it",
                    evidence=repr(pid)[:200],
                )

    def _check_storages(
        self,
        artifact: Artifact,
        archive: ZipArchive,
        folder: bytes,
        storages: dict[str, tuple[str, int]],
        handled: set[int],
    ) -> Iterator[Finding]:
        for key, (type_name, numel) in sorted(storages.items()):
            found = archive.find_ci(folder + b"data/" + key.encode("utf-8", "surrogatepass"))
            if not found:
                yield artifact.finding(
                    STORAGE_MISMATCH,
                    f"data.pkl references storage {key!r} but data/{key} is missing",
                    evidence=f"{type_name} key={key!r}",
                )
                continue
            for entry in found:
                handled.add(entry.index)
                size = ELEMENT_SIZES.get(type_name)
                if size is not None and numel >= 0 and entry.size != numel * size:
                    yield member_finding(
                        artifact,
                        STORAGE_MISMATCH,
                        entry,
                        f"storage holds {entry.size} bytes but data.pkl declares {numel} "
                        f"elements of {type_name} ({numel * size} bytes)",
                        offset=entry.data_offset,
                    )
        # data/<key> records nobody references are left for the main loop: reported and scanned.

    def _scan_code(
        self, artifact: Artifact, archive: ZipArchive, entry: ZipEntry, bad_crc: list[ZipEntry]
    ) -> Iterator[Finding]:
        crc: list[bool] = []

        def spend(n: int) -> None:
            artifact.context.budget.spend_decompressed(n, artifact.limits)

        try:
            source = bytes(archive.member_bytes(entry, artifact.limits, spend, crc))
        except FormatError as err:
            yield member_finding(
                artifact,
                TORCHSCRIPT_CUSTOM_OP,
                entry,
                f"TorchScript source cannot be read: {err.message}; not verified",
            )
            return
        if crc and not crc[0]:
            bad_crc.append(entry)
        for use in read_code(source):
            where = f"line {use.line}" if use.line else None
            if use.kind == "custom-op":
                yield member_finding(
                    artifact,
                    TORCHSCRIPT_CUSTOM_OP,
                    entry,
                    f"uses custom operator or class {use.text}" + (f" ({where})" if where else ""),
                    evidence=use.text,
                )
            elif use.kind == "dangerous-call":
                yield member_finding(
                    artifact,
                    TORCHSCRIPT_DANGEROUS_CALL,
                    entry,
                    f"calls {use.text}, which reaches files, libraries or code"
                    + (f" ({where})" if where else ""),
                    evidence=use.text,
                )
            elif use.kind == "load-hook":
                yield member_finding(
                    artifact,
                    TORCHSCRIPT_CODE,
                    entry,
                    "defines __setstate__, which runs while the archive loads"
                    + (f" ({where})" if where else ""),
                    evidence=use.text,
                )
            else:
                yield member_finding(
                    artifact,
                    TORCHSCRIPT_CUSTOM_OP,
                    entry,
                    f"TorchScript source could not be parsed ({use.text}); not verified",
                    severity=Severity.MEDIUM,
                    evidence=use.text,
                )


SCANNER: Final = PyTorchScanner()
