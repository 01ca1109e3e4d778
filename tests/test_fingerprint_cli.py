"""`kiosk-sim sensor` as a separate process, driven by `sensor-ctl` and by a client outside the project."""

import json
import signal
import subprocess
import sys

import pytest
from conftest import ROOT

CLIENT = ROOT / "tests" / "outside_client" / "pyfingerprint_client.py"
SIM = [sys.executable, "-m", "kiosk_sim.cli"]


@pytest.fixture
def sensor_process(tmp_path, datasets):
    link = tmp_path / "sensor"
    proc = subprocess.Popen(SIM + ["sensor", "--link", str(link), "--library", str(tmp_path / "lib.json"),
                                   "--capacity", "40", "--speed", "0", "--fingers", str(datasets / "fingers")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = {}
    while "control" not in lines:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"kiosk-sim sensor did not start: {proc.stderr.read()}")
        key, _, value = line.strip().partition(": ")
        lines[key] = value
    yield proc, link, lines
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def ctl(link, *args):
    result = subprocess.run(SIM + ["sensor-ctl", "--link", str(link), *args], capture_output=True, text=True,
                            timeout=30)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else result.stderr


def test_outside_pyfingerprint_client_enrolls_and_finds_a_finger(sensor_process):
    proc, link, lines = sensor_process
    assert lines["port"].startswith("/dev/pts/") and lines["link"] == str(link)
    assert link.resolve() == type(link)(lines["port"])
    result = subprocess.run([sys.executable, str(CLIENT), "--port", str(link), "--control", lines["control"],
                             "--finger", "FVC2002_DB1_B/107"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["password_ok"] is True and report["merged"] is True
    assert report["capacity"] == 40
    assert report["count_before"] == 0 and report["count_after"] == 1
    assert report["found_at"] == report["stored_at"] == 0 and report["score"] > 0

    code, answer = ctl(link, "status")
    assert code == 0 and answer["status"]["template_count"] == 1 and answer["status"]["finger"] is None

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not link.exists() and not link.with_name("sensor.ctl").exists()


def test_sensor_ctl_places_fingers_and_switches_faults(sensor_process):
    proc, link, _ = sensor_process
    code, answer = ctl(link, "place", "FVC2000_DB2_B/105", "--impression", "4", "--condition", "dirty")
    assert code == 0 and answer["status"]["finger"]["condition"] == "dirty"
    code, answer = ctl(link, "fault", "silence")
    assert code == 0 and answer["status"]["faults"] == {"silence": None}
    code, answer = ctl(link, "fault", "bad_checksum", "--count", "2")
    assert answer["status"]["faults"] == {"silence": None, "bad_checksum": 2}
    code, answer = ctl(link, "clear")
    assert answer["status"]["faults"] == {}
    code, answer = ctl(link, "place", "FVC2000_DB2_B/999")
    assert code == 1 and not answer["ok"] and "no impression" in answer["error"]
    code, answer = ctl(link, "fingers")
    assert "FVC2002_DB1_B/110" in answer["fingers"] and len(answer["fingers"]) == 20
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def test_sensor_ctl_without_a_simulator_says_so(tmp_path):
    code, message = ctl(tmp_path / "nothing", "status")
    assert code == 2 and "cannot reach the simulator" in message


def test_second_simulator_on_the_same_link_refuses(sensor_process, tmp_path, datasets):
    proc, link, lines = sensor_process
    second = subprocess.run(SIM + ["sensor", "--link", str(link), "--speed", "0", "--fingers", str(datasets / "fingers")],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    message = second.stderr.strip().splitlines()
    assert len(message) == 1 and "in use by another running simulator" in message[0]
    assert f"pid {proc.pid}" in message[0]
    # the first one keeps its link and its control socket
    assert str(link.resolve()) == lines["port"]
    code, answer = ctl(link, "status")
    assert code == 0 and answer["status"]["port"] == lines["port"]


def test_link_left_by_a_killed_simulator_is_taken_over(sensor_process, tmp_path, datasets):
    proc, link, lines = sensor_process
    proc.kill()
    proc.wait()
    assert link.is_symlink()  # a killed simulator cannot clean up
    again = subprocess.Popen(SIM + ["sensor", "--link", str(link), "--speed", "0", "--fingers", str(datasets / "fingers")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = again.stdout.readline()
        assert first.startswith("port: /dev/pts/"), again.stderr.read() if again.poll() is not None else first
        assert str(link.resolve()) == first.split(": ", 1)[1].strip()
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=30)


@pytest.mark.parametrize("command, words", [
    ("sensor", ["--link", "--library", "--capacity", "--fault", "--model", "--speed", "sensor-ctl", "silence"]),
    ("sensor-ctl", ["place", "lift", "fault", "clear", "status"]),
])
def test_help_documents_the_options(command, words):
    result = subprocess.run(SIM + [command, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for word in words:
        assert word in result.stdout
