"""Plain records the registry passes around: who is asking, a version row, upload limits.

Split from `service` so the HTTP, web, CLI and maintenance modules can share them without
pulling in the service's behaviour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ANONYMOUS", "NOBODY", "ROLES", "Limits", "Principal", "VersionInfo", "hash_token", "now",
]

ROLES: Final = ("reader", "publisher", "admin")
_RANK: Final = {role: i for i, role in enumerate(ROLES)}
ANONYMOUS: Final = "anonymous"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a token's principal and role, or the anonymous reader."""

    name: str
    role: str | None  # None: anonymous

    def has(self, role: str) -> bool:
        return self.role is not None and _RANK[self.role] >= _RANK[role]


NOBODY: Final = Principal(ANONYMOUS, None)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One row of ``versions`` with its files."""

    id: str
    name: str
    version: str
    state: str
    pushed_by: str
    created_at: str
    total_size: int
    root_digest: str | None
    policy_digest: str | None
    verdict: str | None
    findings: list[dict[str, Any]]
    progress_done: int
    progress_total: int
    error: str | None
    signature_blob: str | None
    attestation_blob: str | None
    bom_blob: str | None
    lineage_blob: str | None
    derived_from: str | None
    scanned_at: str | None
    signer: str | None
    files: list[tuple[str, str, int]]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "state": self.state,
            "pushed_by": self.pushed_by, "created_at": self.created_at,
            "total_size": self.total_size, "root_digest": self.root_digest,
            "policy_digest": self.policy_digest, "verdict": self.verdict,
            "findings": self.findings,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "error": self.error, "derived_from": self.derived_from,
            "scanned_at": self.scanned_at, "signer": self.signer,
            "has_bom": self.bom_blob is not None, "has_lineage": self.lineage_blob is not None,
            "files": [{"path": p, "sha256": d, "size": s} for p, d, s in self.files],
        }


@dataclass(frozen=True, slots=True)
class Limits:
    """Upload limits (bytes / counts)."""

    max_file_size: int = 64 << 30
    max_version_size: int = 256 << 30
    max_json: int = 4 << 20


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
