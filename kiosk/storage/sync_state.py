"""Sync bookkeeping beside the outbox: refused records, and applying downloaded changes to people.

Its tables (sync_rejected, sync_revocations) come from migration 2 in kiosk/storage/migrations.py.
"""

import base64
import binascii
import json
import json.scanner
import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from kiosk.errors import StorageError
from kiosk.storage import enrolment, people
from kiosk.storage.db import get_meta, set_meta, transaction

log = logging.getLogger(__name__)

SERVER_SETTINGS_KEY = "sync.server_settings"

class PendingRecord(NamedTuple):
    """An outbox row waiting for upload; ``payload_text`` is the stored JSON that ``payload`` was parsed from."""

    id: int
    record_id: str
    kind: str
    payload: dict
    created_at: float
    payload_text: str


def pending_for_upload(database, *, limit, after_id=0):
    """Unacknowledged outbox records not refused by the server, oldest first (outbox rows after ``after_id``).

    Each payload is parsed on its own, so its stored text is known to be exactly one JSON object
    with finite numbers: the uploader sends that text as it is (``protocol.batch_json``). A row
    that is not raises StorageError naming it (the database was damaged or edited).
    """
    rows = database.execute(
        "SELECT o.id, o.record_id, o.kind, o.payload, o.created_at FROM outbox o "
        "WHERE o.id > ? AND o.acked_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM sync_rejected r WHERE r.record_id = o.record_id) "
        "ORDER BY o.id LIMIT ?", [int(after_id), limit]).fetchall()
    records = []
    for row_id, record_id, kind, text, created_at in rows:
        try:
            # the scanner itself: json.loads' checks around it cost twice the parse of a small object
            payload, end = _scan_payload(text, 0)
        except (TypeError, ValueError, StopIteration):  # not text, not JSON, NaN or Infinity
            payload = end = None
        if type(payload) is not dict or end != len(text):  # one object and nothing after it
            raise StorageError(f"outbox row {row_id} (record {record_id}) does not hold one JSON object")
        records.append(PendingRecord(row_id, record_id, kind, payload, created_at, text))
    return records


def _not_a_number(name):
    # Python's parser takes NaN and Infinity; JSON (and the server) do not
    raise ValueError(f"{name} is not a JSON number")


# (value, end) of the JSON value at an index of a text, refusing NaN and Infinity
_scan_payload = json.scanner.make_scanner(json.JSONDecoder(parse_constant=_not_a_number))


def pending_stats(database):
    """{pending, oldest_pending, rejected, acknowledged_kept} over the outbox."""
    row = database.execute("SELECT count(*), min(created_at) FROM outbox WHERE acked_at IS NULL").fetchone()
    rejected = database.execute("SELECT count(*) FROM sync_rejected r JOIN outbox o USING (record_id) "
                                "WHERE o.acked_at IS NULL").fetchone()[0]
    acked = database.execute("SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL").fetchone()[0]
    return {"pending": row[0], "oldest_pending": row[1], "rejected": rejected, "acknowledged_kept": acked}


