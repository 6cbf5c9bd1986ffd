"""Verify a model against its signature and name every file that differs.

Order matters: the signature is checked first (bundle structure, then cryptography, then
the manifest's own consistency); only a verified manifest is trusted for its
serialization and ignore list, and the model is then hashed the same way and compared
file by file. Any doubt is an error: there is no "verified with warnings".
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from modelward.errors import VerificationError
from modelward.signing.envelope import read_bundle
from modelward.signing.keys import Verifier
from modelward.signing.manifest import (
    MAX_FILES,
    Manifest,
    ManifestDiff,
    Serialization,
    build_manifest,
    diff_manifests,
)
from modelward.signing.sign import manifest_from_statement, own_paths, signature_path_for

__all__ = ["ManifestCache", "ManifestMismatchError", "VerifiedModel", "cached_manifest",
           "verify_model"]

ManifestCache = MutableMapping[tuple[str, Serialization, tuple[str, ...]], Manifest]
"""Manifests already hashed in this run, by (real path, serialization less its ignore
list, every path ignored).

``verify --lineage`` hashes a source once to check it against the lineage record and
again to check the source's own signature; the model itself is checked by the chain walk
and then by ``verify``. A cache shared across those calls makes each model hashed once.
"""


def cached_manifest(
    cache: ManifestCache | None,
    model: Path,
    serialization: Serialization,
    extra_ignores: Sequence[str],
    workers: int | None = None,
    max_files: int = MAX_FILES,
) -> Manifest:
    """`build_manifest`, reusing a manifest hashed earlier in this run under the same terms."""
    ignored = tuple(sorted({*serialization.ignore_paths, *extra_ignores}))
    key = (os.path.realpath(model), replace(serialization, ignore_paths=()), ignored)
    if cache is not None and key in cache:
        return replace(cache[key], serialization=serialization)
    manifest = build_manifest(model, serialization, extra_ignores=extra_ignores,
                              workers=workers, max_files=max_files)
    if cache is not None:
        cache[key] = manifest
    return manifest


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
    cache: ManifestCache | None = None,
) -> VerifiedModel:
    """Check `model` against its signature.

    Args:
        model: the model folder or file.
        verifier: trusted key, roots or keyless identity.
        signature: the signature file (default: `signature_path_for`).
        ignore_paths: more relative paths to leave out at verification.
        workers: hashing threads.
        max_files: refuse folders with more files.
        cache: manifests hashed earlier in this run (`ManifestCache`), to hash once.

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
    actual = cached_manifest(cache, model, expected.serialization,
                             [*own_paths(model, sig_path), *ignore_paths], workers, max_files)
    diff = diff_manifests(expected, actual, check_empty=covers_empty)
    if diff:
        raise ManifestMismatchError(model, diff)
    return VerifiedModel(model, sig_path, signer, expected)
