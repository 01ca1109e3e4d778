"""`kiosk bench ui`: the touchscreen's start-up, event-loop latency under load, and idle CPU.

- **start-up**: `kiosk run --backend sim` with the touchscreen (a window on Qt's offscreen
  platform) over a database of ``--people`` enrolled people with sealed face templates: seconds
  from starting the process to systemd's READY=1, which the kiosk sends when the window has
  painted its first screen (models loaded, gallery of every template built, simulators up).
- **idle CPU**: the same process with nobody in front of the camera (scenario ``no_face``) for
  ``--seconds``: CPU time over wall time, in % of one core, beside the same kiosk headless.
- **event-loop latency**: in this process, the kiosk built as `kiosk run` builds it
  (app.start_kiosk) with the camera simulator playing people walking up at 15 fps and the face
  pipeline analysing every frame on the flows' thread, and the window refreshing the live view;
  a 20 ms QTimer records how late each tick fires (p50, p99, max); then the same probe on the
  same Qt loop with the kiosk stopped, as the peer that shows what the machine's load alone costs.

Figures depend on the machine and on its load: the command prints the load average with them.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from kiosk import argtypes

PROBE_MS = 20


def _prepare_database(settings, count, *, seed=0):
    """``count`` people, one sealed face template each (random unit vectors of the embedder's size)."""
    from kiosk.models.embedder import EMBEDDERS
    from kiosk.storage import db, people
    from kiosk.storage.seal import DataKey

    database = db.open_db(settings.db_path)
    key = DataKey.load_or_create(settings.security.data_key_file)
    people.bind_key(database, key)
    model_id = settings.face.embedder
    dim = EMBEDDERS[model_id].dims
    rng = np.random.default_rng(seed)
    ids = [str(2000000000 + n) for n in range(count)]
    people.upsert_people(database, [{"person_id": p, "name": f"Employee {n}"} for n, p in enumerate(ids)])
    vectors = rng.standard_normal((count, dim)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [(p, model_id, key.seal(v.tobytes(), context=people.face_context(p, model_id)), 0.0)
            for p, v in zip(ids, vectors)]
    with db.transaction(database):
        database.conn.executemany("INSERT INTO face_templates (person_id, model_id, sealed, created_at) "
                                  "VALUES (?, ?, ?, ?)", rows)
    database.close()


def _env(workdir, display):
    return dict(os.environ, KIOSK_STORAGE__DATA_DIR=str(workdir / "data"),
                KIOSK_SECURITY__DATA_KEY_FILE=str(workdir / "data.key"),
                KIOSK_SECURITY__DEVICE_KEY_FILE=str(workdir / "device.key"),
                KIOSK_CAMERA__SCENARIO="no_face", KIOSK_UI__DISPLAY=display, QT_QPA_PLATFORM="offscreen")


def _drain(listener):
    try:
        while listener.recv(4096):
            pass
    except OSError:
        pass


def run_kiosk(workdir, *, display, seconds):
    """Start `kiosk run`, time READY=1, then measure its CPU use for ``seconds``; stop it."""
    path = str(workdir / f"notify-{display}.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(300)
    env = {**_env(workdir, display), "NOTIFY_SOCKET": path}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", "/dev/null", "--log-level", "WARNING",
                              "run", "--backend", "sim"], env=env, stderr=subprocess.DEVNULL)
    status = ""
    try:
        while True:
            lines = listener.recv(4096).decode().splitlines()
            status = next((line[7:] for line in lines if line.startswith("STATUS=")), status)
            if "READY=1" in lines:
                break
        ready_s = time.perf_counter() - started
        # keep reading (as systemd does): a full socket would block the kiosk's heartbeat
        threading.Thread(target=_drain, args=(listener,), daemon=True).start()
        time.sleep(3.0)  # let the start-up's last work finish before measuring idle
        from kiosk_sim.proc_stat import cpu_seconds

        cpu0, wall0 = cpu_seconds(child.pid), time.perf_counter()
        time.sleep(seconds)
        cpu = (cpu_seconds(child.pid) - cpu0) / (time.perf_counter() - wall0)
        child.send_signal(signal.SIGTERM)
        child.wait(30)
    finally:
        child.kill()
        listener.close()
    return {"ready_s": round(ready_s, 2), "idle_cpu_pct": round(100 * cpu, 1), "status": status}


def event_loop_latency(workdir, *, seconds):
    """p50/p99/max lateness of a 20 ms Qt timer while the camera and the pipeline run at 15 fps."""
    import contextlib

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from kiosk import app, config
    from kiosk.clock import SystemClock
    from kiosk.device_ports import HeadlessScreen
    from kiosk.ui import runner

    settings = config.build([("bench", {"hardware": {"backend": "sim"},
                                        "storage": {"data_dir": str(workdir / "data")},
                                        "security": {"data_key_file": str(workdir / "data.key")},
                                        "camera": {"scenario": "walk_up", "fps": 15.0},
                                        "ui": {"display": "window", "hide_cursor": False}})])
    clock = SystemClock()
    with contextlib.ExitStack() as stack:
        sims = stack.enter_context(app.start_simulators(settings))
        settings = sims.settings_for(settings)
        database, key = app.open_storage(settings)
        stack.callback(database.close)
        board = stack.enter_context(app.build_board(settings, pin_factory=sims.pin_factory))
        ui = runner.prepare(settings, HeadlessScreen(), mode="window")
        stop = threading.Event()
        stack.callback(stop.set)
        kiosk = app.start_kiosk(settings, stack=stack, clock=clock, board=board, data_key=key, player=sims.player,
                                stop=stop, screen=ui.screen)
        sims.follow_prompts(kiosk.screen)
        window = ui.open_window(post=kiosk.host.post, clock=clock, camera=kiosk.camera, mode="window")
        window.show()
        kiosk.host.set_face_mode("identify")
        frame = kiosk.camera.latest()
        first = frame.index if frame is not None else 0
        loaded = _probe(ui.app, seconds)
        for t in ui.timers:
            t.stop()
        frame = kiosk.camera.latest()
        frames = (frame.index if frame is not None else 0) - first
        painted = getattr(window.screen, "camera_view", None)
        window.close()
        stop.set()
    # the peer, in the same run: the same probe on the same Qt loop with nothing else running
    bare = _probe(ui.app, seconds)
    return {**loaded, "camera_fps": round(frames / seconds, 1),
            "frames_painted": painted.frames_shown if painted is not None else None, "bare_loop": bare}


def _probe(app, seconds):
    """Run the Qt loop for ``seconds`` with a 20 ms timer; how late its ticks fired (ms)."""
    from PyQt5.QtCore import QElapsedTimer, QTimer

    late, elapsed = [], QElapsedTimer()

    def probe():
        if elapsed.isValid():
            late.append(max(0.0, elapsed.nsecsElapsed() / 1e6 - PROBE_MS))
        elapsed.restart()

    timer = QTimer()
    timer.timeout.connect(probe)
    timer.start(PROBE_MS)
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec_()
    timer.stop()
    values = np.asarray(late[5:] or [0.0])
    return {"p50_ms": round(float(np.percentile(values, 50)), 1), "p99_ms": round(float(np.percentile(values, 99)), 1),
            "max_ms": round(float(values.max()), 1), "ticks": int(values.size)}


def register(sub):
    parser = sub.add_parser("ui", help="touchscreen: start-up with N people, event-loop latency at 15 fps, idle CPU",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=argtypes.positive_int, default=10_000,
                        help="enrolled people in the database at start-up (default %(default)s)")
    parser.add_argument("--seconds", type=argtypes.positive_float, default=20.0,
                        help="how long each of idle CPU and latency is measured (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def run(args):
    from kiosk import config

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-ui-") as tmp:
        workdir = Path(tmp)
        settings = config.build([("bench", {"storage": {"data_dir": str(workdir / "data")},
                                            "security": {"data_key_file": str(workdir / "data.key")}})])
        (workdir / "data").mkdir()
        t0 = time.perf_counter()
        _prepare_database(settings, args.people)
        prepared_s = time.perf_counter() - t0
        with_ui = run_kiosk(workdir, display="window", seconds=args.seconds)
        headless = run_kiosk(workdir, display="headless", seconds=args.seconds)
        latency = event_loop_latency(workdir, seconds=args.seconds)
    figures = {"people": args.people, "load_average": [round(v, 2) for v in os.getloadavg()],
               "cpus": os.cpu_count(), "startup_to_first_screen_s": with_ui["ready_s"],
               "startup_headless_s": headless["ready_s"], "idle_cpu_pct_one_core": with_ui["idle_cpu_pct"],
               "idle_cpu_pct_headless": headless["idle_cpu_pct"], "status": with_ui["status"],
               "event_loop_late_ms": latency, "database_prepared_s": round(prepared_s, 1)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"kiosk bench ui ({args.people} people; load average {figures['load_average']} on {figures['cpus']} CPUs)")
    print(f"  start-up to first screen   {with_ui['ready_s']:.2f} s   (headless to READY: {headless['ready_s']:.2f} s)"
          f"   [{with_ui['status']}]")
    print(f"  idle CPU, nobody in view   {with_ui['idle_cpu_pct']:.1f} % of one core   "
          f"(headless: {headless['idle_cpu_pct']:.1f} %)")
    print(f"  event loop, camera + pipeline at 15 fps: p50 {latency['p50_ms']} ms late, p99 {latency['p99_ms']} ms, "
          f"max {latency['max_ms']} ms over {latency['ticks']} ticks of {PROBE_MS} ms "
          f"(camera {latency['camera_fps']} fps; {latency['frames_painted']} frames painted)")
    bare = latency["bare_loop"]
    print(f"  event loop, nothing running (peer, same run):  p50 {bare['p50_ms']} ms late, p99 {bare['p99_ms']} ms, "
          f"max {bare['max_ms']} ms")
    return 0
