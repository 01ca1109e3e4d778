"""SensorPoller against the sensor simulator: an unplugged sensor is reported and marked unhealthy until it answers."""

import threading

from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.drivers.fingerprint_worker import SensorWorker
from kiosk.host import SensorPoller
from kiosk_sim.r30x import start_simulator


def test_an_unplugged_sensor_is_reported_then_healthy_again_when_it_answers():
    events = []
    unavailable, answered = threading.Event(), threading.Event()

    def post(event, **data):
        events.append(event)
        if event == "sensor_unavailable":
            unavailable.set()
        elif event == "finger_not_matched":
            answered.set()

    with start_simulator(speed=0) as sim:
        sensor = FingerprintSensor(port=sim.port, timeout_s=0.5)
        sensor.open()
        with SensorWorker(sensor) as worker:
            poller = SensorPoller(worker, post, capture_timeout_s=0.2, retry_s=0.1).start()
            try:
                poller.set_mode("identify")
                sim.set_fault("silence")
                assert unavailable.wait(30), events
                assert not poller.healthy
                sim.clear_fault("silence")
                sim.place_finger("FVC2002_DB1_B/109", 1)   # nobody enrolled: the sensor answers "no match"
                assert answered.wait(30), events
                assert poller.healthy
            finally:
                poller.close()
