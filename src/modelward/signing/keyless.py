"""Keyless signing and verification through Sigstore (Fulcio certificates, Rekor log).

Keyless signing has no key file: the signer proves an identity to an OpenID Connect
provider, Fulcio issues a short-lived certificate for it, and the signature is recorded
in the Rekor transparency log. The bundle written is the same Sigstore bundle around the
same in-toto statement as key signing, so ``model_signing verify sigstore`` reads it.

This needs the network (the Sigstore public-good instance and its TUF trust root) and
the ``sigstore`` package; both are looked for only when this path is used. Tests cannot
exercise it offline: they are marked ``network`` and skip cleanly.

Identity token, in sigstore-python's order: an explicit token (``--identity-token`` or
``SIGSTORE_ID_TOKEN``), ambient CI credentials, then the interactive browser flow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import override

from modelward.errors import BackendUnavailableError, InputError, VerificationError
from modelward.signing.envelope import write_bundle
from modelward.signing.keys import Verifier

__all__ = ["KeylessSigner", "KeylessVerifier", "sign_statement_keyless"]


def _sigstore() -> Any:
    try:
        import sigstore.dsse
        import sigstore.models
        import sigstore.oidc
        import sigstore.sign
        import sigstore.verify
        import sigstore.verify.policy
    except ImportError as err:
        raise BackendUnavailableError(
            "keyless signing needs the sigstore package",
            hint="pip install sigstore",
        ) from err
    return sigstore


def sign_statement_keyless(
    statement: Mapping[str, Any],
    out: Path,
    *,
    identity_token: str | None = None,
    staging: bool = False,
) -> Path:
    """Sign an in-toto statement with Sigstore and write the bundle to `out`.

    Raises:
        BackendUnavailableError: the sigstore package is missing.
        InputError: no identity could be obtained, or Sigstore could not be reached.
    """
    sigstore = _sigstore()
    payload = json.dumps(statement, indent=2).encode()
    try:
        config = (sigstore.models.ClientTrustConfig.staging() if staging
                  else sigstore.models.ClientTrustConfig.production())
        context = sigstore.sign.SigningContext.from_trust_config(config)
        token_text = identity_token or os.environ.get("SIGSTORE_ID_TOKEN")
        if token_text:
            token = sigstore.oidc.IdentityToken(token_text)
        else:
            ambient = sigstore.oidc.detect_credential()
            if ambient:
                token = sigstore.oidc.IdentityToken(ambient)
            else:
                issuer = sigstore.oidc.Issuer(config.signing_config.get_oidc_url())
                token = issuer.identity_token()
        with context.signer(token) as signer:
            bundle = signer.sign_dsse(sigstore.dsse.Statement(payload))
    except BackendUnavailableError:
        raise
    except Exception as err:  # sigstore raises many network/OIDC error types
        raise InputError(f"keyless signing failed: {err}",
                         hint="keyless signing needs network access to Sigstore") from err
    return write_bundle(json.loads(bundle.to_json()), out)


@dataclass(frozen=True)
class KeylessSigner:
    """A `StatementSigner` for keyless signing: call it with a statement and a path."""

    identity_token: str | None = None
    staging: bool = False

    def __call__(self, statement: Mapping[str, Any], out: Path) -> Path:
        return sign_statement_keyless(statement, out, identity_token=self.identity_token,
                                      staging=self.staging)


@dataclass(frozen=True)
class KeylessVerifier(Verifier):
    """Trusts Sigstore keyless signatures by one identity from one OIDC issuer."""

    identity: str
    issuer: str
    staging: bool = False

    @override
    def check(self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes) -> str:
        raise VerificationError("keyless verification needs the whole bundle")

    @override
    def check_bundle(
        self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes, path: Path
    ) -> str:
        sigstore = _sigstore()
        try:
            bundle = sigstore.models.Bundle.from_json(path.read_bytes())
            verifier = (sigstore.verify.Verifier.staging() if self.staging
                        else sigstore.verify.Verifier.production())
            identity = sigstore.verify.policy.Identity(identity=self.identity,
                                                        issuer=self.issuer)
            verifier.verify_dsse(bundle, identity)
        except Exception as err:  # invalid bundle, policy failure, no network for TUF
            raise VerificationError(f"Sigstore verification failed: {err}") from err
        return f"sigstore identity {self.identity} ({self.issuer})"
