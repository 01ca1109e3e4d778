"""Reconciling the simulated sensor's library with the database, through the real driver.

The safety rule under test: only slots the database wrote are ever emptied, so a new, empty or
lost database never wipes a sensor full of templates.
"""

import logging

import pytest

from kiosk.clock import FakeClock
from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.flows.sensor_library import clear_unknown_slots, reconcile, unknown_slots
from kiosk.storage import db, migrations, people, sensor_slots
from kiosk.storage.seal import DataKey
from kiosk_sim.r30x import start_simulator
from sensor_enrol import sensor_template

CLOCK = FakeClock()


@pytest.fixture
def rig(tmp_path):
    sim = start_simulator(speed=0, capacity=20)
    sensor = FingerprintSensor(port=sim.port, timeout_s=1.0)
    sensor.open()
    database = db.open_db(":memory:")
    key = DataKey.create(tmp_path / "data.key")
    yield sim, sensor, database, key
    sensor.close()
    sim.close()


def run(sensor, database, key):
    return reconcile(sensor, database, key, sensor_model="R307", clock=CLOCK)


def test_reconcile_writes_deletes_and_then_finds(rig):
    sim, sensor, database, key = rig
    template = sensor_template(sim, sensor, "FVC2002_DB1_B/107")
    people.upsert_people(database, [{"person_id": "a"}, {"person_id": "b"}])
    people.add_finger_template(database, key, "a", "R307", 7, template)

    report = run(sensor, database, key)
    assert report.written == (7,) and report.deleted == () and report.unknown == ()
    assert sensor.slots() == [7]
    assert set(sensor_slots.written_slots(database)) == {7}
    sim.place_finger("FVC2002_DB1_B/107", 6)
    assert sensor.identify(timeout_s=2)[0] == 7
    sim.lift_finger()

    again = run(sensor, database, key)
    assert again.written == () and again.deleted == () and again.unchanged == 1

    people.delete_person(database, "a")
    assert run(sensor, database, key).deleted == (7,)  # ours: emptied
    assert sensor.slots() == [] and sensor_slots.written_slots(database) == {}


def test_a_fresh_empty_database_does_not_wipe_a_full_sensor(rig, caplog):
    sim, sensor, database, key = rig
    templates = [sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (7, 4, 8)]
    for slot in range(20):  # a full library written by someone else (or by a database since lost)
        sensor.upload_template(slot, templates[slot % 3])
    assert len(sensor.slots()) == 20

    with caplog.at_level(logging.WARNING, logger="kiosk.flows.sensor_library"):
        report = run(sensor, database, key)
    assert report.deleted == () and report.written == ()
    assert report.unknown == tuple(range(20))
    assert sensor.slots() == list(range(20))
    assert any("did not write" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert run(sensor, database, key).deleted == ()  # and not on the next pass either
    assert unknown_slots(sensor, database) == list(range(20))


def test_unknown_slots_stay_until_an_admin_clears_them(rig):
    sim, sensor, database, key = rig
    ours, theirs = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (7, 4))
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 2, ours)
    sensor.upload_template(9, theirs)

    report = run(sensor, database, key)
    assert report.written == (2,) and report.unknown == (9,)
    assert sensor.slots() == [2, 9]

    assert clear_unknown_slots(sensor, database) == (9,)
    assert sensor.slots() == [2]  # ours untouched
    assert clear_unknown_slots(sensor, database) == ()
    assert run(sensor, database, key).unknown == ()


def test_clearing_a_full_sensor_empties_each_run_of_slots_with_one_command(rig):
    sim, sensor, database, key = rig
    ours, theirs = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (7, 4))
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 10, ours)
    assert run(sensor, database, key).written == (10,)
    for slot in set(range(20)) - {10}:   # the rest full of a lost database's templates: what the action is for
        sensor.upload_template(slot, theirs)
    before = sim.packets_received
    sensor.slots()
    listing = sim.packets_received - before
    before = sim.packets_received
    assert clear_unknown_slots(sensor, database) == tuple(s for s in range(20) if s != 10)
    # a slot at a time, a full R307 (1,000 slots, ~50 ms each) held the flows' thread past the
    # watchdog; the runs 0-9 and 11-19 are two delete commands (and one look at the capacity each)
    assert sim.packets_received - before - listing <= 2 * 2
    assert sensor.slots() == [10]


