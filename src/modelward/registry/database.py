"""One small SQL layer over SQLite (stdlib ``sqlite3``) and PostgreSQL (``psycopg`` 3).

The registry's queries are written once, with ``?`` placeholders, and run on either
database; the URL picks which (``sqlite:///path/registry.db`` or ``postgresql://...``).
Safety that must not depend on application code is enforced by the database itself:
unique ``(name, version)`` (one winner among concurrent pushes), and triggers that make
the audit log, version file lists and version state history (``version_events``)
append-only and a version's identity immutable.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from modelward.errors import BackendUnavailableError, RegistryError

__all__ = ["ConflictError", "Database", "Transaction", "open_database"]

Row = tuple[Any, ...]

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, principal TEXT NOT NULL,
    role TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, visibility TEXT NOT NULL,
    description TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES models(name), version TEXT NOT NULL,
    state TEXT NOT NULL, pushed_by TEXT NOT NULL, created_at TEXT NOT NULL,
    total_size BIGINT NOT NULL, root_digest TEXT, policy_digest TEXT, verdict TEXT,
    findings TEXT, progress_done INTEGER NOT NULL, progress_total INTEGER NOT NULL,
    error TEXT, signature_blob TEXT, attestation_blob TEXT, bom_blob TEXT,
    lineage_blob TEXT, derived_from TEXT, scanned_at TEXT, signer TEXT,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS files (
    version_id TEXT NOT NULL REFERENCES versions(id), path TEXT NOT NULL,
    sha256 TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (version_id, path)
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, principal TEXT NOT NULL,
    visibility TEXT NOT NULL, description TEXT NOT NULL, derived_from TEXT,
    files TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    model TEXT NOT NULL REFERENCES models(name), principal TEXT NOT NULL,
    granted_by TEXT NOT NULL, granted_at TEXT NOT NULL, PRIMARY KEY (model, principal)
);
CREATE TABLE IF NOT EXISTS rescans (
    id TEXT PRIMARY KEY, started_by TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, state TEXT NOT NULL, policy_digest TEXT NOT NULL,
    total INTEGER NOT NULL, done INTEGER NOT NULL, changed INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
"""

_SQLITE_EXTRA: Final = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, principal TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, version_id TEXT NOT NULL REFERENCES versions(id),
    at TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, from_state TEXT NOT NULL,
    to_state TEXT NOT NULL, policy_digest TEXT, rescan_id TEXT, detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON version_events
