"""The background job behind every push: materialise, scan, sign, attest, BOM, lineage.

It works on a private copy of the version's files (hard links into the blob store where
possible) in a scratch folder, so nothing a client controls is ever read from a shared
location. Its results become visible in one database transaction at the end: a crash
half-way leaves the version ``pending``/``scanning`` (never downloadable), and the next
start of the server runs the job again (`Registry.resume_pending`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.bom import build_bom
from modelward.results import ExitCode
from modelward.scan import ProgressEvent, scan_path
from modelward.signing.attestation import attest_scan
from modelward.signing.lineage import record_lineage
from modelward.signing.sign import sign_model

if TYPE_CHECKING:
    from modelward.registry.service import Registry, VersionInfo

__all__ = ["finding_json", "process_version"]

MAX_FINDINGS_STORED = 500


def finding_json(finding: Any) -> dict[str, Any]:
    """A finding as the API and web pages show it."""
    loc = finding.location
    return {
        "rule": str(finding.rule.id), "name": finding.rule.name,
        "severity": finding.severity.label, "message": finding.message,
        "path": loc.path, "members": list(loc.members), "offset": loc.offset,
        "node": loc.node, "evidence": finding.evidence,
        "remediation": finding.rule.remediation,
    }


def _source_dir(registry: Registry, derived_from: str, root: Path) -> Path | None:
    """Materialise the published source version (with its signature) for lineage."""
    from modelward.registry.service import materialize

    name, _, version = derived_from.rpartition(":")
    with registry.db.transaction() as tx:
        row = tx.one("SELECT id FROM versions WHERE name = ? AND version = ? AND "
                     "state = 'published'", (name, version))
    if row is None:
        return None
    info = registry.version_by_id(row[0])
    source = root / "source"
    source.mkdir()
    materialize(registry.blobs, info.files, source)
    if info.signature_blob:
        registry.blobs.materialize(info.signature_blob, source / "model.sig")
    return source


def process_version(registry: Registry, version_id: str, *, rescan: bool = False,
                    rescan_id: str | None = None) -> tuple[str, str]:
    """Scan, sign and publish (or quarantine) one version.

    A version's files never change; what a (re)scan changes is its state, verdict,
    findings and the signed attestation for the current policy. Each state decision is
    appended to the version's history (``version_events``, append-only) in the same
    transaction, and a changed state is also written to the audit log.

    Returns:
        The state before and after.
    """
    from modelward.registry.service import materialize, now

    info: VersionInfo = registry.version_by_id(version_id)
    if not rescan:
        with registry.db.transaction() as tx:
            tx.execute("UPDATE versions SET state = 'scanning', progress_done = 0 "
                       "WHERE id = ?", (version_id,))
    with tempfile.TemporaryDirectory(dir=registry.work_dir, prefix="job-") as scratch:
        root = Path(scratch)
        model = root / "model"
        model.mkdir()
        materialize(registry.blobs, info.files, model)

        def progress(event: ProgressEvent) -> None:
            if not rescan:
                registry.update_progress(version_id, event.files_done, event.files_total)

        report = scan_path(model, policy=registry.policy, jobs=1, progress=progress,
                           hash_files=True)
        code = report.exit_code()
        signed = sign_model(model, registry.key)
        attestation = attest_scan(report, model, registry.key, signature=signed.signature,
                                  manifest=signed.manifest)
        bom = build_bom(model, report)
        lineage_blob = None
        if info.derived_from and not rescan:
            source = _source_dir(registry, info.derived_from, root)
            if source is not None:
                record = record_lineage(model, source, registry.key, signed.manifest,
                                        signature=signed.signature,
                                        converter=f"registry push of {info.name}")
                lineage_blob = registry.blobs.put_bytes(record.read_bytes())
        sig_blob = registry.blobs.put_bytes(signed.signature.read_bytes())
        att_blob = registry.blobs.put_bytes(attestation.read_bytes())
        bom_blob = registry.blobs.put_bytes(bom.encode())
    findings = [finding_json(f) for f in report.findings()][:MAX_FINDINGS_STORED]
    state = "published" if code is ExitCode.OK else "quarantined"
    verdict = report.verdict.label if report.verdict is not None else "none"
    if code is ExitCode.ERROR:
        verdict = "incomplete"
    with registry.db.transaction() as tx:
        current = tx.one("SELECT state FROM versions WHERE id = ?", (version_id,))
        before = str(current[0]) if current is not None else "pending"
        if before == "rejected":
            state = "rejected"  # an admin decision is never undone by a rescan
        tx.execute("INSERT INTO version_events (version_id, at, actor, kind, from_state, "
                   "to_state, policy_digest, rescan_id, detail) "
                   "VALUES (?, ?, 'registry', ?, ?, ?, ?, ?, ?)",
                   (version_id, now(), "rescan" if rescan else "scan", before, state,
                    registry.policy.digest(), rescan_id,
                    json.dumps({"verdict": verdict, "findings": len(findings)})))
        tx.execute(
            "UPDATE versions SET state = ?, root_digest = ?, policy_digest = ?, verdict = ?, "
            "findings = ?, progress_done = progress_total, error = NULL, signature_blob = ?, "
            "attestation_blob = ?, bom_blob = ?, lineage_blob = COALESCE(?, lineage_blob), "
            "scanned_at = ?, signer = ? WHERE id = ?",
            (state, signed.manifest.root_digest, registry.policy.digest(), verdict,
             json.dumps(findings), sig_blob, att_blob, bom_blob, lineage_blob,
             report.started_at, "registry", version_id))
    registry.audit("registry", "version.rescan" if rescan else "version.scan",
                   f"{info.name}:{info.version}",
                   {"from": before, "state": state, "verdict": verdict,
                    "findings": len(findings), "rescan": rescan_id})
    if rescan and before != state:
        registry.audit("registry", "version.state", f"{info.name}:{info.version}",
                       {"from": before, "to": state, "rescan": rescan_id,
                        "policy": registry.policy.digest()})
    return before, state
