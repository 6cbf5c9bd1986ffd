"""``modelward sign`` / ``verify`` end to end, in process: output, exit codes, assets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelward.cli import main
from modelward.policy import Policy

SIGNED_ASSETS = Path(__file__).parent.parent / "assets" / "signed"


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 2}')
    (folder / "sub" / "w.bin").write_bytes(b"\x00" * 4096)
    return folder


def test_sign_then_verify(
    model: Path, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sign", str(model), "--key", str(keypair[0])]) == 0
    assert (model / "model.sig").is_file()
    assert main(["verify", str(model), "--key", str(keypair[1])]) == 0
    assert "verified" in capsys.readouterr().out


def test_verify_names_each_file(
    model: Path, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["sign", str(model), "--key", str(keypair[0])])
    (model / "config.json").write_text("{}")
    (model / "sub" / "w.bin").unlink()
    (model / "evil.pkl").write_bytes(b"x")
    capsys.readouterr()
    assert main(["verify", str(model), "--key", str(keypair[1])]) == 1
    err = capsys.readouterr().err
    assert "changed: config.json" in err and "removed: sub/w.bin" in err
    assert "added: evil.pkl" in err


def test_failures_are_never_verified(
    model: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    main(["sign", str(model), "--key", str(keypair[0])])
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    wrong = tmp_path / "wrong.pub"
    wrong.write_bytes(other.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    assert main(["verify", str(model), "--key", str(wrong)]) == 1
    sig = model / "model.sig"
    sig.write_bytes(sig.read_bytes()[:50])
    assert main(["verify", str(model), "--key", str(keypair[1])]) == 1
    sig.unlink()
    main(["sign", str(model), "--key", str(keypair[0])])
    (model / "out").symlink_to(tmp_path / "wrong.pub")
    assert main(["verify", str(model), "--key", str(keypair[1])]) == 2
    assert main(["verify", str(tmp_path / "nope"), "--key", str(keypair[1])]) == 2
    assert main(["verify", str(model)]) == 2  # no key given


def test_sign_scan_and_require_clean(model: Path, keypair: tuple[Path, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no policy file here: the default policy
    assert main(["sign", str(model), "--key", str(keypair[0]), "--scan"]) == 0
    assert (model / "model.scan.sig").is_file()
    assert main(["verify", str(model), "--key", str(keypair[1]), "--require-clean"]) == 0
    policy = tmp_path / "strict.toml"
    policy.write_text('fail-on = "low"\n')
    assert main(["verify", str(model), "--key", str(keypair[1]), "--require-clean",
                 "--config", str(policy)]) == 1
    assert main(["verify", str(model), "--key", str(keypair[1]), "--require-clean",
                 "--config", str(policy), "--accept-policy", Policy().digest()]) == 0
    (model / "model.scan.sig").unlink()
    assert main(["verify", str(model), "--key", str(keypair[1]), "--require-clean"]) == 1


def test_derived_from_and_lineage(model: Path, keypair: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    main(["sign", str(model), "--key", str(keypair[0])])
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"onnx")
    assert main(["sign", str(out), "--key", str(keypair[0]), "--derived-from", str(model),
                 "--converter", "torch.onnx", "--converter-setting", "opset=17"]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--key", str(keypair[1]), "--lineage"]) == 0
    text = capsys.readouterr().out
    assert "[0]" in text and "via torch.onnx opset=17: verified" in text and "[1]" in text
    (model / "config.json").write_text("{}")
    assert main(["verify", str(out), "--key", str(keypair[1]), "--lineage"]) == 1


def test_shards_method_flag(model: Path, keypair: tuple[Path, Path]) -> None:
    assert main(["sign", str(model), "--key", str(keypair[0]), "--method", "shards",
                 "--shard-size", "1024"]) == 0
    bundle = json.loads((model / "model.sig").read_text())
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert main(["verify", str(model), "--key", str(keypair[1])]) == 0


@pytest.mark.network
def test_keyless_sigstore(model: Path) -> None:
    """Keyless signing needs Sigstore's public instance and an OIDC identity: not offline."""
    import os

    token = os.environ.get("SIGSTORE_ID_TOKEN")
    identity = os.environ.get("MODELWARD_TEST_IDENTITY")
    issuer = os.environ.get("MODELWARD_TEST_OIDC_ISSUER")
    if not (token and identity and issuer):
        pytest.skip("keyless signing needs network, SIGSTORE_ID_TOKEN and the expected identity")
    assert main(["sign", str(model), "--sigstore"]) == 0
    assert main(["verify", str(model), "--identity", identity, "--oidc-issuer", issuer]) == 0


@pytest.mark.parametrize("release", sorted(p.name for p in SIGNED_ASSETS.glob("v*")))
def test_signed_assets_of_every_release_verify(release: str, tmp_path: Path) -> None:
    folder = shutil.copytree(SIGNED_ASSETS / release, tmp_path / release)
    public = str(folder / "signing-key.pub")
    digest = (folder / "policy-digest.txt").read_text().strip()
    assert main(["verify", str(folder / "model"), "--key", public, "--require-clean",
                 "--accept-policy", digest]) == 0
    assert main(["verify", str(folder / "single.bin"), "--key", public]) == 0
    (folder / "model" / "sub" / "weights.bin").write_bytes(b"tampered")
    assert main(["verify", str(folder / "model"), "--key", public]) == 1


def test_scan_attest_then_verify_require_clean(keypair: tuple[Path, Path], model: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`scan --attest --key K` writes the attestation that `verify --require-clean` accepts."""
    private, public = keypair
    assert main(["sign", str(model), "--key", str(private)]) == 0
    assert main(["scan", str(model), "--attest", "--key", str(private), "-q"]) == 0
    assert (model / "model.scan.sig").is_file()
    assert main(["verify", str(model), "--key", str(public), "--require-clean"]) == 0
    # Changing a file after the attestation breaks both the signature and the attestation.
    (model / "config.json").write_text('{"hidden_size": 3}')
    assert main(["verify", str(model), "--key", str(public), "--require-clean"]) == 1


def test_scan_attest_needs_a_key_and_one_target(model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(model), "--attest"]) == 2
    assert "--attest needs --key" in capsys.readouterr().err
    assert main(["scan", str(model), str(tmp_path), "--attest", "--key", "k.pem"]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_scan_attest_of_a_dirty_model_is_not_accepted(
    keypair: tuple[Path, Path], model: Path, marker_command: str
) -> None:
    """A scan that found something is attested as not clean; --require-clean refuses it."""
    import os
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (marker_command,))

    (model / "evil.pkl").write_bytes(pickle.dumps(Payload()))
    private, public = keypair
    assert main(["sign", str(model), "--key", str(private)]) == 0
    assert main(["scan", str(model), "--attest", "--key", str(private), "-q"]) == 1
    assert main(["verify", str(model), "--key", str(public)]) == 0
    assert main(["verify", str(model), "--key", str(public), "--require-clean"]) == 1
