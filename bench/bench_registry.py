"""Registry load test: N concurrent pushes and pulls on loopback, nothing lost or corrupted.

Starts ``modelward registry serve`` as a separate process on 127.0.0.1 with a fresh data
folder (SQLite + local blobs), pushes N distinct small models from N threads, waits for
every scan, then pulls each one back from N threads (each pull verifies signature and
scan attestation) and compares every byte. Prints throughput and latency percentiles.

Usage: ``python bench/bench_registry.py [--scale 1.0]`` (1.0 = 32 models of 4 MiB, 8
clients; bounded: at most 4x that).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelward.registry.client import RegistryClient


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    scale = max(0.05, min(args.scale, 4.0))
    models, clients, size = max(4, int(32 * scale)), max(2, min(16, int(8 * scale))), 4 << 20
    with tempfile.TemporaryDirectory(prefix="mw-bench-registry-") as tmp:
        root = Path(tmp)
        data = root / "data"
        token = subprocess.run(
            [sys.executable, "-m", "modelward", "registry", "token", "bench", "--role",
             "publisher", "--data-dir", str(data)], check=True, capture_output=True,
            text=True).stdout.strip()
        port = _port()
        server = subprocess.Popen(
            [sys.executable, "-m", "modelward", "registry", "serve", "--data-dir", str(data),
             "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/api/v1")
                    conn.getresponse()
                    break
                except OSError:
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{port}"
            dirs = []
            for i in range(models):
                d = root / "src" / f"m{i}"
                d.mkdir(parents=True)
                (d / "config.json").write_text(f'{{"model_type": "bench", "i": {i}}}')
                (d / "weights.bin").write_bytes(os.urandom(size))
                dirs.append(d)

            def push(i: int) -> float:
                start = time.perf_counter()
                RegistryClient(url, token).push(dirs[i], f"bench/m{i}", "1")
                return time.perf_counter() - start

            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                push_lat = list(pool.map(push, range(models)))
            push_wall = time.perf_counter() - t0
            t1 = time.perf_counter()
            states = [RegistryClient(url, token).wait(f"bench/m{i}", "1", timeout=900)["state"]
                      for i in range(models)]
            scan_wall = time.perf_counter() - t1

            def pull(i: int) -> float:
                start = time.perf_counter()
                RegistryClient(url, token).pull(f"bench/m{i}", "1", root / "out" / f"m{i}")
                return time.perf_counter() - start

            t2 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                pull_lat = list(pool.map(pull, range(models)))
            pull_wall = time.perf_counter() - t2
            corrupt = sum((root / "out" / f"m{i}" / "weights.bin").read_bytes()
                          != (dirs[i] / "weights.bin").read_bytes() for i in range(models))
        finally:
            server.terminate()
            server.wait(30)
    mib = models * size / (1 << 20)
    print(f"== registry load: {models} models x {size >> 20} MiB, {clients} clients ==")
    print(f"push: {mib / push_wall:.1f} MiB/s, latency p50 {statistics.median(push_lat):.3f}s "
          f"p95 {_pct(push_lat, 0.95):.3f}s max {max(push_lat):.3f}s")
    print(f"scan+sign to published: {models / scan_wall:.2f} versions/s after the last push "
          f"({scan_wall:.1f}s)")
    print(f"pull+verify: {mib / pull_wall:.1f} MiB/s, latency p50 "
          f"{statistics.median(pull_lat):.3f}s p95 {_pct(pull_lat, 0.95):.3f}s")
    print(f"published {states.count('published')}/{models}, corrupted {corrupt}")
    return 0 if states.count("published") == models and corrupt == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
