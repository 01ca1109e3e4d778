"""The hw-sim ADMS server on its own: what an outside PUSH client sees on the wire."""

import subprocess
import sys

import pytest
import requests

from kiosk_sim import cli
from kiosk_sim.adms import AdmsServer

SN = "SIM0001"


@pytest.fixture
def server():
    with AdmsServer(options={"TimeZone": 3, "Delay": 5}) as server:
        yield server


def test_handshake_answers_options_with_the_stamp(server):
    server.set_stamp(SN, 17)
    text = requests.get(f"{server.url}/iclock/cdata", params={"SN": SN, "options": "all"}, timeout=5).text
    lines = text.splitlines()
    assert lines[0] == f"GET OPTION FROM: {SN}"
    options = dict(line.split("=", 1) for line in lines[1:])
    assert options["ATTLOGStamp"] == "17"
    assert options["TimeZone"] == "3" and options["Delay"] == "5" and options["ErrorDelay"] == "30"


def test_attlog_deduplicates_by_user_and_time(server):
    body = "1\t2024-05-01 08:30:00\t0\t15\t0\t0\t0\n2\t2024-05-01 08:31:00\t1\t1\t0\t0\t0\nbroken line\n"
    url = f"{server.url}/iclock/cdata"
    first = requests.post(url, params={"SN": SN, "table": "ATTLOG", "Stamp": "2"}, data=body, timeout=5)
    again = requests.post(url, params={"SN": SN, "table": "ATTLOG", "Stamp": "2"}, data=body, timeout=5)
    assert first.text.strip() == "OK: 2" and again.text.strip() == "OK: 2"
    assert [(r["pin"], r["status"], r["verify"]) for r in server.records()] == [("1", 0, 15), ("2", 1, 1)]
    assert (server.rows_received, server.duplicates, server.stamp(SN)) == (4, 2, 2)


def test_command_queue_and_results(server):
    first = server.enqueue(SN, "INFO")
    second = server.enqueue(SN, "AC_UNLOCK")
    poll = requests.get(f"{server.url}/iclock/getrequest", params={"SN": SN}, timeout=5).text
    assert poll.splitlines() == [f"C:{first}:INFO", f"C:{second}:AC_UNLOCK"]
    assert requests.get(f"{server.url}/iclock/getrequest", params={"SN": SN}, timeout=5).text == "OK"
    body = f"ID={first}&Return=0&CMD=INFO\nUserCount=3\nFWVersion=x\nID={second}&Return=-1&CMD=AC_UNLOCK\n"
    assert requests.post(f"{server.url}/iclock/devicecmd", params={"SN": SN}, data=body, timeout=5).text == "OK\n"
    assert server.results[first] == {"sn": SN, "code": 0, "cmd": "INFO", "data": {"UserCount": "3", "FWVersion": "x"}}
    assert server.results[second]["code"] == -1


def test_faults(server):
    url = f"{server.url}/iclock/cdata"
    server.inject("http500", endpoint="handshake")
    assert requests.get(url, params={"SN": SN, "options": "all"}, timeout=5).status_code == 500
    assert requests.get(url, params={"SN": SN, "options": "all"}, timeout=5).status_code == 200
    server.inject("outage")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params={"SN": SN, "options": "all"}, timeout=5)
    server.inject("drop_ok")
    with pytest.raises(requests.ConnectionError):
        requests.post(url, params={"SN": SN, "table": "ATTLOG", "Stamp": "1"},
                      data="1\t2024-05-01 08:30:00\t0\t15\t0\t0\t0\n", timeout=5)
    assert len(server.records()) == 1  # stored even though the OK never arrived
    with pytest.raises(ValueError):
        server.inject("meteor")


def test_bad_requests(server):
    assert requests.get(f"{server.url}/iclock/cdata", params={"options": "all"}, timeout=5).status_code == 400
    assert requests.get(f"{server.url}/elsewhere", timeout=5).status_code == 404


def test_developer_endpoints(server):
    command_id = requests.post(f"{server.url}/sim/command", params={"SN": SN}, data="AC_UNLOCK", timeout=5).text
    state = requests.get(f"{server.url}/sim/state", timeout=5).json()
    assert state["queued"][SN] == [[command_id.strip(), "AC_UNLOCK"]]


def test_cli_registers_adms_with_help():
    parser = cli.build_parser()
    args = parser.parse_args(["adms", "--port", "0", "--timezone", "180"])
    assert args.port == 0 and args.timezone == "180" and callable(args.func)
    out = subprocess.run([sys.executable, "-m", "kiosk_sim.cli", "adms", "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "--port" in out and "ADMS" in out
