"""Uploader crashes: killed with SIGKILL mid-drain, it has marked nothing the server does not hold, and a restart delivers the rest once.

The uploader acknowledges outbox rows by ranges of row ids, reads the next batch while one is in
flight, and commits a batch's acknowledgements while the next one is in flight (issue 13); these
campaigns check that what a crash leaves behind is still only what verified answers acknowledged,
including a kill in the window where batch N+1 has been answered and N's acknowledgements are not
yet on disk.
"""

import random
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import ROOT
from kiosk_sim.server import ServerSimulator
from sync_helpers import make_device

from kiosk.storage import sync_state
from kiosk.sync.uploader import Uploader

DRAINER = ROOT / "tests" / "helpers" / "drain_outbox.py"


def run_and_kill(device, server, rng):
    target = rng.randint(0, 3)  # kill after this many acknowledged batches, plus a random delay
    # the drainer stops before its (target + 2)th batch: the kill lands mid-batch or while it waits
    child = subprocess.Popen([sys.executable, str(DRAINER), str(device.path), str(device.key_path), server.url,
                              device.server_key, device.device_id, str(target + 1)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in child.stdout:
        seen += line.startswith("acked")
        if seen >= target or line.startswith("drained"):
            break
    time.sleep(rng.random() * 0.05)
    child.send_signal(signal.SIGKILL)
    child.stdout.read()
    child.wait()


def test_a_killed_uploader_has_acknowledged_only_what_the_server_holds(tmp_path):
    rng = random.Random(20261128)
    with ServerSimulator(db_path=tmp_path / "server.db") as server:
        device = make_device(tmp_path, server)
        created = device.record(600)  # 15 batches of 40; three kills stop by the 12th (the next is never sent early)
        for _ in range(3):
            run_and_kill(device, server, rng)
            acked = {row[0] for row in device.database.execute(
                "SELECT record_id FROM outbox WHERE acked_at IS NOT NULL")}
            held = {event["id"] for event in server.events()}
            assert acked <= held, f"{len(acked - held)} records marked acknowledged that the server does not hold"
        assert sync_state.pending_stats(device.database)["pending"] > 0, "the campaign must stop a drain midway"
        Uploader(device.database, device.client, clock=device.clock).drain()
        assert sync_state.pending_stats(device.database)["pending"] == 0
        assert [event["id"] for event in server.events()] == [event.id for event in created]


def test_a_kill_after_the_next_batch_was_answered_and_before_the_acknowledgements_are_on_disk(tmp_path):
    with ServerSimulator(db_path=tmp_path / "server.db") as server:
        device = make_device(tmp_path, server)
        created = device.record(200)
        # another writer holds the kiosk database: the drainer's first commit waits for it (busy
        # timeout 10 s) while the batch after it is sent and answered
        blocker = sqlite3.connect(device.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        child = subprocess.Popen([sys.executable, str(DRAINER), str(device.path), str(device.key_path), server.url,
                                  device.server_key, device.device_id, "100"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if sum(seen.startswith("answered") for seen in lines) == 2:
                break
        child.send_signal(signal.SIGKILL)
        child.stdout.read()
        child.wait()
        blocker.execute("ROLLBACK")
        blocker.close()
        assert lines == ["answered 40", "answered 40"], "the kill was to land before any acknowledgement was committed"
        assert device.database.execute("SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL").fetchone()[0] == 0
        assert [event["id"] for event in server.events()] == [event.id for event in created[:80]]
        report = Uploader(device.database, device.client, clock=device.clock, batch_size=40, max_batch_size=40).drain()
        assert report.duplicate == 80 and report.stored == 120 and report.drained
        assert [event["id"] for event in server.events()] == [event.id for event in created]
