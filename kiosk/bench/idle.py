"""`kiosk bench idle`: CPU and resident memory of `kiosk run --backend sim` at rest, with many people enrolled.

A kiosk spends most of its day with nobody in front of it, on a passive heatsink. This
benchmark enrols N people (default 10,000; one random 128-d face template each, sealed in the
database the way the kiosk stores them, with a data key and device key of its own), starts the
appliance as systemd would (``kiosk run --backend sim`` in its own process, the camera
simulator playing the empty room, ``no_face``), waits for READY=1 and a warm-up, then reads the
process's CPU time (user + system, every thread, from /proc/PID/stat) and resident memory
(VmRSS, and the peak VmHWM) over ``--seconds`` of wall time. ``cpu_percent`` is CPU time over
wall time, in percent of one core. Targets (issue 13): at most 10% of one core and 250 MB.
The simulators run inside the measured process (they are part of ``--backend sim``), so the
figures are an upper bound for the appliance alone. Other processes on the machine do not
change the CPU time this process uses, only how long its work takes.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kiosk import argtypes
from kiosk.config import FaceSettings

log = logging.getLogger(__name__)

TARGET_CPU_PERCENT = 10.0
TARGET_RSS_MB = 250.0
READY_TIMEOUT_S = 300.0
MODEL_ID = FaceSettings().embedder  # the default embedder: the gallery loads templates tagged with it


def register(subparsers):
    parser = subparsers.add_parser("idle", help="CPU and memory of `kiosk run --backend sim` with nobody in view",
                                   description=__doc__)
    parser.add_argument("--people", type=argtypes.positive_int, default=10_000,
                        help="people enrolled, one face template each (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured wall time (default %(default)s)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="wait after READY=1 first (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def enrol(data_dir, key_file, people_count, *, seed=0):
    """Create the kiosk's database in ``data_dir`` with ``people_count`` people and a face template each."""
    from kiosk.storage import db, people, seal

    data_dir.mkdir(parents=True, exist_ok=True)
    key = seal.DataKey.create(key_file)
    database = db.open_db(data_dir / "kiosk.db")
    ids = [f"{200000 + i}" for i in range(people_count)]
    people.upsert_people(database, [{"person_id": person_id} for person_id in ids])
    rng = np.random.default_rng(seed)
    with db.transaction(database):  # one commit for all: enrolment speed is not what is measured
        for person_id in ids:
            people.add_face_template(database, key, person_id, MODEL_ID, rng.standard_normal(128).astype(np.float32))
    database.conn.close()


def _memory_mb(pid):
    """``{VmRSS, VmHWM, RssAnon, RssFile}`` of a process in MB (RssFile: mapped files, such as model files)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
            name, number = line.split(":", 1)
            values[name] = int(number.split()[0]) * 1024 / 1e6
    return values


def _wait_ready(listener, child):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"kiosk run exited with status {child.returncode} before READY=1")
        try:
            if "READY=1" in listener.recv(4096).decode().splitlines():
                return
        except socket.timeout:
            continue
    raise RuntimeError("kiosk run did not report READY=1 in time")


def measure(people_count, *, seconds, warmup_s):
    from kiosk_sim import proc_stat

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        enrol(tmp / "data", tmp / "data.key", people_count)
        enrol_s = time.perf_counter() - began
        notify = tmp / "notify.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(notify))
        listener.settimeout(1.0)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify), KIOSK_STORAGE__DATA_DIR=str(tmp / "data"),
                   KIOSK_SECURITY__DATA_KEY_FILE=str(tmp / "data.key"),
                   KIOSK_SECURITY__DEVICE_KEY_FILE=str(tmp / "device.key"), KIOSK_CAMERA__SCENARIO="no_face")
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        child = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", "/dev/null", "--log-level", "WARNING",
                                  "run", "--backend", "sim"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            _wait_ready(listener, child)
            time.sleep(warmup_s)
            cpu0, wall0 = proc_stat.cpu_seconds(child.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, wall1 = proc_stat.cpu_seconds(child.pid), time.monotonic()
            memory = _memory_mb(child.pid)
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            listener.close()
    cpu_percent = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    rss_mb = memory.get("VmRSS", 0.0)
    return {
        "people": people_count, "seconds": round(wall1 - wall0, 1), "cpu_percent": round(cpu_percent, 2),
        "rss_mb": round(rss_mb, 1), "peak_rss_mb": round(memory.get("VmHWM", 0.0), 1),
        "rss_anon_mb": round(memory.get("RssAnon", 0.0), 1), "rss_file_mb": round(memory.get("RssFile", 0.0), 1),
        "enrol_seconds": round(enrol_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "target": {"cpu_percent_max": TARGET_CPU_PERCENT, "rss_mb_max": TARGET_RSS_MB,
                   "met": cpu_percent <= TARGET_CPU_PERCENT and rss_mb <= TARGET_RSS_MB},
    }


def run(args):
    if args.seconds <= 0 or args.warmup_s < 0:
        print("kiosk bench idle: --seconds must be positive and --warmup-s not negative", file=sys.stderr)
        return 2
    try:
        figures = measure(args.people, seconds=args.seconds, warmup_s=args.warmup_s)
    except RuntimeError as e:
        print(f"kiosk bench idle: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures))
    else:
        verdict = "met" if figures["target"]["met"] else "NOT met"
        print(f"kiosk run --backend sim at rest, {figures['people']:,} people enrolled, over {figures['seconds']} s: "
              f"{figures['cpu_percent']}% of one core, {figures['rss_mb']} MB resident (peak {figures['peak_rss_mb']} "
              f"MB); target (<= {TARGET_CPU_PERCENT:.0f}%, <= {TARGET_RSS_MB:.0f} MB): {verdict}")
    return 0
