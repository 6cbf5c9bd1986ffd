"""Signed scan attestations: "these exact bytes were scanned by modelward vX under policy P".

An attestation is an in-toto statement in the same Sigstore bundle/DSSE container as the
model signature, signed with the same key, stored beside it (``model.scan.sig``). Its
subject is the model's manifest, one entry per file (or shard) with its digest, so it
binds to the bytes and not to a name. Its predicate records the modelward version, the
policy digest (`Policy.digest`) and fail-on level, the verdict and every finding.

``verify --require-clean`` accepts a model only when its signature holds *and* an
attestation verifies with a trusted key, covers exactly the files on disk, says the scan
was complete and clean, and names a policy the verifier accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from modelward.errors import InputError, VerificationError
from modelward.results import ExitCode, ScanReport
from modelward.signing.envelope import STATEMENT_TYPE, StatementSigner, read_bundle, sign_statement
from modelward.signing.hashing import digest_name
from modelward.signing.keys import Verifier
from modelward.signing.manifest import Manifest, Serialization, build_manifest
from modelward.signing.sign import manifest_from_statement, own_paths, sidecar, signature_path_for

__all__ = [
    "SCAN_PREDICATE",
    "ScanAttestation",
    "attest_scan",
    "scan_statement",
    "subjects_match",
    "subjects_of",
    "verify_scan_attestation",
]

SCAN_PREDICATE: Final = "urn:modelward:predicate:scan:v1"


def subjects_of(manifest: Manifest) -> list[dict[str, Any]]:
    """in-toto subjects for every resource: ``{"name", "digest": {alg: hex}}``."""
    key = digest_name(manifest.serialization.hash_type)
    return [{"name": r.name, "digest": {key: r.digest.hex()}} for r in manifest.resources]


def _finding_json(finding: Any) -> dict[str, Any]:
    return {
        "rule": finding.rule.id,
        "severity": finding.severity.label,
        "message": finding.message,
        "location": str(finding.location),
        "evidence": finding.evidence,
    }


def scan_statement(report: ScanReport, manifest: Manifest) -> dict[str, Any]:
    """The attestation statement for a scan of the model `manifest` describes."""
    exit_code = report.exit_code()
    verdict = report.verdict
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects_of(manifest),
        "predicateType": SCAN_PREDICATE,
        "predicate": {
            "scanner": {"name": "modelward", "version": report.version},
            "policy": {
                "digest": report.policy.digest(),
                "fail_on": report.policy.fail_on.label,
                "source": report.policy.source,
            },
            "verdict": {
                "clean": exit_code is ExitCode.OK,
                "exit_code": int(exit_code),
                "worst": verdict.label if verdict is not None else None,
                "complete": report.is_complete,
                "counts": {s.label: n for s, n in report.counts().items()},
            },
            "findings": [_finding_json(f) for f in report.findings()],
            "model": {
                "name": manifest.model_name,
                "root_digest": manifest.root_digest,
                "serialization": manifest.serialization.to_json(),
            },
            "scanned_at": report.started_at,
        },
    }


def _signed_serialization(signature: Path) -> Serialization | None:
    """The serialization an existing signature uses (to hash the same way), if any."""
    if not signature.exists():
        return None
    try:
        statement = read_bundle(signature).statement()
        manifest, _ = manifest_from_statement(statement, str(signature))
    except VerificationError:
        return None
    return manifest.serialization


def _cross_check(report: ScanReport, manifest: Manifest) -> None:
    """Refuse to attest when the report's own file digests disagree with the files now."""
    if manifest.serialization.method != "files" or manifest.serialization.hash_type != "sha256":
        return
    digests = {r.name: r.digest.hex() for r in manifest.resources}
    for result in report.files:
        if result.sha256 is None:
            continue
        name = "." if len(manifest.resources) == 1 and "." in digests else result.path
        if name in digests and digests[name] != result.sha256:
            raise InputError(
                f"{result.path} changed between the scan and the attestation",
                hint="scan again and attest right away",
            )


