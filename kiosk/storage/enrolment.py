"""Enrolment and deletion of a person at the kiosk, each committed with its outbox record in ONE transaction.

``enrol_person`` stores the person, their templates sealed with the data key, and an outbox
record of kind ``person_enrolled`` whose templates are sealed to the server's X25519 key
(kiosk/storage/sealbox.py), so the server learns about the enrolment and no template rests in
the outbox or travels in clear. ``delete_person`` removes the person, their templates and their
``person_enrolled`` records still in the outbox, and queues a ``person_deleted`` record; their
attendance events stay (the hash chain and the payroll need them). The record formats are in
docs/sync-protocol.md.
"""

import base64
import json
import logging
import uuid as uuidlib
from dataclasses import dataclass

import numpy as np

from kiosk.errors import StorageError, UnknownPersonError
from kiosk.pinhash import hash_pin, normalise_pin
from kiosk.storage import outbox, people, sealbox, sensor_slots
from kiosk.storage.audit import audit
from kiosk.storage.db import transaction
from kiosk.storage.events import iso_utc
from kiosk.storage.sensor_slots import template_digest

log = logging.getLogger(__name__)

ENROLLED_KIND = "person_enrolled"
DELETED_KIND = "person_deleted"
ROLES = ("employee", "admin")
MAX_ID_CHARS, MAX_NAME_CHARS = 64, 200
MAX_FACES, MAX_FINGERS = 10, 10
MAX_FINGER_TEMPLATE_BYTES = 4096
MAX_FACE_DIMS = 4096
MAX_VOICES, MAX_VOICE_DIMS = 4, 1024  # one voice print per model; the downlink takes the same size


@dataclass(frozen=True)
class Enrolled:
    """What ``enrol_person`` committed."""

    person_id: str
    record_id: str
    faces: int
    fingers: int
    slots: tuple
    voices: int = 0


@dataclass(frozen=True)
class Deleted:
    """What ``delete_person`` removed; ``slots`` are sensor slots the caller should empty (reconcile does)."""

    person_id: str
    record_id: str
    faces: int
    fingers: int
    slots: tuple


def sealed_context(kind, record_id, person_id):
    """The associated data binding a sealed box to its record and person (server and kiosk agree on it)."""
    return f"{kind}:{record_id}:{person_id}"


