"""Model signing: manifests, model-signing compatible signatures, attestations, lineage.

- `sign_model` hashes a model folder or file (``manifest``, ``hashing``) and writes a
  Sigstore bundle that the OpenSSF ``model-signing`` package verifies, and vice versa.
- `verify_model` checks a signature and names each file changed, removed or added
  (`ManifestMismatchError.diff`).
- `attest_scan` signs "scanned by modelward vX under policy P: verdict V" over the same
  digests; `verify_scan_attestation` checks it (``verify --require-clean``).
- `record_lineage` signs "this model was derived from that one"; `walk_lineage` follows
  the chain (``verify --lineage``).
- ``keyless`` signs and verifies with Sigstore's public-good instance (network needed).
"""

from __future__ import annotations

from modelward.signing.keys import SigningKey, Verifier, load_signing_key, load_verifier
from modelward.signing.manifest import Manifest, ManifestDiff, Serialization, build_manifest
from modelward.signing.sign import SignResult, sign_model, signature_path_for
from modelward.signing.verify import ManifestMismatchError, VerifiedModel, verify_model

__all__ = [
    "Manifest",
    "ManifestDiff",
    "ManifestMismatchError",
    "Serialization",
    "SignResult",
    "SigningKey",
    "VerifiedModel",
    "Verifier",
    "build_manifest",
    "load_signing_key",
    "load_verifier",
    "sign_model",
    "signature_path_for",
    "verify_model",
]
