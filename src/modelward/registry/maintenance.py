"""Registry housekeeping: listing and revoking tokens, and garbage collection.

Revocation takes effect on the next request (tokens are looked up on every request,
never cached); a revoked or expired token is answered with 401 like an unknown one.

Garbage collection removes what a push that never committed leaves behind: expired upload
sessions, blobs that no version and no open upload references, temporary upload files and
(on S3) abandoned multipart uploads. It never deletes a blob that any version (whatever
its state: pending, published, quarantined, rejected, failed) references through its
files, signature, attestation, BOM or lineage record. Blobs younger than a grace period
are kept too, because a scan job stores a version's signature and attestation a moment
before it records them. Within one server process a lock orders collection against the
opening of uploads (which may rely on an existing blob); across processes sharing one
database, the grace period is the guard, so run ``modelward registry gc`` with a grace
longer than the longest push.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any, Final

from modelward.registry.errors import BadRequestError, ForbiddenError, NotFoundError

if TYPE_CHECKING:
    from modelward.registry.service import Principal, Registry

__all__ = ["DEFAULT_GRACE_S", "collect_garbage", "list_tokens", "revoke_token"]

DEFAULT_GRACE_S: Final = 3600.0


def _admin(who: Principal, what: str) -> None:
    if not who.has("admin"):
        raise ForbiddenError(f"{what} needs an admin token")


def list_tokens(registry: Registry, who: Principal) -> list[dict[str, Any]]:
    """Every token's id, principal, role, dates and status (never the secret)."""
    _admin(who, "listing tokens")
    with registry.db.transaction() as tx:
        rows = tx.execute("SELECT id, principal, role, created_at, expires_at, revoked "
                          "FROM tokens ORDER BY created_at, id")
    current = dt.datetime.now(dt.timezone.utc)
    out = []
    for tid, principal, role, created, expires, revoked in rows:
        expired = expires is not None and dt.datetime.fromisoformat(expires) <= current
        out.append({"id": tid, "principal": principal, "role": role, "created_at": created,
                    "expires_at": expires, "revoked": bool(revoked),
                    "status": "revoked" if revoked else "expired" if expired else "active"})
    return out


def revoke_token(registry: Registry, who: Principal, ref: str) -> dict[str, Any]:
    """Revoke a token given its id, a unique id prefix (8+ characters) or the secret.

    Raises:
        ForbiddenError: not an admin.
        BadRequestError: an ambiguous prefix.
        NotFoundError: no such token.
    """
    from modelward.registry.records import hash_token as _hash_token

    _admin(who, "revoking tokens")
    if not isinstance(ref, str) or not 8 <= len(ref) <= 256 or not ref.isprintable():
        raise NotFoundError("no such token", hint="give its id (see 'registry token ls')")
    with registry.db.transaction() as tx:
        if ref.startswith("mwr_"):
            rows = tx.execute("SELECT id, principal, role, revoked FROM tokens "
                              "WHERE token_hash = ?", (_hash_token(ref),))
        elif ref.isalnum():
            rows = tx.execute("SELECT id, principal, role, revoked FROM tokens "
                              "WHERE id LIKE ?", (ref.lower() + "%",))
        else:
            rows = []
        if not rows:
            raise NotFoundError("no such token", hint="give its id (see 'registry token ls')")
        if len(rows) > 1:
            raise BadRequestError(f"{len(rows)} tokens start with {ref!r}; give more of the id")
        tid, principal, role, revoked = rows[0]
        tx.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (tid,))
    registry.audit(who.name, "token.revoke", principal,
                   {"id": tid, "role": role, "already_revoked": bool(revoked)})
    return {"id": tid, "principal": principal, "role": role, "revoked": True}


def _referenced(tx: Any, expired: set[str]) -> set[str]:
    """Digests referenced by any version, or by an upload that has not expired."""
    refs = {r[0] for r in tx.execute("SELECT DISTINCT sha256 FROM files")}
    for column in ("signature_blob", "attestation_blob", "bom_blob", "lineage_blob"):
        refs.update(r[0] for r in tx.execute(
            f"SELECT {column} FROM versions WHERE {column} IS NOT NULL"))  # noqa: S608
    for upload_id, files in tx.execute("SELECT id, files FROM uploads"):
        if upload_id not in expired:
            refs.update(str(e["sha256"]) for e in json.loads(files))
    return refs


def collect_garbage(registry: Registry, who: Principal, *, grace_s: float = DEFAULT_GRACE_S,
                    dry_run: bool = False) -> dict[str, Any]:
    """Remove expired uploads and unreferenced blobs older than `grace_s` seconds.

    Args:
        registry: the registry.
        who: an admin (or the server itself).
        grace_s: keep anything written less than this long ago.
        dry_run: only report what would be removed.

    Returns:
        Counts: expired uploads, orphan blobs (and their digests), stale temporary files.
    """
    _admin(who, "garbage collection")
    if grace_s < 0:
        raise BadRequestError("the grace period cannot be negative")
    cutoff = time.time() - grace_s
    current = dt.datetime.now(dt.timezone.utc)
    with registry.gc_lock:
        with registry.db.transaction() as tx:
            expired = {r[0] for r in tx.execute("SELECT id, expires_at FROM uploads")
                       if dt.datetime.fromisoformat(r[1]) <= current}
            refs = _referenced(tx, expired)
            if not dry_run:
                for upload_id in sorted(expired):
                    tx.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        orphans = [d for d, mtime in registry.blobs.iter_blobs()
                   if d not in refs and mtime < cutoff]
        if not dry_run:
            for digest in orphans:
                registry.blobs.delete(digest)
    stale = 0 if dry_run else registry.blobs.cleanup_stale(cutoff)
    report = {"dry_run": dry_run, "expired_uploads": len(expired),
              "orphan_blobs": len(orphans), "stale_temporary": stale,
              "removed": [] if dry_run else orphans[:100],
              "would_remove": orphans[:100] if dry_run else []}
    if not dry_run:
        registry.audit(who.name, "registry.gc", "*",
                       {k: v for k, v in report.items() if k not in ("would_remove",)})
    return report

