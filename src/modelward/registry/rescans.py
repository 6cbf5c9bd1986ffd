"""Re-scanning every published model as a background job with visible progress.

When the scanner or the policy changes, an admin starts a rescan (``POST
/api/v1/admin/rescan``, ``modelward registry rescan``, or the Rescans page). The request
only records a ``rescans`` row and queues one job per published or quarantined version on
the scan workers, then answers ``202``; progress (done/total, changed, failed) lives in
that row and is shown by ``GET /api/v1/admin/rescans/ID`` and ``/admin/rescans``.

A version's files are immutable; a rescan changes only its state, verdict, findings and
attestation. Every decision is appended to the version's history (``version_events``,
append-only in the database) with the rescan's id and the policy digest, and every state
change is also written to the audit log, so a model that became quarantined shows why and
when on its page. A rejected version stays rejected. One rescan runs at a time; a rescan
cut short by a restart is marked ``interrupted`` on the next start.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Final

from modelward.registry.database import ConflictError
from modelward.registry.errors import ForbiddenError, NotFoundError

if TYPE_CHECKING:
    from modelward.registry.service import Principal, Registry

__all__ = ["get_rescan", "interrupt_running", "job_done", "list_rescans", "start_rescan",
           "version_history"]

_COLUMNS: Final = ("id", "started_by", "started_at", "finished_at", "state", "policy_digest",
                   "total", "done", "changed", "failed")


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_COLUMNS, row, strict=True))


def _admin(who: Principal) -> None:
    if not who.has("admin"):
        raise ForbiddenError("rescanning needs an admin token")


def start_rescan(registry: Registry, who: Principal) -> dict[str, Any]:
    """Queue a rescan of every published or quarantined version; returns its record.

    Raises:
        ForbiddenError: not an admin.
        ConflictError: a rescan is already running.
    """
    from modelward.registry.service import now

    _admin(who)
    rescan_id = uuid.uuid4().hex
    with registry.db.transaction() as tx:
        running = tx.one("SELECT id FROM rescans WHERE state = 'running'")
        if running is not None:
            raise ConflictError(f"rescan {running[0]} is still running",
                                hint=f"follow it at /admin/rescans/{running[0]}")
        rows = tx.execute("SELECT id FROM versions WHERE state IN ('published', "
                          "'quarantined') ORDER BY created_at")
        state = "running" if rows else "finished"
        tx.execute("INSERT INTO rescans VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
                   (rescan_id, who.name, now(), None if rows else now(), state,
                    registry.policy.digest(), len(rows)))
    registry.audit(who.name, "registry.rescan", rescan_id,
                   {"versions": len(rows), "policy": registry.policy.digest()})
    for (version_id,) in rows:
        registry.enqueue(version_id, rescan=True, rescan_id=rescan_id)
    return get_rescan(registry, who, rescan_id, results=False)


def job_done(registry: Registry, rescan_id: str, *, changed: bool, failed: bool) -> None:
    """Count one finished version of a rescan; the last one closes the rescan."""
    from modelward.registry.service import now

    with registry.db.transaction() as tx:
        tx.execute("UPDATE rescans SET done = done + 1, changed = changed + ?, "
                   "failed = failed + ? WHERE id = ?", (int(changed), int(failed), rescan_id))
        row = tx.one("SELECT done, total, state, changed, failed FROM rescans WHERE id = ?",
                     (rescan_id,))
        finished = row is not None and row[0] >= row[1] and row[2] == "running"
        if finished:
            tx.execute("UPDATE rescans SET state = 'finished', finished_at = ? WHERE id = ?",
                       (now(), rescan_id))
    if finished and row is not None:
        registry.audit("registry", "registry.rescan-finished", rescan_id,
                       {"versions": row[1], "changed": row[3], "failed": row[4]})


def interrupt_running(registry: Registry) -> int:
    """Mark rescans a previous process did not finish as ``interrupted``."""
    from modelward.registry.service import now

    with registry.db.transaction() as tx:
        rows = tx.execute("SELECT id FROM rescans WHERE state = 'running'")
        tx.execute("UPDATE rescans SET state = 'interrupted', finished_at = ? "
                   "WHERE state = 'running'", (now(),))
    for (rescan_id,) in rows:
        registry.audit("registry", "registry.rescan-interrupted", rescan_id, {})
    return len(rows)


def get_rescan(registry: Registry, who: Principal, rescan_id: str, *,
               results: bool = True) -> dict[str, Any]:
    """A rescan's progress and, with `results`, each version's before and after state.

    Raises:
        ForbiddenError: not an admin.
        NotFoundError: no such rescan.
    """
    _admin(who)
    if not rescan_id.isalnum() or len(rescan_id) > 64:
        raise NotFoundError("no such rescan")
    cols = ", ".join(_COLUMNS)
    with registry.db.transaction() as tx:
        # _COLUMNS is a constant; the only value is a bound parameter.
        row = tx.one(f"SELECT {cols} FROM rescans WHERE id = ?", (rescan_id,))  # noqa: S608
        if row is None:
            raise NotFoundError("no such rescan")
        events = tx.execute(
            "SELECT v.name, v.version, e.from_state, e.to_state, e.kind, e.detail "
            "FROM version_events e JOIN versions v ON v.id = e.version_id "
            "WHERE e.rescan_id = ? ORDER BY e.seq", (rescan_id,)) if results else []
    out = _row(row)
    if results:
        out["results"] = [{"name": n, "version": v, "before": a, "after": b,
                           "error": json.loads(d).get("error") if k == "rescan-error" else None}
                          for n, v, a, b, k, d in events]
    return out


def list_rescans(registry: Registry, who: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent rescans, newest first (admins only)."""
    _admin(who)
    cols = ", ".join(_COLUMNS)
    with registry.db.transaction() as tx:
        rows = tx.execute(f"SELECT {cols} FROM rescans "  # noqa: S608 (constant columns)
                          "ORDER BY started_at DESC, id LIMIT ?", (limit,))
    return [_row(r) for r in rows]


def version_history(registry: Registry, version_id: str) -> list[dict[str, Any]]:
    """A version's state decisions, oldest first (scan, rescans, reviews)."""
    with registry.db.transaction() as tx:
        rows = tx.execute("SELECT at, actor, kind, from_state, to_state, policy_digest, "
                          "rescan_id, detail FROM version_events WHERE version_id = ? "
                          "ORDER BY seq", (version_id,))
    return [{"at": r[0], "actor": r[1], "kind": r[2], "from": r[3], "to": r[4],
             "policy_digest": r[5], "rescan": r[6], "detail": json.loads(r[7])} for r in rows]
