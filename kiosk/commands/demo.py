"""`kiosk demo`: the whole product on its simulators; says what it did.

With a display (or --window): the kiosk window and a simulator control panel, to try by hand
(kiosk/commands/demo_live.py). Without one (or --headless): the scripted scenarios below, then
a screenshot of every screen in both languages; exit 1 if any scenario fails.

The path, end to end, with real models on real face and fingerprint images, through the same
flows and wiring as `kiosk run` (app.start_kiosk): central server simulator -> device
registration -> people and face templates downloaded by sync -> hardware self-test -> scripted
people at the camera who follow the screen's prompts: a clock-in by face (liveness bound to the
tracked face), the same person again ("already recorded"), an unknown person and a printed photo
of an enrolled one refused -> an admin enrols an employee at the kiosk (face, two fingers on the
simulated R30x module through pyfingerprint, a PIN) -> clock-ins by fingerprint and by ID + PIN
-> door relay -> batch upload to the server (hash chain verified there) -> ZKTeco ADMS push.
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
FINGERS = {1: "FVC2002_DB1_B/104", 2: "FVC2002_DB1_B/107"}  # the kiosk-enrolled employee's two fingers
KIOSK_EMPLOYEE = "emp-kiosk-1"
ADMIN_PIN = "975310"
UNKNOWN_FINGER = "FVC2002_DB1_B/102"
DEMO_PIN = "482916"
KIOSK_EMPLOYEE_PIN = "650284"


def register(sub):
    parser = sub.add_parser("demo", help="run the product end to end on the simulators", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", metavar="DIR", help="keep the demo's database and logs here (default: temp)")
    parser.add_argument("--people", type=int, default=12, help="people enrolled from the face dataset (default 12)")
    parser.add_argument("--datasets", metavar="DIR", help="shared datasets folder (default: ../shared/datasets)")
    parser.add_argument("--verbose", action="store_true", help="show the parts' INFO logs between the steps")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="the scripted scenarios even where there is a display (the default without one)")
    mode.add_argument("--window", action="store_true",
                      help="the kiosk window and the simulator control panel (the default with a display)")
    parser.add_argument("--screens", default="demo-screens", metavar="DIR",
                        help="headless: where the screenshots of every screen go (default: ./demo-screens)")
    parser.set_defaults(func=run)


class Demo:
    """Runs the steps in order, printing what each did."""

    def __init__(self, workdir, datasets, people):
        self.workdir = workdir
        self.datasets = datasets
        self.people = people
        self.step_no = 0
        self.closers = []
        self.screens = []       # (screen, data) as the kiosk showed them
        self.actor = None       # reads the screen for the scripted person in front of the camera
        self.server_key = None

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
        from kiosk.pinhash import hash_pin

        keys = self.workdir / "keys"
        return config.build([("demo", {
            "hardware": {"backend": "sim"},
            "storage": {"data_dir": str(self.workdir / "data")},
            "security": {"data_key_file": str(keys / "data.key"), "device_key_file": str(keys / "device.key"),
                         "admin_pin_hash": hash_pin(ADMIN_PIN)},
            "sync": {"interval_s": 1.0},
            # the simulated people can turn their heads but not blink (no closed-eye photos)
            "face": {"challenge": "turn"},
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
        self.say(f"{len(enrolled)} people with face templates ({pipeline.model_id}) published")
        return enrolled

    def register_device(self, settings, server):
        from kiosk.sync.keys import load_or_create_device_key
        from kiosk.sync.registration import register

        self.step("Device registration (one-time enrolment token + Ed25519 device key)")
        device_key = load_or_create_device_key(settings.security.device_key_file)
        reg = register(server_url=server.url, token=server.issue_enrolment_token(), device_key=device_key)
        self.say(f"registered as device {reg.device_id}; server clock {time.strftime('%H:%M:%S', time.gmtime(reg.server_time))} UTC")
        return settings.replace(sync={"server_url": server.url, "device_id": reg.device_id},
                                security={"server_public_key": reg.server_public_key,
                                          "server_signing_key": reg.server_signing_key})

    def self_test(self, settings, sims):
        from kiosk import app, doctor

        self.step("Hardware self-test (kiosk doctor) on the simulators")
        settings = sims.settings_for(settings)
        report = doctor.run_checks(settings,
                                   open_camera=lambda: app.build_camera(settings, player=sims.player),
                                   open_sensor=lambda: app.build_fingerprint_sensor(settings),
                                   open_board=lambda: app.build_board(settings, pin_factory=sims.pin_factory),
                                   verify_models=None, pulse_door=True)
        for line in doctor.render_table(report).splitlines():
            self.say(line)
        return report

    def download(self, worker, kiosk):
        self.step("Sync down: people and sealed face templates, into the running kiosk's gallery")
        worker.run_once()
        self.say(f"{len(kiosk.gallery)} face templates of {kiosk.gallery.people_count} people in the gallery "
                 f"(sealed with AES-GCM at rest)")

    # -- the kiosk at work: everything below goes through the flows ------------------------------

    def start_kiosk(self, settings, sims, key, clock, stack, screen=None):
        """The kiosk as `kiosk run` builds it (app.start_kiosk), on the simulators (``screen``: the touchscreen's port)."""
        import threading

        from kiosk import app
        from kiosk.device_ports import HeadlessScreen

        self.step("Kiosk started through app.py: camera, face engine, flows, fingerprint poller")
        board = stack.enter_context(app.build_board(settings, pin_factory=sims.pin_factory))
        sensor_worker, reconcile = app.build_sensor_keeper(settings, data_key=key)
        stack.callback(sensor_worker.close)
        self.screen = screen or HeadlessScreen()
        self.screen.listeners.append(self._on_screen)
        stop = threading.Event()
        stack.callback(stop.set)
        kiosk = app.start_kiosk(settings, stack=stack, clock=clock, board=board, data_key=key, player=sims.player,
                                sensor_worker=sensor_worker, screen=self.screen, stop=stop, reconcile_sensor=reconcile)
        self.say(f"gallery {len(kiosk.gallery)} templates; flow state {kiosk.flow.state}")
        return kiosk, board, sensor_worker, reconcile

    def screenshots(self, out):
        """Every screen in Arabic and English (sample data), and each screen as this run showed it."""
        from kiosk.ui.screenshots import write_demo_screens

        self.step(f"Screenshots of every screen in Arabic and English, into {out}/")
        written, faults = write_demo_screens(out, self.screens)
        self.say(f"{len(written)} pictures ({sum(1 for p in written if p.name.startswith('run-'))} of this run's "
                 f"screens with its real data); layout faults: {len(faults) or 'none'}")
        if faults:
            raise RuntimeError("layout faults: " + "; ".join(faults[:5]))

    def _on_screen(self, screen, data):
        """Plays the person at the kiosk: reads the prompt and does what it asks."""
        self.screens.append((screen, data))
        if self.actor is not None:
            self.actor(screen, data)

    def wait_for(self, screens, *, timeout_s=20.0, what="the kiosk", since=None):
        """Wait (real time: the simulators run live) for one of ``screens``; progress every 2 s.

        ``since``: how many screens had been shown before the event that leads there was posted
        (the flows' thread may show it before this is called); default: from now.
        """
        deadline = time.monotonic() + timeout_s
        seen = len(self.screens) if since is None else since
        next_note = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for screen, data in self.screens[seen:]:
                if screen in screens:
                    return screen, data
            seen = len(self.screens)
            if time.monotonic() >= next_note:
                current, data = self.screens[-1] if self.screens else ("-", {})
                hint = data.get("guidance") or data.get("challenge")
                self.say(f"... waiting for {what} (screen now: {current}{f', {hint}' if hint else ''})")
                next_note += 2.0
            time.sleep(0.05)
        raise RuntimeError(f"{what}: none of {screens} within {timeout_s:.0f} s")

    def walk_up(self, kiosk, sims, person, *, expect, what, tries=1):
        """A scripted person walks up; returns the final screen.

        ``tries``: a live person refused by the liveness check (too slow a turn on a slow machine)
        steps back and walks up once more, as people do; the output says so.
        """
        from kiosk_sim.scripted_person import PromptFollower

        for attempt in range(1, tries + 1):
            fresh = person if attempt == 1 else person.again()
            self.actor = PromptFollower(fresh)
            kiosk.host.post("cancelled")  # whatever was on screen, start from home
            sims.player.play(fresh)
            screen, data = self.wait_for(("result", "not_recognised", "refused"), what=what)
            if screen == "result":
                already = (f"already recorded at {data['time']}" if data["already"]
                           else f"{data['status_name']} at {data['time']}")
                self.say(f"RECORDED {data['name']}: {already} (by {data['verify_mode']})")
            else:
                self.say(f"REFUSED: {data.get('reason')}; nothing recorded")
            fresh.leave()
            sims.player.play("no_face")
            self.actor = None
            outcome = {"result": "recorded"}.get(screen, "refused")
            if outcome == expect:
                return screen, data
            if attempt < tries and str(data.get("reason", "")).startswith("liveness"):
                self.say("... the person steps back and tries once more")
                continue
            raise RuntimeError(f"{what}: {outcome}, expected {expect}")

    def face_attendance(self, kiosk, sims, enrolled, pipeline, lfw):
        from kiosk_sim.scripted_person import ScriptedPerson

        self.step("Attendance by face: tracked face, liveness challenge bound to it, 1:N, K-of-N")
        from kiosk_sim.liveness_scenarios import turn_photos
        from kiosk_sim.scenarios import FaceLibrary

        frontal, turns = turn_photos(FaceLibrary(lfw), RICHARD)  # his real head-turn photos
        person = ScriptedPerson(frontal, turns=turns, hold_frames=12)
        self.say(f"{person.person} walks up (enrolled from another photo) and turns as the screen asks")
        self.walk_up(kiosk, sims, person, expect="recorded", what=f"{person.person} clocking in", tries=2)
        self.step("The same person again a moment later")
        _, data = self.walk_up(kiosk, sims, ScriptedPerson(frontal, turns=turns, hold_frames=12), expect="recorded",
                               what="a duplicate punch", tries=2)
        if not data["already"]:
            raise RuntimeError("a second punch within the repeat guard was recorded again")
        self.step("An unknown person (not enrolled) walks up and is asked to turn")
        stranger = choose_stranger(pipeline, lfw, enrolled)  # turns through the simulator's head model
        self.walk_up(kiosk, sims, ScriptedPerson(stranger, head_turn_deg=STRANGER_TURN_DEG, hold_frames=12),
                     expect="refused", what="an unknown face")
        self.step("A printed photo of the enrolled person held up to the camera")
        self.actor = None
        name = person.person
        kiosk.host.post("cancelled")
        sims.player.play(f"printed_photo:person={name},photo=4")  # the photo he walks up with
        screen, data = self.wait_for(("result", "not_recognised", "refused"), what="a printed photo")
        if screen == "result":
            raise RuntimeError("a printed photo of an enrolled person was accepted")
        self.say(f"REFUSED printed photo of {name}: {data.get('reason')}; nothing recorded, door shut")
        sims.player.play("no_face")

    def _place_when_asked(self, screen, data, sims):
        """The employee at the sensor during enrolment: places and lifts the finger the screen names."""
        if screen == "enrol_finger_retry":  # the sensor asks again: lift, and try that finger once more
            sims.sensor.lift_finger()
            self.say(f"... the sensor asked to try again ({data.get('guidance')}); the employee does")
            self.kiosk_host.post("retry_requested")
            return
        if screen != "enrol_finger":
            return
        if data.get("step") == "place_finger":
            sims.sensor.place_finger(FINGERS[data.get("finger", 1)], int(data.get("number") or 1))
        elif data.get("step") in ("lift_finger", "captured"):
            sims.sensor.lift_finger()  # a person lifts once the capture is taken

    def kiosk_enrolment(self, kiosk, sims, lfw, enrolled):
        """An admin enrols a new employee at the kiosk, through the admin and enrolment flows."""
        from kiosk.errors import KioskError

        self.step("Enrolment at the kiosk: admin PIN, face from the camera, two fingers, a PIN")
        name = next(p.name for p in sorted(lfw.iterdir())
                    if p.is_dir() and p.name not in enrolled and len(list(p.glob("*.jpg"))) >= 3)
        host = kiosk.host
        host.post("cancelled")
        host.post("admin_requested")
        host.post("pin_entered", pin="000000")
        self.wait_for(("admin_locked",), what="a wrong admin PIN")
        host.post("pin_entered", pin=ADMIN_PIN)
        self.wait_for(("admin_menu",), what="the admin menu")
        self.say("a wrong admin PIN refused, the right one opens the admin menu")
        host.post("enrol_requested")
        self.wait_for(("enrol_details",), what="the enrolment form")
        sims.player.play(f"walk_up:person={name},photo=1")  # the new employee stands at the kiosk
        host.post("details_entered", person_id=KIOSK_EMPLOYEE, name=name.replace("_", " "), role="employee")
        self.kiosk_host = host
        self.actor = lambda screen, data: self._place_when_asked(screen, data, sims)
        screen, data = self.wait_for(("enrol_finger", "enrol_duplicate", "enrol_failed"), timeout_s=60,
                                     what="the face captures")
        if screen != "enrol_finger":
            raise KioskError(f"face enrolment stopped: {screen} {data}")
        needed = next((d.get("needed") for sc, d in reversed(self.screens) if sc == "enrol_face"), "the")
        self.say(f"{name}: {needed} face captures passed the quality gate; no one enrolled has this face")
        sims.player.play("no_face")
        screen, data = self.wait_for(("enrol_pin", "enrol_duplicate", "enrol_failed"), timeout_s=120,
                                     what="two fingers on the sensor")
        sims.sensor.lift_finger()
        self.actor = None
        if screen != "enrol_pin":
            raise KioskError(f"finger enrolment stopped: {screen} {data}")
        self.say("two fingers captured (3 placements each); neither is on the sensor for someone else")
        host.post("pin_entered", pin=KIOSK_EMPLOYEE_PIN)
        host.post("pin_entered", pin=KIOSK_EMPLOYEE_PIN)
        self.wait_for(("enrol_summary",), what="the summary")
        host.post("confirmed")
        screen, data = self.wait_for(("enrol_done", "enrol_failed"), what="saving the enrolment")
        if screen != "enrol_done":
            raise KioskError(f"enrolment not saved: {data}")
        host.post("exit_requested")
        host.post("exit_requested")
        self.wait_for(("attendance_idle",), what="the kiosk back home")
        self.say(f"{KIOSK_EMPLOYEE} saved: face and finger templates sealed, written to the sensor, queued for "
                 "the server; the admin left")
        return name

    def finger_attendance(self, kiosk, sims):
        from kiosk.errors import KioskError

        self.step("Fingerprint: the employee just enrolled clocks in; an unknown finger is refused")
        kiosk.host.post("cancelled")
        sims.sensor.place_finger(FINGERS[1], 6)  # an impression not used at enrolment
        screen, data = self.wait_for(("result", "not_recognised", "refused"), what="the enrolled finger")
        sims.sensor.lift_finger()
        if screen != "result":
            raise KioskError(f"the enrolled finger was refused: {data.get('reason') or data.get('guidance')}")
        self.say(f"RECORDED {data['name']}: {data['status_name']} at {data['time']} (by fingerprint)")
        kiosk.host.post("cancelled")
        sims.sensor.place_finger(UNKNOWN_FINGER, 1)
        screen, data = self.wait_for(("result", "not_recognised", "refused"), what="an unknown finger")
        sims.sensor.lift_finger()
        if screen == "result":
            raise KioskError("an unknown finger was recorded")
        self.say(f"unknown finger: refused, screen guidance '{data.get('guidance') or data.get('reason')}'")
        kiosk.host.post("cancelled")

    def pin_attendance(self, kiosk, database, clock, person_id):
        from kiosk.storage import pins

        self.step("ID number + PIN (the fallback for worn fingerprints)")
        pins.set_pin(database, person_id, DEMO_PIN, now=clock.time())
        kiosk.host.post("cancelled")
        kiosk.host.post("pin_requested")
        kiosk.host.post("id_entered", typed=person_id)
        kiosk.host.post("pin_entered", pin="000000")
        screen, data = self.wait_for(("pin_keypad",), what="a wrong PIN")
        kiosk.host.post("pin_entered", pin=DEMO_PIN)
        screen, data = self.wait_for(("result", "refused"), what="the right PIN")
        if screen != "result":
            raise RuntimeError(f"PIN refused: {data.get('reason')}")
        if data["already"]:
            raise RuntimeError(f"{person_id} had already punched: the PIN step proves nothing")
        self.say(f"wrong PIN refused first; then RECORDED {data['name']}: {data['status_name']} at "
                 f"{data['time']} (by PIN)")
        kiosk.host.post("cancelled")


    def citizen_services(self, kiosk, sims, server, worker, pipeline, lfw, enrolled):
        """The four citizen services, each completed by a scripted citizen (kiosk/commands/demo_services.py)."""
        import cv2
        from kiosk_sim.liveness_scenarios import turn_photos
        from kiosk_sim.scenarios import FaceLibrary
        from kiosk_sim.scripted_person import ScriptedPerson

        from kiosk.commands.demo_services import run_services

        frontal, turns = turn_photos(FaceLibrary(lfw), RICHARD)
        photo = cv2.cvtColor(cv2.imread(str(enrolled[RICHARD][0])), cv2.COLOR_BGR2RGB)
        on_record = pipeline.process(photo)[0].embedding     # the face the national platform holds for him
        return run_services(self, kiosk, sims, server, worker, face_on_record=on_record,
                            person_for_face=lambda: ScriptedPerson(frontal, turns=turns, hold_frames=12))

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
        from kiosk.storage import people
        from kiosk.sync.adms import AdmsAdapter
        from kiosk_sim.adms import AdmsServer

        self.step("ZKTeco PUSH/ADMS adapter (for existing HR systems)")
        hr = AdmsServer().start()
        self.closers.append(hr.close)
        # HR servers know people by numeric employee numbers: the demo hands them out as an HR admin would
        unnumbered = [row["person_id"] for row in database.query(
            "SELECT person_id FROM people WHERE adms_pin IS NULL ORDER BY person_id")]
        for n, person_id in enumerate(unnumbered, start=1001):
            people.set_adms_pin(database, person_id, str(n))
        zone = "+03:00"  # the HR system's local time, as ZKTeco devices send it
        adapter = AdmsAdapter.from_settings(settings.replace(sync={"adms_url": hr.url, "adms_serial": "KIOSKDEMO1",
                                                                   "adms_timezone": zone}),
                                            database, clock=clock)
        adapter.run_once()
        rows = hr.records()
        self.say(f"ATTLOG rows accepted by the ADMS server: {len(rows)} "
                 f"(times in its zone, UTC{zone}: sync.adms_timezone)")
        for row in rows[:3]:
            self.say(f"  {row}")
        return len(rows)


STRANGER_TURN_DEG = 35.0  # as far as the attendance bench's people turn (kiosk.bench.attendance)


def choose_stranger(pipeline, lfw, enrolled):
    """Someone never enrolled, chosen as the attendance bench chooses its cast
    (kiosk.bench.attendance_cast): the path of a clear frontal photo besides their first; they
    turn the head through the camera simulator's head model."""
    from kiosk.bench import attendance_cast as cast

    for person, photos in cast.list_people(lfw):
        if person in enrolled:
            continue
        frontal = cast.frontal_photo(cast.measure(pipeline, person, photos), skip_first=True)
        if frontal is not None:
            return frontal
    raise RuntimeError(f"no person in {lfw} has a clear frontal photo besides their first")


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
    import contextlib

    from kiosk import app, doctor
    from kiosk.clock import SystemClock
    from kiosk.models.pipeline import FacePipeline

    datasets = _datasets(args.datasets)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the steps say what happened
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kiosk-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from kiosk.commands.demo_live import has_display, run_live

    if args.window or (not args.headless and has_display()):

        try:
            return run_live(args, datasets, workdir)
        finally:
            if own_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    demo = Demo(workdir, datasets, args.people)
    started = time.perf_counter()
    print(f"kiosk demo: the product end to end on its simulators (work folder {workdir})")
    try:
        with contextlib.ExitStack() as stack:
            settings = demo.settings()
            server = demo.start_server()
            pipeline = FacePipeline.from_settings(settings.face)
            lfw = datasets / "faces" / "lfw"
            enrolled = demo.enrol_on_server(server, pipeline, lfw)
            settings = demo.register_device(settings, server)
            from kiosk.storage.sealbox import public_key_from_hex

            demo.server_key = public_key_from_hex(settings.security.server_public_key)
            clock = SystemClock()
            sims = stack.enter_context(app.start_simulators(settings, sensor_speed=0.05))
            settings = sims.settings_for(settings)
            database, key = app.open_storage(settings)  # the database and data key, as provisioning leaves them
            stack.callback(database.close)
            report = demo.self_test(settings, sims)
            sims.player.play("no_face")
            kiosk, board, sensor_worker, reconcile = demo.start_kiosk(settings, sims, key, clock, stack)
            worker = app.build_sync_worker(settings, clock=clock, data_key=key, board=board,
                                           on_fingers_changed=reconcile,
                                           on_faces_changed=lambda ids: app.refresh_gallery(kiosk.gallery, database,
                                                                                            key, ids))
            demo.download(worker, kiosk)
            demo.face_attendance(kiosk, sims, enrolled, pipeline, lfw)
            demo.kiosk_enrolment(kiosk, sims, lfw, enrolled)
            demo.finger_attendance(kiosk, sims)
            demo.pin_attendance(kiosk, database, clock, [n for n in enrolled if n != RICHARD][0])
            board.door.wait_for_closed(timeout=10.0)
            door_opens = board.door.pulses          # open commands the relay driver carried out
            relay_activations = len(sims.panel.pulses("door"))  # on the mock pin; overlapping opens merge
            uploaded = demo.upload(worker, server, database)
            pushed = demo.adms(settings, database, clock)
            services = demo.citizen_services(kiosk, sims, server, worker, pipeline, lfw, enrolled)

            demo.step("Summary")
            failed = [c.name for c in report.checks if c.status == doctor.FAIL]
            records = sum(1 for s, d in demo.screens if s == "result" and not d.get("already"))
            already = sum(1 for s, d in demo.screens if s == "result" and d.get("already"))
            demo.say(f"people enrolled: {len(enrolled)} centrally (face), 1 at this kiosk (face, 2 fingers, PIN)")
            demo.say(f"attendance recorded: {records}; answered 'already recorded': {already}")
            demo.say(f"door opened {door_opens} times (relay seen on the mock pin {relay_activations} times: "
                     f"the self-test's pulse, and opens within {settings.gpio.door_pulse_s:g} s of each other "
                     "extend one opening)")
            demo.say(f"events uploaded: {uploaded}; ADMS rows: {pushed}")
            demo.say(f"citizen services completed and applied by the server: {len(services)} of 4 "
                     f"({', '.join(services)})")
            demo.say(f"self-test failures: {', '.join(failed) if failed else 'none'}")
            if door_opens != records + already:
                raise RuntimeError(f"door opened {door_opens} times for {records + already} people let in")
            demo.screenshots(args.screens)
            demo.say(f"finished in {time.perf_counter() - started:.1f} s")
        return 0
    finally:
        demo.close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
