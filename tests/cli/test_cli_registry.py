"""``modelward push``, ``pull`` and ``registry ls/show/rescan`` against a live registry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import uvicorn

from modelward.cli import main
from modelward.registry.app import create_app
from modelward.registry.config import RegistryConfig, build_registry
from modelward.registry.service import Registry


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Registry]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = build_registry(RegistryConfig(tmp_path / "data"))
    server = uvicorn.Server(uvicorn.Config(create_app(registry), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", registry
    server.should_exit = True
    thread.join(10)
    registry.close()


def test_push_pull_ls_show_rescan(served: tuple[str, Registry], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str],
                                  marker_command: str) -> None:
    url, registry = served
    pub = registry.create_token("p", "publisher")
    admin = registry.create_token("a", "admin")
    model = tmp_path / "m"
    model.mkdir()
    np.save(model / "w.npy", np.ones(4))
    assert main(["push", str(model), "demo:1", "--registry", url, "--token", pub]) == 0
    assert "demo:1: published" in capsys.readouterr().out
    out = tmp_path / "pulled"
    assert main(["pull", "demo:1", "--registry", url, "-o", str(out)]) == 0
    assert (out / "w.npy").read_bytes() == (model / "w.npy").read_bytes()
    pem = tmp_path / "registry.pub"
    pem.write_bytes(registry.public_key_pem())
    assert main(["pull", "demo:1", "--registry", url, "-o", str(tmp_path / "p2"),
                 "--key", str(pem)]) == 0
    assert main(["pull", "demo:1", "--registry", url, "-o", str(out)]) == 2  # exists
    capsys.readouterr()
    assert main(["registry", "ls", "--registry", url]) == 0
    assert capsys.readouterr().out.startswith("demo\t1\t")
    assert main(["registry", "show", "demo:1", "--registry", url]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "published"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.pkl").write_bytes(b"cos\nsystem\n(S'" + marker_command.encode() + b"'\ntR.")
    assert main(["push", str(bad), "evil:1", "--registry", url, "--token", pub]) == 1
    assert "quarantined" in capsys.readouterr().out
    assert main(["pull", "evil:1", "--registry", url, "-o", str(tmp_path / "e")]) == 2
    assert not (tmp_path / "e").exists()
    assert main(["registry", "rescan", "--registry", url, "--token", admin]) == 0
    assert "rescanned 2 versions, 0 changed" in capsys.readouterr().out
    assert main(["push", str(model), "../x:1", "--registry", url, "--token", pub]) == 2
    assert main(["registry", "rescan", "--registry", url, "--token", pub]) == 2
    assert "403" in capsys.readouterr().err


def test_registry_token_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["registry", "token", "bob", "--role", "publisher", "--data-dir",
                 str(data)]) == 0
    token = capsys.readouterr().out.strip()
    registry = build_registry(RegistryConfig(data))
    try:
        assert registry.authenticate(token).role == "publisher"
    finally:
        registry.close()



def test_registry_token_ls_revoke_and_gc(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from modelward.errors import RegistryError

    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["registry", "token", "create", "carol", "--role", "admin", *data]) == 0
    secret = capsys.readouterr().out.strip()
    assert main(["registry", "token", "ls", *data]) == 0
    line = capsys.readouterr().out.strip()
    token_id, principal, role, status = line.split("\t")[:4]
    assert (principal, role, status) == ("carol", "admin", "active")
    assert secret not in line
    assert main(["registry", "token", "revoke", token_id[:8], *data]) == 0
    assert f"revoked {token_id} (carol, admin)" in capsys.readouterr().out
    assert main(["registry", "token", "revoke", "0" * 12, *data]) == 2
    assert "no such token" in capsys.readouterr().err
    registry = build_registry(RegistryConfig(tmp_path / "data"))
    try:
        with pytest.raises(RegistryError, match="revoked"):
            registry.authenticate(secret)
        orphan = registry.blobs.put_bytes(b"left behind by a push that never committed")
        assert [e["action"] for e in registry.audit_log()][:1] == ["token.revoke"]
    finally:
        registry.close()
    assert main(["registry", "gc", "--dry-run", "--grace-hours", "0", *data]) == 0
    assert "would remove: 1 orphan blobs" in capsys.readouterr().out
    assert main(["registry", "gc", "--grace-hours", "0", *data]) == 0
    assert "removed: 1 orphan blobs" in capsys.readouterr().out
    registry = build_registry(RegistryConfig(tmp_path / "data"))
    try:
        assert not registry.blobs.exists(orphan)
    finally:
        registry.close()
