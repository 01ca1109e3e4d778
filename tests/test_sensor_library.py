"""Reconciling the simulated sensor's library with the database, through the real driver."""

import pytest

from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.flows.sensor_library import reconcile
from kiosk.storage import db, people
from kiosk.storage.seal import DataKey
from kiosk_sim.r30x import start_simulator


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


def enrol_template(sim, sensor, identity):
    def place(step, number):
        if step == "place_finger":
            sim.place_finger(identity, number)
        elif step == "lift_finger":
            sim.lift_finger()
    template = sensor.enroll(on_step=place).template
    sim.lift_finger()
    return template


def test_reconcile_writes_deletes_and_then_finds(rig):
    sim, sensor, database, key = rig
    template = enrol_template(sim, sensor, "FVC2002_DB1_B/103")
    people.upsert_people(database, [{"person_id": "a"}, {"person_id": "b"}])
    people.add_finger_template(database, key, "a", "R307", 7, template)
    sensor.upload_template(3, template)  # a stale slot the database does not know

    report = reconcile(sensor, database, key, sensor_model="R307")
    assert report.written == (7,) and report.deleted == (3,)
    assert sensor.slots() == [7]
    sim.place_finger("FVC2002_DB1_B/103", 6)
    assert sensor.identify(timeout_s=2)[0] == 7
    sim.lift_finger()

    again = reconcile(sensor, database, key, sensor_model="R307")
    assert again.written == () and again.deleted == () and again.unchanged == 1

    people.delete_person(database, "a")
    assert reconcile(sensor, database, key, sensor_model="R307").deleted == (7,)
    assert sensor.slots() == []


def test_reconcile_rewrites_a_slot_emptied_behind_our_back(rig):
    sim, sensor, database, key = rig
    template = enrol_template(sim, sensor, "FVC2002_DB1_B/104")
    people.upsert_person(database, {"person_id": "a"})
    people.add_finger_template(database, key, "a", "R307", 2, template)
    reconcile(sensor, database, key, sensor_model="R307")
    sensor.clear()  # someone emptied the module (or it was swapped)
    assert reconcile(sensor, database, key, sensor_model="R307").written == (2,)
    assert sensor.slots() == [2]
