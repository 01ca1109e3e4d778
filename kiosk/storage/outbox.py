"""The outbox: everything waiting to be uploaded, deleted only after acknowledgement + retention."""

import json
import logging
from dataclasses import dataclass

from kiosk.storage.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRecord:
    """One record waiting for (or past) upload."""

    id: int
    record_id: str
    kind: str
    payload: dict
    created_at: float
    attempts: int


def enqueue(database, kind, record_id, payload, *, now):
    """Add one record (joins the caller's transaction if one is open)."""
    database.execute("INSERT INTO outbox (record_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                     [record_id, kind, json.dumps(payload, separators=(",", ":")), now])


def pending(database, *, limit=500, kinds=None):
    """Unacknowledged records, oldest first."""
    sql = "SELECT * FROM outbox WHERE acked_at IS NULL"
    params = []
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        params += list(kinds)
    sql += " ORDER BY id LIMIT ?"
    rows = database.query(sql, params + [limit])
    return [OutboxRecord(row["id"], row["record_id"], row["kind"], json.loads(row["payload"]),
                         row["created_at"], row["attempts"]) for row in rows]


def mark_attempted(database, record_ids):
    """Count one more upload attempt for each record."""
    with transaction(database):
        database.conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE record_id = ?",
                                  [(rid,) for rid in record_ids])


# kinds deleted as soon as they are acknowledged (sealed biometric requests: nothing to keep them for)
DELETE_ON_ACK_KINDS = ("service_request",)


def acknowledge(database, record_ids, *, now):
    """Mark records acknowledged by the server; returns how many were newly acknowledged.

    Records of ``DELETE_ON_ACK_KINDS`` are deleted in the same transaction instead of kept.
    """
    with transaction(database):
        cursor = database.conn.executemany(
            "UPDATE outbox SET acked_at = ? WHERE record_id = ? AND acked_at IS NULL",
            [(now, rid) for rid in record_ids])
        count = cursor.rowcount
        database.conn.execute(f"DELETE FROM outbox WHERE acked_at IS NOT NULL AND kind IN "
                              f"({','.join('?' * len(DELETE_ON_ACK_KINDS))})", DELETE_ON_ACK_KINDS)
        return count


def acknowledge_rows(database, rows, *, now):
    """Mark the outbox rows ``rows`` (each with ``id`` and ``kind``) acknowledged; returns how many newly were.

    The uploader's fast path: it knows the row ids it sent, so a run of consecutive ids is one
    UPDATE over a range of the primary key (a drained backlog is one run per batch) instead of one
    lookup per record id. Rows of ``DELETE_ON_ACK_KINDS`` are deleted instead, in the same transaction.
    """
    kept = sorted({row.id for row in rows if row.kind not in DELETE_ON_ACK_KINDS})
    gone = [(row.id, *DELETE_ON_ACK_KINDS) for row in rows if row.kind in DELETE_ON_ACK_KINDS]
    count = 0
    with transaction(database):
        for first, last in _runs(kept):
            count += database.conn.execute("UPDATE outbox SET acked_at = ? WHERE id BETWEEN ? AND ? "
                                           "AND acked_at IS NULL", [now, first, last]).rowcount
        if gone:
            count += database.conn.executemany(
                f"DELETE FROM outbox WHERE id = ? AND acked_at IS NULL AND kind IN "
                f"({','.join('?' * len(DELETE_ON_ACK_KINDS))})", gone).rowcount
    return count


def _runs(ids):
    """(first, last) of each run of consecutive integers in the sorted ``ids``."""
    runs = []
    for value in ids:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return [tuple(run) for run in runs]


def purge_acknowledged(database, *, older_than_s, now):
    """Delete records acknowledged more than ``older_than_s`` ago; never an unacknowledged one."""
    with transaction(database):
        cursor = database.execute("DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at <= ?",
                                  [now - older_than_s])
        return cursor.rowcount


def stats(database):
    """Pending count, oldest pending creation time, acknowledged-but-kept count."""
    row = database.execute(
        "SELECT count(*), min(created_at) FROM outbox WHERE acked_at IS NULL").fetchone()
    acked = database.execute("SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL").fetchone()[0]
    return {"pending": row[0], "oldest_pending": row[1], "acknowledged_kept": acked}
