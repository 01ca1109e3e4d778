"""Our fingerprint driver over the unmodified pyfingerprint library, against the simulator on a pty."""

import threading

import numpy as np
import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.drivers.fingerprint import Enrollment, FingerprintSensor
from kiosk.drivers.fingerprint_worker import SensorWorker
from kiosk.errors import (
    CancelledError,
    FingerMismatchError,
    FingerMovedError,
    NoFingerError,
    NoMatchError,
    PoorImageError,
)
from kiosk_sim.r30x import SensorSimulator
from kiosk_sim.r30x_fingers import FingerCatalog

FINGERS = ("FVC2002_DB1_B/104", "FVC2002_DB1_B/107", "FVC2000_DB2_B/107")
UNKNOWN = "FVC2002_DB1_B/108"


@pytest.fixture
def sim(datasets, tmp_path):
    with SensorSimulator(capacity=100, library_path=tmp_path / "lib.json", speed=0,
                         fingers_dir=datasets / "fingers") as simulator:
        yield simulator


@pytest.fixture
def sensor(sim):
    settings = config.build([]).fingerprint
    with FingerprintSensor.from_settings(settings, port=sim.port) as driver:
        yield driver


def wait_until(predicate, timeout_s=5.0):
    """Wait for a condition another thread makes true (not a fixed sleep)."""
    pause = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return True
        pause.wait(0.01)
    return predicate()


def placing(sim, identity, impressions=(1, 2, 3)):
    """An on_step callback that plays a person lifting and placing one finger."""
    def on_step(step, number):
        if step == "place_finger":
            sim.place_finger(identity, impressions[number - 1])
        elif step == "lift_finger":
            sim.lift_finger()
    return on_step


def test_enroll_three_fingers_find_each_reject_unknown(sim, sensor):
    assert sensor.probe().security_level == 4  # applied from settings on the handshake
    for slot, identity in enumerate(FINGERS):
        enrollment = sensor.enroll(slot=slot, on_step=placing(sim, identity))
        assert isinstance(enrollment, Enrollment) and enrollment.slot == slot
        assert len(enrollment.template) == 512
    assert sensor.count() == 3 and sensor.slots() == [0, 1, 2]
    for slot, identity in enumerate(FINGERS):
        sim.place_finger(identity, 6)  # an impression not used for enrolment
        found, score = sensor.identify(timeout_s=2)
        assert found == slot and score > 0
    sim.place_finger(UNKNOWN, 1)
    with pytest.raises(NoMatchError) as caught:
        sensor.identify(timeout_s=2)
    assert caught.value.guidance == "not_recognised"


def test_claim_and_verify_matches_1_to_1_without_storing(sim, sensor):
    """DownChar of a claimed template into buffer 2, capture into buffer 1, Match: nothing stored."""
    own = sensor.enroll(on_step=placing(sim, FINGERS[0])).template
    other = sensor.enroll(on_step=placing(sim, FINGERS[1])).template
    assert sensor.count() == 0
    sim.place_finger(FINGERS[0], 6)
    assert sensor.verify(own, timeout_s=2) > 0
    assert sensor.verify_any([other, own], timeout_s=2) > 0  # any of a person's fingers
    with pytest.raises(NoMatchError):
        sensor.verify(other, timeout_s=2)
    sim.place_finger(UNKNOWN, 1)
    with pytest.raises(NoMatchError):
        sensor.verify_any([own, other], timeout_s=2)
    with pytest.raises(ValueError):
        sensor.verify_any([], timeout_s=2)
    assert sensor.count() == 0


def test_download_image_is_the_finger_on_the_glass(sim, sensor, datasets):
    sim.place_finger(FINGERS[0], 2)
    sensor.capture(timeout_s=2)
    image = sensor.download_image()
    assert image.shape == (288, 256) and image.dtype == np.uint8
    assert np.array_equal(image, FingerCatalog(datasets / "fingers").image(FINGERS[0], 2))


def test_template_round_trip_between_slots_and_sensors(sim, sensor, datasets):
    template = sensor.enroll(slot=4, on_step=placing(sim, FINGERS[1])).template
    assert sensor.download_template(4) == template
    sensor.upload_template(9, template)
    assert sensor.download_template(9) == template
    sensor.delete(4)
    sim.place_finger(FINGERS[1], 8)
    assert sensor.identify(timeout_s=2)[0] == 9
    # the database copy restores a replaced (empty) sensor: templates are portable
    with SensorSimulator(capacity=100, speed=0, fingers_dir=datasets / "fingers") as spare:
        with FingerprintSensor(port=spare.port) as fresh:
            fresh.upload_template(0, template)
            spare.place_finger(FINGERS[1], 5)
            assert fresh.identify(timeout_s=2)[0] == 0


