"""Storage: migrations, the hash chain, the outbox, sealed templates."""

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from kiosk.clock import FakeClock
from kiosk.errors import ChainError, SealError, StorageError
from kiosk.storage import audit, db, events, outbox, people
from kiosk.storage.seal import DataKey


@pytest.fixture
def database():
    return db.open_db(":memory:")


@pytest.fixture
def key(tmp_path):
    return DataKey.create(tmp_path / "data.key")


def test_migrations_recorded_once(tmp_path):
    path = tmp_path / "k.db"
    first = db.open_db(path, migrate=False)
    applied = db.apply_migrations(first)
    assert applied and applied[0][0] == 1
    assert db.apply_migrations(db.open_db(path, migrate=False)) == []
    assert all(when for _, _, when in db.migration_status(first))


def test_wal_and_full_sync(tmp_path):
    database = db.open_db(tmp_path / "k.db")
    assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_database_from_newer_firmware_is_refused(tmp_path):
    path = tmp_path / "k.db"
    database = db.open_db(path)
    database.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(StorageError, match="newer version"):
        db.open_db(path)


def test_failed_migration_leaves_nothing_applied(tmp_path, monkeypatch):
    from kiosk.storage import migrations

    broken = list(migrations.MIGRATIONS) + [(99, "broken", ("CREATE TABLE x (a)", "CREATE TABLE x (a)"))]
    monkeypatch.setattr(db, "MIGRATIONS", broken)
    database = db.open_db(tmp_path / "k.db", migrate=False)
    with pytest.raises(sqlite3.OperationalError):
        db.apply_migrations(database)
    assert [v for v, _, when in db.migration_status(database) if when] == [v for v, _, _ in migrations.MIGRATIONS]
    assert not list(database.query("SELECT name FROM sqlite_master WHERE name = 'x'"))


def add_people(database, *person_ids):
    """Events are only recorded for people who exist."""
    people.upsert_people(database, [{"person_id": p} for p in person_ids])


def test_events_chain_and_outbox(database):
    clock = FakeClock(synchronized=False)
    add_people(database, "e1")
    made = [events.record_event(database, person_id="e1", status_code=n % 2, verify_mode="fingerprint",
                                score=None, clock=clock) for n in range(5)]
    assert [e.seq for e in made] == [1, 2, 3, 4, 5]
    assert made[1].prev_hash == made[0].hash
    assert made[0].clock_synced is False
    assert events.verify_chain(database) == 5
    pending = outbox.pending(database)
    assert [p.record_id for p in pending] == [e.id for e in made]
    assert pending[0].payload == made[0].as_record()


def test_bad_event_fields_rejected(database):
    add_people(database, "e")
    with pytest.raises(StorageError, match="status code"):
        events.record_event(database, person_id="e", status_code=9, verify_mode="face", clock=FakeClock())
    with pytest.raises(StorageError, match="verify mode"):
        events.record_event(database, person_id="e", status_code=0, verify_mode="iris", clock=FakeClock())
    assert events.count(database) == 0


@pytest.mark.parametrize("column,value", [("person_id", "'mallory'"), ("status_code", "1"),
                                          ("wall_time", "'2020-01-01T00:00:00.000Z'"), ("score", "0.99")])
def test_altered_event_detected_naming_row(database, column, value):
    clock = FakeClock()
    add_people(database, *(f"e{n}" for n in range(10)))
    made = events.record_events(database, [dict(person_id=f"e{n}", status_code=0, verify_mode="face", score=0.5)
                                           for n in range(10)], clock=clock)
    database.execute(f"UPDATE attendance_events SET {column} = {value} WHERE seq = 7")
    with pytest.raises(ChainError, match=f"seq 7 \\(id {made[6].id}\\)"):
        events.verify_chain(database)


def test_deleted_event_detected(database):
    add_people(database, "e")
    events.record_events(database, [dict(person_id="e", status_code=0, verify_mode="face")] * 5, clock=FakeClock())
    database.execute("DELETE FROM attendance_events WHERE seq = 3")
    with pytest.raises(ChainError, match="seq 3 is missing"):
        events.verify_chain(database)


def test_outbox_never_purges_unacknowledged(database):
    clock = FakeClock()
    add_people(database, "e")
    made = events.record_events(database, [dict(person_id="e", status_code=0, verify_mode="pin")] * 6, clock=clock)
    acked = [e.id for e in made[:3]]
    assert outbox.acknowledge(database, acked, now=clock.time()) == 3
    assert outbox.acknowledge(database, acked, now=clock.time()) == 0  # duplicate ack is harmless
    assert outbox.purge_acknowledged(database, older_than_s=3600, now=clock.time()) == 0
    clock.advance(3601)
    assert outbox.purge_acknowledged(database, older_than_s=3600, now=clock.time()) == 3
    assert [p.record_id for p in outbox.pending(database)] == [e.id for e in made[3:]]
    assert outbox.stats(database)["pending"] == 3


