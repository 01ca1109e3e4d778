"""Enrolment and deletion at the kiosk: one transaction each, templates sealed to the server, end to end."""

import base64
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sync_helpers import make_device

from kiosk.clock import FakeClock
from kiosk.errors import StorageError, UnknownPersonError
from kiosk.pinhash import verify_pin
from kiosk.storage import db, enrolment, events, outbox, people, pins, sealbox, sensor_slots, sync_state
from kiosk.storage.seal import DataKey
from kiosk.sync import protocol

NOW = 1_717_000_000.0


@pytest.fixture
def database():
    return db.open_db(":memory:")


@pytest.fixture
def key(tmp_path):
    return DataKey.create(tmp_path / "data.key")


@pytest.fixture
def server_key():
    return X25519PrivateKey.generate()


def vectors(n, dims=128, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)


def enrol(database, key, server_private, **overrides):
    options = dict(person_id="1042", name="Ann Lee", role="employee",
                   face=[("sface_int8", v) for v in vectors(3)],
                   fingers=[("R307", 7, b"\x11" * 512), ("R307", 8, b"\x22" * 512)],
                   server_key=protocol.public_key_hex(server_private), now=NOW)
    options.update(overrides)
    return enrolment.enrol_person(database, key, **options)


def test_kinds_agree_with_the_protocol():
    assert enrolment.ENROLLED_KIND == protocol.PERSON_ENROLLED_KIND
    assert enrolment.DELETED_KIND == protocol.PERSON_DELETED_KIND
    assert events.OUTBOX_KIND == protocol.EVENT_KIND


def test_enrol_commits_person_sealed_templates_and_one_outbox_record(database, key, server_key):
    result = enrol(database, key, server_key, pin="١٣٥٧٩٠")
    assert (result.faces, result.fingers, result.slots) == (3, 2, (7, 8))
    person = people.get_person(database, "1042")
    assert (person["name"], person["role"], person["active"]) == ("Ann Lee", "employee", 1)
    assert verify_pin("135790", person["pin_hash"])
    stored = people.face_templates(database, key, "sface_int8")
    np.testing.assert_array_equal(np.stack([v for _, v in stored]), vectors(3))
    assert people.finger_templates(database, key, "R307") == [("1042", 7, b"\x11" * 512), ("1042", 8, b"\x22" * 512)]

    [record] = outbox.pending(database)
    assert (record.kind, record.record_id) == (enrolment.ENROLLED_KIND, result.record_id)
    data = record.payload
    assert (data["person_id"], data["face_count"], data["finger_count"], data["has_pin"]) == ("1042", 3, 2, True)
    # nothing biometric in clear in the outbox row
    raw_row = database.execute("SELECT payload FROM outbox").fetchone()[0]
    for secret in (base64.b64encode(vectors(3)[0].tobytes()).decode()[:40], base64.b64encode(b"\x11" * 512).decode()[:40],
                   person["pin_hash"]):
        assert secret not in raw_row
    opened = json.loads(sealbox.open_sealed(server_key, data["templates"], context=enrolment.sealed_context(
        enrolment.ENROLLED_KIND, result.record_id, "1042")))
    assert [f["slot"] for f in opened["fingers"]] == [7, 8] and opened["pin_hash"] == person["pin_hash"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(opened["faces"][1]["vector"]), "<f4"), vectors(3)[1])
    # the audit log says what happened without any of it
    assert "template" not in database.execute("SELECT detail FROM audit").fetchone()[0]


def test_a_failure_inside_the_transaction_leaves_nothing(database, key, server_key):
    # a real database failure at the last write (as a full disk would cause)
    database.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception, match="disk full"):
        enrol(database, key, server_key)
    assert people.get_person(database, "1042") is None
    assert database.execute("SELECT count(*) FROM face_templates").fetchone()[0] == 0
    assert database.execute("SELECT count(*) FROM finger_templates").fetchone()[0] == 0
    assert database.execute("SELECT count(*) FROM audit").fetchone()[0] == 0


def test_re_enrolment_replaces_templates_and_slots_are_not_stolen(database, key, server_key):
    enrol(database, key, server_key)
    enrol(database, key, server_key, face=[("sface_int8", vectors(1, seed=5)[0])], fingers=[("R307", 9, b"\x33" * 512)])
    assert len(people.face_templates(database, key, "sface_int8")) == 1
    assert people.finger_templates(database, key, "R307") == [("1042", 9, b"\x33" * 512)]
    assert len(outbox.pending(database)) == 2
    with pytest.raises(StorageError, match="slot 9 .* belongs to person 1042"):
        enrol(database, key, server_key, person_id="2000", fingers=[("R307", 9, b"\x44" * 512)])
    assert people.get_person(database, "2000") is None


