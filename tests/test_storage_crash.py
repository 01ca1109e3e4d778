"""Process crashes: a writer killed with SIGKILL at random points loses no committed event and breaks no chain.

A killed process leaves the kernel's page cache intact, so this campaign passes even without
fsync (it does with ``synchronous = OFF``). Power cuts, where the page cache is lost too, are
tests/test_power_cut_slow.py (slow: the writer in an emulated machine whose power is cut).
"""

import random
import signal
import subprocess
import sys
import time

from conftest import ROOT

from kiosk.storage import db, events, people

WRITER = ROOT / "tests" / "helpers" / "write_events.py"


def run_and_kill(path, rng):
    child = subprocess.Popen([sys.executable, str(WRITER), str(path), "1000"],
                             stdout=subprocess.PIPE, text=True)
    reported = []
    target = rng.randint(1, 120)  # kill after this many commits were reported, plus a random delay
    for line in child.stdout:
        reported.append(line.split())
        if len(reported) >= target:
            time.sleep(rng.random() * 0.02)
            break
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()  # lines already written before the kill count as reported too
    reported += [line.split() for line in rest.splitlines() if line.strip()]
    child.wait()
    return reported


def test_process_crash_sigkill_loses_no_committed_event(tmp_path):
    rng = random.Random(20261123)
    path = tmp_path / "crash.db"
    committed = {}
    for _ in range(20):
        for seq, uuid in run_and_kill(path, rng):
            committed[uuid] = int(seq)
        database = db.open_db(path)
        stored = {row["uuid"]: row["seq"] for row in database.query("SELECT uuid, seq FROM attendance_events")}
        missing = set(committed) - set(stored)
        assert not missing, f"{len(missing)} committed events lost"
        assert all(stored[u] == s for u, s in committed.items())
        assert events.verify_chain(database) == len(stored)
        database.close()
    assert len(committed) >= 20


def test_verify_chain_command_names_altered_row(tmp_path):
    path = tmp_path / "k.db"
    database = db.open_db(path)
    from kiosk.clock import FakeClock

    people.upsert_person(database, {"person_id": "e"})
    made = events.record_events(database, [dict(person_id="e", status_code=0, verify_mode="face")] * 30,
                                clock=FakeClock())
    kiosk = [sys.executable, "-m", "kiosk.cli", "db", "--db", str(path), "verify-chain"]
    ok = subprocess.run(kiosk, capture_output=True, text=True)
    assert ok.returncode == 0 and "chain ok: 30 events" in ok.stdout
    database.execute("UPDATE attendance_events SET person_id = 'someone-else' WHERE seq = 12")
    database.close()
    bad = subprocess.run(kiosk, capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"seq 12 (id {made[11].id})" in bad.stdout
