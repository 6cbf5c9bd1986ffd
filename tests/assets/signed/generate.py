"""Regenerate the signed assets of this release: ``python tests/assets/signed/generate.py``.

Writes ``v<version>/`` with a tiny model folder, the P-256 key pair that signed it (test
only: never trust this key), the signature (``model/model.sig``), a scan attestation and
a single-file signature. Keys and signatures are random, so regenerating changes them;
CI checks the checked-in ones still verify with the current release
(tests/cli/test_sign_verify.py::test_signed_assets_of_every_release_verify), never that
they are reproduced byte for byte. Run only when cutting a release.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelward import __version__
from modelward.policy import Policy
from modelward.scan import scan_path
from modelward.signing.attestation import attest_scan
from modelward.signing.keys import load_signing_key
from modelward.signing.sign import sign_model

HERE = Path(__file__).parent


def main() -> int:
    out = HERE / f"v{__version__}"
    shutil.rmtree(out, ignore_errors=True)
    model = out / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"architectures": ["Tiny"], "hidden_size": 2}\n')
    (model / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (model / "empty").write_bytes(b"")
    key = ec.generate_private_key(ec.SECP256R1())
    (out / "signing-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (out / "signing-key.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    signing_key = load_signing_key(out / "signing-key.pem")
    result = sign_model(model, signing_key)
    attest_scan(scan_path(model, policy=Policy(), hash_files=True), model, signing_key,
                manifest=result.manifest)
    (out / "policy-digest.txt").write_text(Policy().digest() + "\n")
    single = out / "single.bin"
    single.write_bytes(b"\x01\x02\x03" * 100)
    sign_model(single, signing_key, method="shards", shard_size=128)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
