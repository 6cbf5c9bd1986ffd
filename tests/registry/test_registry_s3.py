"""The registry on S3-compatible object storage, chosen by configuration alone.

A real S3-compatible HTTP server (moto's, ``moto[server]``) listens on loopback; the
registry talks to it through boto3 exactly as it would to MinIO or AWS, with only
``blob_url = s3://bucket/prefix`` and ``MODELWARD_S3_ENDPOINT`` set. Covers the full
push -> scan -> sign -> publish -> pull flow, deduplication, a cut-off upload leaving
no object, and garbage collection (orphans and abandoned multipart uploads go, blobs any
version references stay).
"""

from __future__ import annotations

import hashlib
import http.client
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import Live, clean_model

from modelward.errors import RegistryError
from modelward.registry.blobs import S3BlobStore
from modelward.registry.client import RegistryClient
from modelward.registry.config import RegistryConfig, build_registry
from modelward.registry.maintenance import collect_garbage
from modelward.registry.service import Limits, Principal

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "mw-models"
ADMIN = Principal("test", "admin")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client and a fresh bucket; the environment a team setup would have."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "modelward-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "modelward-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MODELWARD_S3_ENDPOINT", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client


@pytest.fixture
def s3_live(s3: Any, tmp_path: Path) -> Iterator[Live]:
    registry = build_registry(RegistryConfig(
        tmp_path / "data", blob_url=f"s3://{s3.bucket}/team",
        limits=Limits(max_file_size=1 << 20, max_json=64 << 10)))
    assert isinstance(registry.blobs, S3BlobStore)
    server = Live(registry)
    yield server
    server.stop()
    registry.close()


def _keys(s3: Any) -> set[str]:
    listing = s3.list_objects_v2(Bucket=s3.bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def _tokens(live: Live) -> tuple[str, str]:
    return (live.registry.create_token("pub", "publisher"),
            live.registry.create_token("root", "admin"))


def test_s3_push_publish_pull_and_dedup(s3: Any, s3_live: Live, tmp_path: Path) -> None:
    publisher, _ = _tokens(s3_live)
    model = clean_model(tmp_path / "m")
    pub = RegistryClient(s3_live.url, publisher)
    pub.push(model, "team/bert", "1.0")
    info = pub.wait("team/bert", "1.0")
    assert info["state"] == "published", info
    keys = _keys(s3)
    digests = {f["sha256"] for f in info["files"]}
    assert {f"team/sha256/{d}" for d in digests} <= keys
    assert all(k.startswith("team/sha256/") for k in keys)
    assert not (tmp_path / "data" / "blobs").exists()  # nothing went to the local store
    result = RegistryClient(s3_live.url).pull("team/bert", "1.0", tmp_path / "out")
    assert result["files"] == 3
    for rel in ("config.json", "weights.npy", "sub/vocab.txt"):
        assert (tmp_path / "out" / rel).read_bytes() == (model / rel).read_bytes()
    # the same contents again: the registry asks for nothing, stores no second copy
    opened = pub._json("POST", "/api/v1/uploads", {
        "name": "team/bert", "version": "1.1",
        "files": [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                  for f in info["files"]]})
    assert opened["missing"] == []
    pub._json("POST", f"/api/v1/uploads/{opened['upload']}/commit")
    assert pub.wait("team/bert", "1.1")["state"] == "published"
    file_keys = [k for k in _keys(s3) if k.rpartition("/")[2] in digests]
    assert len(file_keys) == len(digests)
    # a blob changed behind the registry's back is caught by the pull's verification
    tampered = next(f for f in info["files"] if f["path"] == "config.json")
    s3.put_object(Bucket=s3.bucket, Key=f"team/sha256/{tampered['sha256']}", Body=b"{}")
    with pytest.raises(Exception, match=r"digest|announced|match"):
        RegistryClient(s3_live.url).pull("team/bert", "1.1", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_s3_cut_off_upload_and_gc(s3: Any, s3_live: Live, tmp_path: Path) -> None:
    publisher, admin = _tokens(s3_live)
    registry = s3_live.registry
    pub = RegistryClient(s3_live.url, publisher)
    pub.push(clean_model(tmp_path / "m"), "kept", "1")
    kept = pub.wait("kept", "1")
    assert kept["state"] == "published"
    # a client dies half-way through a file
    data = b"q" * 300_000
    digest = hashlib.sha256(data).hexdigest()
    opened = pub._json("POST", "/api/v1/uploads", {
        "name": "cut", "version": "1",
        "files": [{"path": "w.bin", "sha256": digest, "size": len(data)}]})
    conn = http.client.HTTPConnection("127.0.0.1", s3_live.port, timeout=10)
    conn.putrequest("PUT", f"/api/v1/uploads/{opened['upload']}/files/w.bin")
    conn.putheader("Authorization", f"Bearer {publisher}")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[:100_000])
    conn.sock.close()
    conn.close()
    time.sleep(0.5)
    assert f"team/sha256/{digest}" not in _keys(s3)
    assert not list(registry.blobs.tmp_dir.glob("upload-*.part"))
    with pytest.raises(RegistryError, match=r"HTTP 400.*not uploaded"):
        pub._json("POST", f"/api/v1/uploads/{opened['upload']}/commit")
    with pytest.raises(RegistryError, match="HTTP 404"):
        pub.version("cut", "1")
    # leftovers of never-committed pushes: an orphan object, an abandoned multipart upload
    orphan = registry.blobs.put_bytes(b"never committed")
    multipart = s3.create_multipart_upload(Bucket=s3.bucket,
                                           Key=f"team/sha256/{'ab' * 32}")["UploadId"]
    time.sleep(1.1)  # S3 timestamps have one-second resolution
    dry = collect_garbage(registry, ADMIN, grace_s=0, dry_run=True)
    assert dry["would_remove"] == [orphan] and registry.blobs.exists(orphan)
    # too young to go (moto reports a fixed 2010 start date for multipart uploads, so the
    # abandoned one counts as old here; real servers report the true date)
    young = collect_garbage(registry, ADMIN, grace_s=3600)
    assert young["orphan_blobs"] == 0 and registry.blobs.exists(orphan)
    done = RegistryClient(s3_live.url, admin)._json("POST", "/api/v1/admin/gc",
                                                    {"grace_s": 0})
    assert done["orphan_blobs"] == 1 and done["removed"] == [orphan]
    assert young["stale_temporary"] + done["stale_temporary"] == 1
    assert not registry.blobs.exists(orphan)
    uploads = s3.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert multipart not in {u["UploadId"] for u in uploads}
    # everything a version references is still there: the pull verifies it all
    assert RegistryClient(s3_live.url).pull("kept", "1", tmp_path / "out")["files"] == 3
    audit = registry.audit_log()
    assert any(e["action"] == "registry.gc" and e["principal"] == "root" for e in audit)
