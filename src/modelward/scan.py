"""The scan engine: walk targets, identify each file by content, dispatch, enforce limits.

`scan_path` is the library entry point behind ``modelward scan``. For each file it maps the
bytes read-only (nothing is copied or loaded), asks the `ScannerSet` which scanner claims
the content, runs it, and recurses into the nested streams it yields (archive members,
decompressed payloads) up to the depth limit. One bad file never stops the scan: errors
become findings, and a file whose analysis stopped early is `FAILED`, never clean.

Rules:
    MW-CORE-001 unknown-format (INFO): content matches no format modelward analyses.
    MW-CORE-002 malformed-file (MEDIUM): content claims a format but does not parse.
    MW-CORE-003 resource-limit (MEDIUM): a size, depth, count or time budget stopped analysis.
    MW-CORE-004 extension-mismatch (LOW): the extension names another format than the content.
    MW-CORE-005 internal-error (MEDIUM): modelward failed on this file; it is not verified.
    MW-CORE-006 unreadable-file (MEDIUM): the file could not be opened or read.
    MW-CORE-007 symlink-escape (MEDIUM): a symbolic link points outside the scanned folder.
    MW-CORE-008 special-file (LOW): a device, FIFO or socket where a model file was expected.
    MW-CORE-009 container-mismatch (MEDIUM): a member's content is not what its container declares.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

from modelward import __version__
from modelward.errors import FormatError, InputError, ResourceLimitError
from modelward.findings import Finding, Location, Rule, RuleId, Severity
from modelward.policy import Policy
from modelward.results import FileResult, MemberInfo, ScanReport, Status
from modelward.scanners import ScannerSet, discover
from modelward.scanners.base import Artifact, Nested, ScanBudget, ScanContext

__all__ = ["CORE_RULES", "ProgressEvent", "scan_bytes", "scan_path"]

UNKNOWN_FORMAT: Final = Rule(
    RuleId("MW-CORE-001"), "unknown-format", Severity.INFO,
    "The content matches no format modelward analyses, so nothing is known about it.",
    "If this is a model file, report its format to modelward; otherwise ignore.",
)
MALFORMED_FILE: Final = Rule(
    RuleId("MW-CORE-002"), "malformed-file", Severity.MEDIUM,
    "The content claims a format but breaks its rules; loaders may read it differently "
    "from the scanner, so it cannot be verified safe.",
    "Obtain the file again from a trusted source; do not load it as it is.",
)
RESOURCE_LIMIT: Final = Rule(
    RuleId("MW-CORE-003"), "resource-limit", Severity.MEDIUM,
    "Analysis stopped at a size, depth, count or time budget; the rest was not analysed. "
    "Hostile files use sheer size or nesting to hide payloads from scanners.",
    "Inspect the file by other means, or raise the limit in [tool.modelward.limits] "
    "if the file is trusted to be that large.",
)
EXTENSION_MISMATCH: Final = Rule(
    RuleId("MW-CORE-004"), "extension-mismatch", Severity.LOW,
    "The file extension names another format than the content; tools that pick a loader "
    "or scanner by extension are misled, a known way to slip pickles past scanners.",
    "Rename the file after its real format, or find out why it was disguised.",
)
INTERNAL_ERROR: Final = Rule(
    RuleId("MW-CORE-005"), "internal-error", Severity.MEDIUM,
    "modelward failed while analysing this file, so it is not verified.",
    "Report the error (run with -v for the traceback); treat the file as unverified.",
)
UNREADABLE_FILE: Final = Rule(
    RuleId("MW-CORE-006"), "unreadable-file", Severity.MEDIUM,
    "The file could not be opened or read, so it is not verified.",
    "Check permissions and that the file still exists, then scan again.",
)
SYMLINK_ESCAPE: Final = Rule(
    RuleId("MW-CORE-007"), "symlink-escape", Severity.MEDIUM,
    "A symbolic link in the model folder points outside it; loaders follow it and read "
    "a file the scan did not cover (or a system file).",
    "Replace the link by the file it should be, or remove it.",
)
SPECIAL_FILE: Final = Rule(
    RuleId("MW-CORE-008"), "special-file", Severity.LOW,
    "A device, FIFO or socket sits where model files are expected; reading it can hang or "
    "leak data. It was not read.",
    "Remove it from the model folder.",
)
CONTAINER_MISMATCH: Final = Rule(
    RuleId("MW-CORE-009"), "container-mismatch", Severity.MEDIUM,
    "A member's content is not the format its container declares, so the container's "
    "loader and modelward could read it differently.",
    "Do not load the artifact until the member is explained.",
)

CORE_RULES: Final[tuple[Rule, ...]] = (
    UNKNOWN_FORMAT, MALFORMED_FILE, RESOURCE_LIMIT, EXTENSION_MISMATCH, INTERNAL_ERROR,
    UNREADABLE_FILE, SYMLINK_ESCAPE, SPECIAL_FILE, CONTAINER_MISMATCH,
)

PARALLEL_MIN_FILES: Final = 8


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Reported after each file: how far the scan has got."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    path: str


@dataclass(frozen=True, slots=True)
class _Entry:
    fs_path: str
    display: str
    size: int
    preset: FileResult | None = None  # decided while walking (links, special files)


class _FileScan:
    """Scans one top-level file and everything nested in it into a `FileResult`."""

    def __init__(self, result: FileResult, scanners: ScannerSet, context: ScanContext) -> None:
        self.result = result
        self.scanners = scanners
        self.context = context
        self.ignored = context.policy.ignored_rules

    def add(self, finding: Finding) -> None:
        if finding.rule.id in self.ignored:
            self.result.suppressed += 1
        else:
            self.result.findings.append(finding)

    def fail(self, finding: Finding) -> None:
        self.add(finding)
        self.result.status = Status.FAILED

    def run(self, artifact: Artifact) -> None:
        try:
            self._scan(artifact, expect=None)
        except RecursionError:
            self.fail(artifact.finding(RESOURCE_LIMIT, "nesting too deep to analyse"))

    def _scan(self, artifact: Artifact, expect: str | None) -> None:
        scanner = None
        if expect is not None:
            expected = self.scanners.get(expect)
            if expected is not None and expected.claims(artifact):
                scanner = expected
        if scanner is None:
            scanner = self.scanners.identify(artifact)
            if expect is not None and self.scanners.get(expect) is not None:
                self.add(artifact.finding(
                    CONTAINER_MISMATCH,
                    f"the container declares this member as {expect}, but its content is "
                    f"{scanner.name if scanner else 'not recognised'}",
                    evidence=repr(artifact.head[:16]),
                ))
        if scanner is None:
            what = "empty file" if artifact.size == 0 else "content matches no known format"
            self.add(artifact.finding(UNKNOWN_FORMAT, f"not analysed: {what}",
                                      evidence=repr(artifact.head[:16]) if artifact.size else None))
            if artifact.depth == 0:
                self.result.status = Status.SKIPPED
            else:
                self.result.members.append(MemberInfo(artifact.members, None, artifact.size))
            return
        self._check_extension(artifact, scanner.name, scanner.suffixes, scanner.executes_code)
        member_index = None
        if artifact.depth == 0:
            self.result.format = scanner.name
        else:
            member_index = len(self.result.members)
            self.result.members.append(MemberInfo(artifact.members, scanner.name, artifact.size))
        try:
            for out in scanner.scan(artifact):
                if isinstance(out, Finding):
                    self.add(out)
                else:
                    self._nested(artifact, out)
                artifact.check_deadline()
        except ResourceLimitError as err:
            self.fail(artifact.finding(RESOURCE_LIMIT, f"{scanner.name}: {err.message}",
                                       offset=err.offset, remediation=err.hint))
        except FormatError as err:
            self.fail(artifact.finding(MALFORMED_FILE,
                                       f"malformed {scanner.name} data: {err.message}",
                                       offset=err.offset))
        detail = artifact.format_detail
        if detail:
            if member_index is None:
                self.result.format = detail
            else:
                old = self.result.members[member_index]
                self.result.members[member_index] = MemberInfo(old.members, detail, old.size)

    def _check_extension(
        self, artifact: Artifact, name: str, own: frozenset[str], risky: bool
    ) -> None:
        suffix = artifact.suffix
        if not suffix or suffix in own:
            return
        owners = [s.name for s in self.scanners.owners_of_suffix(suffix)]
        if not owners:
            return
        self.add(artifact.finding(
            EXTENSION_MISMATCH,
            f"extension {suffix} suggests {'/'.join(owners)}, but the content is {name}"
            + ("; a code-executing format is disguised" if risky else ""),
            severity=Severity.MEDIUM if risky else Severity.LOW,
            evidence=artifact.name,
        ))

    def _nested(self, parent: Artifact, nested: Nested) -> None:
        members = (*parent.members, nested.member)
        where = Location(parent.path, members)
        if parent.depth + 1 > self.context.limits.max_depth:
            self.fail(Finding(RESOURCE_LIMIT, RESOURCE_LIMIT.severity,
                              f"nesting deeper than {self.context.limits.max_depth} levels; "
                              "not analysed", where))
            return
        try:
            data = nested.data() if callable(nested.data) else nested.data
        except ResourceLimitError as err:
            self.fail(Finding(RESOURCE_LIMIT, RESOURCE_LIMIT.severity, err.message, where,
                              remediation=err.hint))
            return
        except FormatError as err:
            self.fail(Finding(MALFORMED_FILE, MALFORMED_FILE.severity,
                              f"member could not be extracted: {err.message}", where))
            return
        child = Artifact(data, path=parent.path, members=members, depth=parent.depth + 1,
                         context=self.context)
        self._scan(child, nested.expect)


def _advise(mapped: mmap.mmap | None, advice: str) -> None:
    """Tell the kernel how the mapping will be read (no-op where unsupported).

    Scanners touch headers, indexes and pickles and skip tensor payloads, so the mapping
    is ``MADV_RANDOM``: a page fault reads that page, not the kernel's read-around window
    (8 MiB on some disks), which would otherwise pull in the payloads next to every
    header a container scanner looks at. Hashing the whole file switches to sequential.
    """
    flag = getattr(mmap, advice, None)
    if mapped is None or flag is None or not hasattr(mapped, "madvise"):
        return
    try:
        mapped.madvise(flag)
    except OSError:
        pass


def _sha256(view: memoryview) -> str:
    digest = hashlib.sha256()
    step = 8 << 20
    for start in range(0, len(view), step):
        digest.update(view[start : start + step])
    return digest.hexdigest()


def scan_file(
    fs_path: str,
    display: str,
    policy: Policy,
    scanners: ScannerSet | None = None,
    *,
    hash_files: bool = False,
    raise_internal: bool = False,
) -> FileResult:
    """Scan one file on disk into a `FileResult` (never raises for bad content).

    Args:
        fs_path: path to open.
        display: path to show in the report (relative to the scanned root).
        policy: policy and limits.
        scanners: scanner set; defaults to `discover()`.
        hash_files: also compute the file's SHA-256 (reads the whole file).
        raise_internal: re-raise unexpected exceptions (tests use this to surface bugs).
    """
    scanners = scanners or discover()
    started = time.monotonic()
    result = FileResult(path=display, format=None, size=0)
    context = ScanContext(policy, ScanBudget(started + policy.limits.max_seconds_per_file),
                          fs_path=os.path.abspath(fs_path))
    try:
        fd = os.open(fs_path, os.O_RDONLY)
    except OSError as err:
        result.status = Status.FAILED
        result.findings.append(Finding(UNREADABLE_FILE, UNREADABLE_FILE.severity,
                                       f"cannot open: {err.strerror}", Location(display)))
        return result
    mapped: mmap.mmap | None = None
    try:
        info = os.fstat(fd)
        result.size = info.st_size
        if info.st_size > 0:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            _advise(mapped, "MADV_RANDOM")
            view = memoryview(mapped)
        else:
            view = memoryview(b"")
        try:
            if hash_files:
                _advise(mapped, "MADV_SEQUENTIAL")
                result.sha256 = _sha256(view)
                _advise(mapped, "MADV_RANDOM")
            artifact = Artifact(view, path=display, context=context)
            _FileScan(result, scanners, context).run(artifact)
        except Exception as err:
            if raise_internal:
                raise
            result.status = Status.FAILED
            where = traceback.extract_tb(err.__traceback__)[-1]
            result.findings.append(Finding(
                INTERNAL_ERROR, INTERNAL_ERROR.severity,
                f"analysis failed with {type(err).__name__}: {err}", Location(display),
                evidence=f"{Path(where.filename).name}:{where.lineno}",
            ))
        finally:
            view.release()
    except OSError as err:
        result.status = Status.FAILED
        result.findings.append(Finding(UNREADABLE_FILE, UNREADABLE_FILE.severity,
                                       f"cannot read: {err.strerror or err}", Location(display)))
    finally:
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:  # a scanner kept a view alive; the GC will close it
                pass
        os.close(fd)
    result.findings.sort(key=Finding.sort_key)
    result.duration_s = time.monotonic() - started
    return result


def scan_bytes(
    data: bytes,
    name: str = "<bytes>",
    *,
    policy: Policy | None = None,
    scanners: ScannerSet | None = None,
    raise_internal: bool = False,
) -> FileResult:
    """Scan bytes in memory as if they were a file called `name` (for tests and services)."""
    policy = policy or Policy()
    scanners = scanners or discover()
    started = time.monotonic()
    result = FileResult(path=name, format=None, size=len(data))
    context = ScanContext(policy, ScanBudget(started + policy.limits.max_seconds_per_file))
    try:
        _FileScan(result, scanners, context).run(Artifact(data, path=name, context=context))
    except Exception as err:
        if raise_internal:
            raise
        result.status = Status.FAILED
        result.findings.append(Finding(INTERNAL_ERROR, INTERNAL_ERROR.severity,
                                       f"analysis failed with {type(err).__name__}: {err}",
                                       Location(name)))
    result.findings.sort(key=Finding.sort_key)
    result.duration_s = time.monotonic() - started
    return result


def _display(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    if rel.startswith(".."):
        rel = os.path.abspath(path)
    return Path(rel).as_posix()


def _check_root(root: str, names: Sequence[str]) -> str:
    """The absolute report root, after checking every target lies inside it.

    Raises:
        InputError: `root` is not a folder, or a target is outside it.
    """
    if not os.path.isdir(root):
        raise InputError(f"--root {root}: not a folder")
    top = os.path.abspath(root)
    for name in names:
        where = os.path.abspath(name)
        if os.path.commonpath([top, where]) != top:
            raise InputError(f"{name} is outside the report root {root}",
                             hint="give a --root folder that contains every target")
    return top


def _is_inside(real: str, top: str) -> bool:
    """Whether resolved path `real` is `top` or lies under it (both already resolved)."""
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _walk(target: str, root: str, policy: Policy) -> Iterable[_Entry]:
    """Files under `target` (a file or folder), without following links out of it."""
    top = os.path.realpath(target)
    seen: set[str] = set()

    def entry(path: str) -> _Entry:
        display = _display(path, root)
        try:
            st = os.lstat(path)
        except OSError as err:
            res = FileResult(display, None, 0, Status.FAILED, [Finding(
                UNREADABLE_FILE, UNREADABLE_FILE.severity, f"cannot stat: {err.strerror}",
                Location(display))])
            return _Entry(path, display, 0, res)
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(path)
            inside = _is_inside(real, top)
            if not inside and os.path.isdir(target):
                res = FileResult(display, None, 0, Status.SKIPPED, [Finding(
                    SYMLINK_ESCAPE, SYMLINK_ESCAPE.severity,
                    "symbolic link leads outside the scanned folder; its target was not scanned",
                    Location(display), evidence=f"{display} -> {os.readlink(path)}")])
                return _Entry(path, display, 0, res)
            try:
                st = os.stat(path)
            except OSError as err:
                res = FileResult(display, None, 0, Status.FAILED, [Finding(
                    UNREADABLE_FILE, UNREADABLE_FILE.severity,
                    f"broken symbolic link: {err.strerror}", Location(display))])
                return _Entry(path, display, 0, res)
        if not stat.S_ISREG(st.st_mode):
            res = FileResult(display, None, 0, Status.SKIPPED, [Finding(
                SPECIAL_FILE, SPECIAL_FILE.severity, "not a regular file; not read",
                Location(display))])
            return _Entry(path, display, 0, res)
        return _Entry(path, display, st.st_size)

    if not os.path.isdir(target):
        yield entry(target)
        return
    for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in policy.exclude)
        # A link to a folder inside the target needs no entry: that folder is walked itself.
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
                       and not _is_inside(os.path.realpath(os.path.join(dirpath, d)), top)]
        for name in sorted(filenames) + linked_dirs:
            path = os.path.join(dirpath, name)
            real = os.path.realpath(path)
            if real in seen and not os.path.islink(path):
                continue
            seen.add(real)
            yield entry(path)


def scan_path(
    targets: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    policy: Policy | None = None,
    scanners: ScannerSet | None = None,
    jobs: int | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    hash_files: bool = False,
    raise_internal: bool = False,
    root: str | os.PathLike[str] | None = None,
) -> ScanReport:
    """Scan files, folders and archives without loading anything they contain.

    Args:
        targets: one path or several.
        policy: allowlist, ignored rules, fail-on level and limits; defaults to the safe one.
        scanners: scanner set; defaults to the built-ins plus plug-ins.
        jobs: worker processes; defaults to the CPU count (one for few files).
        progress: called after each file with a `ProgressEvent`.
        hash_files: record each file's SHA-256 (reads every byte; off by default).
        raise_internal: re-raise unexpected exceptions instead of recording them.
        root: folder that file paths in the report are relative to (e.g. the repository
            root, so SARIF alerts land on repository paths). Defaults to the folder when
            one folder is scanned, the file's folder for one file, else the current
            directory.

    Returns:
        The report; `ScanReport.exit_code()` turns it into 0/1/2.

    Raises:
        InputError: a target does not exist, or lies outside `root`.
    """
    policy = policy or Policy()
    if isinstance(targets, (str, os.PathLike)):
        targets = [targets]
    names = [os.fspath(t) for t in targets]
    if not names:
        raise InputError("nothing to scan", hint="give at least one file or folder")
    for name in names:
        if not os.path.lexists(name):
            raise InputError(f"{name}: no such file or directory")
    if root is not None:
        root = _check_root(os.fspath(root), names)
    else:
        root = names[0] if len(names) == 1 and os.path.isdir(names[0]) else (
            os.path.dirname(os.path.abspath(names[0])) if len(names) == 1 else os.getcwd())
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    entries = [e for name in names for e in _walk(name, root, policy)]
    total_bytes = sum(e.size for e in entries)
    results: list[FileResult | None] = [e.preset for e in entries]
    todo = [i for i, e in enumerate(entries) if e.preset is None]
    done_bytes = 0
    done_files = len(entries) - len(todo)

    def report(i: int, res: FileResult) -> None:
        nonlocal done_bytes, done_files
        results[i] = res
        done_files += 1
        done_bytes += entries[i].size
        if progress is not None:
            progress(ProgressEvent(done_files, len(entries), done_bytes, total_bytes, res.path))

    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers > 1 and len(todo) >= PARALLEL_MIN_FILES:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                i: pool.submit(scan_file, entries[i].fs_path, entries[i].display, policy, scanners,
                               hash_files=hash_files, raise_internal=raise_internal)
                for i in todo
            }
            for i, future in futures.items():
                report(i, future.result())
    else:
        for i in todo:
            report(i, scan_file(entries[i].fs_path, entries[i].display, policy, scanners,
                                hash_files=hash_files, raise_internal=raise_internal))
    return ScanReport(
        targets=names,
        files=[r for r in results if r is not None],
        policy=policy,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        version=__version__,
    )
