"""`kiosk bench sync`: drains a backlog over https (as deployed) to a server in its own process and says whether issue 13's target held."""

import json
import os

import pytest
from kiosk_sim.server_process import ServerProcess, ServerProcessError

from kiosk import cli


def test_bench_sync_runs_over_tls_to_a_server_process_by_default_and_reports_the_target(capsys):
    assert cli.main(["bench", "sync", "--events", "300", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["tls"] is True and figures["events"] == 300 and figures["server_process"] is True
    assert figures["target"]["events_per_s_min"] == 25_000
    assert figures["target"]["met"] == (figures["events_per_s"] >= 25_000)
    # the server's CPU time is read from /proc in clock ticks (10 ms): 300 events may take less than one
    assert figures["server_cpu_seconds"] >= 0 and figures["kiosk_cpu_seconds"] > 0
    assert figures["cpu_seconds"] == pytest.approx(figures["kiosk_cpu_seconds"] + figures["server_cpu_seconds"],
                                                   abs=0.002)
    assert figures["events_per_cpu_s"] == pytest.approx(300 / figures["cpu_seconds"], rel=0.05)
    assert figures["load_average_1m"] >= 0


def test_bench_sync_in_process_over_plain_http_never_meets_the_target(capsys):
    assert cli.main(["bench", "sync", "--events", "100", "--no-tls", "--server-in-process", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["tls"] is False and figures["target"]["met"] is False
    # kiosk and simulator share the process: its CPU time is both
    assert figures["server_process"] is False and figures["server_cpu_seconds"] is None
    assert figures["cpu_seconds"] == figures["kiosk_cpu_seconds"] > 0


def test_the_server_process_serves_until_closed_and_leaves_its_database(tmp_path):
    import requests

    with ServerProcess(workdir=tmp_path, tls=True) as server:
        pid = server.pid
        assert server.url.startswith("https://127.0.0.1:") and server.token
        answer = requests.get(server.url + "/v1/health", verify=server.ca_file, timeout=10)
        assert answer.status_code == 200
        assert server.cpu_seconds() > 0  # imports and a TLS certificate: many clock ticks
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, reaped: not left running behind the bench
    assert server.record_count() == 0


def test_a_server_process_that_cannot_start_is_an_error_not_a_hang(tmp_path):
    (tmp_path / "server.db").mkdir()  # where its database should be: it cannot open it and exits
    with pytest.raises(ServerProcessError, match="exited with code 1"):
        ServerProcess(workdir=tmp_path, tls=False).start()
