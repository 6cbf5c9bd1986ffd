"""Benchmark: hashing throughput of signing and verifying a multi-GB model folder.

Compares, on one run over the same folder (several safetensors-like shards plus small
files, generated under ``bench/.data/``):

- ``sha256sum`` over every file (one process, the coreutils baseline);
- raw parallel SHA-256: every core hashing 64 MiB slices of every file at once, the
  best rate this machine reaches (not a usable digest: the ceiling to compare with);
- the ``model-signing`` package's own ``sign key`` / ``verify key`` (its CLI);
- ``modelward sign`` / ``verify``, with ``--method files`` (default) and ``shards``.

Each runs in its own process, after one warm-up read so every contender reads from the
page cache alike. With ``--repeat N`` the contenders run in N rounds, alternating (so a
burst of load from elsewhere hits them alike); the table gives the median and best
seconds, the MB/s of the median and the peak RSS. It ends with the load average and
whether each target holds: modelward sign/verify no slower than model-signing's, and
within 10% of the raw parallel SHA-256 rate of the same run (rate >= 0.9 x raw).

Usage: ``python bench/bench_signing.py [--size-gb 4 | --scale 1.0] [--shards 4] [--repeat 5]
[--data DIR] [--keep]``
(``--scale`` is what ``bench/run.py`` passes: 1.0 = 4 GB; it keeps the generated folder
so that later runs reuse it.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DATA = Path(__file__).parent / ".data"
PY = sys.executable

RAW_PARALLEL = r"""
import hashlib, os, sys
from concurrent.futures import ThreadPoolExecutor
files = sys.argv[1:]
step = 64 << 20
jobs = [(f, s, min(s + step, os.path.getsize(f))) for f in files
        for s in range(0, max(os.path.getsize(f), 1), step)]
def work(job):
    f, s, e = job
    buf = bytearray(8 << 20); mv = memoryview(buf); h = hashlib.sha256()
    fd = os.open(f, os.O_RDONLY)
    try:
        while s < e:
            n = os.preadv(fd, [mv[: min(len(buf), e - s)]], s)
            if n <= 0: break
            h.update(mv[:n]); s += n
    finally:
        os.close(fd)
    return h.digest()
with ThreadPoolExecutor(os.cpu_count()) as pool:
    list(pool.map(work, jobs))
"""


def make_model(folder: Path, size_gb: float, shards: int) -> list[Path]:
    """Write `shards` weight files totalling `size_gb` GB plus small config files."""
    marker = folder / ".complete.json"
    spec = {"size_gb": size_gb, "shards": shards}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != marker.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_shard = int(size_gb * 1e9 / shards)
    block = bytearray(os.urandom(8 << 20))
    for i in range(shards):
        path = folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        with path.open("wb") as handle:
            left = per_shard
            while left > 0:
                block[:8] = (left + i).to_bytes(8, "little")  # no two blocks alike
                n = min(left, len(block))
                handle.write(memoryview(block)[:n])
                left -= n
    (folder / "config.json").write_text(json.dumps({"architectures": ["Bench"]}))
    (folder / "tokenizer.json").write_bytes(os.urandom(2 << 20))
    (folder / "generation_config.json").write_text("{}")
    marker.write_text(json.dumps(spec))
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != marker.name)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, float]:
    """Run `cmd`; return (seconds, peak RSS in MiB, exit code, CPU seconds user+system)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return elapsed, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=4.0, help="total weights size (GB)")
    parser.add_argument("--shards", type=int, default=4, help="number of weight files")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds, contenders alternating; the median is reported")
    parser.add_argument("--data", type=Path, default=DATA,
                        help=f"where the generated model lives (default {DATA})")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    parser.add_argument("--scale", type=float, default=None,
                        help="size factor used by bench/run.py (1.0 = 4 GB; implies --keep)")
    args = parser.parse_args()
    if args.scale is not None:
        args.size_gb, args.keep = 4.0 * args.scale, True

    model = args.data / "model"
    work = args.data / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = make_model(model, args.size_gb, args.shards)
    total = sum(p.stat().st_size for p in files)
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = work / "key.pem", work / "key.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for path in files:  # warm the page cache once for everybody
        with path.open("rb") as handle:
            while handle.read(16 << 20):
                pass

    ms = [PY, "-c", "from model_signing._cli import main; main()"]
    mw = [PY, "-c",
                                                   "import sys; from modelward.cli import main; "
                                                   "sys.exit(main())"]
    ms_sig, mw_sig, mw_shard_sig = work / "ms.sig", work / "mw.sig", work / "mw-shards.sig"
    contenders: list[tuple[str, list[str]]] = [
        ("(python + modelward import only)", [*mw[:2], "import modelward.cli"]),
        ("sha256sum (1 process)", ["sha256sum", *map(str, files)]),
        (f"raw parallel sha256 ({os.cpu_count()} threads)", [PY, "-c", RAW_PARALLEL,
                                                              *map(str, files)]),
        ("model-signing sign key", [*ms, "sign", "key", str(model), "--signature", str(ms_sig),
                                    "--private_key", str(priv)]),
        ("model-signing verify key", [*ms, "verify", "key", str(model), "--signature",
                                      str(ms_sig), "--public_key", str(pub)]),
        ("modelward sign (files)", [*mw, "sign", str(model), "--key", str(priv),
                                    "--signature", str(mw_sig)]),
        ("modelward verify (files)", [*mw, "verify", str(model), "--key", str(pub),
                                      "--signature", str(mw_sig)]),
        ("modelward sign (shards)", [*mw, "sign", str(model), "--key", str(priv), "--method",
                                     "shards", "--signature", str(mw_shard_sig)]),
        ("modelward verify (shards)", [*mw, "verify", str(model), "--key", str(pub),
                                       "--signature", str(mw_shard_sig)]),
    ]
    print(f"model: {len(files)} files, {total / 1e9:.2f} GB, {os.cpu_count()} CPUs; "
          f"{args.repeat} alternating round(s), median reported")
    runs: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name, _ in contenders}
    for _ in range(args.repeat):
        for name, cmd in contenders:
            runs[name].append(timed(cmd))
    print(f"{'contender':44} {'median s':>8} {'best s':>7} {'MB/s':>7} {'CPU s':>6} "
          f"{'peak RSS MiB':>13} {'ok':>3}")
    median: dict[str, float] = {}
    for name, _ in contenders:
        times = [r[0] for r in runs[name]]
        median[name] = statistics.median(times)
        rss = max(r[1] for r in runs[name])
        ok = all(r[2] == 0 for r in runs[name])
        print(f"{name:44} {median[name]:8.2f} {min(times):7.2f} "
              f"{total / 1e6 / median[name]:7.0f} "
              f"{statistics.median(r[3] for r in runs[name]):6.2f} {rss:13.0f} "
              f"{'yes' if ok else 'NO':>3}",
              flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} CPUs)")
    raw = median[contenders[2][0]]
    for verb, ms_name in (("sign", "model-signing sign key"),
                          ("verify", "model-signing verify key")):
        for method in ("files", "shards"):
            ours = median[f"modelward {verb} ({method})"]
            vs_ms = ours <= median[ms_name]
            vs_raw = raw / ours
            print(f"target modelward {verb} ({method}): vs model-signing "
                  f"{median[ms_name] / ours:.2f}x -> {'MET' if vs_ms else 'NOT MET'}; "
                  f"rate {vs_raw:.0%} of raw parallel -> "
                  f"{'MET' if vs_raw >= 0.9 else 'NOT MET'}")
    shutil.rmtree(work, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(model, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
