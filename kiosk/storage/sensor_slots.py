"""Which fingerprint-sensor slots this database wrote, and a digest of what it wrote there.

Only these slots may ever be emptied by reconciliation: a sensor slot the table does not name
holds a template someone else put there (another firmware, an earlier database that was lost),
and the firmware leaves it alone until an admin clears it. The table comes from migration 4.
"""

import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from kiosk.storage.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenSlot:
    """One slot this database wrote."""

    slot: int
    sensor_model: str
    person_id: str | None
    digest: str
    written_at: float


def template_digest(template):
    """The digest kept for a template written to the sensor (not reversible to the template)."""
    return hashlib.sha256(bytes(template)).hexdigest()[:32]  # as the first firmware kept them in meta


_SELECT = "SELECT slot, sensor_model, person_id, digest, written_at FROM sensor_slots"  # a WrittenSlot's fields


def written_slots(database):
    """{slot: WrittenSlot} for every slot this database wrote."""
    return {row[0]: WrittenSlot(*row) for row in database.execute(_SELECT).fetchall()}


def written_at(database, slot):
    """The WrittenSlot this database wrote at ``slot``, or None (a slot it never wrote)."""
    row = database.execute(f"{_SELECT} WHERE slot = ?", [int(slot)]).fetchone()
    return WrittenSlot(*row) if row else None


def record_written(database, slot, *, sensor_model, person_id, digest, now):
    """Remember that we wrote ``digest`` at ``slot`` (joins the caller's transaction if one is open)."""
    with transaction(database):
        database.execute(
            "INSERT INTO sensor_slots (slot, sensor_model, person_id, digest, written_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(slot) DO UPDATE SET sensor_model = excluded.sensor_model, person_id = excluded.person_id, "
            "digest = excluded.digest, written_at = excluded.written_at",
            [int(slot), sensor_model, person_id, digest, now])


def forget_slots(database, slots):
    """Stop claiming ``slots`` (after emptying them, or when they were found empty)."""
    with transaction(database):
        database.conn.executemany("DELETE FROM sensor_slots WHERE slot = ?", [(int(s),) for s in slots])


def written_slot_numbers_at(path):
    """The slot numbers the database at ``path`` wrote, read without creating or migrating it.

    For `kiosk doctor`: no database yet means no slot is ours; a database from before migration 4
    still has its digests in the meta table.
    """
    if not Path(path).is_file():
        return set()
    conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
    try:
        try:
            return {row[0] for row in conn.execute("SELECT slot FROM sensor_slots")}
        except sqlite3.OperationalError:
            row = conn.execute("SELECT value FROM meta WHERE name = 'sensor.library'").fetchone()
            return {int(slot) for slot in json.loads(row[0])} if row else set()
    finally:
        conn.close()
