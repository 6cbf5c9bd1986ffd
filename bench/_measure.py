"""Run one scan in a fresh process and print its cost as JSON (used by bench/run.py).

Evicts the target's pages from the page cache first (posix_fadvise DONTNEED), so that
`read_bytes` from /proc/self/io counts what the scan really read from disk.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def _evict(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


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
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "verdict": worst.label if worst is not None else "clean",
        "formats": sorted({f.format or "?" for f in report.files}),
        "incomplete": not report.is_complete,
    }))


if __name__ == "__main__":
    main()
