"""`kiosk doctor`: passes on the simulators, fails (naming the part) when one is broken."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from kiosk import config, doctor
from kiosk.clock import FakeClock
from kiosk.errors import DeviceAbsentError


@pytest.fixture
def kiosk_env(tmp_path):
    """Settings for a subprocess: data under tmp, a server URL where nothing listens."""
    data = tmp_path / "data"
    data.mkdir()
    toml = tmp_path / "kiosk.toml"
    toml.write_text(f'[storage]\ndata_dir = "{data}"\n[sync]\nserver_url = "http://127.0.0.1:9"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["KIOSK_CONFIG"] = str(toml)
    return env


def doctor_run(env, *args, timeout=90):
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--log-level", "WARNING", "doctor", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def by_name(report):
    return {c["name"]: c for c in report["checks"]}


def test_doctor_passes_on_the_simulators(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "sim", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    checks = by_name(report)
    assert report["ok"] is True and report["backend"] == "sim"
    for name in ("camera", "fingerprint", "gpio", "disk", "models"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["camera"]["figures"]["fps"] > 5 and checks["camera"]["figures"]["size"] == [640, 480]
    assert checks["fingerprint"]["figures"]["capacity"] == 1000
    assert checks["server"]["status"] == "warn"  # not reachable, and not required


def test_doctor_fails_and_names_a_silent_sensor(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "sim", "--sim-fault", "sensor:silence")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith("fingerprint"))
    assert "FAIL" in row and "does not answer" in row
    remedy = lines[lines.index(row) + 1]
    assert remedy.strip().startswith("->") and "UART" in remedy
    assert "failed: fingerprint" in result.stdout


def test_doctor_fails_against_an_external_silent_sensor_simulator(kiosk_env, tmp_path):
    link = tmp_path / "sensor"
    sim = subprocess.Popen([sys.executable, "-m", "kiosk_sim.cli", "sensor", "--link", str(link),
                            "--control", str(tmp_path / "sensor.ctl"), "--fault", "silence"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kiosk_env)
    try:
        deadline = time.monotonic() + 20
        while not link.exists():
            assert sim.poll() is None, sim.stderr.read()
            assert time.monotonic() < deadline, "simulator did not come up"
            time.sleep(0.05)  # waiting for another process to create its pty; no clock to inject
        env = {**kiosk_env, "KIOSK_FINGERPRINT__PORT": str(link)}
        result = doctor_run(env, "--backend", "sim", "--json", "--only", "fingerprint")
        assert result.returncode == 1, result.stdout + result.stderr
        check = by_name(json.loads(result.stdout))["fingerprint"]
        assert check["status"] == "fail" and "DeviceAbsentError" in check["detail"] and check["remedy"]
        assert str(link) in check["detail"] or os.path.realpath(link) in check["detail"]
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=10)


def test_doctor_fails_on_a_stalled_camera_and_can_require_the_server(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "sim", "--json", "--only", "camera", "--only", "server",
                        "--sim-fault", "camera:unplug", "--require-server")
    assert result.returncode == 1
    checks = by_name(json.loads(result.stdout))
    assert set(checks) == {"camera", "server"}
    assert checks["camera"]["status"] == "fail" and "unplugged" in checks["camera"]["detail"]
    assert checks["server"]["status"] == "fail" and checks["server"]["remedy"]


def test_sim_faults_need_the_sim_backend_and_a_known_kind(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "usb", "--sim-fault", "sensor:silence")
    assert result.returncode == 2 and "--sim-fault needs --backend sim" in result.stderr
    result = doctor_run(kiosk_env, "--backend", "sim", "--sim-fault", "sensor:gremlins")
    assert result.returncode == 2 and "gremlins" in result.stderr


# --- the library checks -------------------------------------------------------------------------

class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.status if self.path == "/v1/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_server_check_pass_warn_and_fail(health_server):
    url = f"http://127.0.0.1:{health_server.server_port}"
    assert doctor.check_server(url).status == doctor.PASS
    _Health.status = 503
    try:
        assert doctor.check_server(url).status == doctor.WARN
        assert doctor.check_server(url, required=True).status == doctor.FAIL
    finally:
        _Health.status = 200
    missing = doctor.check_server("")
    assert missing.status == doctor.WARN and "server_url" in missing.remedy


def test_disk_check_uses_the_floors(tmp_path):
    assert doctor.check_disk(tmp_path, min_free_mb_enrol=1, min_free_mb_attendance=1).status == doctor.PASS
    huge = 10**9
    assert doctor.check_disk(tmp_path, min_free_mb_enrol=huge, min_free_mb_attendance=1).status == doctor.WARN
    failed = doctor.check_disk(tmp_path, min_free_mb_enrol=huge, min_free_mb_attendance=huge)
    assert failed.status == doctor.FAIL and failed.remedy
    later = doctor.check_disk(tmp_path / "not" / "yet", min_free_mb_enrol=1, min_free_mb_attendance=1)
    assert later.status == doctor.WARN and "does not exist" in later.detail


def test_clock_check_warns_when_unsynchronized():
    assert doctor.check_clock(FakeClock(synchronized=True)).status == doctor.PASS
    result = doctor.check_clock(FakeClock(synchronized=False))
    assert result.status == doctor.WARN and "timedatectl" in result.remedy


def test_model_check_against_the_shipped_files_and_a_damaged_copy(tmp_path):
    from kiosk.models import assets

    assert doctor.check_models(assets.verify).status == doctor.PASS
    damaged = tmp_path / "assets"
    damaged.mkdir()
    for source in assets.ASSETS_DIR.glob("*.tflite"):
        (damaged / source.name).write_bytes(source.read_bytes())
    victim = sorted(damaged.glob("*.tflite"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = doctor.check_models(lambda: assets.verify(assets_dir=damaged))
    assert result.status == doctor.FAIL and victim.name in result.detail and "mismatch" in result.detail


def test_a_check_that_raises_becomes_a_failure_with_a_remedy():
    def broken():
        raise DeviceAbsentError("fingerprint sensor on /dev/ttyAMA0 does not answer")

    result = doctor.run_check("fingerprint", broken)
    assert result.status == doctor.FAIL and "does not answer" in result.detail and "UART" in result.remedy
    table = doctor.render_table(doctor.Report([result]))
    assert "FAIL" in table and "-> " in table and "failed: fingerprint" in table


def test_run_checks_reports_skipped_parts(tmp_path):
    settings = config.build([]).replace(storage={"data_dir": str(tmp_path)}, sync={"server_url": ""})
    report = doctor.run_checks(settings, clock=FakeClock(), only=["camera", "disk", "clock", "server"])
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {"camera": "skip", "disk": "pass", "clock": "pass", "server": "warn"}
    assert report.ok


def test_every_doctor_option_has_help():
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "doctor", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--backend", "--json", "--require-server", "--only", "--door", "--sim-fault"):
        assert option in result.stdout
    assert Path(doctor.__file__).exists()


def test_doctor_checks_the_microphone_and_names_an_unplugged_or_dead_one(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "sim", "--json", "--only", "microphone")
    assert result.returncode == 0, result.stdout + result.stderr
    check = by_name(json.loads(result.stdout))["microphone"]
    assert check["status"] == "pass" and check["figures"]["seconds"] >= 2.0
    assert check["figures"]["level_dbfs"] < -50  # the simulated room between readings
    for fault, words in (("unplug", "unplugged"), ("dead", "digital silence")):
        result = doctor_run(kiosk_env, "--backend", "sim", "--json", "--only", "microphone",
                            "--sim-fault", f"microphone:{fault}")
        assert result.returncode == 1, result.stdout + result.stderr
        check = by_name(json.loads(result.stdout))["microphone"]
        assert check["status"] == "fail" and words in check["detail"] and "arecord" in check["remedy"]


def test_the_microphone_is_checked_only_where_voice_prints_are_taken(kiosk_env):
    result = doctor_run(kiosk_env, "--backend", "sim", "--json")
    assert by_name(json.loads(result.stdout))["microphone"]["status"] == "skip"
    result = doctor_run({**kiosk_env, "KIOSK_ATTENDANCE__VOICE_SECOND_FACTOR": "true"}, "--backend", "sim", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert by_name(json.loads(result.stdout))["microphone"]["status"] == "pass"