def test_face_templates_round_trip_and_filter_by_model(database, key):
    people.upsert_people(database, [{"person_id": "a", "name": "A"}, {"person_id": "b", "name": "B"}])
    va, vb = np.arange(128, dtype=np.float32), -np.arange(128, dtype=np.float32)
    people.add_face_template(database, key, "a", "sface", va)
    people.add_face_template(database, key, "b", "sface", vb)
    people.add_face_template(database, key, "b", "other", vb)
    got = people.face_templates(database, key, "sface")
    assert [pid for pid, _ in got] == ["a", "b"]
    np.testing.assert_array_equal(got[0][1], va)
    people.delete_person(database, "a")
    assert [pid for pid, _ in people.face_templates(database, key, "sface")] == ["b"]


def test_finger_templates_round_trip(database, key):
    people.upsert_person(database, {"person_id": "a"})
    blob = bytes(range(256)) * 2
    people.add_finger_template(database, key, "a", "R307", 4, blob)
    assert people.finger_templates(database, key, "R307") == [("a", 4, blob)]
    assert people.person_for_slot(database, "R307", 4) == "a"


def test_wrong_key_is_an_error_not_plaintext(database, key, tmp_path):
    people.upsert_person(database, {"person_id": "a"})
    people.add_face_template(database, key, "a", "m", np.ones(8, np.float32))
    other = DataKey.create(tmp_path / "other.key")
    with pytest.raises(SealError, match="not the key this database was sealed with"):
        people.face_templates(database, other, "m")


def test_missing_or_exposed_key_file(tmp_path):
    with pytest.raises(SealError, match="not found"):
        DataKey.load(tmp_path / "nope.key")
    path = tmp_path / "k.key"
    DataKey.create(path)
    path.chmod(0o644)
    with pytest.raises(SealError, match="chmod 600"):
        DataKey.load(path)
    with pytest.raises(SealError, match="refusing to replace"):
        DataKey.create(path)


def test_moved_blob_fails_to_open(database, key):
    people.upsert_people(database, [{"person_id": "a"}, {"person_id": "b"}])
    people.add_face_template(database, key, "a", "m", np.ones(8, np.float32))
    database.execute("UPDATE face_templates SET person_id = 'b'")
    with pytest.raises(SealError, match="moved"):
        people.face_templates(database, key, "m")


def test_database_file_holds_no_plaintext_template_bytes(tmp_path, key):
    path = tmp_path / "k.db"
    database = db.open_db(path)
    rng = np.random.default_rng(7)
    vectors = [rng.standard_normal(128).astype(np.float32) for _ in range(20)]
    fingers = [rng.integers(0, 256, 512, dtype=np.uint8).tobytes() for _ in range(20)]
    for n, (vector, finger) in enumerate(zip(vectors, fingers)):
        people.upsert_person(database, {"person_id": f"p{n}"})
        people.add_face_template(database, key, f"p{n}", "m", vector)
        people.add_finger_template(database, key, f"p{n}", "R307", n, finger)
    database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("k.db*"))
    for vector, finger in zip(vectors, fingers):
        for chunk in (vector.tobytes()[:16], vector.tobytes()[-16:], finger[:16], finger[200:216]):
            assert chunk not in raw


def test_audit_refuses_secrets(database):
    audit.audit(database, actor="admin", action="door_open", detail={"door": "main"}, now=1.0)
    assert audit.entries(database)[0]["detail"] == {"door": "main"}
    with pytest.raises(ValueError, match="pin"):
        audit.audit(database, actor="admin", action="x", detail={"PIN": "123456"}, now=1.0)


@hsettings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.integers(0, 5),
                          st.sampled_from(events.VERIFY_MODES),
                          st.one_of(st.none(), st.floats(-1, 1, allow_nan=False))), min_size=1, max_size=20))
def test_chain_round_trip_property(items):
    database = db.open_db(":memory:")
    add_people(database, *{p for p, _, _, _ in items})
    made = events.record_events(database, [dict(person_id=p, status_code=s, verify_mode=v, score=c)
                                           for p, s, v, c in items], clock=FakeClock())
    assert events.verify_chain(database) == len(items)
    assert events.events_after(database, 0, limit=100) == [e.as_record() for e in made]


def test_meta_round_trip(database):
    assert db.get_meta(database, "cursor", 0) == 0
    db.set_meta(database, "cursor", {"people": 42})
    assert db.get_meta(database, "cursor") == {"people": 42}


def test_key_in_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(SealError, match="cannot create the key folder"):
        DataKey.create(blocker / "data.key")