def test_written_to_sensor_marks_the_slots_as_ours(database, key, server_key):
    enrol(database, key, server_key, written_to_sensor=True)
    assert set(sensor_slots.written_slots(database)) == {7, 8}
    assert enrolment.next_free_slot(database, "R307", occupied={0, 1}, capacity=10) == 2
    assert enrolment.next_free_slot(database, "R307", occupied=set(range(7)), capacity=10) == 9
    with pytest.raises(StorageError, match="no free slot"):
        enrolment.next_free_slot(database, "R307", occupied=set(range(7)) | {9}, capacity=10)


@pytest.mark.parametrize("overrides, message", [
    (dict(face=[("sface_int8", np.array([np.nan] * 128, dtype=np.float32))]), "NaN"),
    (dict(server_key=""), "server public key"),
    (dict(server_key="zz"), "cannot seal"),
    (dict(role="root"), "role"),
    (dict(face=[], fingers=[]), "needs a face, a finger, a voice print or a PIN"),
    (dict(person_id=""), "person id"),
    (dict(person_id="a\nb"), "person id"),
    (dict(name="x" * 201), "name"),
    (dict(fingers=[("R307", 1, b"")]), "finger template"),
    (dict(fingers=[("R307", -1, b"\x01")]), "slot"),
    (dict(fingers=[("R307", 1, b"\x01"), ("R307", 1, b"\x02")]), "same sensor slot"),
])
def test_bad_enrolments_are_refused_and_write_nothing(database, key, server_key, overrides, message):
    with pytest.raises(StorageError, match=message):
        enrol(database, key, server_key, **overrides)
    assert people.count_people(database) == 0 and outbox.stats(database)["pending"] == 0


def test_a_bad_pin_is_refused(database, key, server_key):
    with pytest.raises(ValueError, match="PIN"):
        enrol(database, key, server_key, pin="12")
    assert people.count_people(database) == 0


def test_delete_removes_templates_keeps_events_and_queues_the_deletion(database, key, server_key):
    enrol(database, key, server_key, pin="246810")
    clock = FakeClock(NOW)
    event = events.record_event(database, person_id="1042", status_code=0, verify_mode="face", clock=clock)
    pins.record_failure(database, "pin:1042", max_failures=5, cooldown_s=60, now=NOW)
    deleted = enrolment.delete_person(database, "1042", now=NOW + 5)
    assert (deleted.faces, deleted.fingers, deleted.slots) == (3, 2, (7, 8))
    assert people.get_person(database, "1042") is None
    assert people.face_templates(database, key, "sface_int8") == []
    assert people.finger_templates(database, key, "R307") == []
    assert pins.lockout_state(database, "pin:1042", now=NOW).failures == 0
    assert events.last_event_for(database, "1042").id == event.id and events.verify_chain(database) == 1
    kinds = [r.kind for r in outbox.pending(database)]
    assert kinds == ["event", enrolment.DELETED_KIND]  # the enrolment, still queued, never leaves
    assert outbox.pending(database)[-1].payload == {"person_id": "1042", "deleted_at": "2024-05-29T16:26:45.000Z"}
    with pytest.raises(UnknownPersonError):
        enrolment.delete_person(database, "1042", now=NOW)
    with pytest.raises(UnknownPersonError):
        events.record_event(database, person_id="1042", status_code=1, verify_mode="face", clock=clock)


# --- the sealed box ------------------------------------------------------------------------------

def test_sealbox_round_trip_and_every_tampering_fails(server_key):
    box = sealbox.seal_to(protocol.public_key_hex(server_key), b"templates", context="k:r:p")
    assert sealbox.open_sealed(server_key, box, context="k:r:p") == b"templates"
    assert sealbox.seal_to(server_key.public_key(), b"templates", context="k:r:p")["epk"] != box["epk"]
    with pytest.raises(ValueError, match="does not open"):
        sealbox.open_sealed(server_key, box, context="k:r:other-person")
    with pytest.raises(ValueError, match="does not open"):
        sealbox.open_sealed(X25519PrivateKey.generate(), box, context="k:r:p")
    flipped = bytearray(base64.b64decode(box["ct"]))
    flipped[0] ^= 1
    with pytest.raises(ValueError, match="does not open"):
        sealbox.open_sealed(server_key, dict(box, ct=base64.b64encode(flipped).decode()), context="k:r:p")
    for broken in (None, [], dict(box, v=2), dict(box, epk="00"), dict(box, nonce="!!"), dict(box, ct=5),
                   dict(box, epk="00" * 32), dict(box, ct="A" * (6 * 1024 * 1024))):
        with pytest.raises(ValueError):
            sealbox.open_sealed(server_key, broken, context="k:r:p")


# --- end to end through the server simulator on loopback ----------------------------------------