def enrol_person(database, key, *, person_id, name, role="employee", face=(), fingers=(), pin=None,
                 server_key, now, written_to_sensor=False, actor="admin", adms_pin=None, voice=()):
    """Commit a person enrolled at the kiosk, their sealed templates and the outbox record, atomically.

    ``face``: [(model_id, float32 vector)]; ``fingers``: [(sensor_model, slot, template bytes)];
    ``pin``: 4-12 digits or None; ``voice``: [(model_id, unit float32 voice print)], one per
    model, replacing the person's voice print for that model. The person's templates for the given face models and sensor
    models are replaced (re-enrolment). ``written_to_sensor``: the finger templates are already
    stored in those sensor slots (the sensor enrolled them there), so reconciliation counts them
    as ours. ``adms_pin``: the employee number HR servers know the person by (1-9 digits), or
    None to keep what the person has. Raises StorageError (ValueError for a bad PIN) and writes
    nothing on any problem.
    """
    person_id = _check_id(person_id)
    adms_pin = people.check_adms_pin(adms_pin)
    name = _check_name(name)
    if role not in ROLES:
        raise StorageError(f"role {role!r} is not one of {ROLES}")
    faces = [_check_face(model_id, vector) for model_id, vector in face]
    finger_items = [_check_finger(sensor_model, slot, template) for sensor_model, slot, template in fingers]
    voices = [_check_voice(model_id, vector) for model_id, vector in voice]
    if len(voices) > MAX_VOICES or len({m for m, _ in voices}) != len(voices):
        raise StorageError(f"at most {MAX_VOICES} voice prints per person, one per model")
    if len(faces) > MAX_FACES or len(finger_items) > MAX_FINGERS:
        raise StorageError(f"at most {MAX_FACES} face and {MAX_FINGERS} finger templates per person")
    if len({(m, s) for m, s, _ in finger_items if s is not None}) != len([s for _, s, _ in finger_items if s is not None]):
        raise StorageError("two finger templates for the same sensor slot")
    pin_hash = hash_pin(normalise_pin(pin)) if pin is not None else None
    if not (faces or finger_items or voices or pin_hash):
        raise StorageError("an enrolment needs a face, a finger, a voice print or a PIN")
    if not server_key:
        raise StorageError("no server public key (security.server_public_key): register the device before "
                           "enrolling, so the enrolment can reach the server")
    record_id = str(uuidlib.uuid4())
    secret = {"faces": [{"model_id": m, "vector": _b64(v.tobytes())} for m, v in faces],
              "fingers": [{"sensor_model": m, "slot": s, "template": _b64(t)} for m, s, t in finger_items],
              "voices": [{"model_id": m, "vector": _b64(v.tobytes())} for m, v in voices],
              "pin_hash": pin_hash}
    try:
        box = sealbox.seal_to(server_key, json.dumps(secret, separators=(",", ":")).encode(),
                              context=sealed_context(ENROLLED_KIND, record_id, person_id))
    except ValueError as e:
        raise StorageError(f"cannot seal the enrolment to the server key: {e}") from None
    payload = {"person_id": person_id, "name": name, "role": role, "enrolled_at": iso_utc(now),
               "face_count": len(faces), "finger_count": len(finger_items), "voice_count": len(voices),
               "has_pin": pin_hash is not None,
               "templates": box}
    if adms_pin is not None:
        payload["adms_pin"] = adms_pin
    people.bind_key(database, key)
    with transaction(database):
        existing = people.get_person(database, person_id)
        for sensor_model, slot, _ in finger_items:
            owner = people.person_for_slot(database, sensor_model, slot) if slot is not None else None
            if owner not in (None, person_id):
                raise StorageError(f"sensor slot {slot} ({sensor_model}) belongs to person {owner}")
        row = {"person_id": person_id, "name": name, "role": role, "active": 1,
               "pin_hash": pin_hash if pin_hash else (existing or {}).get("pin_hash")}
        if adms_pin is not None:
            row["adms_pin"] = adms_pin
        people.upsert_person(database, row, now=now)
        for model_id in {m for m, _ in faces}:
            people.delete_face_templates(database, person_id, model_id=model_id)
        for model_id, vector in faces:
            people.add_face_template(database, key, person_id, model_id, vector, now=now)
        for sensor_model in {m for m, _, _ in finger_items}:
            database.execute("DELETE FROM finger_templates WHERE person_id = ? AND sensor_model = ?",
                             [person_id, sensor_model])
        for sensor_model, slot, template in finger_items:
            people.add_finger_template(database, key, person_id, sensor_model, slot, template, now=now)
            if written_to_sensor and slot is not None:
                sensor_slots.record_written(database, slot, sensor_model=sensor_model, person_id=person_id,
                                            digest=template_digest(template), now=now)
        for model_id, vector in voices:
            people.set_voice_template(database, key, person_id, model_id, vector, now=now)
        outbox.enqueue(database, ENROLLED_KIND, record_id, payload, now=now)
        audit(database, actor=actor, action="person_enrolled",
              detail={"person_id": person_id, "faces": len(faces), "fingers": len(finger_items), "voices": len(voices),
                      "with_pin": pin_hash is not None, "re_enrolment": existing is not None}, now=now)
    log.info("enrolled person %s: %d face, %d finger template(s), %d voice print(s)%s", person_id, len(faces),
             len(finger_items), len(voices), ", with a PIN" if pin_hash else "")
    return Enrolled(person_id, record_id, len(faces), len(finger_items),
                    tuple(s for _, s, _ in finger_items if s is not None), len(voices))


def delete_person(database, person_id, *, now, actor="admin"):
    """Remove a person and all their templates and queue the deletion for the server; events stay."""
    person_id = str(person_id)
    record_id = str(uuidlib.uuid4())
    with transaction(database):
        if people.get_person(database, person_id) is None:
            raise UnknownPersonError(f"no person {person_id!r} to delete")
        slots = tuple(row[0] for row in database.execute(
            "SELECT slot FROM finger_templates WHERE person_id = ? AND slot IS NOT NULL ORDER BY slot", [person_id]))
        faces = database.execute("DELETE FROM face_templates WHERE person_id = ?", [person_id]).rowcount
        fingers = database.execute("DELETE FROM finger_templates WHERE person_id = ?", [person_id]).rowcount
        voices = database.execute("DELETE FROM voice_templates WHERE person_id = ?", [person_id]).rowcount
        database.execute("DELETE FROM people WHERE person_id = ?", [person_id])
        database.execute("DELETE FROM pin_lockouts WHERE subject = ?", [f"pin:{person_id}"])
        drop_enrolment_records(database, [person_id])
        outbox.enqueue(database, DELETED_KIND, record_id, {"person_id": person_id, "deleted_at": iso_utc(now)},
                       now=now)
        audit(database, actor=actor, action="person_deleted",
              detail={"person_id": person_id, "faces": faces, "fingers": fingers, "voices": voices}, now=now)
    log.info("deleted person %s (%d face, %d finger templates, %d voice prints); attendance events kept", person_id,
             faces, fingers, voices)
    return Deleted(person_id, record_id, faces, fingers, slots)


