"""Administration: token revocation, garbage collection, background rescans.

Run on SQLite and on a real PostgreSQL server (the ``live`` fixture), since each relies
on the database: revocation on the token row, gc on the references, rescans on counters
updated by concurrent jobs and on the append-only version history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from pathlib import Path

import pytest
from registry_support import Live, clean_model

from modelward.errors import RegistryError
from modelward.registry.client import RegistryClient
from modelward.registry.maintenance import collect_garbage
from modelward.registry.service import Principal

ADMIN = Principal("ops", "admin")


def test_revoked_and_expired_tokens_get_401(live: Live, tokens: dict[str, str]) -> None:
    reg = live.registry
    victim = reg.create_token("leaky", "publisher")
    short = reg.create_token("brief", "reader", expires_in=dt.timedelta(seconds=1))
    assert RegistryClient(live.url, victim).models() == []
    admin = RegistryClient(live.url, tokens["admin"])
    listed = admin._json("GET", "/api/v1/admin/tokens")["tokens"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    leaky = next(t for t in listed if t["principal"] == "leaky")
    assert leaky["status"] == "active"
    with pytest.raises(RegistryError, match="HTTP 403"):  # publishers cannot revoke
        RegistryClient(live.url, tokens["publisher"])._json(
            "POST", f"/api/v1/admin/tokens/{leaky['id']}/revoke")
    done = admin._json("POST", f"/api/v1/admin/tokens/{leaky['id'][:10]}/revoke")
    assert done == {"id": leaky["id"], "principal": "leaky", "role": "publisher",
                    "revoked": True}
    with pytest.raises(RegistryError, match=r"HTTP 401.*revoked"):
        RegistryClient(live.url, victim).models()
    with pytest.raises(RegistryError, match="HTTP 404"):
        admin._json("POST", "/api/v1/admin/tokens/ffffffffffff/revoke")
    time.sleep(1.1)
    with pytest.raises(RegistryError, match=r"HTTP 401.*expired"):
        RegistryClient(live.url, short).models()
    statuses = {t["principal"]: t["status"] for t in
                admin._json("GET", "/api/v1/admin/tokens")["tokens"]}
    assert statuses["leaky"] == "revoked" and statuses["brief"] == "expired"
    # revoking by the secret itself works too, and everything is audited
    admin._json("POST", f"/api/v1/admin/tokens/{short}/revoke")
    audit = admin._json("GET", "/api/v1/admin/audit")
    revokes = [e for e in audit["entries"] if e["action"] == "token.revoke"]
    assert {e["target"] for e in revokes} == {"leaky", "brief"}
    assert all(e["principal"] == "admin-user" for e in revokes) and audit["chain_intact"]


def test_gc_removes_only_unreferenced_blobs(live: Live, tokens: dict[str, str],
                                            tmp_path: Path) -> None:
    reg = live.registry
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "m"), "keep", "1")
    kept = pub.wait("keep", "1")
    # a push that never commits: one file sent, then the client gives up
    data = b"abandoned" * 1000
    digest = hashlib.sha256(data).hexdigest()
    opened = pub._json("POST", "/api/v1/uploads", {
        "name": "gone", "version": "1",
        "files": [{"path": "a.bin", "sha256": digest, "size": len(data)}]})
    pub._open("PUT", f"/api/v1/uploads/{opened['upload']}/files/a.bin", data,
              {"Content-Length": str(len(data))}).close()
    time.sleep(1.1)
    # an open upload protects its blobs, however old
    assert collect_garbage(reg, ADMIN, grace_s=0)["orphan_blobs"] == 0
    assert reg.blobs.exists(digest)
    with reg.db.transaction() as tx:  # the upload session expires
        tx.execute("UPDATE uploads SET expires_at = ?", ("2000-01-01T00:00:00+00:00",))
    report = collect_garbage(reg, ADMIN, grace_s=0)
    assert report["expired_uploads"] == 1 and report["removed"] == [digest]
    assert not reg.blobs.exists(digest)
    referenced = {f["sha256"] for f in kept["files"]}
    info = reg.version_by_id(reg.version(ADMIN, "keep", "1").id)
    referenced |= {info.signature_blob, info.attestation_blob, info.bom_blob} - {None}
    assert all(reg.blobs.exists(d) for d in referenced)
    assert RegistryClient(live.url).pull("keep", "1", tmp_path / "out")["files"] == 3
    with pytest.raises(RegistryError, match="HTTP 403"):
        pub._json("POST", "/api/v1/admin/gc", {"grace_s": 0})
    with pytest.raises(RegistryError, match="HTTP 400"):
        RegistryClient(live.url, tokens["admin"])._json("POST", "/api/v1/admin/gc",
                                                        {"grace_s": -1})


def test_rescan_runs_in_background_with_progress(live: Live, tokens: dict[str, str],
                                                 tmp_path: Path) -> None:
    reg = live.registry
    pub = RegistryClient(live.url, tokens["publisher"])
    for i in range(3):
        pub.push(clean_model(tmp_path / f"m{i}", seed=i), f"m{i}", "1")
        pub.wait(f"m{i}", "1")
    gate = threading.Event()
    reg._executor.submit(gate.wait, 30)  # hold the worker: the rescan must not block
    admin = RegistryClient(live.url, tokens["admin"])
    started = time.monotonic()
    record = admin.start_rescan()
    assert time.monotonic() - started < 5
    assert record["state"] == "running" and record["total"] == 3 and record["done"] == 0
    with pytest.raises(RegistryError, match="HTTP 409"):
        admin.start_rescan()
    listed = admin._json("GET", "/api/v1/admin/rescans")["rescans"]
    assert listed[0]["id"] == record["id"]
    gate.set()
    seen: list[int] = []
    results = admin.rescan_status(record["id"])
    while results["state"] == "running":
        seen.append(results["done"])
        time.sleep(0.05)
        results = admin.rescan_status(record["id"])
    assert results["state"] == "finished" and results["done"] == 3
    assert seen == sorted(seen)
    assert sorted(r["name"] for r in results["results"]) == ["m0", "m1", "m2"]
    assert all(r["before"] == r["after"] == "published" for r in results["results"])
    history = pub.version("m0", "1")["history"]
    assert [h["kind"] for h in history] == ["scan", "rescan"]
    assert history[1]["rescan"] == record["id"]
    actions = [e["action"] for e in reg.audit_log()]
    assert "registry.rescan" in actions and "registry.rescan-finished" in actions
    with pytest.raises(RegistryError), reg.db.transaction() as tx:  # history is append-only
        tx.execute("UPDATE version_events SET to_state = 'published'")
    with pytest.raises(RegistryError), reg.db.transaction() as tx:
        tx.execute("DELETE FROM version_events")
    assert results["failed"] == 0 and results["changed"] == 0