def test_delete_empties_a_run_of_slots_within_the_library(sim, sensor, datasets):
    template = sensor.enroll(slot=4, on_step=placing(sim, FINGERS[1])).template
    for slot in (5, 6, 7, 99):
        sensor.upload_template(slot, template)
    sensor.delete(5, count=2)
    assert sensor.slots() == [4, 7, 99]
    for slot, count in ((98, 3), (5, 0), (-1, 1)):    # past the end, nothing, before the start
        with pytest.raises(ValueError):
            sensor.delete(slot, count=count)
    assert sensor.slots() == [4, 7, 99]


def test_library_survives_a_simulator_restart(sim, sensor, datasets):
    sensor.enroll(slot=2, on_step=placing(sim, FINGERS[0]))
    path = sim.library.path
    sensor.close()
    sim.close()
    with SensorSimulator(capacity=100, library_path=path, speed=0, fingers_dir=datasets / "fingers") as again:
        with FingerprintSensor(port=again.port) as driver:
            again.place_finger(FINGERS[0], 7)
            assert driver.identify(timeout_s=2)[0] == 2


def test_enrolling_a_different_finger_is_a_mismatch(sim, sensor):
    def swap(step, number):
        if step == "place_finger":
            sim.place_finger(FINGERS[0] if number == 1 else FINGERS[1], number)
        elif step == "lift_finger":
            sim.lift_finger()

    with pytest.raises(FingerMismatchError) as caught:
        sensor.enroll(on_step=swap)
    assert caught.value.guidance == "same_finger_again"

    def third_differs(step, number):
        if step == "place_finger":
            sim.place_finger(FINGERS[1] if number == 3 else FINGERS[0], number)
        elif step == "lift_finger":
            sim.lift_finger()

    with pytest.raises(FingerMismatchError):
        sensor.enroll(captures=3, on_step=third_differs)
    assert sensor.count() == 0


@pytest.mark.parametrize("condition, guidance", [("wet", "clean_and_dry"), ("oily", "clean_and_dry"),
                                                 ("dirty", "clean_and_dry")])
def test_poor_fingers_get_clean_and_dry_guidance(sim, sensor, condition, guidance):
    sim.place_finger(FINGERS[0], 1, condition=condition)
    with pytest.raises(PoorImageError) as caught:
        sensor.capture(timeout_s=2)
    assert caught.value.guidance == guidance
    assert any(word in str(caught.value) for word in ("wet", "dirty"))
    sim.set_condition("clean")
    sensor.capture(timeout_s=2)


def test_moving_finger_and_no_finger(sim, datasets):
    clock = FakeClock()
    with FingerprintSensor(port=sim.port, clock=clock) as sensor:
        sim.place_finger(FINGERS[0], 1, condition="moved")
        with pytest.raises(FingerMovedError) as caught:
            sensor.capture(timeout_s=2)
        assert caught.value.guidance == "hold_still"
        sim.lift_finger()
        start = clock.monotonic()
        with pytest.raises(NoFingerError) as caught:
            sensor.capture(timeout_s=3.0)
        assert caught.value.guidance == "place_finger"
        assert clock.monotonic() - start == pytest.approx(3.0, abs=sensor.poll_interval_s + 1e-6)


def test_worker_runs_calls_and_cancels_a_waiting_capture(sim, sensor):
    with SensorWorker(sensor, close_sensor=False) as worker:
        assert worker.probe().result(timeout=5).capacity == 100
        waiting = worker.capture(timeout_s=60)
        queued = worker.submit("count")
        polled = sim.packets_received
        assert wait_until(lambda: sim.packets_received > polled + 2)  # the capture is polling
        worker.cancel(waiting)
        with pytest.raises(CancelledError):
            waiting.result(timeout=5)
        assert queued.result(timeout=5) == 0  # the worker carries on after a cancellation
        sim.place_finger(FINGERS[2], 1)
        enrolled = worker.enroll(slot=0, on_step=placing(sim, FINGERS[2])).result(timeout=10)
        assert enrolled.slot == 0
        assert worker.identify(timeout_s=2).result(timeout=5)[0] == 0
    with pytest.raises(RuntimeError):
        worker.probe()  # closed


def test_led_ring_on_r503_only(datasets):
    with SensorSimulator(model="R503", speed=0, fingers_dir=datasets / "fingers") as sim:
        with FingerprintSensor(port=sim.port, model="R503") as sensor:
            assert sensor.led("flashing", "red", speed=50, count=3) is True
            assert sim.led == {"ctrl": 2, "speed": 50, "color": 1, "count": 3}
            assert sensor.led("off") is True and sim.led["ctrl"] == 4
        with FingerprintSensor(port=sim.port, model="R307") as sensor:
            assert sensor.led("on", "blue") is False  # no ring: nothing sent
            assert sim.led["ctrl"] == 4


def test_probe_reads_as_a_mapping_for_doctor(sensor):
    info = dict(sensor.probe())
    assert info["handshake"] is True and info["capacity"] == 100 and info["template_count"] == 0
    assert info["model"] == "R307"
    assert sensor.random_number() != sensor.random_number()
