"""Parallel, memory-flat hashing of model files and file shards.

Hashing is the whole cost of signing a large model, so this module is built for speed:
work items (whole files, or fixed-size shards of files) run on a thread pool, largest
first; each thread reads into one reusable buffer with ``readinto`` and feeds it to
`hashlib`, which releases the GIL for large updates, so threads hash on every core at
once. Memory is ``workers x buffer`` whatever the model size: nothing is mapped or
loaded whole.

A file that changes while it is hashed (size, modification time or inode differ before
and after, or a short read) raises `InputError`: a digest of a moving target proves
nothing, in either direction.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final, Protocol

from modelward.errors import BackendUnavailableError, InputError

__all__ = [
    "BUFFER_SIZE",
    "HashTask",
    "digest_name",
    "hash_tasks",
    "new_hasher",
]

BUFFER_SIZE: Final = 8 << 20
"""Bytes read per ``readinto``: large enough that hashlib runs without the GIL."""


class _Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...

    def digest(self) -> bytes: ...


def digest_name(hash_type: str) -> str:
    """Name of a digest as model-signing records it per resource.

    Args:
        hash_type: ``sha256``, ``blake2`` (BLAKE2b) or ``blake3``.

    Raises:
        InputError: an unknown hash type.
    """
    if hash_type == "sha256":
        return "sha256"
    if hash_type in ("blake2", "blake2b"):
        return "blake2b"
    if hash_type == "blake3":
        return "blake3"
    raise InputError(f"unsupported hash type {hash_type!r}", hint="use sha256")


def new_hasher(hash_type: str) -> Callable[[], _Hasher]:
    """Return a factory of streaming hashers for `hash_type`.

    Raises:
        InputError: unknown hash type.
        BackendUnavailableError: ``blake3`` requested but the package is missing.
    """
    name = digest_name(hash_type)
    if name == "sha256":
        return hashlib.sha256
    if name == "blake2b":
        return hashlib.blake2b
    try:
        import blake3
    except ImportError as err:
        raise BackendUnavailableError(
            "this signature uses BLAKE3 but the blake3 package is not installed",
            hint="pip install blake3",
        ) from err

    def make() -> _Hasher:
        hasher: _Hasher = blake3.blake3()
        return hasher

    return make


@dataclass(frozen=True, slots=True)
class HashTask:
    """One unit of hashing: bytes ``[start, end)`` of a file.

    Attributes:
        name: the resource name it produces (``path`` or ``path:start:end``).
        fs_path: where to read.
        start: first byte (included).
        end: last byte (excluded).
        size: the file size seen when the task was planned.
        mtime_ns: modification time seen when the task was planned.
        inode: ``(st_dev, st_ino)`` seen when the task was planned.
    """

    name: str
    fs_path: str
    start: int
    end: int
    size: int
    mtime_ns: int
    inode: tuple[int, int]


def _changed(task: HashTask, st: os.stat_result) -> bool:
    return (
        st.st_size != task.size
        or st.st_mtime_ns != task.mtime_ns
        or (st.st_dev, st.st_ino) != task.inode
    )


def _changed_error(task: HashTask) -> InputError:
    return InputError(
        f"{task.fs_path} changed while it was being hashed",
        hint="wait until nothing writes to the model, then run again",
    )


_local = threading.local()


def _buffer() -> bytearray:
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None:
        buf = bytearray(BUFFER_SIZE)
        _local.buf = buf
    return buf


def _hash_one(task: HashTask, factory: Callable[[], _Hasher]) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(task.fs_path, flags)
    except OSError as err:
        raise InputError(f"cannot read {task.fs_path}: {err.strerror}") from err
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or _changed(task, before):
            raise _changed_error(task)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, task.start, task.end - task.start, os.POSIX_FADV_SEQUENTIAL)
        hasher = factory()
        view = memoryview(_buffer())
        offset = task.start
        while offset < task.end:
            want = min(BUFFER_SIZE, task.end - offset)
            got = os.preadv(fd, [view[:want]], offset) if hasattr(os, "preadv") else _pread(
                fd, view, want, offset
            )
            if got <= 0:
                raise _changed_error(task)  # file shrank under us
            hasher.update(view[:got])
            offset += got
        after = os.fstat(fd)
    except OSError as err:
        raise InputError(f"cannot read {task.fs_path}: {err.strerror}") from err
    finally:
        os.close(fd)
    if _changed(task, after):
        raise _changed_error(task)
    return hasher.digest()


def _pread(fd: int, view: memoryview, want: int, offset: int) -> int:  # pragma: no cover
    data = os.pread(fd, want, offset)
    view[: len(data)] = data
    return len(data)


def hash_tasks(
    tasks: Sequence[HashTask],
    hash_type: str = "sha256",
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, bytes]:
    """Hash every task, in parallel, and map each task name to its digest.

    Args:
        tasks: what to hash.
        hash_type: ``sha256`` (default), ``blake2`` or ``blake3``.
        workers: threads to use; defaults to the number of CPUs.
        progress: called with the byte count of each finished task.

    Returns:
        ``{task.name: digest bytes}``.

    Raises:
        InputError: a file could not be read or changed while being hashed.
    """
    factory = new_hasher(hash_type)
    count = workers or os.cpu_count() or 1
    ordered = sorted(tasks, key=lambda t: t.end - t.start, reverse=True)
    if count == 1 or len(ordered) <= 1:
        out = {}
        for task in ordered:
            out[task.name] = _hash_one(task, factory)
            if progress:
                progress(task.end - task.start)
        return out
    results: dict[str, bytes] = {}
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="mw-hash") as pool:
        futures: dict[Future[bytes], HashTask] = {
            pool.submit(_hash_one, task, factory): task for task in ordered
        }
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        for future, task in futures.items():
            results[task.name] = future.result()
            if progress:
                progress(task.end - task.start)
    return results
