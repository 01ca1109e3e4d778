"""Schema migrations: each a version, a name and the statements applied in one transaction.

Append new migrations; never edit one that has shipped.
"""

MIGRATIONS = []


def migration(version, name, *statements):
    """Register one migration."""
    if any(v == version for v, _, _ in MIGRATIONS):
        raise ValueError(f"migration {version} registered twice")
    MIGRATIONS.append((version, name, statements))


migration(
    1, "initial schema",
    """CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE people (
        person_id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL DEFAULT 'employee',
        active INTEGER NOT NULL DEFAULT 1,
        pin_hash TEXT,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE face_templates (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created_at REAL NOT NULL)""",
    """CREATE INDEX face_templates_model ON face_templates(model_id)""",
    """CREATE TABLE finger_templates (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        sensor_model TEXT NOT NULL,
        slot INTEGER,
        sealed BLOB NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (sensor_model, slot))""",
    """CREATE TABLE attendance_events (
        seq INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        person_id TEXT NOT NULL,
        status_code INTEGER NOT NULL CHECK (status_code BETWEEN 0 AND 5),
        verify_mode TEXT NOT NULL,
        score REAL,
        wall_time TEXT NOT NULL,
        clock_synced INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        acked_at REAL)""",
    """CREATE INDEX outbox_pending ON outbox(acked_at, id)""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}')""",
)

migration(
    2, "sync bookkeeping",
    # a record the server refused on its own merits: kept (never lost), no longer re-sent
    """CREATE TABLE sync_rejected (
        record_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        at REAL NOT NULL)""",
    """CREATE TABLE sync_revocations (
        person_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL)""",
)

migration(
    3, "pin lockouts",
    # survives a restart, so pulling the plug does not buy an attacker fresh PIN attempts;
    # subject is 'pin:<person_id>' or 'admin'
    """CREATE TABLE pin_lockouts (
        subject TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_at REAL,
        locked_until REAL,
        updated_at REAL NOT NULL)""",
)

migration(
    4, "sensor slots written",
    # the slots of the fingerprint sensor this database wrote, with a digest of what it wrote:
    # only these may ever be emptied by reconciliation (a new or lost database must not wipe a sensor)
    """CREATE TABLE sensor_slots (
        slot INTEGER PRIMARY KEY,
        sensor_model TEXT NOT NULL DEFAULT '',
        person_id TEXT,
        digest TEXT NOT NULL,
        written_at REAL NOT NULL)""",
    # carry over what the previous firmware kept in the meta table
    """INSERT INTO sensor_slots (slot, digest, written_at)
        SELECT CAST(j.key AS INTEGER), j.value, 0 FROM meta m, json_each(m.value) j
        WHERE m.name = 'sensor.library' AND json_valid(m.value)""",
    """DELETE FROM meta WHERE name = 'sensor.library'""",
)

migration(
    5, "events by person",
    # the duplicate-punch guard and the punch-state rules look up one person's latest events
    """CREATE INDEX attendance_events_person ON attendance_events(person_id, seq)""",
)

migration(
    6, "adms pins and command answers",
    # the employee number HR servers know a person by (numeric, <= 9 digits); NULL = none, and
    # such a person's punches are not pushed to ADMS servers (the server could never match them)
    """ALTER TABLE people ADD COLUMN adms_pin TEXT""",
    """CREATE UNIQUE INDEX people_adms_pin ON people(adms_pin) WHERE adms_pin IS NOT NULL""",
    # the answer given to each ADMS command id, so a command the server sends again (also after
    # a restart) is answered exactly as before and never run twice
    """CREATE TABLE adms_answers (
        id TEXT PRIMARY KEY,
        cmd TEXT NOT NULL,
        return_code INTEGER NOT NULL,
        data TEXT NOT NULL DEFAULT '[]',
        answered_at REAL NOT NULL)""",
)

migration(
    7, "voice templates",
    # one sealed voice print (an L2-normalised embedding) per person and model
    """CREATE TABLE voice_templates (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL REFERENCES people(person_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (person_id, model_id))""",
)

migration(
    8, "face templates by person",
    # a near-tie in the face gallery reads a few people's templates during a search
    # (people.face_templates_of): by person, not by scanning every template of the model
    """CREATE INDEX face_templates_person ON face_templates(person_id, model_id)""",
)
