"""Open the kiosk database: WAL, synchronous=FULL, registered migrations, a small meta table."""

import json
import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from kiosk.errors import DiskFullError, StorageError
from kiosk.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def open_db(path, *, migrate=True):
    """Open (creating if needed) the database at ``path`` (or ":memory:") and apply migrations."""
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{path}: could not switch to WAL journal (got {mode})")
        # FULL: a commit is on disk before we tell anyone a record exists
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as e:
        raise StorageError(f"{path}: cannot open database: {e}") from e
    database = Database(conn)
    if migrate:
        apply_migrations(database)
    return database


@contextmanager
def transaction(database):
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front so read-then-write is safe."""
    conn = database.conn
    if conn.in_transaction:
        yield database
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield database
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def apply_migrations(database):
    """Apply every registered migration not yet recorded; each in its own transaction."""
    database.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    done = {row["version"] for row in database.query("SELECT version FROM schema_migrations")}
    known = {version for version, _, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise StorageError(f"database has migrations {sorted(unknown)} this firmware does not know: "
                           "it was written by a newer version")
    applied = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        with transaction(database):
            for statement in statements:
                database.execute(statement)
            database.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                             [version, name, time.time()])
        log.info("applied migration %d %s", version, name)
        applied.append((version, name))
    return applied


def migration_status(database):
    """[(version, name, applied_at or None)] for every registered migration."""
    database.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    done = {row["version"]: row["applied_at"] for row in database.query("SELECT * FROM schema_migrations")}
    return [(version, name, done.get(version)) for version, name, _ in MIGRATIONS]


def get_meta(database, name, default=None):
    """A JSON value stored under ``name`` in the meta table."""
    rows = list(database.query("SELECT value FROM meta WHERE name = ?", [name]))
    return json.loads(rows[0]["value"]) if rows else default


def set_meta(database, name, value):
    """Store a JSON-serialisable value under ``name`` (part of the caller's transaction, if any)."""
    database.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value", [name, json.dumps(value)])


def free_mb(path):
    """Free megabytes on the filesystem holding ``path``."""
    path = Path(path)
    probe = path if path.exists() else path.parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize / 1e6


def ensure_free_space(path, min_free_mb, *, purpose):
    """Raise DiskFullError when less than ``min_free_mb`` is free for ``purpose`` (e.g. 'enrolment')."""
    available = free_mb(path)
    if available < min_free_mb:
        raise DiskFullError(f"{available:.0f} MB free at {path}, {purpose} needs {min_free_mb} MB; "
                            "unsynced records are kept")
