"""modelward benchmarks: `make bench` (or `python bench/run.py [--scale 0.1]`).

Generates the inputs under bench/.data/ (once; reused afterwards), scans each in a fresh
process and prints MB/s, files/s, peak RSS and bytes actually read from disk. Figures
from a shared, noisy machine: compare runs on the same machine only.

Scan (issue "pickle family"): (a) ~1 GB PyTorch zip checkpoint, (b) a legacy-format
checkpoint of similar size, (c) 2,000 small pickles, (d) a ~300 MB joblib model, plus the
raw opcode rate of the pickle machine on in-pickle data. Other subsystems add their own
sections (bench/bench_*.py) which this script runs too.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
MB = 1 << 20


def _build(path: Path, make: Callable[[Path], None]) -> Path:
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        make(tmp)
        tmp.rename(path)
    return path


def _torch_state(total_mb: int) -> dict[str, object]:
    import torch

    n = max(1, total_mb // 16)
    gen = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(2048, 2048, generator=gen) for i in range(n)}


def make_zip_checkpoint(path: Path, mb: int) -> None:
    import torch

    torch.save(_torch_state(mb), path)


def make_legacy_checkpoint(path: Path, mb: int) -> None:
    import torch

    torch.save(_torch_state(mb), path, _use_new_zipfile_serialization=False)


def make_small_pickles(path: Path, count: int) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    model = LogisticRegression().fit(x, y)
    for i in range(count):
        obj = model if i % 2 else {"step": i, "weights": rng.normal(size=64), "name": f"run{i}"}
        (path / f"m{i:05d}.pkl").write_bytes(pickle.dumps(obj, protocol=4))


def make_joblib(path: Path, mb: int) -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 16)), rng.integers(0, 3, 2000)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    blob = {"model": forest, "embeddings": rng.normal(size=(mb * MB // 8 // 256, 256))}
    joblib.dump(blob, path)


def make_inline_pickle(path: Path, mb: int) -> None:
    chunks = [os.urandom(64 * 1024) for _ in range(mb * 16)]
    path.write_bytes(pickle.dumps({"shards": chunks, "meta": list(range(1000))}, protocol=4))


def make_dense_pickle(path: Path, mb: int) -> None:
    """A pickle where every byte is an opcode or a small argument (the machine's worst case):
    half floats, a quarter memoized short strings, a quarter ints, as training logs,
    vocabularies and hyper-parameter sweeps pickle them."""
    import random

    rnd = random.Random(0)
    size = mb * MB
    obj = {
        "floats": [rnd.random() for _ in range(size // 2 // 9)],
        "names": [f"tok{i}" for i in range(size // 4 // 11)],
        "ints": [rnd.randrange(1 << 30) for _ in range(size // 4 // 5)],
    }
    path.write_bytes(pickle.dumps(obj, protocol=4))


def measure(target: Path, jobs: int = 1) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), str(target), str(jobs)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def row(label: str, target: Path, jobs: int = 1) -> None:
    res = measure(target, jobs)
    size = size_of(target)
    secs = float(res["seconds"])  # type: ignore[arg-type]
    read = int(res["read_bytes"])  # type: ignore[arg-type]
    rss_kb = max(int(res["maxrss_kb"]), int(res.get("child_maxrss_kb", 0)))  # type: ignore[call-overload]
    if int(res.get("resident_bytes", 0)) > 0:  # type: ignore[call-overload]
        print(f"  note: {int(res['resident_bytes']) / MB:.1f} MB of {target.name} stayed "  # type: ignore[call-overload]
              "cached after eviction; bytes read below undercount")
    print(
        f"{label:<34} {size / MB:9.1f} MB {secs:8.3f} s {size / MB / secs:10.1f} MB/s "
        f"{int(res['files']) / secs:9.1f} files/s  rss {rss_kb / 1024:7.1f} MB  "  # type: ignore[call-overload]
        f"read {read / MB:8.2f} MB ({100 * read / max(size, 1):5.2f}%)  "
        f"verdict={res['verdict']}{' INCOMPLETE' if res['incomplete'] else ''}",
        flush=True,
    )


def scan_section(scale: float) -> None:
    gb = max(16, int(1024 * scale))
    print(f"== scan: pickle family (scale {scale}) ==")
    print(f"{'case':<34} {'size':>12} {'time':>10} {'rate':>15} {'files':>15}")
    row("(a) PyTorch zip checkpoint",
        _build(DATA / f"ckpt_zip_{gb}.pt", lambda p: make_zip_checkpoint(p, gb)))
    row("(b) PyTorch legacy checkpoint",
        _build(DATA / f"ckpt_legacy_{gb}.pt", lambda p: make_legacy_checkpoint(p, gb)))
    n = max(100, int(2000 * min(scale, 1.0)))
    small = _build(DATA / f"small_pickles_{n}", lambda p: make_small_pickles(p, n))
    row(f"(c) {n} small pickles, 1 process", small, jobs=1)
    row(f"(c) {n} small pickles, {os.cpu_count()} procs", small, jobs=os.cpu_count() or 1)
    jb = max(8, int(300 * scale))
    row("(d) joblib model", _build(DATA / f"model_{jb}.joblib", lambda p: make_joblib(p, jb)))
    inline = max(8, int(300 * scale))
    row("(e) pickle, inline byte payloads",
        _build(DATA / f"inline_{inline}.pkl", lambda p: make_inline_pickle(p, inline)))
    dense = max(8, int(100 * scale))
    row("(f) pickle, opcode-dense",
        _build(DATA / f"dense_{dense}.pkl", lambda p: make_dense_pickle(p, dense)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1.0")),
                        help="size factor for generated inputs (1.0 = the sizes the issues name)")
    parser.add_argument("--only", default="", help="comma-separated sections to run")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    started = time.perf_counter()
    sections = {"scan": scan_section}
    for name, extra in sorted((p.stem.removeprefix("bench_"), p) for p in HERE.glob("bench_*.py")):
        sections[name] = lambda scale, extra=extra: subprocess.run(
            [sys.executable, str(extra), "--scale", str(scale)], check=False)
    wanted = [s for s in args.only.split(",") if s] or list(sections)
    for name in wanted:
        sections[name](args.scale)
        print()
    print(f"benchmarks done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
