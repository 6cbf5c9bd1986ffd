"""Push -> scan -> sign -> publish -> pull, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_support import Live, clean_model, malicious_model

from modelward.errors import RegistryError, VerificationError
from modelward.registry.client import RegistryClient


def test_push_scan_publish_pull(live: Live, tokens: dict[str, str], tmp_path: Path) -> None:
    model = clean_model(tmp_path / "m")
    pub = RegistryClient(live.url, tokens["publisher"])
    assert pub.push(model, "team/bert", "1.0", description="tiny")["state"] == "pending"
    info = pub.wait("team/bert", "1.0")
    assert info["state"] == "published", info
    assert info["verdict"] in ("none", "info", "low")
    assert info["has_bom"] and info["root_digest"]
    assert info["progress"]["done"] == info["progress"]["total"] == 3
    reader = RegistryClient(live.url, tokens["reader"])
    result = reader.pull("team/bert", "1.0", tmp_path / "out")
    assert result["files"] == 3
    for rel in ("config.json", "weights.npy", "sub/vocab.txt"):
        assert (tmp_path / "out" / rel).read_bytes() == (model / rel).read_bytes()
    # the signature and attestation come along, verifiable offline later
    assert (tmp_path / "out" / "model.sig").is_file()
    assert (tmp_path / "out" / "model.scan.sig").is_file()
    bom = json.loads(live.registry.blobs.read_bytes(
        live.registry.version_by_id(live.registry.version(
            live.registry.authenticate(tokens["admin"]), "team/bert", "1.0").id).bom_blob))
    assert bom["bomFormat"] == "CycloneDX"


def test_malicious_model_is_quarantined_and_not_pullable(
        live: Live, tokens: dict[str, str], tmp_path: Path, marker_command: str) -> None:
    model = malicious_model(tmp_path / "bad", marker_command)
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(model, "evil", "1")
    info = pub.wait("evil", "1")
    assert info["state"] == "quarantined"
    assert any(f["evidence"] and "system" in f["evidence"] for f in info["findings"])
    with pytest.raises(RegistryError, match="quarantined"):
        pub.pull("evil", "1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(RegistryError, match="HTTP 403"):
        pub._open("GET", "/api/v1/models/evil/versions/1/files/model.pkl")
    # admin review: rejected, recorded in the audit log
    admin = RegistryClient(live.url, tokens["admin"])
    admin._json("POST", "/api/v1/models/evil/versions/1/review",
                {"decision": "rejected", "reason": "pickle payload"})
    assert admin.version("evil", "1")["state"] == "rejected"
    audit = admin._json("GET", "/api/v1/admin/audit")
    assert audit["chain_intact"] is True
    actions = [e["action"] for e in audit["entries"]]
    assert "version.rejected" in actions and "version.push" in actions


def test_pull_refuses_tampered_blob(live: Live, tokens: dict[str, str], tmp_path: Path) -> None:
    model = clean_model(tmp_path / "m")
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(model, "m", "1")
    assert pub.wait("m", "1")["state"] == "published"
    # corrupt the stored content behind the registry's back (same path, other bytes)
    reg = live.registry
    info = reg.version_by_id(reg.version(reg.authenticate(tokens["admin"]), "m", "1").id)
    digest = next(d for p, d, _ in info.files if p == "config.json")
    blob = reg.blobs._path(digest)  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b'{"model_type": "evil"}')
    with pytest.raises(VerificationError):
        pub.pull("m", "1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_pull_with_wrong_pinned_key_refuses(live: Live, tokens: dict[str, str],
                                            tmp_path: Path) -> None:
    from modelward.registry.config import ensure_key

    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "m"), "m", "1")
    pub.wait("m", "1")
    other = ensure_key(tmp_path / "other.pem")
    with pytest.raises(VerificationError):
        pub.pull("m", "1", tmp_path / "out", key=other)
    assert not (tmp_path / "out").exists()


def test_dedup_and_restartable_push(live: Live, tokens: dict[str, str], tmp_path: Path) -> None:
    model = clean_model(tmp_path / "m")
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(model, "m", "1")
    opened = pub._json("POST", "/api/v1/uploads", {
        "name": "m", "version": "2",
        "files": [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                  for f in __import__("modelward.registry.client", fromlist=["x"])
                  .collect_files(model)]})
    assert opened["missing"] == []  # every content already stored: nothing to send


def test_versions_are_immutable_and_unique(live: Live, tokens: dict[str, str],
                                           tmp_path: Path) -> None:
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "a"), "m", "1")
    pub.wait("m", "1")
    with pytest.raises(RegistryError, match="409"):
        pub.push(clean_model(tmp_path / "b", seed=1), "m", "1")
    # another publisher cannot push into someone else's model
    other = live.registry.create_token("mallory", "publisher")
    with pytest.raises(RegistryError, match="403"):
        RegistryClient(live.url, other).push(clean_model(tmp_path / "c"), "m", "2")
    # the database itself refuses to change files, delete versions or edit the audit log
    with pytest.raises(RegistryError), live.registry.db.transaction() as tx:
        tx.execute("UPDATE files SET sha256 = 'x'")
    with pytest.raises(RegistryError), live.registry.db.transaction() as tx:
        tx.execute("DELETE FROM versions")
    with pytest.raises(RegistryError), live.registry.db.transaction() as tx:
        tx.execute("DELETE FROM audit")
    with pytest.raises(RegistryError), live.registry.db.transaction() as tx:
        tx.execute("UPDATE versions SET version = '9'")


def test_private_models_and_roles(live: Live, tokens: dict[str, str], tmp_path: Path) -> None:
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "m"), "secret", "1", visibility="private")
    pub.wait("secret", "1")
    assert [m["name"] for m in pub.models()] == ["secret"]
    for token in (tokens["reader"], None):
        client = RegistryClient(live.url, token)
        assert client.models() == []
        with pytest.raises(RegistryError, match="404"):
            client.version("secret", "1")
    assert RegistryClient(live.url, tokens["admin"]).version("secret", "1")["state"] == \
        "published"
    with pytest.raises(RegistryError, match="403"):
        RegistryClient(live.url, tokens["reader"]).push(clean_model(tmp_path / "r"), "r", "1")
    with pytest.raises(RegistryError, match="403"):
        RegistryClient(live.url, tokens["publisher"]).rescan()


def test_rescan_quarantines_under_stricter_policy(live: Live, tokens: dict[str, str],
                                                  tmp_path: Path) -> None:
    from modelward.findings import Severity
    from modelward.policy import Policy

    pub = RegistryClient(live.url, tokens["publisher"])
    model = clean_model(tmp_path / "m")
    (model / "extra.bin").write_bytes(b"\x00unknown format\xff" * 8)
    pub.push(model, "m", "1")
    first = pub.wait("m", "1")
    assert first["state"] == "published"
    live.registry.policy = Policy(fail_on=Severity.INFO)
    results = RegistryClient(live.url, tokens["admin"]).rescan()
    after = pub.version("m", "1")
    if first["findings"]:
        assert results == [{"name": "m", "version": "1", "before": "published",
                            "after": "quarantined", "error": None}]
        assert after["state"] == "quarantined"
        # the change is in the version's append-only history and in the audit log
        assert [(h["kind"], h["from"], h["to"]) for h in after["history"]] == [
            ("scan", "scanning", "published"), ("rescan", "published", "quarantined")]
        assert after["history"][1]["policy_digest"] == live.registry.policy.digest()
        audit = live.registry.audit_log()
        assert any(e["action"] == "version.state" and e["detail"]["to"] == "quarantined"
                   for e in audit)
        with pytest.raises(RegistryError, match="quarantined"):
            pub.pull("m", "1", tmp_path / "out")
        with pytest.raises(RegistryError, match="HTTP 403"):
            pub._open("GET", "/api/v1/models/m/versions/1/files/extra.bin")
    else:
        assert results[0]["after"] == "published"
    assert after["policy_digest"] == live.registry.policy.digest()
