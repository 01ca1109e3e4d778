"""`kiosk bench soak`: record many punches as fast as they go while sync uploads; watch memory, fds, threads.

The central server simulator runs as a separate process on loopback, so the resident memory,
open file descriptors and threads measured are the kiosk's alone. The kiosk side is what the
appliance runs: one database connection records, the sync worker uploads on its own thread
with its own connection. Start figures are taken after a warm-up (imports, caches, the first
batches); end figures after the last punch was uploaded. Exit status 1 when a target is missed.
"""

import gc
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

MAX_RSS_GROWTH_PCT = 5.0
DRAIN_TIMEOUT_S = 600.0


def register(subparsers):
    parser = subparsers.add_parser("soak", help="many punches with sync running: memory, fds and threads over time",
                                   description=__doc__)
    parser.add_argument("--events", type=_positive, default=10_000, help="punches to record (default %(default)s)")
    parser.add_argument("--warmup", type=_positive, default=500,
                        help="punches recorded before the start figures are taken (default %(default)s)")
    parser.add_argument("--interval-s", type=float, default=1.0,
                        help="sync worker interval while the punches go in (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def _positive(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class PunchRecorder:
    """Records one attendance punch through the attendance flow, as a finger placed at the door would.

    The flow (``AttendanceFlow``) runs on the real ports (``DevicePorts``: storage, the duplicate
    guard's and punch rule's queries, the commit) with a headless screen and no GPIO board: each
    punch is ``finger_matched`` for the next of ``PEOPLE`` enrolled people (their templates recorded
    as written to the sensor's slots, as reconciliation records them), then ``cancelled`` back home. The repeat guard is off (the same person punches again within seconds here on purpose).
    """

    PEOPLE = 3000
    SENSOR = "R307"

    def __init__(self, database, clock, *, data_key):
        from kiosk import config
        from kiosk.device_ports import DevicePorts, HeadlessScreen
        from kiosk.flows.attendance import AttendanceFlow
        from kiosk.storage import people, sensor_slots
        from kiosk.storage.db import transaction

        settings = config.build([("soak", {"attendance": {"repeat_guard_s": 0.0, "status_rule": "toggle"},
                                           "fingerprint": {"sensor_model": self.SENSOR}})])
        people.upsert_people(database, [{"person_id": str(100000 + n), "name": f"Employee {n}"}
                                        for n in range(self.PEOPLE)])
        with transaction(database):
            for n in range(self.PEOPLE):
                template = bytes([n % 251]) * 512
                people.add_finger_template(database, data_key, str(100000 + n), self.SENSOR, n, template)
                # as reconciliation records a template it wrote: only such a slot names its person
                sensor_slots.record_written(database, n, sensor_model=self.SENSOR, person_id=str(100000 + n),
                                            digest=sensor_slots.template_digest(template), now=clock.time())
        self.ports = DevicePorts(settings=settings, database=database, data_key=data_key, clock=clock,
                                 screen=HeadlessScreen())
        self.flow = AttendanceFlow(ports=self.ports, clock=clock, settings=settings)
        self.recorded = 0

    def punch(self, n):
        flow = self.flow
        flow.handle("finger_matched", slot=n % self.PEOPLE, score=100)
        if flow.state != "showing_result":
            raise RuntimeError(f"punch {n} was not recorded (flow in {flow.state})")
        self.recorded += 1
        flow.handle("cancelled")


def process_figures():
    """Resident memory (MB), open fds, OS threads and live Python memory blocks of this process, after a GC.

    Resident memory also holds what SQLite's page caches and the allocator keep after a peak;
    the count of live Python blocks is what grows when objects leak.
    """
    gc.collect()
    status = Path("/proc/self/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return {"rss_mb": round(rss_kb / 1024, 2), "fds": len(os.listdir("/proc/self/fd")), "threads": threads,
            "python_blocks": sys.getallocatedblocks()}


def _start_server(workdir):
    """`kiosk-sim server` in its own process on a free loopback port: (process, url, token)."""
    command = [sys.executable, "-m", "kiosk_sim.cli", "--log-level", "WARNING", "server", "--port", "0",
               "--db", str(workdir / "server.db")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = token = None
    for line in proc.stdout:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
        elif line.startswith("enrolment token: "):
            token = line.split(": ", 1)[1].strip()
        if url and token:
            return proc, url, token
    proc.wait()
    raise SystemExit(f"soak bench: the server simulator did not start (exit {proc.returncode})")


def run(args):
    """Set up a registered kiosk, record the punches, wait for the upload, print the figures."""
    logging.getLogger("kiosk.device_ports").setLevel(logging.WARNING)  # a line per punch would drown the figures
    from kiosk import config
    from kiosk.clock import SystemClock
    from kiosk.storage import db, sync_state
    from kiosk.sync import keys, registration
    from kiosk.sync.client import SyncClient
    from kiosk.sync.worker import SyncWorker

    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="kiosk-soak-") as tmp:
        workdir = Path(tmp)
        server, url, token = _start_server(workdir)
        try:
            key = keys.load_or_create_device_key(workdir / "device.key")
            reg = registration.register(server_url=url, token=token, device_key=key)
            settings = config.build([]).replace(sync={"interval_s": args.interval_s}).sync
            database = db.open_db(workdir / "kiosk.db")
            from kiosk.storage.seal import DataKey

            recorder = PunchRecorder(database, clock, data_key=DataKey.load_or_create(workdir / "data.key"))
            client = SyncClient(server_url=url, server_key=reg.server_signing_key, device_id=reg.device_id, device_key=key,
                                timeout_s=settings.request_timeout_s, clock=clock)
            worker = SyncWorker(db.open_db(workdir / "kiosk.db"), client, settings=settings, clock=clock,
                                key_path=workdir / "device.key")
            worker.start()
            try:
                for n in range(args.warmup):
                    recorder.punch(n)
                _wait_uploaded(database, worker)
                start = process_figures()
                began = time.perf_counter()
                for n in range(args.warmup, args.warmup + args.events):
                    recorder.punch(n)
                record_s = time.perf_counter() - began
                left = sync_state.pending_stats(database)["pending"]
                _wait_uploaded(database, worker)
                total_s = time.perf_counter() - began
                end = process_figures()
                pending = sync_state.pending_stats(database)["pending"]
            finally:
                worker.stop()
                client.close()
                database.conn.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    growth_pct = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"] * 100
    figures = {
        "events": args.events, "warmup": args.warmup, "record_seconds": round(record_s, 2),
        "events_per_s": round(args.events / record_s, 1), "seconds_until_uploaded": round(total_s, 2),
        "uploaded_while_recording": args.events - left, "pending_after": pending,
        "sync_interval_s": args.interval_s,
        "rss_mb_start": start["rss_mb"], "rss_mb_end": end["rss_mb"], "rss_growth_pct": round(growth_pct, 2),
        "fds_start": start["fds"], "fds_end": end["fds"],
        "threads_start": start["threads"], "threads_end": end["threads"],
        "python_blocks_start": start["python_blocks"], "python_blocks_end": end["python_blocks"],
    }
    figures["within_targets"] = (growth_pct <= MAX_RSS_GROWTH_PCT and end["fds"] <= start["fds"]
                                 and end["threads"] <= start["threads"] and pending == 0)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.events} punches in {record_s:.1f} s ({figures['events_per_s']} per s) with sync running "
              f"every {args.interval_s:g} s ({figures['uploaded_while_recording']} uploaded meanwhile); all uploaded "
              f"after {total_s:.1f} s (pending {pending})")
        print(f"resident memory {start['rss_mb']:.1f} -> {end['rss_mb']:.1f} MB ({growth_pct:+.2f} %, "
              f"target <= {MAX_RSS_GROWTH_PCT:g} %); open fds {start['fds']} -> {end['fds']}; "
              f"threads {start['threads']} -> {end['threads']}; live Python blocks {start['python_blocks']} -> "
              f"{end['python_blocks']} (after {args.warmup} warm-up punches)")
        print("within targets" if figures["within_targets"] else "TARGET MISSED")
    return 0 if figures["within_targets"] else 1


def _wait_uploaded(database, worker):
    from kiosk.storage import sync_state

    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    worker.sync_now()
    while sync_state.pending_stats(database)["pending"]:
        if time.monotonic() > deadline:
            raise SystemExit(f"soak bench: uploads did not finish within {DRAIN_TIMEOUT_S:.0f} s")
        if not worker.is_alive:
            raise SystemExit("soak bench: the sync worker stopped")
        threading.Event().wait(0.1)  # the worker uploads on its own thread; look again shortly
        worker.sync_now()
