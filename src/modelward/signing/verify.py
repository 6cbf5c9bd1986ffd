"""Verify a model against its signature and name every file that differs.

Order matters: the signature is checked first (bundle structure, then cryptography, then
the manifest's own consistency); only a verified manifest is trusted for its
serialization and ignore list, and the model is then hashed the same way and compared
file by file. Any doubt is an error: there is no "verified with warnings".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelward.errors import VerificationError
from modelward.signing.envelope import read_bundle
from modelward.signing.keys import Verifier
from modelward.signing.manifest import (
    MAX_FILES,
    Manifest,
    ManifestDiff,
    build_manifest,
    diff_manifests,
)
from modelward.signing.sign import manifest_from_statement, own_paths, signature_path_for

__all__ = ["ManifestMismatchError", "VerifiedModel", "verify_model"]


class ManifestMismatchError(VerificationError):
    """The signature holds but the model on disk differs from what was signed.

    Attributes:
        diff: the files added, removed and changed since signing.
    """

    def __init__(self, model: Path, diff: ManifestDiff) -> None:
        super().__init__(
            f"{model} does not match its signature: {diff.describe()}",
            hint="restore the signed files, or sign the model again if the change is wanted",
        )
        self.diff = diff


@dataclass(frozen=True, slots=True)
class VerifiedModel:
    """A model whose signature and content both check out.

    Attributes:
        model: the model path.
        signature: the signature file.
        signer: who signed (key id or certificate subject).
        manifest: the signed manifest (equal to what is on disk).
    """

    model: Path
    signature: Path
    signer: str
    manifest: Manifest


def verify_model(
    model: Path,
    verifier: Verifier,
    *,
    signature: Path | None = None,
    ignore_paths: Sequence[str] = (),
    workers: int | None = None,
    max_files: int = MAX_FILES,
) -> VerifiedModel:
    """Check `model` against its signature.

    Args:
        model: the model folder or file.
        verifier: trusted key, roots or keyless identity.
        signature: the signature file (default: `signature_path_for`).
        ignore_paths: more relative paths to leave out at verification.
        workers: hashing threads.
        max_files: refuse folders with more files.

    Returns:
        The verified model.

    Raises:
        VerificationError: the signature is missing, malformed, made by another key, or
            the model differs (`ManifestMismatchError`, naming each file).
        InputError: the model cannot be read consistently (links, special files, files
            changing while hashed, too many files).
    """
    sig_path = signature or signature_path_for(model)
    bundle = read_bundle(sig_path)
    statement, signer = bundle.verify(verifier)
    expected, covers_empty = manifest_from_statement(statement, str(sig_path))
    actual = build_manifest(
        model,
        expected.serialization,
        extra_ignores=[*own_paths(model, sig_path), *ignore_paths],
        workers=workers,
        max_files=max_files,
    )
    diff = diff_manifests(expected, actual, check_empty=covers_empty)
    if diff:
        raise ManifestMismatchError(model, diff)
    return VerifiedModel(model, sig_path, signer, expected)
