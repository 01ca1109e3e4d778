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
