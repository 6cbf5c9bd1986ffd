"""Run one scan in a fresh process and print its cost as JSON (used by bench/run.py).

Evicts the target's pages from the page cache first (fsync, then posix_fadvise DONTNEED:
dirty pages of a freshly generated input cannot be dropped), so that `read_bytes` from
/proc/self/io counts what the scan really read from disk (readahead included). Reports how
many bytes were still cached after the eviction (`resident_bytes`, via mincore), so a
run where eviction did not work is visible rather than flattering.

Peak memory is VmHWM of this process (ru_maxrss would inherit the high-water mark of the
parent that generated the inputs across fork+exec) and, for parallel scans, the largest
worker's ru_maxrss.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import mmap
import os
import resource
import sys
import time
from pathlib import Path


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def _evict(path: Path) -> None:
    for file in _files(path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _resident(path: Path) -> int:
    """Bytes of `path` still in the page cache (mincore via a libc mmap), -1 if unknown."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    page = mmap.PAGESIZE
    total = 0
    for file in _files(path):
        size = file.stat().st_size
        if size == 0:
            continue
        fd = os.open(file, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                return -1
            try:
                vec = ctypes.create_string_buffer((size + page - 1) // page)
                if libc.mincore(addr, size, vec) != 0:
                    return -1
                total += sum(b & 1 for b in vec.raw) * page
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    return total


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _io() -> dict[str, int]:
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return {}
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


def main() -> None:
    target = Path(sys.argv[1])
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    import modelward  # noqa: F401  (import cost excluded from the timing)
    from modelward import scan_path
    from modelward.scanners import discover

    discover()
    _evict(target)
    resident = _resident(target)
    before = _io()
    started = time.perf_counter()
    report = scan_path(target, jobs=jobs)
    seconds = time.perf_counter() - started
    after = _io()
    worst = report.verdict
    print(json.dumps({
        "seconds": seconds,
        "files": len(report.files),
        "read_bytes": after.get("read_bytes", 0) - before.get("read_bytes", 0),
        "maxrss_kb": _peak_rss_kb(),
        "child_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "resident_bytes": resident,
        "verdict": worst.label if worst is not None else "clean",
        "formats": sorted({f.format or "?" for f in report.files}),
        "incomplete": not report.is_complete,
    }))


if __name__ == "__main__":
    main()
