"""Command lines with bad arguments, negative counts or a port in use: one-line errors, no traceback."""

import socket
import subprocess
import sys

import pytest

KIOSK = [sys.executable, "-m", "kiosk.cli"]
KIOSK_SIM = [sys.executable, "-m", "kiosk_sim.cli"]


def run(command):
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def assert_one_line_error(done, code):
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "kiosk-sim" in line]
    assert errors, done.stderr


@pytest.fixture
def busy_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("simulator", ["server", "adms"])
def test_simulator_on_a_port_in_use_says_so_in_one_line(busy_port, simulator, tmp_path):
    extra = ["--db", str(tmp_path / "s.db")] if simulator == "server" else []
    done = run(KIOSK_SIM + [simulator, "--port", str(busy_port)] + extra)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"kiosk-sim {simulator}: cannot listen on 127.0.0.1:{busy_port}: Address already in use"]


@pytest.mark.parametrize("args", [
    ["server", "--port", "70000"], ["server", "--port", "-1"], ["server", "--tokens", "-3"],
    ["server", "--fault-probability", "nan"], ["adms", "--delay", "-5"], ["sensor", "--capacity", "0"],
    ["sensor", "--frr", "2"], ["camera", "--scenario", "walk_up", "--out", "x", "--frames", "-1"],
    ["sensor-ctl", "place", "--impression", "9"],
])
def test_kiosk_sim_bad_numbers_are_usage_errors(args):
    assert_one_line_error(run(KIOSK_SIM + args), 2)


@pytest.mark.parametrize("args", [
    ["sync", "--events", "-5"], ["sync", "--events", "0"], ["sync", "--batch-size", "abc"],
    ["adms", "--batch-rows", "-1"], ["camera", "--frames", "0"], ["fingerprint", "--speed", "-1"],
    ["fingerprint", "--templates", "-10"], ["fingerprint", "--repeat", "inf"], ["gallery", "--queries", "-1"],
    ["gallery", "--dim", "0"], ["face", "--dataset", "x", "--people", "-2"],
])
def test_bench_bad_arguments_are_usage_errors(args):
    assert_one_line_error(run(KIOSK + ["bench"] + args), 2)