def attest_scan(
    report: ScanReport,
    model_path: Path,
    key: StatementSigner,
    *,
    signature: Path | None = None,
    manifest: Manifest | None = None,
    workers: int | None = None,
) -> Path:
    """Sign a scan report as an attestation over the model's current digests.

    Args:
        report: the scan of `model_path` (with ``hash_files=True`` it is cross-checked
            against the digests, catching files changed since the scan).
        model_path: the scanned model folder or file.
        key: the signing key (the model signature's key, normally).
        signature: the model signature path; the attestation goes beside it.
        manifest: the model's manifest if just computed (by `sign_model`); reused when
            its serialization matches the signature's, instead of hashing again.
        workers: hashing threads.

    Returns:
        The attestation file written (``model.scan.sig``).

    Raises:
        InputError: the model cannot be hashed, or changed since the scan.
    """
    sig_path = signature or signature_path_for(model_path)
    serialization = _signed_serialization(sig_path) or Serialization()
    if manifest is None or manifest.serialization != serialization:
        manifest = build_manifest(model_path, serialization,
                                  extra_ignores=own_paths(model_path, sig_path), workers=workers)
    _cross_check(report, manifest)
    out = sidecar(sig_path, "scan")
    sign_statement(scan_statement(report, manifest), key, out)
    return out


@dataclass(frozen=True, slots=True)
class ScanAttestation:
    """A verified scan attestation.

    Attributes:
        path: the attestation file.
        signer: who signed it.
        version: modelward version that scanned.
        policy_digest: digest of the policy the scan ran under.
        clean: whether the scan was complete with nothing at or above fail-on.
        worst: the worst severity found (``None``: no finding).
        findings: number of findings.
        scanned_at: when the scan started (ISO-8601).
    """

    path: Path
    signer: str
    version: str
    policy_digest: str
    clean: bool
    worst: str | None
    findings: int
    scanned_at: str


def subjects_match(subjects: object, manifest: Manifest) -> bool:
    if not isinstance(subjects, list):
        return False
    try:
        got = sorted((s["name"], tuple(sorted(s["digest"].items()))) for s in subjects)
    except (KeyError, TypeError, AttributeError):
        return False
    want = sorted((s["name"], tuple(sorted(s["digest"].items()))) for s in subjects_of(manifest))
    return got == want


def verify_scan_attestation(
    model: Path,
    verifier: Verifier,
    *,
    signature: Path | None = None,
    accepted_policies: Collection[str] = (),
    require_clean: bool = True,
    signed_manifest: Manifest | None = None,
    workers: int | None = None,
) -> ScanAttestation:
    """Check the scan attestation beside a model's signature.

    Args:
        model: the model folder or file.
        verifier: trusted key material (as for the signature).
        signature: the model signature path (default location if omitted).
        accepted_policies: policy digests the caller accepts; empty accepts none.
        require_clean: also require a clean, complete verdict.
        signed_manifest: the already verified model manifest, reused when the
            attestation was computed the same way (saves hashing the model twice).
        workers: hashing threads.

    Raises:
        VerificationError: missing or invalid attestation, other bytes than the model's,
            a verdict that is not clean, or a policy that is not accepted.
    """
    sig_path = signature or signature_path_for(model)
    path = sidecar(sig_path, "scan")
    if not path.exists():
        raise VerificationError(f"no scan attestation at {path}",
                                hint="run `modelward sign MODEL --key K --scan`")
    statement, signer = read_bundle(path).verify(verifier)
    if statement.get("predicateType") != SCAN_PREDICATE:
        raise VerificationError(f"{path} is not a modelward scan attestation")
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        raise VerificationError(f"{path}: malformed scan attestation: no predicate")
    try:
        model_info = predicate["model"]
        serialization = Serialization.from_json(model_info["serialization"])
        verdict = predicate["verdict"]
        policy_digest = str(predicate["policy"]["digest"])
        clean = verdict["clean"] is True and verdict["complete"] is True
        attestation = ScanAttestation(
            path, signer, str(predicate["scanner"]["version"]), policy_digest, clean,
            verdict.get("worst"), len(predicate["findings"]), str(predicate["scanned_at"]),
        )
    except (KeyError, TypeError, AttributeError, InputError) as err:
        raise VerificationError(f"{path}: malformed scan attestation: {err}") from err
    if signed_manifest is not None and signed_manifest.serialization == serialization:
        current = signed_manifest
    else:
        current = build_manifest(model, serialization,
                                 extra_ignores=own_paths(model, sig_path), workers=workers)
    if not subjects_match(statement.get("subject"), current):
        raise VerificationError(
            f"{path} attests other bytes than the model on disk",
            hint="the model changed after the scan: scan and attest it again",
        )
    if require_clean and not attestation.clean:
        raise VerificationError(
            f"{path}: the attested scan was not clean "
            f"(worst finding: {attestation.worst or 'none'}, {attestation.findings} findings"
            f"{'' if verdict.get('complete') else ', incomplete scan'})",
        )
    if policy_digest not in accepted_policies:
        raise VerificationError(
            f"{path}: the scan ran under policy {policy_digest}, which is not accepted",
            hint="pass --accept-policy DIGEST, or verify with the same policy file",
        )
    return attestation