def test_a_wanted_slot_holding_a_foreign_template_is_not_overwritten(rig):
    sim, sensor, database, key = rig
    ours, theirs = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (7, 4))
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 4, ours)
    sensor.upload_template(4, theirs)

    report = run(sensor, database, key)
    assert report.blocked == (4,) and report.written == ()
    assert sensor.download_template(4) == theirs

    clear_unknown_slots(sensor, database)
    assert run(sensor, database, key).written == (4,)
    assert sensor.download_template(4) == ours


def test_a_lost_database_restored_from_the_server_adopts_identical_slots(rig):
    sim, sensor, database, key = rig
    template = sensor_template(sim, sensor, "FVC2002_DB1_B/108")
    sensor.upload_template(5, template)  # written by the database that was lost
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 5, template)  # the same, from the server

    report = run(sensor, database, key)
    assert report.adopted == (5,) and report.written == () and report.unknown == ()
    people.delete_person(database, "a")
    assert run(sensor, database, key).deleted == (5,)  # adopted means ours from now on


def test_reconcile_rewrites_a_slot_emptied_behind_our_back(rig):
    sim, sensor, database, key = rig
    template = sensor_template(sim, sensor, "FVC2002_DB1_B/104")
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 2, template)
    run(sensor, database, key)
    sensor.clear()  # someone emptied the module (or it was swapped)
    assert run(sensor, database, key).written == (2,)
    assert sensor.slots() == [2]


def test_a_deactivated_persons_fingers_leave_the_sensor_and_return_when_reactivated(rig):
    sim, sensor, database, key = rig
    template = sensor_template(sim, sensor, "FVC2002_DB1_B/104")
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 2, template)
    assert run(sensor, database, key).written == (2,)

    people.upsert_person(database, {"person_id": "a", "active": 0})  # deactivated centrally
    assert run(sensor, database, key).deleted == (2,)
    assert sensor.slots() == []
    people.upsert_person(database, {"person_id": "a", "active": 1})
    assert run(sensor, database, key).written == (2,)


def test_migration_carries_over_the_digests_kept_in_meta(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(db, "MIGRATIONS", [m for m in migrations.MIGRATIONS if m[0] < 4])
    old = db.open_db(path)
    db.set_meta(old, "sensor.library", {"3": "ab" * 16, "11": "cd" * 16})
    old.conn.close()
    monkeypatch.setattr(db, "MIGRATIONS", migrations.MIGRATIONS)
    new = db.open_db(path)
    written = sensor_slots.written_slots(new)
    assert {s: w.digest for s, w in written.items()} == {3: "ab" * 16, 11: "cd" * 16}
    assert db.get_meta(new, "sensor.library") is None


def test_doctor_warns_about_templates_the_database_did_not_write(rig, tmp_path):
    from kiosk import doctor

    sim, sensor, database, key = rig
    template = sensor_template(sim, sensor, "FVC2002_DB1_B/107")
    sensor.upload_template(1, template)
    sensor.upload_template(6, template)
    path = tmp_path / "kiosk.db"
    on_disk = db.open_db(path)
    sensor_slots.record_written(on_disk, 1, sensor_model="R307", person_id="a", digest="x", now=0.0)

    def reopen():
        again = FingerprintSensor(port=sim.port, timeout_s=1.0)
        again.open()
        return again

    sensor.close()  # the doctor opens its own connection
    result = doctor.check_fingerprint(reopen, port=sim.port,
                                      written_slots=lambda: sensor_slots.written_slot_numbers_at(path))
    assert result.status == doctor.WARN and "1 not written" in result.detail and "slots 6" in result.detail
    assert result.figures["unknown_templates"] == 1 and "clear" in result.remedy
    # no database yet: every template on the sensor is unknown, and the file is not created
    fresh = tmp_path / "none" / "kiosk.db"
    result = doctor.check_fingerprint(reopen, written_slots=lambda: sensor_slots.written_slot_numbers_at(fresh))
    assert result.figures["unknown_templates"] == 2 and not fresh.exists()
    sensor_slots.record_written(on_disk, 6, sensor_model="R307", person_id="b", digest="y", now=0.0)
    assert doctor.check_fingerprint(reopen, written_slots=lambda: sensor_slots.written_slot_numbers_at(path)
                                    ).status == doctor.PASS
    sensor.open()


def _ports(database, key, **parts):
    from kiosk import config
    from kiosk.device_ports import DevicePorts, HeadlessScreen

    settings = config.build([("test", {"fingerprint": {"sensor_model": "R307"},
                                       "storage": {"data_dir": str(parts.pop("data_dir", "/tmp"))}})])
    return DevicePorts(settings=settings, database=database, data_key=key, clock=CLOCK, screen=HeadlessScreen(),
                       **parts)


def test_a_blocked_slot_does_not_name_the_person_the_database_wants_there(rig):
    # a lost database: the sensor still holds someone's finger at slot 4; the new database gives
    # slot 4 to "a" (from the server, or an enrolment at the kiosk); reconcile leaves it alone
    sim, sensor, database, key = rig
    old, new = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (4, 7))
    sensor.upload_template(4, old)
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 4, new)
    assert run(sensor, database, key).blocked == (4,)

    sim.place_finger("FVC2002_DB1_B/104", 6)  # the finger the lost database knew
    slot, _score = sensor.identify(timeout_s=2)
    sim.lift_finger()
    assert slot == 4
    assert _ports(database, key).person_for_finger(slot) is None  # not "a": it is not a's finger


