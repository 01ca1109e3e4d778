"""Open the kiosk database: WAL, synchronous=FULL, registered migrations, a small meta table."""

import errno
import json
import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from kiosk.errors import CorruptDatabaseError, DiskFullError, StorageError
from kiosk.files import fsync_dir
from kiosk.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 11, 13, 26
# after a checkpoint the WAL file is cut back to this size, so space freed in the database is usable
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
RECOVERY = ("the kiosk will not run on it and never starts over by itself. To recover: stop the kiosk, "
            "`mv {path} {path}.broken`, salvage its records for support with "
            "`sqlite3 {path}.broken .recover > recovered.sql`; the next start makes a new empty database")


class _Connection(sqlite3.Connection):
    """A connection whose full-disk and corruption errors become DiskFullError and CorruptDatabaseError."""

    def execute(self, *args, **kwargs):
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise translate_error(e, self.kiosk_path) from e

    def executemany(self, *args, **kwargs):
        try:
            return super().executemany(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise translate_error(e, self.kiosk_path) from e

    def executescript(self, *args, **kwargs):
        try:
            return super().executescript(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise translate_error(e, self.kiosk_path) from e

    def commit(self):
        try:
            return super().commit()
        except sqlite3.DatabaseError as e:
            raise translate_error(e, self.kiosk_path) from e


def translate_error(error, path):
    """The KioskError for an sqlite3 error from a full disk or a corrupt file; other errors unchanged."""
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == SQLITE_FULL:
        return DiskFullError(f"{path}: the disk is full ({error}); this write was not made, everything "
                             "committed before is kept; free space (sync pending records, remove old logs)")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return CorruptDatabaseError(f"{path}: the database is damaged ({error}); " + RECOVERY.format(path=path))
    return error


def open_db(path, *, migrate=True, create=True, check=False):
    """Open the database at ``path`` (or ":memory:") and apply migrations.

    ``create=False`` (read-only commands) makes a missing file an error instead of a new database.
    ``check=True`` runs ``PRAGMA quick_check`` first: an empty, foreign or damaged file is a
    CorruptDatabaseError saying how to recover. A new file is made 0600 (its WAL inherits the mode).
    """
    path = str(path)
    if path != ":memory:":
        _prepare_file(Path(path), create=create)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000, factory=_Connection)
        conn.kiosk_path = path
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{path}: could not switch to WAL journal (got {mode})")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        # FULL: a commit is on disk before we tell anyone a record exists
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except (StorageError, sqlite3.DatabaseError) as e:
        if isinstance(e, StorageError):
            raise
        raise StorageError(f"{path}: cannot open database: {e}") from e
    database = Database(conn)
    try:
        if check:
            check_integrity(database)
        if migrate:
            apply_migrations(database)
    except BaseException:
        conn.close()
        raise
    return database


def _prepare_file(path, *, create):
    if path.is_dir():
        raise StorageError(f"{path}: is a folder, not a database file")
    if path.exists():
        if path.stat().st_size == 0:
            raise CorruptDatabaseError(f"{path}: the database file is empty (0 bytes: truncated or never "
                                       "written); " + RECOVERY.format(path=path))
        return
    if not create:
        raise StorageError(f"{path}: no database there (check the path; this command never creates one)")
    _create_file(path)


def _create_file(path):
    # made under another name and renamed, so a crash never leaves a 0-byte file at the real path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".new")
        for leftover in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm")):
            leftover.unlink(missing_ok=True)
        os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(staging, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        os.replace(staging, path)
    except (OSError, sqlite3.DatabaseError) as e:
        if getattr(e, "errno", None) == errno.ENOSPC or "full" in str(e):
            raise DiskFullError(f"{path}: no room to create the database ({e})") from None
        raise StorageError(f"{path}: cannot create the database ({e})") from None
    fsync_dir(path.parent)
    log.info("created a new database at %s", path)


def check_integrity(database):
    """PRAGMA quick_check; CorruptDatabaseError naming the first problems and how to recover."""
    path = getattr(database.conn, "kiosk_path", "database")
    try:
        rows = [row[0] for row in database.conn.execute("PRAGMA quick_check(5)").fetchall()]
    except CorruptDatabaseError:
        raise
    except sqlite3.DatabaseError as e:
        raise CorruptDatabaseError(f"{path}: the database is damaged ({e}); "
                                   + RECOVERY.format(path=path)) from None
    if rows != ["ok"]:
        raise CorruptDatabaseError(f"{path}: the database is damaged (quick_check: {'; '.join(rows)}); "
                                   + RECOVERY.format(path=path))


def reclaim_wal(database):
    """Checkpoint the WAL and cut it back to zero bytes (best effort): space freed becomes usable."""
    try:
        database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except (StorageError, sqlite3.DatabaseError) as e:
        log.warning("could not checkpoint the WAL: %s", e)


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
        conn.execute("COMMIT")
    except BaseException as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(e, DiskFullError):
            reclaim_wal(database)
        raise


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
    """Free MiB (for an unprivileged writer) on the filesystem holding ``path``."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize / 2**20


def ensure_free_space(path, min_free_mb, *, purpose):
    """Raise DiskFullError when less than ``min_free_mb`` MiB is free for ``purpose`` (e.g. 'enrolment')."""
    available = free_mb(path)
    if available < min_free_mb:
        raise DiskFullError(f"only {available:.0f} MB free at {path}; {purpose} needs {min_free_mb} MB "
                            "(storage.min_free_mb_*); unsynced records are kept: sync them or free space")


def ensure_room_for_enrolment(path, storage_settings):
    """The guard enrolment calls before it captures anything: refused below ``storage.min_free_mb_enrol``."""
    ensure_free_space(path, storage_settings.min_free_mb_enrol, purpose="enrolment")


def ensure_room_for_attendance(path, storage_settings):
    """The guard attendance calls before a punch: refused below ``storage.min_free_mb_attendance``."""
    ensure_free_space(path, storage_settings.min_free_mb_attendance, purpose="attendance")
