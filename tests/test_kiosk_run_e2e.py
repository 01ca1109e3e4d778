"""End to end under `kiosk run --backend sim` (app.run_appliance): enrol at the kiosk, then clock in.

An admin enters with the admin PIN, enrols a person from real photos shown to the simulated
camera (and two fingers on the simulated sensor, and a PIN); the person then walks up (a scripted
person who turns when the screen asks), is recorded, the door relay pulses on the mock pins and
the event reaches the server simulator; then the same person by fingerprint, and another by PIN.
Real time: the simulators run live, so each wait has a generous limit.
"""

import threading
import time

import pytest

from kiosk import app, config
from kiosk.pinhash import hash_pin
from kiosk.storage import db, events
from kiosk_sim.scripted_person import PromptFollower, ScriptedPerson
from kiosk_sim.liveness_scenarios import turn_photos
from kiosk_sim.scenarios import FaceLibrary

ADMIN_PIN = "246810"
PERSON_PIN = "918273"
PERSON = "Richard_Myers"
FINGER = "FVC2002_DB1_B/107"


class Watcher:
    """Collects the screens the kiosk shows; places the finger when the enrolment asks for it."""

    def __init__(self):
        self.screens = []
        self.sensor = None
        self.lock = threading.Lock()

    def __call__(self, screen, data):
        with self.lock:
            self.screens.append((screen, dict(data)))
        if screen == "enrol_finger" and self.sensor is not None:
            if data.get("step") == "place_finger":
                self.sensor.place_finger(FINGER, int(data.get("number") or 1))
            elif data.get("step") in ("lift_finger", "captured"):
                self.sensor.lift_finger()  # a person lifts once the capture is taken

    def wait(self, wanted, *, timeout_s=60.0, since=0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                for index, (screen, data) in enumerate(self.screens[since:], start=since):
                    if screen in wanted:
                        return index, screen, data
            time.sleep(0.05)
        raise AssertionError(f"none of {wanted} within {timeout_s} s; last screens: "
                             f"{[s for s, _ in self.screens[-8:]]}")

    @property
    def count(self):
        return len(self.screens)


@pytest.fixture
def running_kiosk(tmp_path, datasets):
    from kiosk.sync.keys import load_or_create_device_key
    from kiosk.sync.registration import register
    from kiosk_sim.server import ServerSimulator

    server = ServerSimulator(workdir=tmp_path / "server").start()
    reg = register(server_url=server.url, token=server.issue_enrolment_token(),
                   device_key=load_or_create_device_key(tmp_path / "device.key"))
    settings = config.build([("test", {
        "hardware": {"backend": "sim"},
        "camera": {"scenario": "no_face"},
        "storage": {"data_dir": str(tmp_path / "data")},
        "security": {"data_key_file": str(tmp_path / "data.key"), "device_key_file": str(tmp_path / "device.key"),
                     "server_public_key": reg.server_public_key, "server_signing_key": reg.server_signing_key,
                     "admin_pin_hash": hash_pin(ADMIN_PIN)},
        "sync": {"server_url": server.url, "device_id": reg.device_id, "interval_s": 0.5},
        "face": {"challenge": "turn"},
        "attendance": {"repeat_guard_s": 0.0},  # the same person three times in a minute, on purpose
    })])
    watcher = Watcher()
    ready = {}
    started = threading.Event()

    def on_ready(kiosk, sims):
        ready.update(kiosk=kiosk, sims=sims)
        kiosk.screen.listeners.append(watcher)
        watcher.sensor = sims.sensor
        started.set()

    stop = threading.Event()
    thread = threading.Thread(target=app.run_appliance, args=(settings,),
                              kwargs={"stop_event": stop, "on_ready": on_ready}, daemon=True)
    thread.start()
    assert started.wait(120), "kiosk run did not become ready"
    yield ready["kiosk"], ready["sims"], watcher, server, settings
    stop.set()
    thread.join(30)
    server.close()


def test_enrolled_at_the_kiosk_then_recorded_by_face_finger_and_pin(running_kiosk, datasets):
    kiosk, sims, watcher, server, settings = running_kiosk
    host = kiosk.host
    frontal, turns = turn_photos(FaceLibrary(datasets / "faces" / "lfw"), PERSON)

    # the admin enrols the person: details, face from real photos, two fingers, a PIN
    host.post("admin_requested")
    host.post("pin_entered", pin=ADMIN_PIN)
    watcher.wait(("admin_menu",))
    host.post("enrol_requested")
    watcher.wait(("enrol_details",))
    sims.player.play(ScriptedPerson(frontal, turns=turns))  # the person stands at the kiosk
    host.post("details_entered", person_id="emp-77", name="Richard Myers", role="employee")
    _, screen, data = watcher.wait(("enrol_finger", "enrol_duplicate", "enrol_failed"), timeout_s=90)
    assert screen == "enrol_finger", data
    sims.player.play("no_face")
    _, screen, data = watcher.wait(("enrol_pin", "enrol_duplicate", "enrol_failed"), timeout_s=120)
    assert screen == "enrol_pin", data
    sims.sensor.lift_finger()
    host.post("pin_entered", pin=PERSON_PIN)
    host.post("pin_entered", pin=PERSON_PIN)
    watcher.wait(("enrol_summary",))
    host.post("confirmed")
    _, screen, data = watcher.wait(("enrol_done", "enrol_failed"))
    assert screen == "enrol_done", data
    host.post("exit_requested")
    host.post("exit_requested")
    watcher.wait(("attendance_idle",))
    assert "emp-77" in kiosk.gallery

    # by face: the person walks up and turns as the screen asks
    person = ScriptedPerson(frontal, turns=turns, hold_frames=12)
    follower = PromptFollower(person)
    kiosk.screen.listeners.append(follower)
    mark = watcher.count
    sims.player.play(person)
    _, screen, data = watcher.wait(("result", "not_recognised", "refused"), timeout_s=60, since=mark)
    kiosk.screen.listeners.remove(follower)
    assert screen == "result" and data["person_id"] == "emp-77" and data["verify_mode"] == "face", data
    sims.player.play("no_face")
    door = kiosk.ports.board.door
    assert door.wait_for_closed(timeout=10)  # so each punch below is its own opening on the pin

    # by fingerprint (a fresh impression of the finger; this kiosk has no repeat guard)
    mark = watcher.count
    host.post("cancelled")
    sims.sensor.place_finger(FINGER, 6)
    _, screen, data = watcher.wait(("result", "not_recognised", "refused"), timeout_s=60, since=mark)
    sims.sensor.lift_finger()
    assert screen == "result" and data["person_id"] == "emp-77" and data["verify_mode"] == "fingerprint", data
    assert door.wait_for_closed(timeout=10)

    # by PIN
    mark = watcher.count
    host.post("cancelled")
    host.post("pin_requested")
    host.post("id_entered", typed="emp-77")
    host.post("pin_entered", pin=PERSON_PIN)
    _, screen, data = watcher.wait(("result", "refused"), since=mark)
    assert screen == "result" and data["verify_mode"] == "pin", data

    # the door relay pulsed on the mock pins, and the events reached the server
    assert door.wait_for_closed(timeout=10)
    assert door.pulses == 3
    assert len(sims.panel.pulses("door")) == 3  # the relay itself, as the mock pin saw it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(server.events()) < 3:
        time.sleep(0.2)
    modes = sorted(e["verify_mode"] for e in server.events())
    assert modes == ["face", "fingerprint", "pin"]
    assert [p["person_id"] for p in server.enrolled_people()] == ["emp-77"]
    assert events.count(db.open_db(settings.db_path)) == 3
