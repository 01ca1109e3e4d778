"""`kiosk bench soak`: punches recorded with sync running, and the process figures it reports."""

import json
import subprocess
import sys

from kiosk.bench import soak
from kiosk.clock import FakeClock
from kiosk.storage import db, events

KIOSK = [sys.executable, "-m", "kiosk.cli", "bench", "soak"]


def test_soak_records_uploads_and_reports_memory_fds_threads():
    # a smoke run: the figures that matter come from the default run (docs/reliability.md, 11)
    result = subprocess.run(KIOSK + ["--events", "60", "--warmup", "20", "--interval-s", "0.2", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["events"] == 60 and figures["pending_after"] == 0
    for name in ("rss_mb_start", "rss_mb_end", "fds_start", "fds_end", "threads_start", "threads_end",
                 "python_blocks_start", "python_blocks_end"):
        assert figures[name] > 0, name
    assert figures["within_targets"] == (result.returncode == 0)


def test_bad_counts_are_one_line_errors():
    for bad in (["--events", "0"], ["--events", "-5"], ["--warmup", "x"]):
        result = subprocess.run(KIOSK + bad, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "error: argument" in result.stderr.strip().splitlines()[-1]


def test_one_punch_is_one_committed_event_through_the_attendance_flow():
    from kiosk.storage.seal import DataKey

    database = db.open_db(":memory:")
    recorder = soak.PunchRecorder(database, FakeClock(), data_key=DataKey(bytes(32)))
    recorder.punch(0)
    recorder.punch(1)
    recorder.punch(soak.PunchRecorder.PEOPLE)  # the first person again: the toggle rule checks them out
    assert events.count(database) == 3 and events.verify_chain(database) == 3
    rows = list(database.query("SELECT person_id, status_code, verify_mode FROM attendance_events ORDER BY seq"))
    assert [(r["person_id"], r["status_code"]) for r in rows] == [("100000", 0), ("100001", 0), ("100000", 1)]
    assert {r["verify_mode"] for r in rows} == {"fingerprint"} and recorder.flow.state == "idle"


def test_process_figures_read_this_process():
    figures = soak.process_figures()
    assert figures["rss_mb"] > 1 and figures["fds"] >= 3 and figures["threads"] >= 1
