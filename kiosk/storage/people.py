"""People and their biometric templates; template blobs are always sealed with the data key."""

import logging
import sqlite3

import numpy as np

from kiosk.digits import western_digits
from kiosk.errors import SealError, StorageError
from kiosk.storage.db import get_meta, set_meta, transaction

log = logging.getLogger(__name__)

PERSON_FIELDS = ("person_id", "name", "role", "active", "pin_hash", "adms_pin")
ADMS_PIN_MAX_DIGITS = 9
IDS_PER_QUERY = 500  # person ids bound in one IN (...) (SQLite builds before 3.32 allow 999 variables)


def check_adms_pin(value):
    """An ADMS PIN as stored: None, or 1-9 ASCII digits (most HR servers take nothing else)."""
    if value is None or value == "":
        return None
    text = western_digits(str(value))  # typed at the kiosk, it may come in Eastern Arabic digits
    if isinstance(value, bool) or not (text.isascii() and text.isdigit() and len(text) <= ADMS_PIN_MAX_DIGITS):
        raise StorageError(f"adms_pin must be 1-{ADMS_PIN_MAX_DIGITS} digits")
    return text


def upsert_people(database, rows, *, now=0.0):
    """Insert or update people (dicts with person_id and any of name, role, active, pin_hash, adms_pin).

    ``adms_pin`` is changed only when the row carries it (None clears it): a row without it,
    such as an enrolment at the kiosk, keeps the PIN the person already has.
    """
    with transaction(database):
        for row in rows:
            unknown = set(row) - set(PERSON_FIELDS)
            if unknown:
                raise StorageError(f"unknown person fields: {sorted(unknown)}")
            values = {"name": "", "role": "employee", "active": 1, "pin_hash": None, **row, "updated_at": now,
                      "adms_pin": check_adms_pin(row.get("adms_pin")), "has_adms_pin": int("adms_pin" in row)}
            try:
                database.execute(
                    "INSERT INTO people (person_id, name, role, active, pin_hash, adms_pin, updated_at) "
                    "VALUES (:person_id, :name, :role, :active, :pin_hash, :adms_pin, :updated_at) "
                    "ON CONFLICT(person_id) DO UPDATE SET name=excluded.name, role=excluded.role, "
                    "active=excluded.active, pin_hash=excluded.pin_hash, updated_at=excluded.updated_at, "
                    "adms_pin=CASE WHEN :has_adms_pin THEN excluded.adms_pin ELSE people.adms_pin END",
                    values)
            except sqlite3.IntegrityError as e:
                if "adms_pin" not in str(e):
                    raise
                raise StorageError(f"person {row['person_id']}: adms_pin already belongs to another person") from None


def set_adms_pin(database, person_id, adms_pin):
    """Give one person an ADMS PIN (None clears it); returns True if the person exists."""
    adms_pin = check_adms_pin(adms_pin)
    with transaction(database):
        try:
            return database.execute("UPDATE people SET adms_pin = ? WHERE person_id = ?",
                                    [adms_pin, person_id]).rowcount > 0
        except sqlite3.IntegrityError:
            raise StorageError(f"person {person_id}: adms_pin already belongs to another person") from None


def adms_pins(database, person_ids):
    """{person_id: adms_pin} for those of ``person_ids`` that have one."""
    ids = list(dict.fromkeys(person_ids))
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for person_id, pin in database.execute(
                f"SELECT person_id, adms_pin FROM people WHERE person_id IN ({marks}) AND adms_pin IS NOT NULL",
                chunk):
            found[person_id] = pin
    return found


def upsert_person(database, row, *, now=0.0):
    upsert_people(database, [row], now=now)


def get_person(database, person_id):
    rows = list(database.query("SELECT * FROM people WHERE person_id = ?", [person_id]))
    return rows[0] if rows else None


def delete_person(database, person_id):
    """Remove a person and (by cascade) all their templates; returns True if they existed."""
    with transaction(database):
        return database.execute("DELETE FROM people WHERE person_id = ?", [person_id]).rowcount > 0


def count_people(database):
    return database.execute("SELECT count(*) FROM people").fetchone()[0]


def bind_key(database, key):
    """Check ``key`` is the one this database's templates are sealed with (recording it the first time)."""
    known = get_meta(database, "data_key_id")
    if known is None:
        with transaction(database):
            set_meta(database, "data_key_id", key.key_id)
    elif known != key.key_id:
        raise SealError(f"data key {key.key_id} is not the key this database was sealed with ({known}): "
                        "restore the original key file")


def face_context(person_id, model_id):
    """What a face template is sealed to: its person and model (a sealed row moved to another fails to open)."""
    return f"face:{person_id}:{model_id}"


def _unsealed_faces(key, model_id, rows):
    """[(person_id, float32 vector)] of ``face_templates`` rows (``person_id``, ``sealed``) of ``model_id``."""
    out = []
    for row in rows:
        raw = key.unseal(row["sealed"], context=face_context(row["person_id"], model_id))
        out.append((row["person_id"], np.frombuffer(raw, dtype="<f4").copy()))
    return out


def face_template_size(database, key, model_id):
    """How many numbers a stored ``model_id`` template holds (the first one's); None when there is none."""
    bind_key(database, key)
    rows = list(database.query("SELECT person_id, sealed FROM face_templates WHERE model_id = ? LIMIT 1",
                               [model_id]))
    return len(_unsealed_faces(key, model_id, rows)[0][1]) if rows else None


