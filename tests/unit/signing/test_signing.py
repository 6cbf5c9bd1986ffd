"""Signing and verification: round trips, diffs, key kinds, and every way to fail."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelward.errors import InputError, VerificationError
from modelward.signing import hashing as hashing_module
from modelward.signing.keys import load_signing_key, load_verifier
from modelward.signing.manifest import Serialization, build_manifest
from modelward.signing.sign import sign_model, signature_path_for
from modelward.signing.verify import ManifestMismatchError, verify_model

KeyPair = Any
Chain = Any


def _sign(model: Path, pair: KeyPair, **kw: object) -> Path:
    return sign_model(model, load_signing_key(pair.private), **kw).signature  # type: ignore[arg-type]


def _verify(model: Path, pair: KeyPair, **kw: object):  # type: ignore[no-untyped-def]
    return verify_model(model, load_verifier(pair.public), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519"])
@pytest.mark.parametrize("method", ["files", "shards"])
def test_round_trip(model: Path, keys: dict[str, KeyPair], kind: str, method: str) -> None:
    sig = _sign(model, keys[kind], method=method, shard_size=4096)
    assert sig == model / "model.sig"
    verified = _verify(model, keys[kind])
    names = set(verified.manifest.files())
    assert names == {"a/c", "a.b", "config.json", "weights.bin", "empty"}  # .git, model.sig out


def test_resources_in_model_signing_order(model: Path, keys: dict[str, KeyPair]) -> None:
    sig = _sign(model, keys["p256"])
    payload = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    names = [r["name"] for r in payload["predicate"]["resources"]]
    assert names == ["a/c", "a.b", "config.json", "empty", "weights.bin"]  # by path parts
    assert payload["predicate"]["serialization"]["ignore_paths"][-1] == "model.sig" or \
        "model.sig" in payload["predicate"]["serialization"]["ignore_paths"]


def test_single_file_model(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\x00" * 100)
    sig = _sign(weights, keys["p256"])
    assert sig == tmp_path / "w.safetensors.sig"
    assert [r.name for r in _verify(weights, keys["p256"]).manifest.resources] == ["."]
    weights.write_bytes(b"\x01" * 100)
    with pytest.raises(ManifestMismatchError) as err:
        _verify(weights, keys["p256"])
    assert err.value.diff.changed == (".",)


@pytest.mark.parametrize("method", ["files", "shards"])
def test_diff_names_every_changed_removed_added_file(
    model: Path, keys: dict[str, KeyPair], method: str
) -> None:
    _sign(model, keys["p256"], method=method, shard_size=1000)
    (model / "a.b").write_bytes(b"y" * 5000)
    (model / "weights.bin").unlink()
    (model / "a" / "c").unlink()
    (model / "extra.pkl").write_bytes(b"new")
    (model / "new-empty").write_bytes(b"")
    (model / "empty").unlink()
    with pytest.raises(ManifestMismatchError) as err:
        _verify(model, keys["p256"])
    diff = err.value.diff
    assert diff.changed == ("a.b",)
    assert diff.removed == ("a/c", "empty", "weights.bin")
    assert diff.added == ("extra.pkl", "new-empty")
    assert isinstance(err.value, VerificationError)
    assert "a.b" in err.value.diagnostics() and "extra.pkl" in err.value.diagnostics()


def test_ignored_paths_configurable(model: Path, keys: dict[str, KeyPair]) -> None:
    (model / "notes").mkdir()
    (model / "notes" / "log.txt").write_text("1")
    _sign(model, keys["p256"], ignore_paths=["notes"])
    (model / "notes" / "log.txt").write_text("2")  # ignored: still verifies
    (model / ".git" / "HEAD").write_text("other")  # git paths ignored by default
    _verify(model, keys["p256"])
    (model / "scratch").write_text("tmp")
    with pytest.raises(ManifestMismatchError):
        _verify(model, keys["p256"])
    _verify(model, keys["p256"], ignore_paths=["scratch"])


def test_git_paths_signed_when_asked(model: Path, keys: dict[str, KeyPair]) -> None:
    _sign(model, keys["p256"], ignore_git_paths=False)
    (model / ".git" / "HEAD").write_text("other")
    with pytest.raises(ManifestMismatchError) as err:
        _verify(model, keys["p256"])
    assert err.value.diff.changed == (".git/HEAD",)


def test_certificate_chain(model: Path, chain: Chain) -> None:
    key = load_signing_key(chain.key, certificate=chain.leaf, chain=[chain.intermediate])
    sign_model(model, key)
    verified = verify_model(model, load_verifier(roots=[chain.root]))
    assert "model signer" in verified.signer
    with pytest.raises(VerificationError, match="trusted root"):
        verify_model(model, load_verifier(roots=[chain.other_root]))


def test_certificate_must_match_key(chain: Chain, keys: dict[str, KeyPair]) -> None:
    with pytest.raises(InputError, match="does not certify"):
        load_signing_key(keys["p256"].private, certificate=chain.leaf)


# --- robustness: never a false "verified" -------------------------------------------


def test_wrong_key(model: Path, keys: dict[str, KeyPair]) -> None:
    _sign(model, keys["p256"])
    with pytest.raises(VerificationError, match="another key"):
        _verify(model, keys["other"])


def test_wrong_key_without_hint(model: Path, keys: dict[str, KeyPair]) -> None:
    sig = _sign(model, keys["p256"])
    bundle = json.loads(sig.read_text())
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    sig.write_text(json.dumps(bundle))
    _verify(model, keys["p256"])  # the hint is only a hint
    with pytest.raises(VerificationError, match="does not verify"):
        _verify(model, keys["other"])


@pytest.mark.parametrize("cut", [0, 1, 10, 200, -5])
def test_truncated_signature(model: Path, keys: dict[str, KeyPair], cut: int) -> None:
    sig = _sign(model, keys["p256"])
    data = sig.read_bytes()
    sig.write_bytes(data[:cut])
    with pytest.raises(VerificationError):
        _verify(model, keys["p256"])


def test_edited_payload(model: Path, keys: dict[str, KeyPair]) -> None:
    sig = _sign(model, keys["p256"])
    bundle = json.loads(sig.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="does not verify"):
        _verify(model, keys["p256"])


def test_edited_signature_bytes(model: Path, keys: dict[str, KeyPair]) -> None:
    sig = _sign(model, keys["ed25519"])
    bundle = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[5] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError):
        _verify(model, keys["ed25519"])


@pytest.mark.parametrize("edit", [
    lambda b: b.pop("dsseEnvelope"),
    lambda b: b.__setitem__("mediaType", "text/plain"),
    lambda b: b["dsseEnvelope"].__setitem__("signatures", []),
    lambda b: b["dsseEnvelope"].__setitem__("payload", "@@not base64@@"),
    lambda b: b["dsseEnvelope"].__setitem__("payloadType", "application/json"),
])
def test_malformed_bundles(model: Path, keys: dict[str, KeyPair], edit) -> None:  # type: ignore[no-untyped-def]
    sig = _sign(model, keys["p256"])
    bundle = json.loads(sig.read_text())
    edit(bundle)
    sig.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError):
        _verify(model, keys["p256"])


def test_deeply_nested_signature_is_a_verification_error(
    model: Path, keys: dict[str, KeyPair]
) -> None:
    sig = _sign(model, keys["p256"])
    sig.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(VerificationError, match="not a valid signature"):
        _verify(model, keys["p256"])


def test_missing_signature(model: Path, keys: dict[str, KeyPair]) -> None:
    with pytest.raises(VerificationError, match="does not exist"):
        _verify(model, keys["p256"])


def test_symlink_leaving_folder(model: Path, keys: dict[str, KeyPair], tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("outside")
    (model / "link.bin").symlink_to(outside)
    for allow in (False, True):
        with pytest.raises(InputError, match="symbolic link"):
            _sign(model, keys["p256"], allow_symlinks=allow)
    (model / "link.bin").unlink()
    _sign(model, keys["p256"])
    (model / "link.bin").symlink_to(outside)  # planted after signing
    with pytest.raises(InputError, match="symbolic link"):
        _verify(model, keys["p256"])


def test_symlink_inside_folder_when_allowed(model: Path, keys: dict[str, KeyPair]) -> None:
    (model / "alias.bin").symlink_to(model / "weights.bin")
    with pytest.raises(InputError, match="symbolic link") as err:
        _sign(model, keys["p256"])
    assert "--allow-symlinks" in err.value.diagnostics()
    _sign(model, keys["p256"], allow_symlinks=True)
    assert "alias.bin" in _verify(model, keys["p256"]).manifest.files()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_file_refused(model: Path, keys: dict[str, KeyPair]) -> None:
    os.mkfifo(model / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        _sign(model, keys["p256"])


def test_huge_folder_refused(model: Path, keys: dict[str, KeyPair]) -> None:
    for i in range(20):
        (model / f"f{i}").write_bytes(b"")
    with pytest.raises(InputError, match="more than 10 files"):
        _sign(model, keys["p256"], max_files=10)
    sig = _sign(model, keys["p256"])
    with pytest.raises(InputError, match="more than 10 files"):
        _verify(model, keys["p256"], max_files=10)
    assert sig.exists()


def test_file_changing_while_hashed(
    model: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.preadv
    target = model / "weights.bin"

    def writer_interferes(fd: int, buffers: list[memoryview], offset: int) -> int:
        got = real(fd, buffers, offset)
        if os.fstat(fd).st_ino == target.stat().st_ino:
            with target.open("ab") as handle:  # another process appends mid-hash
                handle.write(b"more")
        return got

    monkeypatch.setattr(hashing_module.os, "preadv", writer_interferes)
    with pytest.raises(InputError, match="changed while it was being hashed"):
        _sign(model, keys["p256"], workers=1)
    assert not signature_path_for(model).exists()


def test_file_truncated_between_walk_and_hash(model: Path) -> None:
    tasks_seen = []
    real_plan = hashing_module.hash_tasks

    def truncate_first(tasks, *args, **kwargs):  # type: ignore[no-untyped-def]
        tasks_seen.extend(tasks)
        (model / "weights.bin").write_bytes(b"short")
        return real_plan(tasks, *args, **kwargs)

    from modelward.signing import manifest as manifest_module

    mp = pytest.MonkeyPatch()
    mp.setattr(manifest_module, "hash_tasks", truncate_first)
    try:
        with pytest.raises(InputError, match="changed"):
            build_manifest(model, Serialization())
    finally:
        mp.undo()
    assert tasks_seen


def test_moved_model_still_verifies(model: Path, keys: dict[str, KeyPair], tmp_path: Path) -> None:
    _sign(model, keys["p256"])
    moved = tmp_path / "elsewhere"
    shutil.move(str(model), moved)
    _verify(moved, keys["p256"])


def test_signature_outside_model(model: Path, keys: dict[str, KeyPair], tmp_path: Path) -> None:
    sig = tmp_path / "sigs" / "tiny.sig"
    _sign(model, keys["p256"], signature=sig)
    assert not (model / "model.sig").exists()
    _verify(model, keys["p256"], signature=sig)
