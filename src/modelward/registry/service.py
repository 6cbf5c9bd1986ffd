"""The registry's behaviour, independent of HTTP: auth, push, scan, sign, publish, pull.

A push is three steps. `start_upload` checks names and the declared file list and says
which contents the store lacks (so a restarted push skips what already arrived, and
identical files are stored once). `put_file` streams one file into the blob store,
checked against its declared digest and size. `commit` inserts the version in one
transaction; the database's unique ``(name, version)`` makes exactly one of several
concurrent commits win. Only then does a background job scan the files under the
registry's policy, sign the version with the registry key plus a scan attestation, build
the ML-BOM and lineage record, and mark it ``published`` (clean) or ``quarantined``.
Nothing is downloadable before ``published``; versions are never replaced or deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from modelward.policy import Policy
from modelward.registry.blobs import BlobStore, BlobWriter, DigestMismatchError, check_digest
from modelward.registry.database import Database
from modelward.registry.errors import (
    AuthError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    TooLargeError,
)
from modelward.registry.names import check_file_paths, check_model_name, check_version
from modelward.registry.records import (
    NOBODY,
    ROLES,
    Limits,
    Principal,
    VersionInfo,
    now,
)
from modelward.registry.records import hash_token as _hash_token
from modelward.signing.keys import SigningKey

__all__ = ["NOBODY", "ROLES", "Limits", "Principal", "Registry", "VersionInfo", "now"]

log = logging.getLogger("modelward.registry")

UPLOAD_TTL: Final = dt.timedelta(hours=24)
VERSION_COLUMNS: Final = (
    "id, name, version, state, pushed_by, created_at, total_size, root_digest, policy_digest, "
    "verdict, findings, progress_done, progress_total, error, signature_blob, "
    "attestation_blob, bom_blob, lineage_blob, derived_from, scanned_at, signer"
)


class Registry:
    """The registry: storage, blob store, signing key, policy and the scan workers."""

    def __init__(self, db: Database, blobs: BlobStore, key: SigningKey, policy: Policy,
                 work_dir: Path, *, limits: Limits | None = None, workers: int = 1,
                 allow_anonymous_read: bool = True) -> None:
        self.db = db
        self.blobs = blobs
        self.key = key
        self.policy = policy
        self.limits = limits or Limits()
        self.allow_anonymous_read = allow_anonymous_read
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mw-scan")
        self._audit_lock = threading.Lock()
        self.gc_lock = threading.Lock()  # orders garbage collection against new uploads
        self.jobs: dict[str, Future[None]] = {}

    # -- tokens and audit --------------------------------------------------------------

    def create_token(self, principal: str, role: str, *, expires_in: dt.timedelta | None = None,
                     by: str = "cli") -> str:
        """Create an API token; returns the secret (only its hash is stored)."""
        if role not in ROLES:
            raise BadRequestError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not principal or len(principal) > 128 or not principal.isprintable():
            raise BadRequestError("invalid principal name")
        token = "mwr_" + secrets.token_urlsafe(32)
        expires = (dt.datetime.now(dt.timezone.utc) + expires_in).isoformat(timespec="seconds") \
            if expires_in is not None else None
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, 0)",
                       (uuid.uuid4().hex, _hash_token(token), principal, role, now(), expires))
        self.audit(by, "token.create", principal, {"role": role, "expires_at": expires})
        return token

    def has_tokens(self) -> bool:
        with self.db.transaction() as tx:
            return tx.one("SELECT 1 FROM tokens LIMIT 1") is not None

    def authenticate(self, token: str | None) -> Principal:
        """The principal for a bearer token (anonymous when none is given).

        Raises:
            AuthError: unknown, revoked or expired token.
        """
        if token is None:
            return NOBODY
        if len(token) > 256:
            raise AuthError("invalid token")
        with self.db.transaction() as tx:
            row = tx.one("SELECT principal, role, expires_at, revoked FROM tokens "
                         "WHERE token_hash = ?", (_hash_token(token),))
        if row is None or row[3]:
            raise AuthError("invalid or revoked token", hint="ask an admin for a token")
        expiry = dt.datetime.fromisoformat(row[2]) if row[2] is not None else None
        if expiry is not None and expiry <= dt.datetime.now(dt.timezone.utc):
            raise AuthError("token expired", hint="ask an admin for a new token")
        return Principal(row[0], row[1])

    def audit(self, principal: str, action: str, target: str,
              detail: Mapping[str, Any] | None = None) -> None:
        """Append one entry to the hash-chained audit log."""
        text = json.dumps(dict(detail or {}), sort_keys=True)
        with self._audit_lock, self.db.transaction() as tx:
            last = tx.one("SELECT entry_hash FROM audit ORDER BY seq DESC LIMIT 1")
            prev = last[0] if last else "0" * 64
            at = now()
            entry = hashlib.sha256(
                json.dumps([prev, at, principal, action, target, text]).encode()).hexdigest()
            tx.execute("INSERT INTO audit (at, principal, action, target, detail, prev_hash, "
                       "entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (at, principal, action, target, text, prev, entry))

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT seq, at, principal, action, target, detail, prev_hash, "
                              "entry_hash FROM audit ORDER BY seq DESC LIMIT ?", (limit,))
        return [{"seq": r[0], "at": r[1], "principal": r[2], "action": r[3], "target": r[4],
                 "detail": json.loads(r[5]), "prev_hash": r[6], "entry_hash": r[7]}
                for r in rows]

    def verify_audit_chain(self) -> bool:
        """Whether every audit entry's hash and link to its predecessor check out."""
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT at, principal, action, target, detail, prev_hash, "
                              "entry_hash FROM audit ORDER BY seq")
        prev = "0" * 64
        for at, principal, action, target, text, prev_hash, entry in rows:
            want = hashlib.sha256(
                json.dumps([prev, at, principal, action, target, text]).encode()).hexdigest()
            if prev_hash != prev or entry != want:
                return False
            prev = entry
        return True

    # -- visibility --------------------------------------------------------------------

    def _can_read(self, who: Principal, owner: str, visibility: str,
                  granted: bool = False) -> bool:
        """Whether `who` may see a model (`granted`: it holds a read grant on it)."""
        if who.has("admin") or (who.role is not None and who.name == owner):
            return True
        if visibility != "public":
            return granted and who.role is not None
        return who.role is not None or self.allow_anonymous_read

    def _granted(self, tx: Any, who: Principal, name: str | None = None) -> set[str]:
        """The models `who` holds read grants on (only `name`, when given)."""
        if who.role is None:
            return set()
        if name is None:
            rows = tx.execute("SELECT model FROM grants WHERE principal = ?", (who.name,))
        else:
            rows = tx.execute("SELECT model FROM grants WHERE principal = ? AND model = ?",
                              (who.name, name))
        return {r[0] for r in rows}

    def _model_row(self, tx: Any, name: str) -> tuple[str, str, str, str] | None:
        row = tx.one("SELECT owner, visibility, description, created_at FROM models "
                     "WHERE name = ?", (name,))
        return None if row is None else (row[0], row[1], row[2], row[3])

    # -- push --------------------------------------------------------------------------

    def start_upload(self, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
        """Open an upload: check the request and report which contents are missing.

        Raises:
            ForbiddenError, BadRequestError, ConflictError, TooLargeError.
        """
        if not who.has("publisher"):
            raise ForbiddenError("pushing needs a publisher token")
        name = check_model_name(body.get("name"))
        version = check_version(body.get("version"))
        visibility = body.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise BadRequestError("visibility must be 'public' or 'private'")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 4000:
            raise BadRequestError("description must be a string of at most 4000 characters")
        derived = body.get("derived_from")
        if derived is not None:
            if not isinstance(derived, str):
                raise BadRequestError("derived_from must be NAME:VERSION")
            from modelward.registry.names import check_reference
            check_reference(derived)
        files = body.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise BadRequestError("files must be a list of {path, sha256, size}")
        paths = check_file_paths(f.get("path") for f in files)
        entries: list[dict[str, Any]] = []
        total = 0
        for path, item in zip(paths, files, strict=True):
            digest, size = item.get("sha256"), item.get("size")
            if not isinstance(digest, str) or not isinstance(size, int) or isinstance(size, bool):
                raise BadRequestError(f"{path}: sha256 (hex) and size (integer) are required")
            check_digest(digest)
            if size < 0:
                raise BadRequestError(f"{path}: negative size")
            if size > self.limits.max_file_size:
                raise TooLargeError(f"{path}: {size} bytes is over the limit of "
                                    f"{self.limits.max_file_size}")
            total += size
            entries.append({"path": path, "sha256": digest, "size": size})
        if total > self.limits.max_version_size:
            raise TooLargeError(f"{total} bytes in all is over the limit of "
                                f"{self.limits.max_version_size}")
        with self.gc_lock, self.db.transaction() as tx:
            model = self._model_row(tx, name)
            if model is not None and model[0] != who.name and not who.has("admin"):
                raise ForbiddenError(f"model {name} belongs to {model[0]}")
            if tx.one("SELECT 1 FROM versions WHERE name = ? AND version = ?",
                      (name, version)) is not None:
                from modelward.registry.errors import ConflictError
                raise ConflictError(f"{name}:{version} already exists; versions are immutable",
                                    hint="push a new version")
            upload_id = uuid.uuid4().hex
            expires = (dt.datetime.now(dt.timezone.utc) + UPLOAD_TTL).isoformat(timespec="seconds")
            tx.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (upload_id, name, version, who.name, visibility, description, derived,
                        json.dumps(entries), now(), expires))
        missing = sorted({e["path"] for e in entries if not self.blobs.exists(e["sha256"])})
        self.audit(who.name, "upload.start", f"{name}:{version}",
                   {"upload": upload_id, "files": len(entries), "bytes": total})
        return {"upload": upload_id, "missing": missing}

    def _upload(self, who: Principal, upload_id: str) -> tuple[str, str, list[dict[str, Any]],
                                                                 tuple[Any, ...]]:
        if not who.has("publisher"):
            raise ForbiddenError("pushing needs a publisher token")
        with self.db.transaction() as tx:
            row = tx.one("SELECT name, version, principal, visibility, description, "
                         "derived_from, files, expires_at FROM uploads WHERE id = ?",
                         (upload_id,))
        if row is None or (row[2] != who.name and not who.has("admin")):
            raise NotFoundError("no such upload")
        if dt.datetime.fromisoformat(row[7]) <= dt.datetime.now(dt.timezone.utc):
            raise NotFoundError("upload expired; start the push again")
        return row[0], row[1], json.loads(row[6]), row

    def declared_file(self, who: Principal, upload_id: str, path: str) -> dict[str, Any]:
        """The declared entry (path, sha256, size) for a file of an open upload.

        Raises:
            NotFoundError: unknown or expired upload, or an undeclared path.
        """
        _name, _version, entries, _ = self._upload(who, upload_id)
        entry = next((e for e in entries if e["path"] == path), None)
        if entry is None:
            raise NotFoundError(f"{path!r} is not declared in this upload")
        return dict(entry)

    def finish_file(self, writer: BlobWriter, entry: Mapping[str, Any]) -> None:
        """Check the received bytes against the declared entry and store them.

        Raises:
            BadRequestError: other size or digest than declared.
        """
        try:
            writer.commit(entry["sha256"], entry["size"])
        except DigestMismatchError as err:
            raise BadRequestError(f"{entry['path']}: {err.message}") from err

    def put_file(self, who: Principal, upload_id: str, path: str,
                 chunks: Iterator[bytes]) -> dict[str, Any]:
        """Stream one declared file into the blob store (the in-process form of the API).

        Raises:
            NotFoundError: unknown upload or undeclared path.
            TooLargeError: more bytes than declared.
            BadRequestError: fewer bytes, or another digest, than declared.
        """
        entry = self.declared_file(who, upload_id, path)
        writer = self.blobs.begin()
        try:
            for chunk in chunks:
                if writer.size + len(chunk) > entry["size"]:
                    raise TooLargeError(f"{path}: more than the declared {entry['size']} bytes")
                writer.write(chunk)
            self.finish_file(writer, entry)
        except BaseException:
            writer.abort()
            raise
        return {"path": path, "stored": True}

    def commit(self, who: Principal, upload_id: str) -> dict[str, Any]:
        """Turn a complete upload into a version and queue its scan.

        Raises:
            BadRequestError: some declared content has not arrived.
            ConflictError: the version exists (another push won).
        """
        name, version, entries, row = self._upload(who, upload_id)
        missing = [e["path"] for e in entries if not self.blobs.exists(e["sha256"])]
        if missing:
            raise BadRequestError(f"{len(missing)} files not uploaded yet: "
                                  f"{', '.join(missing[:5])}")
        version_id = uuid.uuid4().hex
        total = sum(int(e["size"]) for e in entries)
        with self.db.transaction() as tx:
            model = self._model_row(tx, name)
            if model is None:
                tx.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?)",
                           (name, row[2], row[3], row[4], now()))
            elif model[0] != who.name and not who.has("admin"):
                raise ForbiddenError(f"model {name} belongs to {model[0]}")
            tx.execute(
                "INSERT INTO versions (id, name, version, state, pushed_by, created_at, "
                "total_size, progress_done, progress_total, derived_from) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?)",
                (version_id, name, version, who.name, now(), total, len(entries), row[5]))
            for e in entries:
                tx.execute("INSERT INTO files VALUES (?, ?, ?, ?)",
                           (version_id, e["path"], e["sha256"], e["size"]))
            tx.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        self.audit(who.name, "version.push", f"{name}:{version}",
                   {"files": len(entries), "bytes": total})
        self.enqueue(version_id)
        return {"name": name, "version": version, "state": "pending"}

    # -- scanning ----------------------------------------------------------------------

    def enqueue(self, version_id: str, *, rescan: bool = False,
                rescan_id: str | None = None) -> Future[None]:
        future = self._executor.submit(self._run_job, version_id, rescan, rescan_id)
        self.jobs[version_id] = future
        return future

    def resume_pending(self) -> int:
        """Queue versions whose scan was interrupted (a crash or restart); returns how many.

        Rescans a previous process did not finish are marked ``interrupted``.
        """
        from modelward.registry.rescans import interrupt_running

        interrupt_running(self)
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT id FROM versions WHERE state IN ('pending', 'scanning')")
        for (version_id,) in rows:
            self.enqueue(version_id)
        return len(rows)

    def _run_job(self, version_id: str, rescan: bool, rescan_id: str | None = None) -> None:
        changed = failed = False
        try:
            from modelward.registry.pipeline import process_version
            before, after = process_version(self, version_id, rescan=rescan,
                                            rescan_id=rescan_id)
            changed = before != after
        except Exception as err:  # a job must never take the worker down
            failed = True
            log.exception("scan job %s failed", version_id)
            message = f"{type(err).__name__}: {err}"[:2000]
            with self.db.transaction() as tx:
                if not rescan:
                    tx.execute("UPDATE versions SET state = 'failed', error = ? WHERE id = ?",
                               (message, version_id))
                else:  # the version keeps its state; its history says the rescan failed
                    row = tx.one("SELECT state FROM versions WHERE id = ?", (version_id,))
                    if row is not None:
                        tx.execute(
                            "INSERT INTO version_events (version_id, at, actor, kind, "
                            "from_state, to_state, policy_digest, rescan_id, detail) "
                            "VALUES (?, ?, 'registry', 'rescan-error', ?, ?, ?, ?, ?)",
                            (version_id, now(), row[0], row[0], self.policy.digest(),
                             rescan_id, json.dumps({"error": message[:500]})))
            self.audit("registry", "version.scan-error", version_id, {"error": str(err)[:500]})
        finally:
            if rescan_id is not None:
                from modelward.registry.rescans import job_done
                job_done(self, rescan_id, changed=changed, failed=failed)

    def start_gc(self) -> Future[None]:
        """Queue a garbage collection (default grace) on the workers; errors are logged."""
        def run() -> None:
            from modelward.registry.maintenance import collect_garbage
            try:
                report = collect_garbage(self, Principal("registry", "admin"))
                if report["orphan_blobs"] or report["expired_uploads"]:
                    log.warning("start-up gc: %d orphan blobs, %d expired uploads removed",
                                report["orphan_blobs"], report["expired_uploads"])
            except Exception:
                log.exception("start-up garbage collection failed")
        return self._executor.submit(run)

    def update_progress(self, version_id: str, done: int, total: int) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE versions SET progress_done = ?, progress_total = ? WHERE id = ?",
                       (done, total, version_id))

    def start_rescan(self, who: Principal) -> dict[str, Any]:
        """Queue a background rescan of every published/quarantined version (`rescans`)."""
        from modelward.registry.rescans import start_rescan
        return start_rescan(self, who)

    def set_state(self, who: Principal, name: str, version: str, state: str,
                  reason: str) -> None:
        """Admin review of a quarantined version: ``rejected`` (kept, never served)."""
        if not who.has("admin"):
            raise ForbiddenError("reviewing needs an admin token")
        if state != "rejected":
            raise BadRequestError("the only review decision is 'rejected'")
        info = self.version(who, name, version)
        if info.state != "quarantined":
            raise BadRequestError(f"{name}:{version} is {info.state}, not quarantined")
        with self.db.transaction() as tx:
            tx.execute("UPDATE versions SET state = ? WHERE id = ? AND state = 'quarantined'",
                       (state, info.id))
            tx.execute("INSERT INTO version_events (version_id, at, actor, kind, from_state, "
                       "to_state, policy_digest, rescan_id, detail) "
                       "VALUES (?, ?, ?, 'review', 'quarantined', ?, ?, NULL, ?)",
                       (info.id, now(), who.name, state, info.policy_digest,
                        json.dumps({"reason": reason[:500]})))
        self.audit(who.name, f"version.{state}", f"{name}:{version}", {"reason": reason[:500]})

    # -- reading -----------------------------------------------------------------------

    def list_models(self, who: Principal, query: str = "", limit: int = 200
                    ) -> list[dict[str, Any]]:
        like = "%" + query.replace("\\", "").replace("%", "").replace("_", "\\_")[:100] + "%"
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT m.name, m.owner, m.visibility, m.description, m.created_at, "
                "(SELECT COUNT(*) FROM versions v WHERE v.name = m.name), "
                "(SELECT v.version FROM versions v WHERE v.name = m.name AND "
                "v.state = 'published' ORDER BY v.created_at DESC LIMIT 1) "
                "FROM models m WHERE m.name LIKE ? ESCAPE '\\' OR m.description LIKE ? "
                "ESCAPE '\\' ORDER BY m.name LIMIT ?", (like, like, limit))
            granted = self._granted(tx, who)
        return [{"name": r[0], "owner": r[1], "visibility": r[2], "description": r[3],
                 "created_at": r[4], "versions": r[5], "latest": r[6]}
                for r in rows if self._can_read(who, r[1], r[2], r[0] in granted)]

    def model(self, who: Principal, name: str) -> dict[str, Any]:
        check_model_name(name)
        with self.db.transaction() as tx:
            model = self._model_row(tx, name)
            if model is None or not self._can_read(
                    who, model[0], model[1],
                    model[1] != "public" and bool(self._granted(tx, who, name))):
                raise NotFoundError(f"no model {name}")
            rows = tx.execute("SELECT version, state, created_at, verdict, total_size, "
                              "pushed_by FROM versions WHERE name = ? ORDER BY created_at DESC",
                              (name,))
        return {"name": name, "owner": model[0], "visibility": model[1],
                "description": model[2], "created_at": model[3],
                "versions": [{"version": r[0], "state": r[1], "created_at": r[2],
                              "verdict": r[3], "total_size": r[4], "pushed_by": r[5]}
                             for r in rows]}

    def version_by_id(self, version_id: str) -> VersionInfo:
        with self.db.transaction() as tx:
            # VERSION_COLUMNS is a constant; the only value is a bound parameter.
            row = tx.one(f"SELECT {VERSION_COLUMNS} FROM versions WHERE id = ?",  # noqa: S608
                         (version_id,))
            if row is None:
                raise NotFoundError("no such version")
            files = tx.execute("SELECT path, sha256, size FROM files WHERE version_id = ? "
                               "ORDER BY path", (version_id,))
        values = dict(zip((c.strip() for c in VERSION_COLUMNS.split(",")), row, strict=True))
        values["findings"] = json.loads(values["findings"]) if values["findings"] else []
        values["total_size"] = int(values["total_size"])
        return VersionInfo(**values, files=[(f[0], f[1], int(f[2])) for f in files])

    def version(self, who: Principal, name: str, version: str) -> VersionInfo:
        """A version the caller may see.

        Raises:
            NotFoundError: no such version, or a private model of someone else.
        """
        self.model(who, name)
        check_version(version)
        with self.db.transaction() as tx:
            row = tx.one("SELECT id FROM versions WHERE name = ? AND version = ?",
                         (name, version))
        if row is None:
            raise NotFoundError(f"no version {name}:{version}")
        return self.version_by_id(row[0])

    def downloadable(self, who: Principal, name: str, version: str) -> VersionInfo:
        """A version whose files the caller may download: published (admins: any scanned)."""
        info = self.version(who, name, version)
        if info.state == "published":
            return info
        if who.has("admin") and info.signature_blob is not None:
            return info
        raise ForbiddenError(f"{name}:{version} is {info.state}; only published versions "
                             "can be pulled")

    def quarantined(self, who: Principal) -> list[VersionInfo]:
        """Versions waiting for review (admins only)."""
        if not who.has("admin"):
            raise ForbiddenError("the quarantine needs an admin token")
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT id FROM versions WHERE state = 'quarantined' "
                              "ORDER BY created_at DESC LIMIT 500")
        return [self.version_by_id(r[0]) for r in rows]

    def public_key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization
        return self.key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.db.close()


def materialize(blobs: BlobStore, files: list[tuple[str, str, int]], dest: Path) -> None:
    """Write a version's files under `dest` (paths were checked at push time)."""
    for path, digest, _size in files:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        blobs.materialize(digest, target)

