"""Interoperability with the OpenSSF model-signing package, both ways.

modelward's own implementation writes and reads the format; model-signing (1.1.1, a dev
dependency) is only used here, as the other party. Its command line is exercised as a user
would run it, and its library API for what the command line cannot do (sharded manifests:
model-signing's CLI always re-hashes by files).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelward.errors import VerificationError
from modelward.signing.keys import load_signing_key, load_verifier
from modelward.signing.sign import sign_model
from modelward.signing.verify import ManifestMismatchError, verify_model

model_signing = pytest.importorskip("model_signing")

CLI = [sys.executable, "-c", "from model_signing._cli import main; main()"]


def _ms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _ms_verifier_config(public: Path) -> Any:
    return model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public)


@pytest.mark.parametrize("kind", ["p256", "p384"])
def test_modelward_signs_model_signing_cli_verifies(model: Path, keys: Any, kind: str) -> None:
    sign_model(model, load_signing_key(keys[kind].private))
    done = _ms("verify", "key", str(model), "--signature", str(model / "model.sig"),
               "--public_key", str(keys[kind].public))
    assert done.returncode == 0, done.stderr
    (model / "weights.bin").write_bytes(b"tampered")
    done = _ms("verify", "key", str(model), "--signature", str(model / "model.sig"),
               "--public_key", str(keys[kind].public))
    assert done.returncode != 0 and "weights.bin" in done.stderr


def test_model_signing_cli_signs_modelward_verifies(model: Path, keys: Any) -> None:
    done = _ms("sign", "key", str(model), "--signature", str(model / "model.sig"),
               "--private_key", str(keys["p256"].private))
    assert done.returncode == 0, done.stderr
    verified = verify_model(model, load_verifier(keys["p256"].public))
    assert set(verified.manifest.files()) == {"a/c", "a.b", "config.json", "weights.bin", "empty"}
    (model / "a.b").unlink()
    with pytest.raises(ManifestMismatchError) as err:
        verify_model(model, load_verifier(keys["p256"].public))
    assert err.value.diff.removed == ("a.b",)


def test_same_manifest_as_model_signing(model: Path, keys: Any) -> None:
    ms_manifest = model_signing.hashing.Config().hash(model)
    ours = sign_model(model, load_signing_key(keys["p256"].private)).manifest
    theirs = [(r.identifier, r.digest.digest_hex) for r in ms_manifest.resource_descriptors()]
    assert [(r.name, r.digest.hex()) for r in ours.resources] == theirs


def test_shards_both_ways_through_the_library(model: Path, keys: Any, tmp_path: Path) -> None:
    sign_model(model, load_signing_key(keys["p256"].private), method="shards", shard_size=1000)
    _ms_verifier_config(keys["p256"].public).verify(model, model / "model.sig")
    # model-signing 1.1.1 writes shard_size as a float; modelward reads it.
    other = shutil.copytree(model, tmp_path / "copy")
    (other / "model.sig").unlink()
    hashing = model_signing.hashing.Config().use_shard_serialization(shard_size=1000)
    (model_signing.signing.Config().use_elliptic_key_signer(private_key=keys["p256"].private)
     .set_hashing_config(hashing).sign(other, tmp_path / "shards.sig"))
    verify_model(other, load_verifier(keys["p256"].public), signature=tmp_path / "shards.sig")
    (other / "weights.bin").write_bytes(b"changed")
    with pytest.raises(ManifestMismatchError) as err:
        verify_model(other, load_verifier(keys["p256"].public), signature=tmp_path / "shards.sig")
    assert err.value.diff.changed == ("weights.bin",)


def test_certificates_both_ways(model: Path, chain: Any, tmp_path: Path) -> None:
    key = load_signing_key(chain.key, certificate=chain.leaf, chain=[chain.intermediate])
    sign_model(model, key)
    done = _ms("verify", "certificate", str(model), "--signature", str(model / "model.sig"),
               "--certificate_chain", str(chain.root))
    assert done.returncode == 0, done.stderr
    sig = tmp_path / "ms-cert.sig"
    done = _ms("sign", "certificate", str(model), "--signature", str(sig),
               "--private_key", str(chain.key), "--signing_certificate", str(chain.leaf),
               "--certificate_chain", str(chain.intermediate))
    assert done.returncode == 0, done.stderr
    verify_model(model, load_verifier(roots=[chain.root]), signature=sig)
    with pytest.raises(VerificationError):
        verify_model(model, load_verifier(roots=[chain.other_root]), signature=sig)


def test_model_signing_wrong_key_rejected(model: Path, keys: Any) -> None:
    done = _ms("sign", "key", str(model), "--signature", str(model / "model.sig"),
               "--private_key", str(keys["p256"].private))
    assert done.returncode == 0, done.stderr
    with pytest.raises(VerificationError):
        verify_model(model, load_verifier(keys["other"].public))


def test_single_file_both_ways(tmp_path: Path, keys: Any) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\x07" * 3000)
    sign_model(weights, load_signing_key(keys["p256"].private))
    _ms_verifier_config(keys["p256"].public).verify(weights, tmp_path / "w.bin.sig")
    (model_signing.signing.Config().use_elliptic_key_signer(private_key=keys["p256"].private)
     .sign(weights, tmp_path / "ms.sig"))
    verify_model(weights, load_verifier(keys["p256"].public), signature=tmp_path / "ms.sig")


def test_ed25519_is_modelward_only(model: Path, keys: Any) -> None:
    """The bundle format allows Ed25519; model-signing 1.1.1 reads only EC keys."""
    sign_model(model, load_signing_key(keys["ed25519"].private))
    verify_model(model, load_verifier(keys["ed25519"].public))
    bundle = json.loads((model / "model.sig").read_text())
    assert "hint" in bundle["verificationMaterial"]["publicKey"]
