"""Crash test: kill -9 the server process during a push and during a scan, restart it.

Afterwards no partial version is visible, no half-written blob is kept, and a version
whose scan was interrupted is scanned again and published intact.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_support import clean_model, free_port

from modelward.registry.client import RegistryClient


class ServerProcess:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelward", "registry", "serve", "--data-dir",
             str(self.data), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data", free_port())
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill()


def _token(data: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "modelward", "registry", "token", "pub",
                          "--role", "publisher", "--data-dir", str(data)],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def test_kill_during_upload_leaves_nothing(server: ServerProcess) -> None:
    token = _token(server.data)
    server.start()
    data = os.urandom(3 << 20)
    body = {"name": "big", "version": "1", "files": [
        {"path": "w.bin", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]}
    client = RegistryClient(server.url, token)
    upload = client._json("POST", "/api/v1/uploads", body)["upload"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("PUT", f"/api/v1/uploads/{upload}/files/w.bin")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[: 1 << 20])
    time.sleep(0.3)
    parts = list((server.data / "blobs" / "tmp").glob("upload-*.part"))
    assert parts, "the partial upload should be on disk while the server runs"
    server.kill()
    conn.close()
    server.start()
    assert not list((server.data / "blobs" / "tmp").glob("upload-*.part"))
    with pytest.raises(Exception, match="404"):
        client.version("big", "1")
    assert client.models() == []
    # the push started again completes (the upload session survived the crash)
    restarted = client._json("POST", "/api/v1/uploads", body)
    assert restarted["missing"] == ["w.bin"]
    client._open("PUT", f"/api/v1/uploads/{restarted['upload']}/files/w.bin", data,
                 {"Content-Length": str(len(data))}).close()
    client._json("POST", f"/api/v1/uploads/{restarted['upload']}/commit")
    assert client.wait("big", "1", timeout=60)["state"] in ("published", "quarantined")


def test_kill_during_scan_resumes(server: ServerProcess, tmp_path: Path) -> None:
    token = _token(server.data)
    server.start()
    model = clean_model(tmp_path / "m")
    client = RegistryClient(server.url, token)
    client.push(model, "m", "1")
    server.kill()  # right after commit: the scan was queued or running
    server.start()
    info = client.wait("m", "1", timeout=60)
    assert info["state"] == "published"
    out = tmp_path / "out"
    client.pull("m", "1", out)
    assert (out / "weights.npy").read_bytes() == (model / "weights.npy").read_bytes()
    db_state = json.dumps(client.model("m"))
    assert db_state.count('"version": "1"') == 1