def add_face_template(database, key, person_id, model_id, vector, *, now=0.0):
    """Seal and store one face embedding; returns its row id."""
    bind_key(database, key)
    vector = np.ascontiguousarray(vector, dtype="<f4")
    sealed = key.seal(vector.tobytes(), context=face_context(person_id, model_id))
    with transaction(database):
        cursor = database.execute(
            "INSERT INTO face_templates (person_id, model_id, sealed, created_at) VALUES (?, ?, ?, ?)",
            [person_id, model_id, sealed, now])
        return cursor.lastrowid


def face_templates(database, key, model_id):
    """[(person_id, float32 vector)] of every active person's templates for ``model_id``."""
    bind_key(database, key)
    rows = database.query(
        "SELECT t.person_id, t.sealed FROM face_templates t JOIN people p USING (person_id) "
        "WHERE t.model_id = ? AND p.active = 1 ORDER BY t.id", [model_id])
    return _unsealed_faces(key, model_id, rows)


def face_templates_of(database, key, model_id, person_ids):
    """[(person_id, float32 vector)] of the ``model_id`` templates of the given active people."""
    bind_key(database, key)
    person_ids = sorted(set(person_ids))
    out = []
    for start in range(0, len(person_ids), IDS_PER_QUERY):
        chunk = person_ids[start:start + IDS_PER_QUERY]
        # "+t.model_id": without it SQLite prefers the index by model from about 5 ids on (it
        # spares the sort), reading every template of the model: 27 ms at 100,000 against 0.1
        rows = database.query(
            "SELECT t.person_id, t.sealed FROM face_templates t JOIN people p USING (person_id) "
            f"WHERE t.person_id IN ({', '.join('?' * len(chunk))}) AND +t.model_id = ? AND p.active = 1 "
            "ORDER BY t.id", [*chunk, model_id])
        out.extend(_unsealed_faces(key, model_id, rows))
    return out


def delete_face_templates(database, person_id, *, model_id=None):
    with transaction(database):
        if model_id is None:
            return database.execute("DELETE FROM face_templates WHERE person_id = ?", [person_id]).rowcount
        return database.execute("DELETE FROM face_templates WHERE person_id = ? AND model_id = ?",
                                [person_id, model_id]).rowcount


def set_voice_template(database, key, person_id, model_id, vector, *, now=0.0):
    """Seal and store a person's voice print for ``model_id``, replacing the one they had."""
    bind_key(database, key)
    vector = np.ascontiguousarray(vector, dtype="<f4")
    sealed = key.seal(vector.tobytes(), context=f"voice:{person_id}:{model_id}")
    with transaction(database):
        cursor = database.execute(
            "INSERT INTO voice_templates (person_id, model_id, sealed, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(person_id, model_id) DO UPDATE SET sealed=excluded.sealed, created_at=excluded.created_at",
            [person_id, model_id, sealed, now])
        return cursor.lastrowid


def voice_template(database, key, person_id, model_id):
    """An active person's voice print for ``model_id`` as float32, or None."""
    bind_key(database, key)
    rows = list(database.query(
        "SELECT t.sealed FROM voice_templates t JOIN people p USING (person_id) "
        "WHERE t.person_id = ? AND t.model_id = ? AND p.active = 1", [person_id, model_id]))
    if not rows:
        return None
    raw = key.unseal(rows[0]["sealed"], context=f"voice:{person_id}:{model_id}")
    return np.frombuffer(raw, dtype="<f4").copy()


def has_voice_template(database, person_id):
    """Whether a person has a voice print (of any model), without opening it."""
    return database.execute("SELECT 1 FROM voice_templates WHERE person_id = ? LIMIT 1", [person_id]).fetchone() is not None


def delete_voice_templates(database, person_id):
    with transaction(database):
        return database.execute("DELETE FROM voice_templates WHERE person_id = ?", [person_id]).rowcount


def add_finger_template(database, key, person_id, sensor_model, slot, template_bytes, *, now=0.0):
    """Seal and store one fingerprint template (sensor-native bytes) at a sensor slot."""
    bind_key(database, key)
    sealed = key.seal(bytes(template_bytes), context=f"finger:{person_id}:{sensor_model}")
    with transaction(database):
        cursor = database.execute(
            "INSERT INTO finger_templates (person_id, sensor_model, slot, sealed, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sensor_model, slot) DO UPDATE SET "
            "person_id=excluded.person_id, sealed=excluded.sealed, created_at=excluded.created_at",
            [person_id, sensor_model, slot, sealed, now])
        return cursor.lastrowid


def finger_templates(database, key, sensor_model):
    """[(person_id, slot, template bytes)] of every active person's templates for one sensor model, by slot."""
    bind_key(database, key)
    rows = database.query("SELECT t.person_id, t.slot, t.sealed FROM finger_templates t JOIN people p "
                          "USING (person_id) WHERE t.sensor_model = ? AND p.active = 1 ORDER BY t.slot",
                          [sensor_model])
    return [(row["person_id"], row["slot"],
             key.unseal(row["sealed"], context=f"finger:{row['person_id']}:{sensor_model}")) for row in rows]


def finger_templates_of(database, key, sensor_model, person_id):
    """The template bytes of one person's fingers for one sensor model."""
    bind_key(database, key)
    rows = database.query("SELECT sealed FROM finger_templates WHERE sensor_model = ? AND person_id = ? ORDER BY slot",
                          [sensor_model, person_id])
    return [key.unseal(row["sealed"], context=f"finger:{person_id}:{sensor_model}") for row in rows]


def person_for_slot(database, sensor_model, slot):
    rows = list(database.query("SELECT person_id FROM finger_templates WHERE sensor_model = ? AND slot = ?",
                               [sensor_model, slot]))
    return rows[0]["person_id"] if rows else None