BEGIN SELECT RAISE(ABORT, 'version history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON version_events
BEGIN SELECT RAISE(ABORT, 'version history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS files_no_update BEFORE UPDATE ON files
BEGIN SELECT RAISE(ABORT, 'version files are immutable'); END;
CREATE TRIGGER IF NOT EXISTS files_no_delete BEFORE DELETE ON files
BEGIN SELECT RAISE(ABORT, 'version files are immutable'); END;
CREATE TRIGGER IF NOT EXISTS versions_identity BEFORE UPDATE OF id, name, version, total_size
ON versions BEGIN SELECT RAISE(ABORT, 'a version''s identity is immutable'); END;
CREATE TRIGGER IF NOT EXISTS versions_no_delete BEFORE DELETE ON versions
BEGIN SELECT RAISE(ABORT, 'versions are never deleted'); END;
"""

_PG_EXTRA: Final = """
CREATE TABLE IF NOT EXISTS audit (
    seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, principal TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_events (
    seq BIGSERIAL PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id),
    at TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, from_state TEXT NOT NULL,
    to_state TEXT NOT NULL, policy_digest TEXT, rescan_id TEXT, detail TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION mw_refuse() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '% on % refused: append-only / immutable', TG_OP, TG_TABLE_NAME; END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION mw_version_identity() RETURNS trigger AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.name IS DISTINCT FROM OLD.name
     OR NEW.version IS DISTINCT FROM OLD.version
     OR NEW.total_size IS DISTINCT FROM OLD.total_size THEN
    RAISE EXCEPTION 'a version''s identity is immutable';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION mw_refuse();
CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON version_events
FOR EACH ROW EXECUTE FUNCTION mw_refuse();
CREATE OR REPLACE TRIGGER files_immutable BEFORE UPDATE OR DELETE ON files
FOR EACH ROW EXECUTE FUNCTION mw_refuse();
CREATE OR REPLACE TRIGGER versions_no_delete BEFORE DELETE ON versions
FOR EACH ROW EXECUTE FUNCTION mw_refuse();
CREATE OR REPLACE TRIGGER versions_identity BEFORE UPDATE ON versions
FOR EACH ROW EXECUTE FUNCTION mw_version_identity();
"""


class ConflictError(RegistryError):
    """A unique constraint refused a row: someone else got there first (HTTP 409)."""


class Transaction:
    """Statements run inside one database transaction."""

    def __init__(self, cursor: Any, paramstyle: str) -> None:
        self._cursor = cursor
        self._pg = paramstyle == "pg"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders) and return its rows, if any."""
        if self._pg and params:
            sql = sql.replace("?", "%s")
        if self._pg:
            self._cursor.execute(sql, tuple(params) if params else None)
        else:
            self._cursor.execute(sql, tuple(params))
        if self._cursor.description is None:
            return []
        return [tuple(r) for r in self._cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row, or ``None``."""
        rows = self.execute(sql, params)
        return rows[0] if rows else None


class Database:
    """A small connection pool with `transaction` as the only way in."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.kind = "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        if self.kind == "postgresql":
            try:
                import psycopg
            except ImportError as err:
                raise BackendUnavailableError(
                    "PostgreSQL needs psycopg", hint="pip install 'modelward[registry]'"
                ) from err
            self._psycopg = psycopg
            self._conflict: tuple[type[BaseException], ...] = (psycopg.errors.UniqueViolation,)
            self._refused: tuple[type[BaseException], ...] = (psycopg.errors.RaiseException,)
        else:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
            self._sqlite_path = path
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conflict = (sqlite3.IntegrityError,)
            self._refused = ()
        self._init_schema()

    def _connect(self) -> Any:
        if self.kind == "postgresql":
            return self._psycopg.connect(self.url, autocommit=False)
        conn = sqlite3.connect(self._sqlite_path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _init_schema(self) -> None:
        with self.transaction() as tx:
            if self.kind == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(727274)")
                script = _TABLES + _PG_EXTRA
                for statement in _split(script):
                    tx.execute(statement)
            else:
                for statement in _split(_TABLES + _SQLITE_EXTRA):
                    tx.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction that commits on success and rolls back on any exception.

        SQLite transactions take the write lock up front (``BEGIN IMMEDIATE``), so
        concurrent writers queue instead of failing half-way.

        Raises:
            ConflictError: a unique constraint was violated.
            RegistryError: a database trigger refused the change.
        """
        self._slots.acquire()
        try:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = self._connect()
            cursor = conn.cursor()
            try:
                if self.kind == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")
                yield Transaction(cursor, "pg" if self.kind == "postgresql" else "qmark")
                conn.commit()
            except BaseException as err:
                try:
                    conn.rollback()
                except Exception:  # connection already broken: drop it
                    conn.close()
                    raise _translate(err, self._conflict, self._refused) from err
                self._pool.put(conn)
                raise _translate(err, self._conflict, self._refused) from err
            else:
                self._pool.put(conn)
            finally:
                cursor.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every pooled connection."""
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


def _translate(err: BaseException, conflict: tuple[type[BaseException], ...],
               refused: tuple[type[BaseException], ...]) -> BaseException:
    if isinstance(err, sqlite3.IntegrityError):
        if "UNIQUE constraint failed" in str(err) or "PRIMARY KEY" in str(err):
            return ConflictError(f"conflict: {err}")
        return RegistryError(f"refused by the database: {err}")
    if isinstance(err, conflict):
        return ConflictError(f"conflict: {err}")
    if isinstance(err, refused):
        return RegistryError(f"refused by the database: {err}")
    return err


def _split(script: str) -> list[str]:
    """Split a schema script into statements, keeping trigger and function bodies whole."""
    out: list[str] = []
    current: list[str] = []
    depth = 0
    for line in script.splitlines():
        if not line.strip():
            continue
        current.append(line)
        depth += line.count("$$")
        stripped = line.strip().upper()
        ends = line.rstrip().endswith(";")
        in_trigger_body = any(c.strip().upper().startswith("CREATE TRIGGER") for c in current)
        if ends and depth % 2 == 0 and (not in_trigger_body or stripped.endswith("END;")):
            out.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    return out


def open_database(url: str) -> Database:
    """Open (and create the schema of) the database at `url`."""
    return Database(url)