def test_a_deleted_persons_slot_left_on_the_sensor_does_not_name_the_re_enrolled_id(rig):
    from kiosk.storage import enrolment

    sim, sensor, database, key = rig
    first, second = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (4, 7))
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 3, first)
    assert run(sensor, database, key).written == (3,)
    ports = _ports(database, key)
    assert ports.person_for_finger(3).person_id == "a"

    # deleted while the sensor was unplugged (its slot stays until a reconcile reaches the sensor),
    # and the id enrolled again with another finger (the wrong person had been enrolled under it)
    enrolment.delete_person(database, "a", now=0.0)
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 8, second)

    sim.place_finger("FVC2002_DB1_B/104", 6)
    slot, _score = sensor.identify(timeout_s=2)
    sim.lift_finger()
    assert slot == 3
    assert ports.person_for_finger(slot) is None  # the deleted finger does not clock in as the new "a"
    assert run(sensor, database, key).deleted == (3,)


def test_an_enrolment_at_the_kiosk_takes_a_slot_the_sensor_has_free(rig, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.drivers.fingerprint_worker import SensorWorker
    from kiosk.host import SensorPoller
    from kiosk.sync import protocol

    sim, sensor, database, key = rig
    old, new = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (4, 7))
    sensor.upload_template(0, old)  # a lost database's templates, left alone on the sensor
    sensor.upload_template(1, old)
    with SensorWorker(sensor, close_sensor=False) as worker:
        ports = _ports(database, key, data_dir=tmp_path, poller=SensorPoller(worker, lambda *a, **k: None),
                       server_key=protocol.public_key_hex(X25519PrivateKey.generate()))
        result = ports.enrol(person_id="new", name="New", role="employee", faces=[], fingers=[new])
    assert result.slots == (2,)
    report = run(sensor, database, key)
    assert report.written == (2,) and report.blocked == ()  # written, so the new employee's finger works


def test_a_deleted_persons_finger_left_on_the_sensor_is_no_duplicate_when_enrolled_again(rig):
    from kiosk.drivers.fingerprint_worker import SensorWorker
    from kiosk.host import SensorPoller
    from kiosk.storage import enrolment

    sim, sensor, database, key = rig
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 3, sensor_template(sim, sensor, "FVC2002_DB1_B/104"))
    assert run(sensor, database, key).written == (3,)
    enrolment.delete_person(database, "a", now=0.0)  # the reconcile that empties slot 3 did not reach the sensor
    sensor.upload_template(9, sensor_template(sim, sensor, "FVC2002_DB1_B/107"))  # not ours: somebody's
    again, other = (sensor_template(sim, sensor, f"FVC2002_DB1_B/10{n}") for n in (4, 7))
    with SensorWorker(sensor, close_sensor=False) as worker:
        ports = _ports(database, key, poller=SensorPoller(worker, lambda *a, **k: None))
        assert ports.finger_duplicate(again) is None  # the admin may enrol that finger again
        assert ports.finger_duplicate(other) == "slot 9"
