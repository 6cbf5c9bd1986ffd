"""Lineage: signed records that one model was produced from another, and chain walking.

``modelward sign CONVERTED --derived-from SOURCE`` writes ``model.lineage.sig`` beside the
signature: an in-toto statement whose subject is the converted model's manifest and whose
predicate records the source (name, path as given, root digest, serialization, every
resource digest, the digest of the source's own signature if it has one), the converter
and its settings as the user stated them, and optionally the digest of a diff report
(``modelward diff``) comparing the two.

``modelward verify --lineage`` checks the model's signature and lineage record, finds the
source (at the recorded path, or under ``--search`` folders), checks its bytes against the
record and its own signature, and repeats up the chain. Each link is reported; any broken
link fails verification.

Sources are often signed by someone else than the converted model (the upstream
publisher signed the original, your team signed the ONNX export). `LineageKeys` says whose
key each source must verify with: a key pinned to a source name (``--lineage-key
NAME=KEY``), else any key of a keyring (``--lineage-keyring DIR``), else the model's own
verifier. Pinning is stricter: a keyring key accepts any source it signed.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from modelward import __version__
from modelward.errors import InputError, ModelwardError, VerificationError
from modelward.signing.attestation import subjects_match, subjects_of
from modelward.signing.envelope import STATEMENT_TYPE, StatementSigner, read_bundle, sign_statement
from modelward.signing.keys import Verifier
from modelward.signing.manifest import (
    Manifest,
    Resource,
    Serialization,
    build_manifest,
    diff_manifests,
)
from modelward.signing.sign import own_paths, sidecar, signature_path_for
from modelward.signing.verify import ManifestCache, cached_manifest, verify_model

__all__ = [
    "LINEAGE_PREDICATE",
    "AnyVerifier",
    "LineageKeys",
    "LineageLink",
    "LinkStatus",
    "record_lineage",
    "walk_lineage",
]

LINEAGE_PREDICATE: Final = "urn:modelward:predicate:lineage:v1"
MAX_CHAIN: Final = 32


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def record_lineage(
    converted: Path,
    source: Path,
    key: StatementSigner,
    manifest: Manifest,
    *,
    signature: Path | None = None,
    converter: str | None = None,
    settings: Mapping[str, str] | None = None,
    diff_report: Path | None = None,
    workers: int | None = None,
) -> Path:
    """Sign a lineage record: `converted` (described by `manifest`) came from `source`.

    Args:
        converted: the derived model.
        source: the model it was produced from.
        key: signing key.
        manifest: the converted model's manifest (as just signed).
        signature: the converted model's signature path (record goes beside it).
        converter: tool that converted, as the user names it (``optimum 1.23``).
        settings: converter settings as the user gives them.
        diff_report: a ``modelward diff`` report comparing the two, recorded by digest.
        workers: hashing threads.

    Returns:
        The lineage record written (``model.lineage.sig``).

    Raises:
        InputError: the source cannot be hashed, or the diff report cannot be read.
    """
    sig_path = signature or signature_path_for(converted)
    source_sig = signature_path_for(source)
    source_manifest = build_manifest(source, Serialization(),
                                     extra_ignores=own_paths(source, source_sig), workers=workers)
    diff_info = None
    if diff_report is not None:
        try:
            diff_info = {"path": str(diff_report), "digest": _file_sha256(diff_report)}
        except OSError as err:
            raise InputError(f"cannot read diff report {diff_report}: {err.strerror}") from err
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects_of(manifest),
        "predicateType": LINEAGE_PREDICATE,
        "predicate": {
            "model": {"name": manifest.model_name, "root_digest": manifest.root_digest,
                      "serialization": manifest.serialization.to_json()},
            "source": {
                "name": source_manifest.model_name,
                "path": str(source),
                "absolute_path": os.path.abspath(source),
                "root_digest": source_manifest.root_digest,
                "serialization": source_manifest.serialization.to_json(),
                "resources": [r.to_json() for r in source_manifest.resources],
                "signature_digest": _file_sha256(source_sig) if source_sig.is_file() else None,
            },
            "converter": {"name": converter, "settings": dict(settings or {})},
            "diff_report": diff_info,
            "recorded_by": {"name": "modelward", "version": __version__},
        },
    }
    out = sidecar(sig_path, "lineage")
    sign_statement(statement, key, out)
    return out


class LinkStatus(enum.Enum):
    """What walking one link of the chain found."""

    VERIFIED = "verified"
    ROOT = "root"
    SOURCE_MISSING = "source-missing"
    SOURCE_CHANGED = "source-changed"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class LineageLink:
    """One step of a lineage chain.

    Attributes:
        model: the model checked at this step.
        root_digest: its verified root digest.
        status: what was found.
        source: where its source was found (``None``: root, or missing).
        source_digest: the source root digest the record names.
        converter: converter name and settings as recorded.
        detail: human explanation (differences, errors).
    """

    model: Path
    root_digest: str | None
    status: LinkStatus
    source: Path | None = None
    source_digest: str | None = None
    converter: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (LinkStatus.VERIFIED, LinkStatus.ROOT)


@dataclass(frozen=True)
class AnyVerifier(Verifier):
    """Accepts a signature that any one of `verifiers` accepts (a keyring)."""

    verifiers: tuple[Verifier, ...]

    def check_bundle(
        self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes, path: Path
    ) -> str:
        errors = []
        for verifier in self.verifiers:
            try:
                return verifier.check_bundle(material, signatures, pae, path)
            except VerificationError as err:
                errors.append(err.message)
        raise VerificationError(
            f"no key of the keyring verifies the signature ({len(errors)} tried)",
            hint="; ".join(dict.fromkeys(errors)) or "the keyring is empty",
        )

    def check(self, material: dict[str, Any], signatures: Sequence[bytes], pae: bytes) -> str:
        return self.check_bundle(material, signatures, pae, Path())


@dataclass(frozen=True)
class LineageKeys:
    """Whose key each model on a lineage chain must verify with.

    Attributes:
        pinned: source name (as recorded, or the source's file/folder name) -> verifier.
        keyring: verifiers any of which is accepted for sources not pinned.
    """

    pinned: Mapping[str, Verifier] = field(default_factory=dict)
    keyring: tuple[Verifier, ...] = ()

    def for_source(self, recorded: Mapping[str, Any], source: Path,
                   default: Verifier) -> Verifier:
        """The verifier for `source`: pinned by name, else the keyring, else `default`."""
        for name in (str(recorded.get("name", "")), source.name,
                     source.resolve().name):
            if name and name in self.pinned:
                return self.pinned[name]
        if self.keyring:
            return AnyVerifier((*self.keyring, default))
        return default


def _candidates(recorded: Mapping[str, Any], model: Path, search: Sequence[Path]) -> list[Path]:
    path = str(recorded.get("path", ""))
    name = str(recorded.get("name", ""))
    out: list[Path] = []
    if path:
        out += [Path(path), model.parent / path, Path(str(recorded.get("absolute_path", path)))]
    for folder in search:
        out += [folder / Path(path).name, folder / name]
    return [p for p in dict.fromkeys(out) if str(p) and p.exists()]


def _link(model: Path, sig: Path | None, verifier: Verifier, search: Sequence[Path],
          cache: ManifestCache) -> tuple[LineageLink, Path | None, Mapping[str, Any]]:
    try:
        verified = verify_model(model, verifier, signature=sig, cache=cache)
    except ModelwardError as err:
        return LineageLink(model, None, LinkStatus.BROKEN, detail=err.message), None, {}
    record = sidecar(verified.signature, "lineage")
    root = verified.manifest.root_digest
    if not record.exists():
        return LineageLink(model, root, LinkStatus.ROOT, detail="no lineage record"), None, {}
    try:
        statement, _ = read_bundle(record).verify(verifier)
        if statement.get("predicateType") != LINEAGE_PREDICATE:
            raise VerificationError(f"{record} is not a lineage record")
        predicate = statement["predicate"]
        if not subjects_match(statement["subject"], verified.manifest):
            raise VerificationError(f"{record} describes other bytes than {model}")
        recorded = predicate["source"]
        serialization = Serialization.from_json(recorded["serialization"])
        resources = [Resource(r["name"], r["algorithm"], bytes.fromhex(r["digest"]))
                     for r in recorded["resources"]]
        expected = Manifest.create(str(recorded["name"]), serialization, resources)
        conv = predicate.get("converter") or {}
        converter = " ".join(filter(None, [conv.get("name"), " ".join(
            f"{k}={v}" for k, v in sorted((conv.get("settings") or {}).items()))])) or None
    except (ModelwardError, KeyError, TypeError, ValueError, AttributeError) as err:
        detail = err.message if isinstance(err, ModelwardError) else f"malformed record: {err}"
        return LineageLink(model, root, LinkStatus.BROKEN, detail=detail), None, {}
    digest = str(recorded["root_digest"])
    found = _candidates(recorded, model, search)
    if not found:
        return LineageLink(model, root, LinkStatus.SOURCE_MISSING, None, digest, converter,
                           f"source {recorded.get('path')} not found (try --search DIR)"), None, {}
    source = found[0]
    try:
        actual = cached_manifest(cache, source, serialization,
                                 own_paths(source, signature_path_for(source)))
    except ModelwardError as err:
        return LineageLink(model, root, LinkStatus.BROKEN, source, digest, converter,
                           err.message), None, {}
    diff = diff_manifests(expected, actual, check_empty=serialization.method == "files")
    if diff:
        return LineageLink(model, root, LinkStatus.SOURCE_CHANGED, source, digest, converter,
                           diff.describe()), None, {}
    return (LineageLink(model, root, LinkStatus.VERIFIED, source, digest, converter), source,
            recorded)


def walk_lineage(
    model: Path,
    verifier: Verifier,
    *,
    signature: Path | None = None,
    search: Sequence[Path] = (),
    max_chain: int = MAX_CHAIN,
    keys: LineageKeys | None = None,
    cache: ManifestCache | None = None,
) -> list[LineageLink]:
    """Follow a model's lineage records back to a model that has none.

    The model verifies with `verifier`; each source with the key `keys` gives for it
    (default: `verifier` too). A source that is not signed, or signed by a key not
    trusted for it, ends the chain as a broken link (its provenance cannot be
    established). Each model is hashed once (`cache`, which the caller may share with a
    later `verify_model` of the same model).

    Returns:
        One link per model, the given model first. The chain is intact when every
        link is `ok`.
    """
    links: list[LineageLink] = []
    seen: set[str] = set()
    current: Path | None = model
    sig = signature
    keys = keys or LineageKeys()
    cache = {} if cache is None else cache
    link_verifier = verifier
    while current is not None:
        if len(links) >= max_chain:
            links.append(LineageLink(current, None, LinkStatus.BROKEN,
                                     detail=f"chain longer than {max_chain} links"))
            break
        link, current, recorded = _link(current, sig, link_verifier, search, cache)
        if current is not None:
            link_verifier = keys.for_source(recorded, current, verifier)
        sig = None
        if link.root_digest is not None and link.root_digest in seen:
            links.append(LineageLink(link.model, link.root_digest, LinkStatus.BROKEN,
                                     detail="lineage cycle"))
            break
        if link.root_digest is not None:
            seen.add(link.root_digest)
        links.append(link)
    return links