def test_enrolment_and_deletion_reach_the_server_simulator(server, tmp_path, key):
    device = make_device(tmp_path, server, data_key=key)
    server_public = protocol.public_key_hex(server.server_private_key)
    faces = vectors(2, seed=3)
    result = enrolment.enrol_person(device.database, key, person_id="7001", name="Omar", role="admin",
                                    face=[("sface_int8", v) for v in faces], fingers=[("R307", 3, b"\x5a" * 512)],
                                    pin="8642", server_key=server_public, now=device.clock.time())
    device.drain()
    [received] = server.enrolled_people()
    assert (received["record_id"], received["person_id"], received["name"], received["role"]) == \
        (result.record_id, "7001", "Omar", "admin")
    assert received["device_id"] == device.device_id
    np.testing.assert_allclose(np.array([f["vector"] for f in received["faces"]], dtype=np.float32), faces)
    assert base64.b64decode(received["fingers"][0]["template"]) == b"\x5a" * 512
    assert verify_pin("8642", received["pin_hash"])
    assert sync_state.pending_stats(device.database)["pending"] == 0

    enrolment.delete_person(device.database, "7001", now=device.clock.time())
    device.drain()
    assert [d["person_id"] for d in server.deleted_people()] == ["7001"]
    device.drain()  # nothing re-sent, nothing stored twice
    assert len(server.enrolled_people()) == 1 and len(server.deleted_people()) == 1


def test_an_enrolment_still_queued_when_the_person_is_deleted_never_reaches_the_server(server, tmp_path, key):
    device = make_device(tmp_path, server, data_key=key)
    server_public = protocol.public_key_hex(server.server_private_key)
    for person_id in ("7001", "7002"):  # enrolled while the server was out of reach
        enrolment.enrol_person(device.database, key, person_id=person_id, name="Omar", face=[("m", vectors(1)[0])],
                               fingers=[("R307", int(person_id[-1]), b"\x5a" * 512)], server_key=server_public,
                               now=device.clock.time())
    enrolment.delete_person(device.database, "7001", now=device.clock.time())  # the wrong person
    device.drain()
    assert [p["person_id"] for p in server.enrolled_people()] == ["7002"]  # 7001's templates stayed home
    assert [d["person_id"] for d in server.deleted_people()] == ["7001"]
    assert sync_state.pending_stats(device.database)["pending"] == 0

    # one the server refused is kept on the device for ever, with its sealed templates: not once deleted
    wrong = protocol.public_key_hex(X25519PrivateKey.generate())
    enrolment.enrol_person(device.database, key, person_id="7003", name="Z", face=[("m", vectors(1)[0])],
                           server_key=wrong, now=device.clock.time())
    device.drain()
    assert sync_state.pending_stats(device.database)["rejected"] == 1
    enrolment.delete_person(device.database, "7003", now=device.clock.time())
    device.drain()
    assert sync_state.pending_stats(device.database) == {"pending": 0, "oldest_pending": None, "rejected": 0,
                                                         "acknowledged_kept": 0}
    assert sync_state.rejected_records(device.database) == []


def test_server_rejects_enrolments_it_cannot_open_or_that_were_tampered_with(server, tmp_path, key):
    device = make_device(tmp_path, server, data_key=key)
    wrong = protocol.public_key_hex(X25519PrivateKey.generate())  # sealed to some other key
    enrolment.enrol_person(device.database, key, person_id="a1", name="A", face=[("m", vectors(1)[0])],
                           server_key=wrong, now=device.clock.time())
    right = protocol.public_key_hex(server.server_private_key)
    moved = enrolment.enrol_person(device.database, key, person_id="a2", name="B", face=[("m", vectors(1)[0])],
                                   server_key=right, now=device.clock.time())
    # someone with database access re-labels the record: its sealed templates now claim another person
    row = outbox.pending(device.database)[-1]
    database_payload = dict(row.payload, person_id="a3")
    device.database.execute("UPDATE outbox SET payload = ? WHERE record_id = ?",
                            [json.dumps(database_payload), moved.record_id])
    lying = enrolment.enrol_person(device.database, key, person_id="a4", name="C", face=[("m", vectors(1)[0])],
                                   server_key=right, now=device.clock.time())
    row = outbox.pending(device.database)[-1]
    device.database.execute("UPDATE outbox SET payload = ? WHERE record_id = ?",
                            [json.dumps(dict(row.payload, face_count=5)), lying.record_id])
    device.drain()
    assert server.enrolled_people() == []
    reasons = {r["record_id"]: r["reason"] for r in server.store.refused()}
    assert len(reasons) == 3 and all("do not open" in r or "do not match" in r for r in reasons.values())
    assert sync_state.pending_stats(device.database)["rejected"] == 3  # kept on the device, not re-sent