def drop_enrolment_records(database, person_ids):
    """Delete the ``person_enrolled`` outbox records of ``person_ids``, sent or not; returns how many.

    Their templates (sealed to the server) must not outlive the person on the device, nor reach
    the server after the person was deleted. Joins the caller's transaction if one is open.
    """
    ids = sorted(set(person_ids))
    records = []
    with transaction(database):
        for start in range(0, len(ids), people.IDS_PER_QUERY):
            chunk = ids[start:start + people.IDS_PER_QUERY]
            # one pass over the outbox for many people: a delta may delete thousands at once
            records += [row[0] for row in database.execute(
                "SELECT record_id FROM outbox WHERE kind = ? AND "
                f"json_extract(payload, '$.person_id') IN ({', '.join('?' * len(chunk))})", [ENROLLED_KIND, *chunk])]
        for table in ("sync_rejected", "outbox"):
            database.conn.executemany(f"DELETE FROM {table} WHERE record_id = ?", [(r,) for r in records])
    dropped = len(records)
    if dropped:
        log.info("dropped %d enrolment record(s) of deleted people from the outbox", dropped)
    return dropped


def next_free_slot(database, sensor_model, *, occupied, capacity):
    """The lowest sensor slot not occupied on the sensor, not assigned in the database and not ours."""
    taken = set(occupied) | set(sensor_slots.written_slots(database))
    taken |= {row[0] for row in database.execute(
        "SELECT slot FROM finger_templates WHERE sensor_model = ? AND slot IS NOT NULL", [sensor_model])}
    for slot in range(int(capacity)):
        if slot not in taken:
            return slot
    raise StorageError(f"no free slot on the {sensor_model} sensor ({capacity} slots)")


# --- checks ------------------------------------------------------------------------------------

def _check_id(person_id):
    if not isinstance(person_id, str) or not person_id.strip() or len(person_id) > MAX_ID_CHARS \
            or not person_id.isprintable():
        raise StorageError(f"a person id is 1-{MAX_ID_CHARS} printable characters, got {person_id!r}")
    return person_id.strip()


def _check_name(name):
    name = str(name or "").strip()
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise StorageError(f"a name is at most {MAX_NAME_CHARS} printable characters")
    return name


def _check_face(model_id, vector):
    vector = np.ascontiguousarray(vector, dtype="<f4")
    if not model_id or vector.ndim != 1 or not 0 < vector.size <= MAX_FACE_DIMS:
        raise StorageError("a face template is a model id and a 1-D vector")
    if not np.isfinite(vector).all():
        raise StorageError("a face template holds a NaN or infinite value")
    return str(model_id), vector


def _check_voice(model_id, vector):
    vector = np.ascontiguousarray(vector, dtype="<f4")
    if not model_id or vector.ndim != 1 or not 0 < vector.size <= MAX_VOICE_DIMS:
        raise StorageError(f"a voice print is a model id and a 1-D vector of at most {MAX_VOICE_DIMS} numbers")
    if not np.isfinite(vector).all() or not vector.any():
        raise StorageError("a voice print holds a NaN or infinite value, or only zeros")
    return str(model_id), vector


def _check_finger(sensor_model, slot, template):
    template = bytes(template)
    if not sensor_model or not 0 < len(template) <= MAX_FINGER_TEMPLATE_BYTES:
        raise StorageError(f"a finger template is a sensor model and 1-{MAX_FINGER_TEMPLATE_BYTES} bytes")
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int) or slot < 0):
        raise StorageError(f"sensor slot must be a non-negative integer, got {slot!r}")
    return str(sensor_model), slot, template


def _b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")
