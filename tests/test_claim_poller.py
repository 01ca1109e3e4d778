"""Claim and verify on the sensor's thread: the poller's verify mode against the simulator, through the real driver."""

import queue
import threading
import time

import pytest

from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.drivers.fingerprint_worker import SensorWorker
from kiosk.host import SensorPoller
from kiosk_sim.r30x import start_simulator
from sensor_enrol import sensor_template

CLAIMED = "FVC2002_DB1_B/104"
OTHER = "FVC2002_DB1_B/108"


@pytest.fixture
def rig(datasets):
    sim = start_simulator(speed=0, capacity=10, fingers_dir=datasets / "fingers")
    sensor = FingerprintSensor(port=sim.port, timeout_s=2.0)
    sensor.open()
    worker = SensorWorker(sensor)
    posted = queue.Queue()
    poller = SensorPoller(worker, lambda event, **data: posted.put((event, data)), capture_timeout_s=0.5, retry_s=0.1)
    yield sim, sensor, poller, posted
    poller.close()
    worker.close()
    sim.close()


def wait_until_lift_seen(sim):
    """Wait for an observable state (the poller's capture found the glass empty), not for a duration."""
    done = threading.Event()
    deadline = time.monotonic() + 30
    while sim.logic.image is not None or sim.finger is not None:
        assert time.monotonic() < deadline, "the poller never looked at the empty glass"
        done.wait(0.005)
    sim.logic.image = "stale"  # marks the next empty-glass capture
    while sim.logic.image is not None:
        assert time.monotonic() < deadline, "the poller never looked at the empty glass"
        done.wait(0.005)


def next_post(posted):
    event, data = posted.get(timeout=30)
    while event == "finger_step":
        event, data = posted.get(timeout=30)
    return event, data


def test_verify_mode_matches_the_claimed_templates_only(rig):
    sim, sensor, poller, posted = rig
    templates = [sensor_template(sim, sensor, CLAIMED)]
    assert sensor.count() == 0  # verified 1:1 from the templates sent down, nothing stored
    poller.start()
    poller.set_mode("verify", templates=templates)
    sim.place_finger(OTHER, 6)
    event, data = next_post(posted)
    assert event == "finger_not_matched"
    sim.lift_finger()
    wait_until_lift_seen(sim)
    sim.place_finger(CLAIMED, 6)
    event, data = next_post(posted)
    assert event == "finger_verified" and data["score"] > 0
    sim.lift_finger()
    poller.set_mode(None)
