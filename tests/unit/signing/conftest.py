"""Keys, certificate chains and small model folders for the signing tests (built in code)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def write_keypair(
    folder: Path, name: str, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / f"{name}.pem"
    public = folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private, public)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return {
        "p256": write_keypair(folder, "p256", ec.generate_private_key(ec.SECP256R1())),
        "p384": write_keypair(folder, "p384", ec.generate_private_key(ec.SECP384R1())),
        "other": write_keypair(folder, "other", ec.generate_private_key(ec.SECP256R1())),
        "ed25519": write_keypair(folder, "ed25519", ed25519.Ed25519PrivateKey.generate()),
    }


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=1 if ca else None),
                       critical=True)
        .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                       critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Chain:
    key: Path
    leaf: Path
    intermediate: Path
    root: Path
    other_root: Path


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    folder = tmp_path_factory.mktemp("pki")
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP384R1())
    certs = {
        "root": _cert("Test Root", root_key, "Test Root", root_key, ca=True),
        "inter": _cert("Test Intermediate", inter_key, "Test Root", root_key, ca=True),
        "leaf": _cert("model signer", leaf_key, "Test Intermediate", inter_key, ca=False),
        "other": _cert("Other Root", other_key, "Other Root", other_key, ca=True),
    }
    for name, cert in certs.items():
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key = write_keypair(folder, "leaf", leaf_key).private
    return Chain(key, folder / "leaf.crt", folder / "inter.crt", folder / "root.crt",
                 folder / "other.crt")


def make_model(folder: Path) -> Path:
    """A small model folder: nested files, an empty file, names that sort tricky ways."""
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "c").write_bytes(b"nested\n")
    (folder / "a.b").write_bytes(b"x" * 5000)
    (folder / "config.json").write_text('{"architectures": ["Tiny"], "hidden_size": 4}')
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 700)
    (folder / "empty").write_bytes(b"")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "tiny-model")
