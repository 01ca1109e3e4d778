"""Actuators are bounded and numbers from outside are finite: door pulses, commands, settings, protocol fields."""

import json
import subprocess
import sys
import time

import pytest
from kiosk_sim.adms import AdmsServer
from kiosk_sim.gpio import Panel, SimFactory
from kiosk_sim.server import ServerSimulator

from kiosk import app, config, doctor
from kiosk.backoff import Backoff
from kiosk.clock import FakeClock
from kiosk.drivers import camera
from kiosk.drivers.gpio import Board
from kiosk.errors import ActuatorLimitError, ConfigError
from kiosk.storage import db
from kiosk.sync import adms, keys, protocol, registration
from kiosk.sync.command_path import Command, CommandPath, DoneLog, Limits

BAD_SECONDS = [float("inf"), float("-inf"), float("nan"), "inf", "nan", "3", True, None, -1.0, 0.0, 10.5, 1e9]


@pytest.fixture
def rig():
    settings = config.build([]).replace(gpio={"door_pulse_s": 0.1, "door_max_pulse_s": 0.2})
    factory = SimFactory()
    panel = Panel(factory, settings.gpio)
    board = Board(settings.gpio, pin_factory=factory)
    yield board, panel
    board.close()


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), float("-inf"), "inf", True, 0.0, -0.1, 0.21, 60.0])
def test_the_door_driver_refuses_pulses_that_are_not_finite_or_too_long(rig, seconds):
    board, panel = rig
    with pytest.raises(ActuatorLimitError, match="door pulse refused"):
        board.door.pulse(seconds)
    assert not board.door.is_open and board.door.pulses == 0
    assert board.door._thread is None  # no timer thread left spinning or holding the relay
    assert panel.history("door") == [] or not any(active for _, active in panel.history("door"))


def test_a_pulse_up_to_the_maximum_opens_and_closes(rig):
    board, panel = rig
    board.door.pulse(0.2)
    assert board.door.is_open
    assert board.door.wait_for_closed(timeout=2.0)
    (_, duration), = panel.pulses("door")
    assert 0.2 <= duration < 1.0


@pytest.fixture
def wired(tmp_path):
    """A registered kiosk wired the way `kiosk run` wires it: app.build_sync_worker with a real Board."""
    with ServerSimulator(workdir=tmp_path / "server") as server:
        key_path = tmp_path / "device.key"
        reg = registration.register(server_url=server.url, token=server.issue_enrolment_token(),
                                    device_key=keys.load_or_create_device_key(key_path))
        settings = config.build([]).replace(
            sync={"server_url": server.url, "device_id": reg.device_id},
            security={"device_key_file": str(key_path), "server_signing_key": reg.server_signing_key},
            storage={"data_dir": str(tmp_path)}, gpio={"door_pulse_s": 0.1, "door_max_pulse_s": 10.0})
        factory = SimFactory()
        panel = Panel(factory, settings.gpio)
        with Board(settings.gpio, pin_factory=factory) as board:
            worker = app.build_sync_worker(settings, clock=FakeClock(time.time()), data_key=None, board=board)
            yield server, reg.device_id, worker, board, panel


def test_server_door_commands_with_bad_seconds_fail_and_the_door_stays_shut(wired):
    server, device_id, worker, board, panel = wired
    for seconds in (float("inf"), float("nan")):  # JSON has no such numbers: the server cannot even send them
        with pytest.raises(ValueError):
            server.queue_command(device_id, "open_door", {"seconds": seconds})
    sent = [s for s in BAD_SECONDS if isinstance(s, str) or (s is not None and s == s and abs(s) != float("inf"))]
    ids = [server.queue_command(device_id, "open_door", {"seconds": s}) for s in sent]
    worker.run_once()
    time.sleep(0.05)  # a crashed door thread (the old failure) would leave the relay on: look again after
    assert not board.door.is_open and panel.pulses("door") == []
    for command_id, seconds in zip(ids, sent):
        answer = server.command(command_id)
        assert answer["status"] == "failed", seconds
        assert answer["detail"]["reason"] == "invalid_argument", seconds
    good = server.queue_command(device_id, "open_door", {})
    worker.run_once()
    assert server.command(good)["status"] == "done" and server.command(good)["detail"] == {"opened_s": 0.1}
    assert board.door.wait_for_closed(timeout=2.0)
    assert len(panel.pulses("door")) == 1


def test_json_nan_and_infinity_are_not_numbers_on_the_wire():
    for text in (b'{"seconds": NaN}', b'{"seconds": Infinity}', b'{"t": -Infinity}'):
        with pytest.raises(ValueError, match="not a JSON number"):
            protocol.decode_body(text)
    with pytest.raises(ValueError):
        protocol.dumps({"seconds": float("nan")})
    with pytest.raises(ValueError, match="finite"):
        protocol.parse_signature_headers({protocol.HEADER_DEVICE: "d", protocol.HEADER_TIMESTAMP: "nan",
                                          protocol.HEADER_NONCE: "ab" * 8, protocol.HEADER_SIGNATURE: "AAAA"})


@pytest.mark.parametrize("expires_at", [float("nan"), "tomorrow", True])
def test_a_command_whose_expiry_is_not_a_finite_number_is_refused(expires_at):
    opened = []
    path = CommandPath(handlers={"open_door": opened.append}, done_log=DoneLog(None, "x"), now=lambda: 0.0)
    result = path.run(Command("c1", "open_door", {"seconds": 1}, expires_at=expires_at))
    assert (result.status, result.reason) == ("failed", "invalid_argument") and opened == []


