"""Sigstore bundles holding a DSSE envelope around an in-toto statement.

This is the container model-signing writes even for bare-key signing (bundle media type
v0.3, ``verificationMaterial`` with a ``publicKey`` hint or an ``x509CertificateChain``,
no transparency-log entries). Reading is strict and bounded: a truncated, oversized or
edited file is a `VerificationError` that says what is wrong, never a verified model.

References:
    https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md (PAE)
    https://docs.sigstore.dev/about/bundle/
    https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from modelward.errors import VerificationError
from modelward.signing.keys import SigningKey, Verifier

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "Bundle",
    "StatementSigner",
    "make_bundle",
    "pae",
    "read_bundle",
    "sign_statement",
    "write_bundle",
]

BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
ACCEPTED_MEDIA_TYPES: Final = frozenset({
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
})
INTOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
MAX_BUNDLE_BYTES: Final = 64 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed bundle: envelope payload, signatures and verification material.

    Attributes:
        path: where it was read from (for messages).
        payload_type: the DSSE payload type.
        payload: the raw signed bytes (an in-toto statement, JSON).
        signatures: raw signature bytes, one per DSSE signature.
        material: the ``verificationMaterial`` object, as read.
    """

    path: Path
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]
    material: dict[str, Any]

    @property
    def is_keyless(self) -> bool:
        """A Sigstore keyless bundle: a Fulcio certificate plus transparency-log entries."""
        return "certificate" in self.material or bool(self.material.get("tlogEntries"))

    def verify(self, verifier: Verifier) -> tuple[dict[str, Any], str]:
        """Check the signature and return the in-toto statement and the signer.

        Raises:
            VerificationError: bad signature, wrong key, or a payload that is not an
                in-toto v1 statement.
        """
        try:
            signer = verifier.check_bundle(self.material, self.signatures,
                                           pae(self.payload_type, self.payload), self.path)
        except VerificationError as err:
            raise VerificationError(f"{self.path}: {err.message}", hint=err.hint) from None
        return self.statement(), signer

    def statement(self) -> dict[str, Any]:
        """The payload as an in-toto statement. Only trust it after `verify`."""
        if self.payload_type != INTOTO_PAYLOAD_TYPE:
            raise VerificationError(f"{self.path}: payload type {self.payload_type!r} is not "
                                    "an in-toto statement")
        try:
            statement = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise VerificationError(f"{self.path}: signed payload is not JSON: {err}") from err
        if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
            raise VerificationError(f"{self.path}: signed payload is not an in-toto v1 statement")
        return statement


def _b64(value: object, what: str, path: Path) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"{path}: {what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise VerificationError(f"{path}: {what} is not valid base64") from err


def _object(value: object, what: str, path: Path) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VerificationError(f"{path}: {what} is missing or not an object")
    return value


def read_bundle(path: Path) -> Bundle:
    """Read and structurally check a bundle file (no cryptography yet).

    Raises:
        VerificationError: missing, oversized, truncated or malformed file.
    """
    hint = "sign the model again, or obtain the signature from its publisher"
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise VerificationError(f"{path} is {size} bytes, too large for a signature")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(f"signature {path} does not exist",
                                hint="sign the model first, or pass --signature") from None
    except OSError as err:
        raise VerificationError(f"cannot read signature {path}: {err.strerror}") from err
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise VerificationError(f"{path} is not a valid signature (truncated or edited?): {err}",
                                hint=hint) from err
    bundle = _object(data, "the bundle", path)
    media_type = bundle.get("mediaType")
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise VerificationError(f"{path}: unsupported bundle media type {media_type!r}")
    material = dict(_object(bundle.get("verificationMaterial"), "verificationMaterial", path))
    envelope = _object(bundle.get("dsseEnvelope"), "dsseEnvelope", path)
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise VerificationError(f"{path}: dsseEnvelope.payloadType is missing")
    payload = _b64(envelope.get("payload"), "dsseEnvelope.payload", path)
    raw_sigs = envelope.get("signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise VerificationError(f"{path}: the envelope holds no signature", hint=hint)
    sigs = tuple(_b64(_object(s, "signature", path).get("sig"), "signature", path)
                 for s in raw_sigs)
    return Bundle(path, payload_type, payload, sigs, material)


def make_bundle(statement: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Sign an in-toto statement and wrap it as model-signing does."""
    payload = json.dumps(statement, indent=2).encode()
    signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": key.verification_material(),
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }


StatementSigner: TypeAlias = SigningKey | Callable[[Mapping[str, Any], Path], Path]
"""A key, or a function that signs a statement into a bundle file (keyless signing)."""


def sign_statement(statement: Mapping[str, Any], signer: StatementSigner, out: Path) -> Path:
    """Sign `statement` with a key or a keyless signer and write the bundle to `out`."""
    if isinstance(signer, SigningKey):
        return write_bundle(make_bundle(statement, signer), out)
    return signer(statement, out)


def write_bundle(bundle: Mapping[str, Any], path: Path) -> Path:
    """Write a bundle atomically (a reader never sees half a signature)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(bundle, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
