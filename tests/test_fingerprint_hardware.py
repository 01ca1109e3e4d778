"""The driver paths of test_fingerprint_driver.py on a real R30x/ZFM module.

Run on a Pi with the sensor wired to the UART:

    KIOSK_HARDWARE_TESTS=1 KIOSK_FINGERPRINT__PORT=/dev/serial0 \\
        .venv/bin/python -m pytest tests/test_fingerprint_hardware.py -m hardware -s

Other [fingerprint] settings come from the environment too (KIOSK_FINGERPRINT__BAUD,
__PASSWORD, __SENSOR_MODEL ...). Tests that need a person to place a finger also need
KIOSK_HARDWARE_INTERACTIVE=1 and prompt on the terminal (hence -s). Only the last slot of the
library is written, and only when it is empty; it is emptied again afterwards.
"""

import os

import numpy as np
import pytest

from kiosk import config
from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.errors import DeviceAbsentError, NoMatchError

pytestmark = pytest.mark.hardware

interactive = pytest.mark.skipif(os.environ.get("KIOSK_HARDWARE_INTERACTIVE") != "1",
                                 reason="needs a person at the sensor: set KIOSK_HARDWARE_INTERACTIVE=1")


@pytest.fixture(scope="module")
def sensor():
    if not os.environ.get("KIOSK_FINGERPRINT__PORT"):
        pytest.skip("set KIOSK_FINGERPRINT__PORT to the sensor's serial port")
    settings = config.load(environ=os.environ).fingerprint
    with FingerprintSensor.from_settings(settings) as driver:
        yield driver


@pytest.fixture(scope="module")
def spare_slot(sensor):
    slot = sensor.capacity - 1
    if slot in sensor.slots():
        pytest.skip(f"slot {slot} holds a template; the tests only use an empty last slot")
    yield slot
    sensor.delete(slot)


def prompt(step, number):
    text = {"place_finger": "Place the finger on the sensor", "lift_finger": "Lift the finger",
            "captured": "Captured"}[step]
    print(f"\n>>> {text} ({number})", flush=True)


def test_probe_reports_library_state(sensor):
    info = sensor.probe()
    assert info.handshake and info.capacity > 0
    assert 0 <= info.template_count <= info.capacity
    assert info.template_count == len(sensor.slots())
    assert sensor.is_present()


def test_random_numbers_come_from_the_module(sensor):
    assert len({sensor.random_number() for _ in range(4)}) > 1


def test_led_ring_where_fitted(sensor):
    fitted = sensor.model == "R503"
    assert sensor.led("breathing", "blue") is fitted
    if fitted:
        assert sensor.led("off") is True


def test_wrong_port_is_absent(tmp_path):
    with pytest.raises(DeviceAbsentError):
        FingerprintSensor(port=tmp_path / "no-such-port").open()


@interactive
def test_enroll_identify_round_trip_and_image(sensor, spare_slot):
    prompt("lift_finger", 0)
    sensor.wait_for_lift(timeout_s=20)
    enrollment = sensor.enroll(slot=spare_slot, on_step=prompt, timeout_s=20)
    assert len(enrollment.template) >= 256
    prompt("lift_finger", 0)
    sensor.wait_for_lift(timeout_s=20)
    prompt("place_finger", 0)
    slot, score = sensor.identify(timeout_s=20)
    assert slot == spare_slot and score > 0
    image = sensor.download_image()
    assert image.shape == (288, 256) and np.ptp(image) > 0
    assert sensor.download_template(spare_slot) == enrollment.template
    sensor.delete(spare_slot)
    sensor.upload_template(spare_slot, enrollment.template)
    assert sensor.download_template(spare_slot) == enrollment.template


@interactive
def test_a_finger_not_enrolled_is_not_found(sensor):
    prompt("lift_finger", 0)
    sensor.wait_for_lift(timeout_s=20)
    print("\n>>> Place a finger that is NOT enrolled on this sensor", flush=True)
    with pytest.raises(NoMatchError):
        sensor.identify(timeout_s=20)
