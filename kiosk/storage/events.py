"""Attendance events: committed with their outbox row in one transaction, hash-chained.

An event is durable (WAL, synchronous=FULL) before ``record_event`` returns, so the caller may
open the door or say "recorded" only after it returns.
"""

import logging
import uuid as uuidlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from kiosk.errors import ChainError, StorageError, UnknownPersonError
from kiosk.storage import outbox
from kiosk.storage.chain import GENESIS, event_hash, verify_records
from kiosk.storage.db import transaction

log = logging.getLogger(__name__)

STATUS_NAMES = {0: "check-in", 1: "check-out", 2: "break-out", 3: "break-in", 4: "overtime-in", 5: "overtime-out"}
VERIFY_MODES = ("face", "fingerprint", "pin", "card", "voice", "face+voice", "fingerprint+voice")
OUTBOX_KIND = "event"


@dataclass(frozen=True)
class Event:
    """One attendance record as stored and as uploaded."""

    id: str
    seq: int
    person_id: str
    status: int
    verify_mode: str
    score: float | None
    wall_time: str
    clock_synced: bool
    prev_hash: str
    hash: str

    def as_record(self):
        return asdict(self)


def iso_utc(seconds):
    """Seconds since the epoch as ISO 8601 UTC with milliseconds and a Z."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_event(database, *, person_id, status_code, verify_mode, score=None, clock):
    """Commit one attendance event (and its outbox row); return it once it is on disk."""
    return record_events(database, [dict(person_id=person_id, status_code=status_code,
                                         verify_mode=verify_mode, score=score)], clock=clock)[0]


def record_events(database, items, *, clock):
    """Commit several events in one transaction, chained in order; return them."""
    for item in items:
        _check(item)
    synced = bool(clock.is_synchronized())
    created = []
    with transaction(database):
        _check_people_exist(database, {str(item["person_id"]) for item in items})
        last = _last_event(database)
        seq, prev_hash = (last["seq"], last["hash"]) if last else (0, GENESIS)
        for item in items:
            seq += 1
            record = dict(id=str(uuidlib.uuid4()), seq=seq, person_id=str(item["person_id"]),
                          status=int(item["status_code"]), verify_mode=item["verify_mode"],
                          score=_canonical_score(item.get("score")),
                          wall_time=iso_utc(clock.time()), clock_synced=synced, prev_hash=prev_hash)
            record["hash"] = event_hash(record)
            database.execute(
                "INSERT INTO attendance_events (seq, uuid, person_id, status_code, verify_mode, score, "
                "wall_time, clock_synced, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [seq, record["id"], record["person_id"], record["status"], record["verify_mode"],
                 record["score"], record["wall_time"], int(synced), prev_hash, record["hash"]])
            outbox.enqueue(database, OUTBOX_KIND, record["id"], record, now=clock.time())
            prev_hash = record["hash"]
            created.append(Event(**record))
    return created


def _canonical_score(score):
    # rounded, and -0.0 made 0.0, so the hashed value survives the SQLite round trip exactly
    return None if score is None else round(float(score), 6) + 0.0


def _check(item):
    person_id = item.get("person_id")
    if person_id is None or isinstance(person_id, bool) or not isinstance(person_id, (str, int)):
        # None once became the text 'None' and opened the door for nobody
        raise UnknownPersonError(f"an attendance event needs a person id, got {person_id!r}")
    if item["status_code"] not in STATUS_NAMES:
        raise StorageError(f"status code {item['status_code']!r} is not one of {sorted(STATUS_NAMES)}")
    if item["verify_mode"] not in VERIFY_MODES:
        raise StorageError(f"verify mode {item['verify_mode']!r} is not one of {VERIFY_MODES}")
    if not str(item["person_id"]):
        raise StorageError("an attendance event needs a person id")


def _check_people_exist(database, person_ids):
    for person_id in sorted(person_ids):
        if database.execute("SELECT 1 FROM people WHERE person_id = ?", [person_id]).fetchone() is None:
            raise UnknownPersonError(f"no person {person_id!r} in the database: no event recorded")


def _last_event(database):
    rows = list(database.query("SELECT seq, hash FROM attendance_events ORDER BY seq DESC LIMIT 1"))
    return rows[0] if rows else None


def row_to_record(row):
    """A database row of attendance_events as the record dict that is hashed and uploaded."""
    return dict(id=row["uuid"], seq=row["seq"], person_id=row["person_id"], status=row["status_code"],
                verify_mode=row["verify_mode"], score=row["score"], wall_time=row["wall_time"],
                clock_synced=bool(row["clock_synced"]), prev_hash=row["prev_hash"], hash=row["hash"])


def events_after(database, seq, *, limit=1000):
    """Event records with sequence number greater than ``seq``, oldest first."""
    rows = database.query("SELECT * FROM attendance_events WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit])
    return [row_to_record(row) for row in rows]


@dataclass(frozen=True)
class Punch:
    """One of a person's past events, as the duplicate guard and the punch-state rules need it."""

    id: str
    seq: int
    status: int
    verify_mode: str
    wall_time: str
    wall_s: float


def _punch(row):
    wall_s = datetime.fromisoformat(row["wall_time"].replace("Z", "+00:00")).timestamp()
    return Punch(row["uuid"], row["seq"], row["status_code"], row["verify_mode"], row["wall_time"], wall_s)


def last_event_for(database, person_id):
    """The person's most recent event (by sequence number) as a Punch, or None."""
    rows = list(database.query("SELECT uuid, seq, status_code, verify_mode, wall_time FROM attendance_events "
                               "WHERE person_id = ? ORDER BY seq DESC LIMIT 1", [str(person_id)]))
    return _punch(rows[0]) if rows else None


def events_of_person_since(database, person_id, since_wall_s, *, limit=1000):
    """The person's events made at or after wall time ``since_wall_s``, oldest first, as Punches."""
    rows = database.query("SELECT uuid, seq, status_code, verify_mode, wall_time FROM attendance_events "
                          "WHERE person_id = ? AND wall_time >= ? ORDER BY seq LIMIT ?",
                          [str(person_id), iso_utc(since_wall_s), limit])
    return [_punch(row) for row in rows]


def count(database):
    return database.execute("SELECT count(*) FROM attendance_events").fetchone()[0]


def verify_chain(database, *, batch=5000):
    """Walk the whole chain; return the number of events, or raise ChainError naming the bad row."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    while True:
        rows = list(database.query(
            "SELECT * FROM attendance_events WHERE seq >= ? ORDER BY seq LIMIT ?", [expected_seq, batch]))
        if not rows:
            return checked
        records = [row_to_record(row) for row in rows]
        for record in records:
            if record["seq"] != expected_seq:
                raise ChainError(f"attendance_events seq {expected_seq} is missing "
                                 f"(next present is seq {record['seq']}, id {record['id']})")
            ok, _, reason = verify_records([record], prev_hash=prev_hash)
            if not ok:
                raise ChainError(f"attendance_events seq {record['seq']} (id {record['id']}): {reason}")
            prev_hash, expected_seq, checked = record["hash"], expected_seq + 1, checked + 1
