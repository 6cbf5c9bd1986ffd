"""Key material: private keys and certificates that sign, public keys and roots that verify.

Supported, as the Sigstore bundle format allows: ECDSA on P-256, P-384 and P-521 (with
SHA-256, SHA-384 and SHA-512 respectively, as model-signing pairs them) and Ed25519.
model-signing 1.1.1 only reads EC keys, so Ed25519 signatures verify with modelward but
not with model-signing.

A bundle signed by a bare key carries ``publicKey.hint``: the hex SHA-256 of the PEM
SubjectPublicKeyInfo (model-signing's convention), checked against the verifying key.
A bundle signed with a certificate carries the chain (leaf first); the verifier builds a
path to a root the user trusts with `cryptography.x509.verification`, at the leaf's
issuance time (the bundle has no timestamp to use instead, as in model-signing).
"""

from __future__ import annotations

import abc
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID
from typing_extensions import override

from modelward.errors import InputError, VerificationError

__all__ = [
    "CertificateVerifier",
    "KeyVerifier",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "Verifier",
    "key_hint",
    "load_signing_key",
    "load_verifier",
]

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVE_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512,
}
MAX_KEY_FILE = 1 << 20


def _read(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise InputError(f"{what} {path} is too large to be a PEM file")
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror}") from err


def _check_public(key: object, where: str) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASHES:
            raise InputError(f"{where}: unsupported curve {key.curve.name}",
                             hint="use P-256, P-384, P-521 or Ed25519")
        return key
    raise InputError(f"{where}: unsupported key type {type(key).__name__}",
                     hint="use an EC (P-256, P-384, P-521) or Ed25519 key")


def key_hint(key: PublicKey) -> str:
    """model-signing's key identifier: hex SHA-256 of the PEM SubjectPublicKeyInfo."""
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _raw_sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_CURVE_HASHES[key.curve.name]()))


