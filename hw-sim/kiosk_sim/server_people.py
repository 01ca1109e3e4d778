"""The server simulator's side of people enrolled or deleted at a kiosk: open, validate, store.

A ``person_enrolled`` record carries its templates sealed to the server's X25519 key
(kiosk/storage/sealbox.py); the simulator opens them with its private key, checks every field
and bound, and keeps the result for tests (``ServerSimulator.enrolled_people()``). A record that
fails any check is answered ``rejected`` with the reason, on its own merits. The simulator does
not pass kiosk enrolments on to other devices.
"""

import base64
import binascii
import json
import logging
import math
import struct

from kiosk.storage.enrolment import (DELETED_KIND, ENROLLED_KIND, MAX_FACE_DIMS, MAX_FACES, MAX_FINGER_TEMPLATE_BYTES,
                                     MAX_FINGERS, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_VOICE_DIMS, MAX_VOICES, ROLES,
                                     sealed_context)
from kiosk.storage.sealbox import open_sealed

log = logging.getLogger(__name__)

KINDS = (ENROLLED_KIND, DELETED_KIND)
MAX_SLOT = 65535

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS enrolled_people (record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL,
        person_id TEXT NOT NULL, name TEXT, role TEXT, enrolled_at TEXT, faces TEXT NOT NULL,
        fingers TEXT NOT NULL, pin_hash TEXT, stored_at REAL)""",
    # voice prints of an enrolment (a table of their own: older simulator databases lack a column)
    """CREATE TABLE IF NOT EXISTS enrolled_voices (record_id TEXT NOT NULL, model_id TEXT NOT NULL,
        vector TEXT NOT NULL, PRIMARY KEY (record_id, model_id))""",
    """CREATE TABLE IF NOT EXISTS deleted_people (record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL,
        person_id TEXT NOT NULL, deleted_at TEXT, stored_at REAL)""",
)


class Invalid(ValueError):
    """A person record the server refuses (the message is the reason sent back)."""


def check(kind, record_id, data, server_key):
    """Validate (and for enrolments, open) one record; returns the row to store or raises Invalid."""
    person_id = data.get("person_id")
    if not isinstance(person_id, str) or not person_id or len(person_id) > MAX_ID_CHARS:
        raise Invalid(f"person_id must be 1-{MAX_ID_CHARS} characters")
    if kind == DELETED_KIND:
        return ("deleted", (record_id, person_id, _text(data.get("deleted_at"), 40, "deleted_at")))
    name, role = _text(data.get("name"), MAX_NAME_CHARS, "name"), data.get("role")
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}")
    try:
        plain = open_sealed(server_key, data.get("templates"),
                            context=sealed_context(ENROLLED_KIND, record_id, person_id))
        secret = json.loads(plain)
    except ValueError as e:
        raise Invalid(f"sealed templates do not open: {e}") from None
    if not isinstance(secret, dict):
        raise Invalid("sealed templates are not an object")
    faces = [_face(item) for item in _list(secret.get("faces"), MAX_FACES, "faces")]
    fingers = [_finger(item) for item in _list(secret.get("fingers"), MAX_FINGERS, "fingers")]
    voices = [_voice(item) for item in _list(secret.get("voices", []), MAX_VOICES, "voices")]
    if len({v["model_id"] for v in voices}) != len(voices):
        raise Invalid("two voice prints of the same model")
    pin_hash = secret.get("pin_hash")
    if pin_hash is not None and (not isinstance(pin_hash, str) or not pin_hash.startswith("scrypt$")
                                 or len(pin_hash) > 200):
        raise Invalid("pin_hash is not a scrypt PIN hash")
    if (data.get("face_count"), data.get("finger_count"), data.get("voice_count", 0)) != (len(faces), len(fingers),
                                                                                          len(voices)):
        raise Invalid("face_count/finger_count/voice_count do not match the sealed templates")
    if not (faces or fingers or voices or pin_hash):
        raise Invalid("an enrolment without a face, a finger, a voice print or a PIN")
    return ("enrolled", (record_id, person_id, name, role, _text(data.get("enrolled_at"), 40, "enrolled_at"),
                         json.dumps(faces), json.dumps(fingers), pin_hash, voices))


def store(conn, device_id, checked, *, now):
    """Insert checked rows (inside the caller's transaction)."""
    for what, row in checked:
        if what == "enrolled":
            *row, voices = row
            conn.execute("INSERT INTO enrolled_people VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [row[0], device_id, *row[1:], now])
            for voice in voices:
                conn.execute("INSERT INTO enrolled_voices VALUES (?, ?, ?)",
                             [row[0], voice["model_id"], json.dumps(voice["vector"])])
        else:
            conn.execute("INSERT INTO deleted_people VALUES (?, ?, ?, ?, ?)", [row[0], device_id, *row[1:], now])


def enrolled(conn):
    """Every enrolment received, oldest first, templates opened (vectors as lists of floats)."""
    rows = conn.execute("SELECT record_id, device_id, person_id, name, role, enrolled_at, faces, fingers, pin_hash "
                        "FROM enrolled_people ORDER BY rowid")
    out = []
    for r in rows:
        voices = [{"model_id": v[0], "vector": json.loads(v[1])} for v in conn.execute(
            "SELECT model_id, vector FROM enrolled_voices WHERE record_id = ? ORDER BY model_id", [r[0]])]
        out.append({"record_id": r[0], "device_id": r[1], "person_id": r[2], "name": r[3], "role": r[4],
                    "enrolled_at": r[5], "faces": json.loads(r[6]), "fingers": json.loads(r[7]), "pin_hash": r[8],
                    "voices": voices})
    return out


def deleted(conn):
    rows = conn.execute("SELECT record_id, device_id, person_id, deleted_at FROM deleted_people ORDER BY rowid")
    return [dict(zip(("record_id", "device_id", "person_id", "deleted_at"), r)) for r in rows]


def _text(value, limit, name):
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise Invalid(f"{name} must be printable text of at most {limit} characters")
    return value


def _list(value, limit, name):
    if not isinstance(value, list) or len(value) > limit:
        raise Invalid(f"{name} must be a list of at most {limit} items")
    return value


def _bytes(text, name):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Invalid(f"{name} is not base64") from None


def _face(item):
    if not isinstance(item, dict) or not isinstance(item.get("model_id"), str) or not item["model_id"]:
        raise Invalid("a face template needs model_id and vector")
    raw = _bytes(item.get("vector"), "face vector")
    if not raw or len(raw) % 4 or len(raw) // 4 > MAX_FACE_DIMS:
        raise Invalid("a face vector is 1-4096 little-endian float32 values")
    vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not all(math.isfinite(v) for v in vector):
        raise Invalid("a face vector holds a NaN or infinite value")
    return {"model_id": item["model_id"], "vector": vector}


def _voice(item):
    if not isinstance(item, dict) or not isinstance(item.get("model_id"), str) or not item["model_id"] \
            or len(item["model_id"]) > 64:
        raise Invalid("a voice print needs model_id and vector")
    raw = _bytes(item.get("vector"), "voice vector")
    if not raw or len(raw) % 4 or len(raw) // 4 > MAX_VOICE_DIMS:
        raise Invalid(f"a voice vector is 1-{MAX_VOICE_DIMS} little-endian float32 values")
    vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not all(math.isfinite(v) for v in vector) or not any(vector):
        raise Invalid("a voice vector holds a NaN or infinite value, or only zeros")
    return {"model_id": item["model_id"], "vector": vector}


def _finger(item):
    if not isinstance(item, dict) or not isinstance(item.get("sensor_model"), str) or not item["sensor_model"]:
        raise Invalid("a finger template needs sensor_model, slot and template")
    slot = item.get("slot")
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot <= MAX_SLOT):
        raise Invalid(f"finger slot must be 0-{MAX_SLOT} or null")
    template = _bytes(item.get("template"), "finger template")
    if not 0 < len(template) <= MAX_FINGER_TEMPLATE_BYTES:
        raise Invalid(f"a finger template is 1-{MAX_FINGER_TEMPLATE_BYTES} bytes")
    return {"sensor_model": item["sensor_model"], "slot": slot, "template": base64.b64encode(template).decode()}
