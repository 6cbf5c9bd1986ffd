"""Manifests: every file (or file shard) of a model paired with its digest.

The layout follows the OpenSSF model-signing format (``model-signing`` 1.x) exactly, so
signatures interoperate both ways:

- a model is a directory (resource names are POSIX paths relative to it) or a single
  file (its one resource is named ``"."``);
- method ``files``: one resource per file, its plain digest; method ``shards``: one per
  fixed-size slice ``path:start:end`` (empty files have no shard and so no resource),
  with algorithm ``sha256-sharded-<shard_size>``;
- resources are ordered by path *components* (``a/c`` sorts before ``a.b``) then offsets,
  and the root digest is SHA-256 over the concatenated raw digests in that order;
- ``ignore_paths`` are relative paths whose files (and whose children) are left out.

Walking is strict: symbolic links are refused unless allowed, and then only when they
stay inside the model; devices, FIFOs and sockets are refused; folders with more files
than `MAX_FILES` are refused. Each refusal is an `InputError` naming the path.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from modelward.errors import InputError
from modelward.signing.hashing import HashTask, digest_name, hash_tasks

__all__ = [
    "DEFAULT_IGNORES",
    "DEFAULT_SHARD_SIZE",
    "MAX_FILES",
    "Manifest",
    "ManifestDiff",
    "Resource",
    "Serialization",
    "build_manifest",
    "diff_manifests",
    "file_of",
]

GIT_IGNORES: Final = (".git", ".gitattributes", ".github", ".gitignore")
"""What model-signing ignores by default; we do the same."""

DEFAULT_IGNORES: Final = GIT_IGNORES
DEFAULT_SHARD_SIZE: Final = 256 << 20
"""256 MiB: shards small enough to keep every core busy on a few multi-GB files, large
enough that a 1 TB model's manifest stays near 1 MB."""

MAX_FILES: Final = 200_000
"""Folders with more files than this are refused: no model has that many, a hostile
folder might, and the manifest would no longer be reviewable."""


@dataclass(frozen=True, slots=True)
class Serialization:
    """How a manifest was computed: the ``predicate.serialization`` of a signature.

    Attributes:
        method: ``files`` or ``shards``.
        hash_type: ``sha256`` (what modelward writes), ``blake2`` or ``blake3``.
        shard_size: bytes per shard (``shards`` only).
        allow_symlinks: whether links inside the model were followed.
        ignore_paths: relative POSIX paths left out, with their children.
    """

    method: str = "files"
    hash_type: str = "sha256"
    shard_size: int = DEFAULT_SHARD_SIZE
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORES

    def __post_init__(self) -> None:
        if self.method not in ("files", "shards"):
            raise InputError(f"unknown serialization method {self.method!r}", hint="files|shards")
        digest_name(self.hash_type)
        if self.method == "shards" and self.shard_size <= 0:
            raise InputError("shard size must be positive")

    @property
    def algorithm(self) -> str:
        """The per-resource algorithm name model-signing records."""
        name = digest_name(self.hash_type)
        return f"{name}-sharded-{self.shard_size}" if self.method == "shards" else name

    def to_json(self) -> dict[str, Any]:
        """The ``serialization`` object of the predicate (integers stay integers)."""
        out: dict[str, Any] = {
            "method": self.method,
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, data: object) -> Serialization:
        """Parse a ``serialization`` object, as model-signing or modelward wrote it.

        Raises:
            InputError: missing or ill-typed fields.
        """
        if not isinstance(data, Mapping):
            raise InputError("serialization must be an object")
        method = data.get("method")
        hash_type = data.get("hash_type")
        allow = data.get("allow_symlinks", False)
        ignores = data.get("ignore_paths", [])
        if not isinstance(method, str) or not isinstance(hash_type, str):
            raise InputError("serialization needs string 'method' and 'hash_type'")
        if not isinstance(allow, bool):
            raise InputError("serialization 'allow_symlinks' must be a boolean")
        if not isinstance(ignores, list) or not all(isinstance(p, str) for p in ignores):
            raise InputError("serialization 'ignore_paths' must be a list of strings")
        shard_size = DEFAULT_SHARD_SIZE
        if method == "shards":
            raw = data.get("shard_size")
            # model-signing 1.1.1 writes the shard size as a float (1000000000.0).
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != int(raw):
                raise InputError("serialization 'shard_size' must be an integer")
            shard_size = int(raw)
        return cls(method, hash_type, shard_size, allow, tuple(ignores))