def _raw_verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_CURVE_HASHES[key.curve.name]()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, optionally with its certificate and intermediates.

    Attributes:
        key: the private key.
        certificates: signing certificate then intermediates (empty: a bare key).
    """

    key: PrivateKey
    certificates: tuple[x509.Certificate, ...] = ()

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        """Sign `data` (the DSSE pre-authentication encoding)."""
        return _raw_sign(self.key, data)

    def verification_material(self) -> dict[str, Any]:
        """The bundle's ``verificationMaterial``, as model-signing writes it."""
        if self.certificates:
            chain = [
                {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
                for c in self.certificates
            ]
            return {"x509CertificateChain": {"certificates": chain}, "tlogEntries": []}
        return {"publicKey": {"hint": key_hint(self.public_key)}, "tlogEntries": []}


def load_signing_key(
    key_path: Path,
    *,
    password: bytes | None = None,
    certificate: Path | None = None,
    chain: Sequence[Path] = (),
) -> SigningKey:
    """Load a PEM private key and, for certificate signing, its certificate chain.

    Raises:
        InputError: unreadable, encrypted without password, unsupported, or a certificate
            whose public key is not the private key's.
    """
    data = _read(key_path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise InputError(f"cannot load private key {key_path}: {err}",
                         hint="a PEM private key (PKCS#8 or SEC1); --password if encrypted"
                         ) from err
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise InputError(f"{key_path}: unsupported key type {type(key).__name__}",
                         hint="use an EC (P-256, P-384, P-521) or Ed25519 key")
    _check_public(key.public_key(), str(key_path))
    certs: list[x509.Certificate] = []
    if certificate is not None:
        certs.extend(_load_certs(certificate))
        for path in chain:
            certs.extend(_load_certs(path))
        if certs[0].public_key() != key.public_key():
            raise InputError(f"{certificate} does not certify the key {key_path}")
    elif chain:
        raise InputError("a certificate chain needs --certificate (the signing certificate)")
    return SigningKey(key, tuple(certs))


def _load_certs(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate file")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise InputError(f"cannot load certificates from {path}: {err}") from err
    return certs


class Verifier(abc.ABC):
    """Checks a DSSE signature against trusted key material."""

    def check_bundle(
        self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes, path: Path
    ) -> str:
        """Check a whole bundle file; key verifiers only need `check`.

        Keyless verification (``signing.keyless``) overrides this: Sigstore checks the
        bundle as one object (certificate, transparency log, signature).
        """
        return self.check(material, signatures, pae)

    @abc.abstractmethod
    def check(self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes) -> str:
        """Return a description of the signer when one signature is valid.

        Raises:
            VerificationError: no signature verifies with the trusted material.
        """


@dataclass(frozen=True)
class KeyVerifier(Verifier):
    """Trusts one public key."""

    key: PublicKey

    @override
    def check(self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes) -> str:
        if "publicKey" not in material:
            raise VerificationError(
                "the signature was made with a certificate, not a bare key",
                hint="verify with --certificate-chain ROOT.pem",
            )
        hint = material["publicKey"].get("hint")
        expected = key_hint(self.key)
        if hint and hint != expected:
            raise VerificationError(
                "the signature was made by another key than the one given",
                hint=f"signature key id {hint}, given key id {expected}",
            )
        if not any(_raw_verify(self.key, sig, pae) for sig in signatures):
            raise VerificationError("the signature does not verify with the given key")
        return f"key {expected[:16]}"


@dataclass(frozen=True)
class CertificateVerifier(Verifier):
    """Trusts certificates chaining to one of `roots`, allowed to sign code."""

    roots: tuple[x509.Certificate, ...]

    @override
    def check(self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes) -> str:
        raw_chain = material.get("x509CertificateChain", {}).get("certificates")
        if not raw_chain:
            raise VerificationError("the signature carries no certificate chain",
                                    hint="verify with --key PUBLIC.pem")
        try:
            certs = [x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
                     for c in raw_chain]
        except (ValueError, KeyError, TypeError) as err:
            raise VerificationError(f"malformed certificate in the signature: {err}") from err
        leaf = certs[0]
        builder = (
            x509v.PolicyBuilder()
            .store(x509v.Store(list(self.roots)))
            .time(leaf.not_valid_before_utc)
            .extension_policies(ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(),
                                ee_policy=x509v.ExtensionPolicy.permit_all())
        )
        try:
            builder.build_client_verifier().verify(leaf, certs[1:])
        except x509v.VerificationError as err:
            raise VerificationError(
                f"the signing certificate does not chain to a trusted root: {err}") from err
        if not _may_sign(leaf):
            raise VerificationError("the signing certificate is not allowed to sign",
                                    hint="it needs KeyUsage digitalSignature or EKU codeSigning")
        key = _check_public(leaf.public_key(), "signing certificate")
        if not any(_raw_verify(key, sig, pae) for sig in signatures):
            raise VerificationError("the signature does not verify with its certificate")
        return f"certificate {leaf.subject.rfc4514_string()}"


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CODE_SIGNING in eku


def load_verifier(key: Path | None = None, roots: Sequence[Path] = ()) -> Verifier:
    """Build the verifier the user asked for: a public key, or trusted root certificates.

    A private key file is accepted for `key` (its public half is used).

    Raises:
        InputError: neither or both given, or unreadable material.
    """
    if (key is None) == (not roots):
        raise InputError("give either --key PUBLIC.pem or --certificate-chain ROOTS.pem")
    if key is not None:
        data = _read(key, "public key")
        try:
            public: object = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            try:
                public = serialization.load_pem_private_key(data, None).public_key()
            except (ValueError, TypeError, UnsupportedAlgorithm) as err:
                raise InputError(f"cannot load public key {key}: {err}") from err
        return KeyVerifier(_check_public(public, str(key)))
    certs: list[x509.Certificate] = []
    for path in roots:
        certs.extend(_load_certs(path))
    return CertificateVerifier(tuple(certs))
