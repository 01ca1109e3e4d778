"""Injected faults reach the driver as their own error types, and the driver recovers."""

import time

import pytest

from kiosk import config
from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.errors import (
    CommunicationError,
    DeviceAbsentError,
    DeviceBusyError,
    NoMatchError,
    WrongPasswordError,
)
from kiosk_sim.r30x import SensorSimulator

FINGER = "FVC2002_DB1_B/104"


@pytest.fixture
def sim(datasets):
    with SensorSimulator(capacity=50, speed=0, fingers_dir=datasets / "fingers") as simulator:
        yield simulator


@pytest.fixture
def sensor(sim):
    # production settings, except shorter timeouts so the truncation cases (which wait out the
    # timeout on each attempt) stay quick
    settings = config.build([]).fingerprint
    with FingerprintSensor.from_settings(settings, port=sim.port, timeout_s=1.0, command_timeout_s=0.4) as driver:
        yield driver


def enroll(sim, sensor, slot):
    def on_step(step, number):
        if step == "place_finger":
            sim.place_finger(FINGER, number)
        elif step == "lift_finger":
            sim.lift_finger()
    sensor.enroll(slot=slot, on_step=on_step)


@pytest.mark.parametrize("fault, error_type", [
    ("bad_checksum", CommunicationError),
    ("truncated", CommunicationError),
    ("garbage", CommunicationError),
    ("busy", DeviceBusyError),
    ("wrong_password", WrongPasswordError),
    ("silence", DeviceAbsentError),
])
def test_each_fault_has_its_error_and_the_driver_recovers(sim, sensor, fault, error_type):
    enroll(sim, sensor, slot=3)
    sim.set_fault(fault)
    with pytest.raises(error_type) as caught:
        sensor.count()
    assert type(caught.value) is error_type  # the specific type, not a sibling or a subclass
    with pytest.raises(error_type):
        sim.place_finger(FINGER, 5)
        sensor.identify(timeout_s=2)
    sim.clear_fault()
    assert sensor.count() == 1
    sim.place_finger(FINGER, 6)
    assert sensor.identify(timeout_s=2)[0] == 3


@pytest.mark.parametrize("fault", ["bad_checksum", "truncated", "garbage"])
def test_a_single_corrupt_reply_is_retried_transparently(sim, sensor, fault):
    enroll(sim, sensor, slot=0)
    sim.place_finger(FINGER, 7)
    sensor.capture(timeout_s=2)
    before = sim.packets_received
    sim.set_fault(fault, count=1)
    assert sensor.search()[0] == 0
    assert sim.faults.snapshot() == {}  # the fault was used up ...
    assert sim.packets_received - before == 3  # ... by the first of 2 searches (each after ReadSysPara)


def test_busy_is_reported_by_the_probe_too(sim, sensor):
    sim.set_fault("busy")
    with pytest.raises(DeviceBusyError):
        sensor.probe()
    sim.clear_fault("busy")
    assert sensor.probe().busy is False


def test_unplugged_sensor_is_reported_within_one_second_and_picked_up_again(sim):
    # default timeouts, exactly as configured in production
    settings = config.build([]).fingerprint
    with FingerprintSensor.from_settings(settings, port=sim.port) as sensor:
        assert sensor.probe().handshake
        sim.set_fault("silence")
        start = time.monotonic()
        with pytest.raises(DeviceAbsentError):
            sensor.capture(timeout_s=10)  # polling for a finger (quick-command timeout)
        capture_s = time.monotonic() - start
        start = time.monotonic()
        with pytest.raises(DeviceAbsentError):
            sensor.probe()  # the health probe (`kiosk doctor`, the app's watchdog)
        probe_s = time.monotonic() - start
        assert sensor.is_present() is False
        assert probe_s < 1.0, f"probe took {probe_s:.2f} s"
        assert capture_s < 1.0, f"capture took {capture_s:.2f} s"
        sim.clear_fault()  # plugged in again: the module powers up
        assert sensor.is_present() is True
        sim.place_finger(FINGER, 1)
        sensor.capture(timeout_s=2)
        with pytest.raises(NoMatchError):
            sensor.search()


def test_a_vanished_port_is_reopened_when_it_comes_back(datasets, tmp_path):
    link = tmp_path / "sensor"
    library = tmp_path / "lib.json"
    first = SensorSimulator(capacity=20, speed=0, link=link, library_path=library,
                            fingers_dir=datasets / "fingers").start()
    with FingerprintSensor(port=link) as sensor:
        enroll(first, sensor, slot=1)
        first.close()  # the USB adapter is pulled out: the port disappears
        assert not link.exists()
        with pytest.raises(DeviceAbsentError):
            sensor.count()
        with pytest.raises(DeviceAbsentError):
            sensor.probe()
        with SensorSimulator(capacity=20, speed=0, link=link, library_path=library,
                             fingers_dir=datasets / "fingers") as second:
            assert sensor.count() == 1  # reopened through the link, handshake repeated
            second.place_finger(FINGER, 8)
            assert sensor.identify(timeout_s=2)[0] == 1


def test_power_cycle_of_a_password_protected_module_is_handled(datasets):
    with SensorSimulator(capacity=20, speed=0, password=0xC0FFEE, fingers_dir=datasets / "fingers") as sim:
        with FingerprintSensor(port=sim.port, password=0xC0FFEE) as sensor:
            assert sensor.count() == 0
            sim.logic.power_on()  # a brown-out: the module forgets the verified password
            assert sensor.count() == 0  # handshake repeated on "password must be verified"
        with pytest.raises(WrongPasswordError):
            FingerprintSensor(port=sim.port, password=1).open()


@pytest.mark.timeout(60)
def test_a_sensor_streaming_without_end_is_cut_off_at_the_call_deadline(sim, datasets):
    # a module that keeps sending well-formed data packets never lets a read time out: before the
    # per-call deadline, the driver (and the worker thread with it) stayed in the call for as long
    # as the module streamed
    with FingerprintSensor(port=sim.port, deadline_s=1.0, transfer_deadline_s=2.0) as sensor:
        enroll(sim, sensor, slot=2)
        sim.set_fault("stream")
        start = time.monotonic()
        with pytest.raises(CommunicationError, match="deadline"):
            sensor.count()  # a quick command
        quick_s = time.monotonic() - start
        start = time.monotonic()
        with pytest.raises(CommunicationError, match="deadline"):
            sensor.search()  # a slow call (the transfer deadline)
        slow_s = time.monotonic() - start
        assert quick_s < 1.0 + 1.5, f"quick command held the driver {quick_s:.1f} s"
        assert slow_s < 2.0 + 1.5, f"slow call held the driver {slow_s:.1f} s"
        sim.clear_fault()
        assert sensor.count() == 1  # the sensor is usable again
        sim.place_finger(FINGER, 4)
        assert sensor.identify(timeout_s=2)[0] == 2