def mark_rejected(database, items, *, now):
    """Remember records the server refused ([(record_id, reason)]); they stay in the outbox."""
    with transaction(database):
        database.conn.executemany(
            "INSERT INTO sync_rejected (record_id, reason, at) VALUES (?, ?, ?) "
            "ON CONFLICT(record_id) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            [(rid, reason, now) for rid, reason in items])


def rejected_records(database, *, limit=100):
    rows = database.execute("SELECT record_id, reason, at FROM sync_rejected ORDER BY at LIMIT ?", [limit])
    return [{"record_id": r[0], "reason": r[1], "at": r[2]} for r in rows.fetchall()]


def retry_rejected(database):
    """Make refused records eligible for upload again (after the server side was fixed)."""
    with transaction(database):
        return database.execute("DELETE FROM sync_rejected").rowcount


@dataclass
class ChangeSummary:
    """What one delta download changed (hooks get this after the commit)."""

    people: set = field(default_factory=set)
    faces: set = field(default_factory=set)
    fingers: set = field(default_factory=set)
    voices: set = field(default_factory=set)
    revoked: set = field(default_factory=set)
    deleted: set = field(default_factory=set)
    settings: dict = field(default_factory=dict)
    skipped: int = 0

    @property
    def empty(self):
        return not (self.people or self.faces or self.fingers or self.voices or self.revoked or self.settings)

    def merge(self, other):
        for name in ("people", "faces", "fingers", "voices", "revoked", "deleted"):
            getattr(self, name).update(getattr(other, name))
        self.settings.update(other.settings)
        self.skipped += other.skipped


# a field missing, or of the wrong type or value, in a downloaded change
MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


def apply_changes(database, data_key, changes, *, now):
    """Apply downloaded changes in the caller's transaction (or one of its own); return a ChangeSummary."""
    summary = ChangeSummary()
    with transaction(database):
        for change in changes:
            kind = change.get("type") if isinstance(change, dict) else None
            handler = _HANDLERS.get(kind)
            if handler is None:
                log.warning("skipping a change of unknown type %r", kind)
                summary.skipped += 1
                continue
            database.conn.execute("SAVEPOINT one_change")
            try:
                handler(database, data_key, change, summary, now)
            except MALFORMED as e:
                # left in, one bad change would roll every download back at it, for ever: no new
                # people, templates or revocations would reach the kiosk. Only its type is logged:
                # its values may be template bytes.
                database.conn.execute("ROLLBACK TO one_change")
                log.warning("skipping a malformed %s change (%s)", kind, type(e).__name__)
                summary.skipped += 1
            finally:
                database.conn.execute("RELEASE one_change")
        # an enrolment made here and not yet uploaded must not take their templates to the server
        enrolment.drop_enrolment_records(database, summary.deleted | summary.revoked)
    return summary


def _person(database, key, change, summary, now):
    if change.get("op") == "delete":
        person_id = str(change["person_id"])
        database.execute("DELETE FROM people WHERE person_id = ?", [person_id])
        summary.deleted.add(person_id)
        summary.people.add(person_id)
        summary.faces.add(person_id)
        summary.fingers.add(person_id)
        return
    row = {k: v for k, v in change["person"].items() if k in people.PERSON_FIELDS}
    if "active" in row:
        row["active"] = int(bool(row["active"]))
    if "adms_pin" in row:
        try:
            row["adms_pin"] = people.check_adms_pin(row["adms_pin"])
        except StorageError:
            # the person still comes down; only the number HR servers would not accept is left out
            log.warning("person %s: ignoring an adms_pin that is not 1-%d digits", row.get("person_id"),
                        people.ADMS_PIN_MAX_DIGITS)
            del row["adms_pin"]
    before = people.get_person(database, str(row["person_id"]))
    try:
        people.upsert_people(database, [row], now=now)
    except StorageError as e:
        if "adms_pin" not in str(e):
            raise
        log.warning("%s: stored without it", e)
        row.pop("adms_pin")
        people.upsert_people(database, [row], now=now)
    summary.people.add(str(row["person_id"]))
    if before is not None and bool(before["active"]) != bool(row.get("active", 1)):
        # only active people are in the gallery and on the sensor: deactivated, their templates
        # (kept on the device) leave both; reactivated, they come back
        summary.faces.add(str(row["person_id"]))
        summary.fingers.add(str(row["person_id"]))


def _known(database, person_id, summary, what):
    if people.get_person(database, person_id) is None:
        log.warning("skipping %s for unknown person %s", what, person_id)
        summary.skipped += 1
        return False
    return True


def _need_key(key):
    if key is None:
        raise StorageError("templates arrived but no data key was given to seal them with")


def _face_templates(database, key, change, summary, now):
    person_id, model_id = str(change["person_id"]), str(change["model_id"])
    if not _known(database, person_id, summary, "face templates"):
        return
    vectors = [_usable_vector(_unb64(text)) for text in change.get("vectors") or []]
    sizes = {vector.size for vector in vectors if vector is not None}
    if vectors:
        _need_key(key)
        stored = people.face_template_size(database, key, model_id)  # other people's templates of this model
        if stored is not None:
            sizes.add(stored)
    if len(sizes) > 1 or any(vector is None for vector in vectors):
        # a NaN, infinite or zero template would match nobody, or everybody, and one of another size
        # is refused by the gallery (the kiosk would not start): keep the set on the device as it was
        log.warning("skipping face templates for %s: not finite, non-zero float32 vectors of the model's size",
                    person_id)
        summary.skipped += 1
        return
    people.delete_face_templates(database, person_id, model_id=model_id)
    for vector in vectors:
        people.add_face_template(database, key, person_id, model_id, vector, now=now)
    summary.faces.add(person_id)


def _finger_templates(database, key, change, summary, now):
    person_id, sensor = str(change["person_id"]), str(change["sensor_model"])
    if not _known(database, person_id, summary, "finger templates"):
        return
    templates = change.get("templates") or []
    if templates:
        _need_key(key)
    database.execute("DELETE FROM finger_templates WHERE person_id = ? AND sensor_model = ?", [person_id, sensor])
    for item in templates:
        people.add_finger_template(database, key, person_id, sensor, int(item["slot"]),
                                   _unb64(item["template"]), now=now)
    summary.fingers.add(person_id)


MAX_VOICE_DIMS = 1024


def _voice_template(database, key, change, summary, now):
    person_id, model_id = str(change["person_id"]), str(change["model_id"])
    if not _known(database, person_id, summary, "a voice print"):
        return
    text = change.get("vector")
    if text is None:
        database.execute("DELETE FROM voice_templates WHERE person_id = ? AND model_id = ?", [person_id, model_id])
        summary.voices.add(person_id)
        return
    vector = _usable_vector(_unb64(text))
    if vector is None or vector.size > MAX_VOICE_DIMS:
        # a NaN, infinite or empty voice print would match nobody, or everybody: keep the one on the device
        log.warning("skipping a voice print for %s: not %d or fewer finite float32 numbers", person_id, MAX_VOICE_DIMS)
        summary.skipped += 1
        return
    _need_key(key)
    people.set_voice_template(database, key, person_id, model_id, vector / np.linalg.norm(vector), now=now)
    summary.voices.add(person_id)


def _settings(database, key, change, summary, now):
    values = dict(change.get("values") or {})
    stored = get_meta(database, SERVER_SETTINGS_KEY, {}) or {}
    stored.update(values)
    set_meta(database, SERVER_SETTINGS_KEY, stored)
    summary.settings.update(values)


def _revocation(database, key, change, summary, now):
    person_id = str(change["person_id"])
    database.execute("INSERT INTO sync_revocations (person_id, reason, at) VALUES (?, ?, ?) "
                     "ON CONFLICT(person_id) DO UPDATE SET reason = excluded.reason, at = excluded.at",
                     [person_id, str(change.get("reason", "")), now])
    purge_person(database, person_id, keep_person=True)
    summary.revoked.add(person_id)
    summary.faces.add(person_id)
    summary.fingers.add(person_id)


def purge_person(database, person_id, *, keep_person=False):
    """Remove a person's templates (and the person unless ``keep_person``, then marked inactive)."""
    with transaction(database):
        faces = database.execute("DELETE FROM face_templates WHERE person_id = ?", [person_id]).rowcount
        fingers = database.execute("DELETE FROM finger_templates WHERE person_id = ?", [person_id]).rowcount
        voices = database.execute("DELETE FROM voice_templates WHERE person_id = ?", [person_id]).rowcount
        if keep_person:
            database.execute("UPDATE people SET active = 0 WHERE person_id = ?", [person_id])
        else:
            database.execute("DELETE FROM people WHERE person_id = ?", [person_id])
    return {"face_templates": faces, "finger_templates": fingers, "voice_templates": voices}


def is_revoked(database, person_id):
    return database.execute("SELECT 1 FROM sync_revocations WHERE person_id = ?", [person_id]).fetchone() is not None


def _usable_vector(raw):
    """``raw`` as float32 numbers, or None when it is no template: not whole float32 numbers, empty,
    not finite, or all zero (such a template would match nobody, or everybody)."""
    vector = np.frombuffer(raw[:len(raw) // 4 * 4], dtype="<f4")
    if len(raw) % 4 or not vector.size or not np.isfinite(vector).all() or not vector.any():
        return None
    return vector


def _unb64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("a downloaded template is not valid base64") from None


_HANDLERS = {"person": _person, "face_templates": _face_templates, "finger_templates": _finger_templates,
             "voice_template": _voice_template, "settings": _settings, "revocation": _revocation}