@pytest.mark.parametrize("line, key", [("[gpio]\ndoor_pulse_s = nan", "gpio.door_pulse_s"),
                                       ("[gpio]\ndoor_max_pulse_s = inf", "gpio.door_max_pulse_s"),
                                       ("[sync]\ninterval_s = nan", "sync.interval_s"),
                                       ("[face]\nmatch_threshold = -inf", "face.match_threshold")])
def test_config_check_refuses_nan_and_infinity(tmp_path, line, key):
    path = tmp_path / "kiosk.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"{key}: .*not a finite number"):
        config.check_file(path)
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "config", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and key in result.stderr and "Traceback" not in result.stderr


def test_the_door_pulse_may_not_exceed_the_maximum():
    with pytest.raises(ConfigError, match="gpio.door_pulse_s: 12.0 is above gpio.door_max_pulse_s"):
        config.build([("kiosk.toml", {"gpio": {"door_pulse_s": 12.0}})])


# --- ADMS door commands are off by default, and bounded by the same path when on ------------------

def test_adms_door_commands_are_off_by_default_and_bounded_when_on(tmp_path):
    clock = FakeClock(start=1714541400.0)
    openings = []

    def door(*, door, seconds):
        openings.append((door, seconds))

    with AdmsServer(options={"Delay": 5}) as server:
        settings = config.build([]).replace(sync={"adms_url": server.url, "adms_serial": "KIOSK0001"})
        assert settings.sync.adms_door_commands is False
        unlock = server.enqueue("KIOSK0001", "AC_UNLOCK")
        with adms.AdmsAdapter.from_settings(settings, db.open_db(tmp_path / "k.db"), open_door=door,
                                            clock=clock) as adapter:
            adapter.run_once()
        assert server.results[unlock]["code"] == -1 and openings == []
        on = settings.replace(sync={"adms_door_commands": True})
        ids = [server.enqueue("KIOSK0001", text) for text in ("AC_UNLOCK", "CONTROL DEVICE 0101010A",
                                                              "CONTROL DEVICE 0101010B", "CONTROL DEVICE 010101FE")]
        with adms.AdmsAdapter.from_settings(on, db.open_db(tmp_path / "k.db"), open_door=door, clock=clock) as adapter:
            adapter.run_once()
        assert [server.results[i]["code"] for i in ids] == [0, 0, -1002, -1002]  # 11 s and 254 s > 10 s
        assert openings == [(1, 3.0), (1, 10.0)]


# --- kiosk doctor pulses the door only when asked ------------------------------------------------

def test_doctor_pulses_the_door_only_with_door(tmp_path):
    settings = config.build([])
    factory = SimFactory()
    panel = Panel(factory, settings.gpio)

    def open_board():
        return Board(settings.gpio, pin_factory=factory)

    quiet = doctor.check_gpio(open_board)
    assert quiet.status == "pass" and "door not pulsed" in quiet.detail and panel.pulses("door") == []
    asked = doctor.check_gpio(open_board, pulse_door=True)
    assert asked.status == "pass" and len(panel.pulses("door")) == 1
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "doctor", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert "--door" in result.stdout and "--no-door" not in result.stdout


# --- one command path, one backoff ---------------------------------------------------------------

def test_both_command_protocols_share_one_path_and_its_bounds():
    from kiosk.sync import adms_commands, remote

    assert remote.CommandPath is adms_commands.command_path.CommandPath
    limits = Limits(door_pulse_s=2.0, door_max_pulse_s=4.0)
    runner = adms_commands.CommandRunner(open_door=lambda **kw: None, info=lambda: (), on_check=lambda: None,
                                         on_log=lambda: None, door_commands=True, limits=limits)
    assert runner.path.limits == limits
    from kiosk.sync.adms_codec import Command as AdmsCommand

    assert runner.run(AdmsCommand("1", "CONTROL DEVICE 01010105")).code == -1002  # 5 s > 4 s


def test_one_backoff_class_serves_camera_and_sync():
    from kiosk.sync import worker

    assert worker.Backoff is Backoff and camera.Backoff is Backoff
    exact = Backoff(base_s=0.5, cap_s=4.0, jitter=False)
    assert [exact.failure() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(base_s=1.0, cap_s=8.0).failure(retry_after_s=float("inf")) <= 1.0  # a non-finite hint is ignored
    with pytest.raises(ImportError):
        __import__("kiosk.sync.backoff")


def test_settings_example_documents_the_new_keys():
    text = config.example_toml()
    for key in ("door_max_pulse_s", "adms_door_commands", "server_signing_key"):
        assert key in text
    assert json.dumps(config.build([]).sync.server_url) == '""'


def test_face_templates_that_are_not_finite_are_not_stored(tmp_path):
    import numpy as np

    from kiosk.storage import people, seal, sync_state

    database = db.open_db(tmp_path / "k.db")
    key = seal.DataKey.create(tmp_path / "data.key")
    good = protocol.b64(np.ones(4, dtype="<f4").tobytes())
    changes = [{"type": "person", "op": "upsert", "person": {"person_id": "p1"}},
               {"type": "face_templates", "person_id": "p1", "model_id": "m", "vectors": [good]}]
    sync_state.apply_changes(database, key, changes, now=0.0)
    for bad in (np.array([1, np.nan, 0, 0]), np.array([np.inf, 0, 0, 0])):
        vectors = [protocol.b64(bad.astype("<f4").tobytes())]
        summary = sync_state.apply_changes(database, key, [{"type": "face_templates", "person_id": "p1",
                                                            "model_id": "m", "vectors": vectors}], now=0.0)
        assert summary.skipped == 1
    (person_id, vector), = people.face_templates(database, key, "m")
    assert person_id == "p1" and np.array_equal(vector, np.ones(4))