@dataclass(frozen=True, slots=True)
class Resource:
    """One manifest entry: a name (``path`` or ``path:start:end``) and its digest."""

    name: str
    algorithm: str
    digest: bytes

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest.hex()}


def _sort_key(name: str, method: str) -> tuple[tuple[str, ...], int, int]:
    # model-signing sorts PurePosixPath keys, which compare by path components.
    if method == "shards":
        path, start, end = _split_shard(name)
        return (PurePosixPath(path).parts, start, end)
    return (PurePosixPath(name).parts, 0, 0)


def _split_shard(name: str) -> tuple[str, int, int]:
    path, sep1, rest = name.rpartition(":")
    path, sep2, start = path.rpartition(":")
    if not (sep1 and sep2) or not start.isdigit() or not rest.isdigit():
        raise InputError(f"invalid shard resource name {name!r}", hint="expected path:start:end")
    return path, int(start), int(rest)


def file_of(name: str, method: str) -> str:
    """The file a resource belongs to (the name itself for ``files``)."""
    return _split_shard(name)[0] if method == "shards" else name


@dataclass(frozen=True, slots=True)
class Manifest:
    """A model's resources, in canonical order, under one serialization.

    Attributes:
        model_name: informative name (last path component); not covered by comparisons.
        serialization: how the resources were computed.
        resources: canonical-ordered entries.
        empty_files: files of size 0 (``shards`` has no resource for them).
    """

    model_name: str
    serialization: Serialization
    resources: tuple[Resource, ...]
    empty_files: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        model_name: str,
        serialization: Serialization,
        resources: Iterable[Resource],
        empty_files: Iterable[str] = (),
    ) -> Manifest:
        """Build a manifest, putting resources in model-signing's canonical order."""
        method = serialization.method
        ordered = tuple(sorted(resources, key=lambda r: _sort_key(r.name, method)))
        return cls(model_name, serialization, ordered, tuple(sorted(empty_files)))

    @property
    def root_digest(self) -> str:
        """Hex SHA-256 over every resource digest, in canonical order."""
        hasher = hashlib.sha256()
        for resource in self.resources:
            hasher.update(resource.digest)
        return hasher.hexdigest()

    def files(self) -> dict[str, list[Resource]]:
        """Resources grouped by the file they belong to."""
        out: dict[str, list[Resource]] = {name: [] for name in self.empty_files}
        for resource in self.resources:
            out.setdefault(file_of(resource.name, self.serialization.method), []).append(resource)
        return out

    def digests(self) -> dict[str, tuple[str, bytes]]:
        """``{resource name: (algorithm, digest)}``."""
        return {r.name: (r.algorithm, r.digest) for r in self.resources}


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """Which files differ between a signed manifest and the model on disk."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """One line per kind of difference, each naming every file."""
        lines = []
        for label, names in (("changed", self.changed), ("removed", self.removed),
                             ("added", self.added)):
            if names:
                lines.append(f"{label} ({len(names)}): {', '.join(names)}")
        return "; ".join(lines) or "no differences"


def diff_manifests(expected: Manifest, actual: Manifest, *, check_empty: bool) -> ManifestDiff:
    """Compare two manifests computed under the same serialization, file by file.

    Args:
        expected: what the signature says.
        actual: what is on disk now.
        check_empty: compare empty files too (``shards`` manifests only know them when
            the signer recorded them, as modelward does).
    """
    exp = expected.files()
    act = actual.files()
    if not check_empty:
        exp = {k: v for k, v in exp.items() if v}
        act = {k: v for k, v in act.items() if v}
    added = sorted(set(act) - set(exp))
    removed = sorted(set(exp) - set(act))
    changed = sorted(
        name for name in set(exp) & set(act)
        if {(r.name, r.algorithm, r.digest) for r in exp[name]}
        != {(r.name, r.algorithm, r.digest) for r in act[name]}
    )
    return ManifestDiff(tuple(added), tuple(removed), tuple(changed))


@dataclass(slots=True)
class _Walk:
    root: Path
    allow_symlinks: bool
    ignores: tuple[tuple[str, ...], ...]
    max_files: int
    real_root: str = ""
    found: list[tuple[str, str, os.stat_result]] = field(default_factory=list)

    def ignored(self, parts: tuple[str, ...]) -> bool:
        return any(parts[: len(ig)] == ig for ig in self.ignores)

    def add(self, rel: str, fs_path: str, st: os.stat_result) -> None:
        if len(self.found) >= self.max_files:
            raise InputError(
                f"{self.root} holds more than {self.max_files} files",
                hint="sign a smaller folder, or raise the limit (max_files)",
            )
        self.found.append((rel, fs_path, st))

    def follow(self, rel: str, fs_path: str) -> os.stat_result:
        target = os.path.realpath(fs_path)
        if not self.allow_symlinks:
            raise InputError(
                f"{rel} is a symbolic link (to {os.readlink(fs_path)})",
                hint="replace it by the file, or pass --allow-symlinks if it stays inside",
            )
        if os.path.commonpath([self.real_root, target]) != self.real_root:
            raise InputError(
                f"{rel} is a symbolic link that leaves the model folder (to {target})",
                hint="replace the link by the file it should be",
            )
        try:
            st = os.stat(target)
        except OSError as err:
            raise InputError(f"{rel} is a broken symbolic link: {err.strerror}") from err
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{rel} is a symbolic link to something other than a file")
        return st

    def walk(self, directory: str, prefix: tuple[str, ...]) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            raise InputError(f"cannot list {directory}: {err.strerror}") from err
        for entry in entries:
            parts = (*prefix, entry.name)
            if self.ignored(parts):
                continue
            rel = "/".join(parts)
            if entry.is_symlink():
                st = self.follow(rel, entry.path)
                self.add(rel, entry.path, st)
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                self.walk(entry.path, parts)
            elif stat.S_ISREG(st.st_mode):
                self.add(rel, entry.path, st)
            else:
                raise InputError(
                    f"{rel} is a device, FIFO or socket, not a model file",
                    hint="remove it from the model folder",
                )


def _plan(
    path: Path, serialization: Serialization, max_files: int
) -> tuple[list[HashTask], list[str]]:
    if path.is_symlink() and not serialization.allow_symlinks:
        raise InputError(f"{path} is a symbolic link", hint="name the real path instead")
    if not path.exists():
        raise InputError(f"{path} does not exist")
    ignores = tuple(
        PurePosixPath(p).parts for p in serialization.ignore_paths if PurePosixPath(p).parts
    )
    walker = _Walk(path, serialization.allow_symlinks, ignores, max_files,
                   real_root=os.path.realpath(path))
    if path.is_dir():
        walker.walk(str(path), ())
    elif path.is_file():
        walker.add(".", str(path), path.stat())
    else:
        raise InputError(f"{path} is neither a file nor a folder")
    tasks: list[HashTask] = []
    empty: list[str] = []
    for rel, fs_path, st in walker.found:
        inode = (st.st_dev, st.st_ino)
        if serialization.method == "files":
            tasks.append(HashTask(rel, fs_path, 0, st.st_size, st.st_size, st.st_mtime_ns, inode))
        elif st.st_size == 0:
            empty.append(rel)
        else:
            size = serialization.shard_size
            for start in range(0, st.st_size, size):
                end = min(start + size, st.st_size)
                tasks.append(HashTask(f"{rel}:{start}:{end}", fs_path, start, end,
                                      st.st_size, st.st_mtime_ns, inode))
    return tasks, empty


def model_name_of(path: Path) -> str:
    """The informative model name model-signing records: the last path component."""
    return path.name or os.path.basename(path.resolve())


def build_manifest(
    path: Path,
    serialization: Serialization,
    *,
    extra_ignores: Sequence[str] = (),
    workers: int | None = None,
    max_files: int = MAX_FILES,
) -> Manifest:
    """Hash a model folder or file into a manifest.

    Args:
        path: the model folder, or a single model file.
        serialization: method, hash, shard size, symlink policy and ignores to apply.
        extra_ignores: more relative paths to leave out without recording them
            (the signature file being written or verified).
        workers: hashing threads (default: every CPU).
        max_files: refuse folders holding more files.

    Raises:
        InputError: missing path, refused link or special file, too many files, or a
            file that changed while being hashed.
    """
    walk_ser = serialization
    if extra_ignores:
        walk_ser = Serialization(
            serialization.method, serialization.hash_type, serialization.shard_size,
            serialization.allow_symlinks, (*serialization.ignore_paths, *extra_ignores),
        )
    tasks, empty = _plan(path, walk_ser, max_files)
    digests = hash_tasks(tasks, serialization.hash_type, workers=workers)
    algorithm = serialization.algorithm
    resources = [Resource(name, algorithm, digest) for name, digest in digests.items()]
    return Manifest.create(model_name_of(path), serialization, resources, empty)
