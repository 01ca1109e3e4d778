"""`kiosk run` under a systemd-like supervisor: READY, watchdog heartbeats, clean stop on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys

from kiosk.clock import FakeClock
from kiosk.storage import db, events, people


def start_kiosk(tmp_path, extra_env=None):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000",
               KIOSK_STORAGE__DATA_DIR=str(tmp_path / "data"),
               KIOSK_SECURITY__DATA_KEY_FILE=str(tmp_path / "data.key"),
               KIOSK_SECURITY__DEVICE_KEY_FILE=str(tmp_path / "device.key"), **(extra_env or {}))
    env.pop("WATCHDOG_PID", None)
    child = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", "/dev/null", "run", "--backend", "sim"],
                             env=env, stderr=subprocess.PIPE, text=True)
    return child, listener


def messages_until(listener, wanted):
    seen = []
    while wanted not in seen:
        seen.extend(listener.recv(4096).decode().splitlines())
    return seen


def test_run_notifies_ready_then_heartbeats_and_stops_on_sigterm(tmp_path):
    child, listener = start_kiosk(tmp_path)
    try:
        seen = messages_until(listener, "READY=1")
        assert any(line.startswith("STATUS=running (sim hardware") for line in seen)
        messages_until(listener, "WATCHDOG=1")
        messages_until(listener, "WATCHDOG=1")
        child.send_signal(signal.SIGTERM)
        messages_until(listener, "STOPPING=1")
        assert child.wait(timeout=20) == 0
    finally:
        child.kill()
        listener.close()
    assert "not provisioned" in child.stderr.read()


def test_run_uploads_recorded_events_to_the_server(tmp_path):
    from kiosk.sync.keys import load_or_create_device_key
    from kiosk.sync.registration import register
    from kiosk_sim.server import ServerSimulator

    with ServerSimulator(workdir=tmp_path / "server") as server:
        reg = register(server_url=server.url, token=server.issue_enrolment_token(),
                       device_key=load_or_create_device_key(tmp_path / "device.key"))
        database = db.open_db(tmp_path / "data" / "kiosk.db")
        people.upsert_person(database, {"person_id": "e1"})
        made = events.record_events(database, [dict(person_id="e1", status_code=0, verify_mode="pin")] * 5,
                                    clock=FakeClock())
        database.close()
        child, listener = start_kiosk(tmp_path, {"KIOSK_SYNC__SERVER_URL": server.url,
                                                 "KIOSK_SYNC__DEVICE_ID": reg.device_id,
                                                 "KIOSK_SECURITY__SERVER_SIGNING_KEY": f'"{reg.server_signing_key}"',
                                                 "KIOSK_SYNC__INTERVAL_S": "0.2"})
        try:
            messages_until(listener, "READY=1")
            stored = []
            for _ in range(100):  # heartbeats pace the wait; no wall-clock sleep
                messages_until(listener, "WATCHDOG=1")
                stored = server.events(reg.device_id)
                if len(stored) == len(made):
                    break
            assert sorted(e["id"] for e in stored) == sorted(e.id for e in made)
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=20) == 0
        finally:
            child.kill()
            listener.close()


def test_run_puts_downloaded_fingerprint_templates_on_the_sensor(tmp_path):
    from kiosk.drivers.fingerprint import FingerprintSensor
    from kiosk.sync.keys import load_or_create_device_key
    from kiosk.sync.registration import register
    from kiosk_sim.r30x import start_simulator
    from kiosk_sim.server import ServerSimulator

    # a template made the real way, on another (simulated) module: the central enrolment station
    with start_simulator(speed=0) as station:
        with FingerprintSensor(port=station.port, timeout_s=1.0) as sensor:
            def place(step, number):
                if step == "place_finger":
                    station.place_finger("FVC2002_DB1_B/104", number)
                elif step == "lift_finger":
                    station.lift_finger()
            template = sensor.enroll(on_step=place).template

    with ServerSimulator(workdir=tmp_path / "server") as server, start_simulator(speed=0) as kiosk_sensor:
        reg = register(server_url=server.url, token=server.issue_enrolment_token(),
                       device_key=load_or_create_device_key(tmp_path / "device.key"))
        server.add_person("emp-7")
        server.set_finger_templates("emp-7", "R307", [(5, template)])
        child, listener = start_kiosk(tmp_path, {"KIOSK_SYNC__SERVER_URL": server.url,
                                                 "KIOSK_SYNC__DEVICE_ID": reg.device_id,
                                                 "KIOSK_SECURITY__SERVER_SIGNING_KEY": f'"{reg.server_signing_key}"',
                                                 "KIOSK_SYNC__INTERVAL_S": "0.2",
                                                 "KIOSK_FINGERPRINT__PORT": kiosk_sensor.port})
        try:
            messages_until(listener, "READY=1")
            for _ in range(100):
                messages_until(listener, "WATCHDOG=1")
                if kiosk_sensor.status()["slots"] == [5]:
                    break
            assert kiosk_sensor.status()["slots"] == [5]
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=20) == 0
        finally:
            child.kill()
            listener.close()
