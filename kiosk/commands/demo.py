"""`kiosk demo`: the whole product on its simulators, headless; says what it did.

The path, end to end, with real models on real face and fingerprint images:
central server simulator -> device registration -> people and face templates downloaded by
sync -> hardware self-test -> attendance by face (1:N + liveness challenge) and by fingerprint
(on the simulated R30x module, through pyfingerprint) -> door relay -> batch upload to the
server (hash chain verified there) -> push to a ZKTeco ADMS server.
"""

import argparse
import functools
import logging
import shutil
import signal
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

RICHARD = "Richard_Myers"   # performs the head-turn challenge in the camera simulator
FINGERS = {"emp-fp-1": "FVC2002_DB1_B/101", "emp-fp-2": "FVC2002_DB1_B/102"}
UNKNOWN_FINGER = "FVC2002_DB1_B/109"


def register(sub):
    parser = sub.add_parser("demo", help="run the product end to end on the simulators", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", metavar="DIR", help="keep the demo's database and logs here (default: temp)")
    parser.add_argument("--people", type=int, default=12, help="people enrolled from the face dataset (default 12)")
    parser.add_argument("--datasets", metavar="DIR", help="shared datasets folder (default: ../shared/datasets)")
    parser.add_argument("--verbose", action="store_true", help="show the parts' INFO logs between the steps")
    parser.set_defaults(func=run)


class Demo:
    """Runs the steps in order, printing what each did."""

    def __init__(self, workdir, datasets, people):
        self.workdir = workdir
        self.datasets = datasets
        self.people = people
        self.step_no = 0
        self.closers = []
        self.results = {}

    def step(self, title):
        self.step_no += 1
        print(f"\n[{self.step_no}] {title}", flush=True)

    def say(self, text):
        print(f"    {text}", flush=True)

    def close(self):
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as e:  # a failing close must not hide the demo's result
                log.warning("closing demo part: %s", e)

    # -- steps -----------------------------------------------------------------------------------

    def settings(self):
        from kiosk import config

        keys = self.workdir / "keys"
        return config.build([("demo", {
            "hardware": {"backend": "sim"},
            "storage": {"data_dir": str(self.workdir / "data")},
            "security": {"data_key_file": str(keys / "data.key"), "device_key_file": str(keys / "device.key")},
            "sync": {"interval_s": 1.0},
        })])

    def start_server(self):
        from kiosk_sim.server import ServerSimulator

        self.step("Central server simulator")
        server = ServerSimulator(db_path=self.workdir / "server.db", workdir=self.workdir / "server").start()
        self.closers.append(server.close)
        self.say(f"listening on {server.url} (HTTP on loopback; schema at {server.url}/openapi.json)")
        return server

    def enrol_on_server(self, server, pipeline, lfw):
        """The central enrolment station: embed each person's first photo, publish to the server."""
        import cv2

        self.step(f"Central enrolment: {self.people} people from {lfw.name}, first photo each")
        names = sorted(p.name for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)
        chosen = [RICHARD] + [n for n in names if n != RICHARD][: self.people - 1]
        enrolled = {}
        for name in chosen:
            photos = sorted((lfw / name).glob("*.jpg"))
            faces = pipeline.process(cv2.cvtColor(cv2.imread(str(photos[0])), cv2.COLOR_BGR2RGB))
            if not faces:
                self.say(f"{name}: no face found in {photos[0].name}, skipped")
                continue
            server.add_person(name, name=name.replace("_", " "))
            server.set_face_templates(name, pipeline.model_id, [faces[0].embedding])
            enrolled[name] = photos
        for person_id in FINGERS:
            server.add_person(person_id, name=f"Employee {person_id[-1]}")
        self.say(f"{len(enrolled)} face templates ({pipeline.model_id}) and {len(FINGERS)} fingerprint-only "
                 "employees published")
        return enrolled

    def register_device(self, settings, server):
        from kiosk.sync.keys import load_or_create_device_key
        from kiosk.sync.registration import register

        self.step("Device registration (one-time enrolment token + Ed25519 device key)")
        device_key = load_or_create_device_key(settings.security.device_key_file)
        reg = register(server_url=server.url, token=server.issue_enrolment_token(), device_key=device_key)
        self.say(f"registered as device {reg.device_id}; server clock {time.strftime('%H:%M:%S', time.gmtime(reg.server_time))} UTC")
        return settings.replace(sync={"server_url": server.url, "device_id": reg.device_id},
                                security={"server_public_key": reg.server_public_key})

    def self_test(self, settings, sims):
        from kiosk import app, doctor

        self.step("Hardware self-test (kiosk doctor) on the simulators")
        settings = sims.settings_for(settings)
        report = doctor.run_checks(settings,
                                   open_camera=lambda: app.build_camera(settings, player=sims.player),
                                   open_sensor=lambda: app.build_fingerprint_sensor(settings),
                                   open_board=lambda: app.build_board(settings, pin_factory=sims.pin_factory),
                                   verify_models=None)
        for line in doctor.render_table(report).splitlines():
            self.say(line)
        return report

    def download(self, worker, database, key, model_id):
        from kiosk.models.gallery import Gallery
        from kiosk.storage import people

        self.step("Sync down: people and sealed face templates")
        worker.run_once()
        gallery = Gallery.load(database, key, model_id)
        self.say(f"{people.count_people(database)} people, {len(gallery)} face templates in the gallery "
                 f"(sealed with AES-GCM at rest)")
        return gallery

    def face_attendance(self, settings, pipeline, gallery, database, board, clock, scenario, *, challenge,
                        expect):
        """Play a camera scenario through detection, 1:N, the decision rule and the liveness challenge."""
        import cv2

        from kiosk.models.decision import DecisionRule, Liveness
        from kiosk.models.liveness import ActiveChallenge
        from kiosk.storage import events
        from kiosk_sim.camera import ScenarioPlayer

        player = ScenarioPlayer(scenario, loop=False)
        player.open()
        rule = DecisionRule.from_settings(settings.face)
        attempt = ActiveChallenge.from_settings(settings.face, challenge, started_s=0.0)
        fps = player.fps
        decision, status, frames, started = None, None, 0, time.perf_counter()
        while True:
            frame = player.read()
            if frame is None:
                break
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # cameras give BGR, the models take RGB
            timestamp_s = frames / fps
            frames += 1
            faces = pipeline.process(frame)  # the face mesh it runs also feeds the liveness challenge
            status = attempt.status if attempt.status.finished else attempt.update(
                faces[0].landmarks if faces else None, timestamp_s)
            liveness = Liveness.PASSED if status.passed else (
                Liveness.FAILED if status.finished else Liveness.PENDING)
            matches = gallery.search(faces[0].embedding, k=2) if faces else []
            decision = rule.add_frame(matches, liveness=liveness)
            if decision.accepted or liveness is Liveness.FAILED:
                break
        player.close()
        took = time.perf_counter() - started
        shown = f"{scenario}: {frames} frames in {took:.1f} s; challenge '{challenge}' -> {status.stage.name.lower()}"
        if status.reason:
            shown += f" ({status.reason})"
        self.say(shown)
        if decision is not None and decision.accepted:
            event = events.record_event(database, person_id=decision.person_id, status_code=0, verify_mode="face",
                                        score=decision.score, clock=clock)
            board.open_door()  # only after the event is committed
            board.show("ok")
            self.say(f"ACCEPTED {decision.person_id} (score {decision.score:.2f}, lead {decision.margin:.2f}, "
                     f"{decision.agreeing_frames} agreeing frames): check-in #{event.seq} committed, door opened")
            outcome = "accepted"
        else:
            board.show("error")
            reason = decision.reason.value if decision else "no frames"
            self.say(f"REFUSED: {reason}; nothing recorded, door stays shut")
            outcome = "refused"
        if outcome != expect:
            raise RuntimeError(f"demo scenario {scenario} was {outcome}, expected {expect}")
        return outcome

    def finger_attendance(self, settings, sims, database, key, board, clock):
        from kiosk import app
        from kiosk.errors import NoMatchError
        from kiosk.storage import events, people

        self.step("Fingerprint: enrol 2 employees on the sensor (3 captures each), then clock in")
        sensor_settings = sims.settings_for(settings)
        with app.build_fingerprint_sensor(sensor_settings) as sensor:
            info = sensor.probe()
            self.say(f"sensor {info.model} on {info.port}: capacity {info.capacity}, {info.template_count} stored")
            model = settings.fingerprint.sensor_model
            for slot, (person_id, finger) in enumerate(FINGERS.items()):
                def place(step, number, finger=finger):
                    if step == "place_finger":
                        sims.sensor.place_finger(finger, number)
                    elif step == "lift_finger":
                        sims.sensor.lift_finger()
                enrollment = sensor.enroll(slot=slot, on_step=place)
                sims.sensor.lift_finger()
                people.add_finger_template(database, key, person_id, model, slot, enrollment.template)
                self.say(f"{person_id}: template stored in sensor slot {slot} and sealed in the database")
            for person_id, finger in FINGERS.items():
                sims.sensor.place_finger(finger, 6)  # an impression not used at enrolment
                slot, score = sensor.identify(timeout_s=2)
                sims.sensor.lift_finger()
                who = people.person_for_slot(database, model, slot)
                event = events.record_event(database, person_id=who, status_code=0, verify_mode="fingerprint",
                                            score=score, clock=clock)
                board.open_door()
                self.say(f"{who}: matched slot {slot} (score {score}); check-in #{event.seq} committed, door opened")
            sims.sensor.place_finger(UNKNOWN_FINGER, 1)
            try:
                sensor.identify(timeout_s=2)
                raise RuntimeError("an unknown finger was matched")
            except NoMatchError as e:
                self.say(f"unknown finger: refused, screen guidance '{e.guidance}'")
            finally:
                sims.sensor.lift_finger()

    def upload(self, worker, server, database):
        from kiosk.storage import events, outbox

        self.step("Sync up: signed, gzip-compressed batch upload")
        worker.run_once()
        stats = outbox.stats(database)
        stored = server.events()
        self.say(f"server holds {len(stored)} events from this device; outbox pending {stats['pending']}")
        self.say(f"local hash chain verified: {events.verify_chain(database)} events")
        if stats["pending"]:
            raise RuntimeError("the outbox did not drain")
        return len(stored)

    def adms(self, settings, database, clock):
        from kiosk.sync.adms import AdmsAdapter
        from kiosk_sim.adms import AdmsServer

        self.step("ZKTeco PUSH/ADMS adapter (for existing HR systems)")
        hr = AdmsServer().start()
        self.closers.append(hr.close)
        adapter = AdmsAdapter.from_settings(settings.replace(sync={"adms_url": hr.url, "adms_serial": "KIOSKDEMO1",
                                                                   "adms_timezone": "+03:00"}),
                                            database, clock=clock)
        adapter.run_once()
        rows = hr.records()
        self.say(f"ATTLOG rows accepted by the ADMS server: {len(rows)}")
        for row in rows[:3]:
            self.say(f"  {row}")
        return len(rows)


def _datasets(arg):
    """The shared datasets folder; --datasets also points the in-process simulators at it."""
    import os

    from kiosk.errors import ConfigError
    from kiosk_sim.datasets import datasets_dir

    if arg:
        os.environ["KIOSK_DATASETS"] = str(Path(arg).resolve())
    path = datasets_dir()
    if not (path / "faces" / "lfw").is_dir():
        raise ConfigError(f"datasets not found at {path} (expected faces/lfw inside); pass --datasets DIR")
    return path


def _cleans_up_on_sigterm(func):
    """SIGTERM ends the demo through its ``finally`` (work folder and keys removed), not mid-air."""

    @functools.wraps(func)
    def wrapper(args):
        def stop(signum, _frame):
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return func(args)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


@_cleans_up_on_sigterm
def run(args):
    from kiosk import app
    from kiosk.clock import SystemClock
    from kiosk.models.pipeline import FacePipeline
    from kiosk.storage import db
    from kiosk.storage.seal import DataKey
    from kiosk.sync.service import build_worker

    datasets = _datasets(args.datasets)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the steps say what happened
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kiosk-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, datasets, args.people)
    started = time.perf_counter()
    print(f"kiosk demo: the product end to end on its simulators (work folder {workdir})")
    try:
        settings = demo.settings()
        server = demo.start_server()
        pipeline = FacePipeline.from_settings(settings.face)
        enrolled = demo.enrol_on_server(server, pipeline, datasets / "faces" / "lfw")
        settings = demo.register_device(settings, server)
        clock = SystemClock()
        database = db.open_db(settings.db_path)
        key = DataKey.load_or_create(settings.security.data_key_file)
        sims = app.start_simulators(settings, sensor_speed=0.05)
        demo.closers.append(sims.close)
        report = demo.self_test(settings, sims)
        worker = build_worker(settings, database, clock=clock, data_key=key)
        gallery = demo.download(worker, database, key, pipeline.model_id)
        board = app.build_board(settings, pin_factory=sims.pin_factory)
        demo.closers.append(board.close)

        demo.step("Attendance by face: 1:N search, K-of-N agreement, active liveness challenge")
        demo.face_attendance(settings, pipeline, gallery, database, board, clock, "head_turn_left",
                             challenge="turn_left", expect="accepted")
        demo.face_attendance(settings, pipeline, gallery, database, board, clock, "stand_still",
                             challenge="turn_left", expect="refused")
        demo.face_attendance(settings, pipeline, gallery, database, board, clock, "printed_photo",
                             challenge="turn_right", expect="refused")
        demo.finger_attendance(settings, sims, database, key, board, clock)
        door_pulses = len(sims.panel.pulses("door"))
        uploaded = demo.upload(worker, server, database)
        pushed = demo.adms(settings, database, clock)

        demo.step("Summary")
        failed = [c.name for c in report.checks if c.status == "FAIL"]
        demo.say(f"people enrolled: {len(enrolled)} by face, {len(FINGERS)} by fingerprint")
        demo.say(f"door relay pulses: {door_pulses}; events uploaded: {uploaded}; ADMS rows: {pushed}")
        demo.say(f"self-test failures: {', '.join(failed) if failed else 'none'}")
        demo.say(f"finished in {time.perf_counter() - started:.1f} s")
        print("\nNot in this demo yet: the touchscreen UI and the activation flow (later issues).")
        return 0
    finally:
        demo.close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
