"""Sign a model: hash it into a manifest and write a model-signing compatible signature.

The signature is an in-toto statement (predicate type
``https://model_signing/signature/v1.0``) whose subject is the model name and root digest
and whose predicate lists the serialization and every resource, in a DSSE envelope in a
Sigstore bundle: what the ``model-signing`` package writes and reads. modelward adds one
predicate field that v1.0 verifiers ignore: ``modelward.empty_files``, so that files of
size 0, which the ``shards`` method cannot list, are still covered.

Where files go (``model.sig`` as model-signing names it): for a folder, inside it; for a
single file ``w.safetensors``, next to it as ``w.safetensors.sig``. The signature and its
sidecars (``*.scan.sig`` scan attestation, ``*.lineage.sig`` lineage) are left out of the
manifest and listed in ``ignore_paths``, so model-signing's verifier skips them too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from modelward import __version__
from modelward.errors import InputError, VerificationError
from modelward.signing.envelope import STATEMENT_TYPE, StatementSigner, sign_statement
from modelward.signing.manifest import (
    DEFAULT_IGNORES,
    DEFAULT_SHARD_SIZE,
    MAX_FILES,
    Manifest,
    Resource,
    Serialization,
    build_manifest,
)

__all__ = [
    "SIGNATURE_NAME",
    "SIGNATURE_PREDICATE",
    "SignResult",
    "manifest_from_statement",
    "own_paths",
    "sidecar",
    "sign_model",
    "signature_path_for",
    "signature_statement",
]

SIGNATURE_NAME: Final = "model.sig"
SIGNATURE_PREDICATE: Final = "https://model_signing/signature/v1.0"
SIDECARS: Final = ("scan", "lineage")


def signature_path_for(model: Path) -> Path:
    """Default signature location: ``DIR/model.sig`` or ``FILE.sig`` beside a file."""
    if model.is_dir():
        return model / SIGNATURE_NAME
    return model.with_name(model.name + ".sig")


def sidecar(signature: Path, kind: str) -> Path:
    """Where the ``scan`` attestation or ``lineage`` record of a signature lives."""
    stem = signature.name[: -len(".sig")] if signature.name.endswith(".sig") else signature.name
    return signature.with_name(f"{stem}.{kind}.sig")


def own_paths(model: Path, signature: Path) -> list[str]:
    """The signature and its sidecars, relative to a model folder, when inside it."""
    if not model.is_dir():
        return []
    root = model.resolve()
    out = []
    for path in (signature, *(sidecar(signature, k) for k in SIDECARS)):
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            continue
        out.append(PurePosixPath(*rel.parts).as_posix())
    return out


def signature_statement(manifest: Manifest) -> dict[str, Any]:
    """The in-toto statement model-signing signs for a manifest."""
    predicate: dict[str, Any] = {
        "serialization": manifest.serialization.to_json(),
        "resources": [r.to_json() for r in manifest.resources],
    }
    modelward: dict[str, Any] = {"version": __version__}
    if manifest.serialization.method == "shards":
        modelward["empty_files"] = list(manifest.empty_files)
    predicate["modelward"] = modelward
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest.model_name, "digest": {"sha256": manifest.root_digest}}],
        "predicateType": SIGNATURE_PREDICATE,
        "predicate": predicate,
    }


def manifest_from_statement(statement: Mapping[str, Any], where: str) -> tuple[Manifest, bool]:
    """Rebuild the signed manifest from a verified statement.

    Returns:
        The manifest and whether it covers empty files (always for ``files``; for
        ``shards`` only when modelward signed it).

    Raises:
        VerificationError: wrong predicate type, malformed fields, or resources that do not
            hash to the subject's root digest.
    """
    if statement.get("predicateType") != SIGNATURE_PREDICATE:
        raise VerificationError(
            f"{where}: not a model signature (predicate {statement.get('predicateType')!r})",
            hint="model-signing v0.2 signatures are not supported; sign again",
        )
    subjects = statement.get("subject")
    predicate = statement.get("predicate")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(predicate, dict):
        raise VerificationError(f"{where}: a model signature has one subject and a predicate")
    try:
        name = subjects[0]["name"]
        root = subjects[0]["digest"]["sha256"]
        serialization = Serialization.from_json(predicate.get("serialization"))
        resources = []
        for item in predicate["resources"]:
            resources.append(Resource(str(item["name"]), str(item["algorithm"]),
                                      bytes.fromhex(item["digest"])))
        extension = predicate.get("modelward")
        empty: list[str] = []
        covers_empty = serialization.method == "files"
        if isinstance(extension, dict) and isinstance(extension.get("empty_files"), list):
            empty = [str(e) for e in extension["empty_files"]]
            covers_empty = True
    except (KeyError, TypeError, ValueError, InputError) as err:
        raise VerificationError(f"{where}: malformed model signature: {err}") from err
    manifest = Manifest(str(name), serialization, tuple(resources), tuple(sorted(empty)))
    if manifest.root_digest != root:
        raise VerificationError(
            f"{where}: manifest is inconsistent: its resources do not hash to the signed "
            "root digest"
        )
    return Manifest.create(str(name), serialization, resources, empty), covers_empty


@dataclass(frozen=True, slots=True)
class SignResult:
    """What `sign_model` produced."""

    signature: Path
    manifest: Manifest


def sign_model(
    model: Path,
    key: StatementSigner,
    *,
    signature: Path | None = None,
    method: str = "files",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore_paths: Sequence[str] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    workers: int | None = None,
    max_files: int = MAX_FILES,
) -> SignResult:
    """Hash `model` and write its signature.

    Args:
        model: model folder or single file.
        key: private key (and certificate chain) to sign with.
        signature: where to write; defaults to `signature_path_for`.
        method: ``files`` (default; what model-signing's CLI verifies) or ``shards``
            (parallel inside large files; model-signing verifies it through its library API).
        shard_size: bytes per shard for ``shards``.
        ignore_paths: relative paths (files or folders) to leave out.
        ignore_git_paths: also leave out ``.git``, ``.gitattributes``, ``.github``,
            ``.gitignore`` (model-signing's default).
        allow_symlinks: follow links that stay inside the model.
        workers: hashing threads (default: every CPU).
        max_files: refuse folders with more files.

    Raises:
        InputError: unreadable model, refused link or special file, too many files,
            a file changing while hashed, or bad options.
    """
    sig_path = signature or signature_path_for(model)
    ignores = [*(DEFAULT_IGNORES if ignore_git_paths else ()), *ignore_paths,
               *own_paths(model, sig_path)]
    serialization = Serialization(method, "sha256", shard_size, allow_symlinks,
                                  tuple(dict.fromkeys(ignores)))
    manifest = build_manifest(model, serialization, workers=workers, max_files=max_files)
    sign_statement(signature_statement(manifest), key, sig_path)
    return SignResult(sig_path, manifest)
