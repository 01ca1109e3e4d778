"""`kiosk demo` where there is a display: the kiosk window and the simulator control panel, by hand.

The same parts as the scripted demo and `kiosk run` (server simulator, registration, sync down,
app.start_kiosk on the simulators) with the touchscreen in a window and, beside it, the control
panel (``kiosk_sim.control_panel``): a person chooses who walks up, places fingers, presses the
exit button, trips the tamper switch, takes the server offline and reads the SMS log. People are
enrolled centrally with 10-digit IDs (typeable on the kiosk's ID keypad); one of them also has
a finger on the sensor and a PIN. Runs until either window is closed or Ctrl-C.
"""

import logging
import signal

log = logging.getLogger(__name__)

FIRST_ID = 1000000000


def has_display():
    """A display Qt can open (tried in a child process first: a broken one falls back to headless)."""
    from kiosk.ui import runner

    if not runner.display_available():
        return False
    problem = runner.qt_start_problem()
    if problem:
        print(f"kiosk demo: the display cannot be used ({problem}); running the scripted scenarios headless")
        return False
    return True


def _finger_template(finger):
    """A template made the real way, on a separate simulated module (the central enrolment station)."""
    from kiosk.drivers.fingerprint import FingerprintSensor
    from kiosk_sim.r30x import start_simulator

    with start_simulator(speed=0) as station, FingerprintSensor(port=station.port, timeout_s=1.0) as sensor:
        def place(step, number):
            if step == "place_finger":
                station.place_finger(finger, number)
            elif step == "lift_finger":
                station.lift_finger()
        return sensor.enroll(on_step=place).template


def _enrol_centrally(demo, server, pipeline, lfw, names):
    """People on the server with numeric IDs and one face template each; returns {name: person_id}."""
    import cv2

    ids = {}
    for i, name in enumerate(names):
        photos = sorted((lfw / name).glob("*.jpg"))
        faces = pipeline.process(cv2.cvtColor(cv2.imread(str(photos[0])), cv2.COLOR_BGR2RGB))
        if not faces:
            continue
        person_id = str(FIRST_ID + i)
        server.add_person(person_id, name=name.replace("_", " "))
        server.set_face_templates(person_id, pipeline.model_id, [faces[0].embedding])
        ids[name] = person_id
    demo.say(f"{len(ids)} people enrolled centrally: " + ", ".join(f"{n.replace('_', ' ')} ({i})"
                                                                      for n, i in ids.items()))
    return ids


def run_live(args, datasets, workdir):
    """The interactive demo; returns the exit code."""
    import contextlib

    from PyQt5.QtCore import QTimer

    from kiosk import app
    from kiosk.clock import SystemClock
    from kiosk.commands.demo import (ADMIN_PIN, DEMO_PIN, FINGERS, RICHARD, UNKNOWN_FINGER, Demo,
                                     choose_stranger)
    from kiosk.device_ports import HeadlessScreen
    from kiosk.models.pipeline import FacePipeline
    from kiosk.storage import pins
    from kiosk.ui import runner
    from kiosk_sim.control_panel import ControlPanel
    from kiosk_sim.liveness_scenarios import turn_photos
    from kiosk_sim.scenarios import FaceLibrary

    demo = Demo(workdir, datasets, args.people)
    lfw = datasets / "faces" / "lfw"
    print(f"kiosk demo: the kiosk window and the simulator control panel (work folder {workdir})")
    with contextlib.ExitStack() as stack:
        stack.callback(demo.close)
        settings = demo.settings().replace(ui={"hide_cursor": False, "display": "window"})
        server = demo.start_server()
        pipeline = FacePipeline.from_settings(settings.face)
        names = sorted(p.name for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)
        ids = _enrol_centrally(demo, server, pipeline, lfw, [RICHARD] + [n for n in names if n != RICHARD]
                               [: args.people - 1])
        richard = ids[RICHARD]
        demo.step("Richard Myers' right index finger enrolled on a separate (simulated) enrolment station")
        server.set_finger_templates(richard, settings.fingerprint.sensor_model, [(1, _finger_template(FINGERS[1]))])
        settings = demo.register_device(settings, server)
        clock = SystemClock()
        sims = stack.enter_context(app.start_simulators(settings, sensor_speed=0.05))
        settings = sims.settings_for(settings)
        database, key = app.open_storage(settings)
        stack.callback(database.close)
        sims.player.play("no_face")
        ui = runner.prepare(settings, HeadlessScreen(), mode="window")
        kiosk, board, _sensor_worker, reconcile = demo.start_kiosk(settings, sims, key, clock, stack,
                                                                   screen=ui.screen)
        worker = app.build_sync_worker(settings, clock=clock, data_key=key, board=board, on_fingers_changed=reconcile,
                                       on_faces_changed=lambda p: app.refresh_gallery(kiosk.gallery, database, key, p))
        demo.download(worker, kiosk)
        kiosk.ports.pages.sync_worker = worker
        worker.start()
        stack.callback(worker.close)
        pins.set_pin(database, richard, DEMO_PIN, now=clock.time())
        stranger = choose_stranger(pipeline, lfw, set(ids))
        people = {RICHARD: turn_photos(FaceLibrary(lfw), RICHARD), "Stranger (not enrolled)": stranger}
        window = ui.open_window(post=kiosk.host.post, clock=clock, camera=kiosk.camera, mode="window",
                                health=kiosk.problems)
        panel = ControlPanel(player=sims.player, sensor=sims.sensor, gpio_panel=sims.panel, server=server,
                             listeners=ui.screen.listeners, people=people, photo_of=RICHARD,
                             fingers={"Richard Myers, right index": FINGERS[1], "Unknown finger": UNKNOWN_FINGER},
                             door=board.door,
                             hints=[f"Admin PIN: {ADMIN_PIN} (the Admin button, top corner)",
                                    f"Richard Myers: ID {richard}, PIN {DEMO_PIN}"])
        window.setWindowTitle("kiosk")
        window.show()
        panel.move(window.x() + window.width() + 16, window.y())
        panel.show()
        quit_ = ui.app.quit
        window.destroyed.connect(quit_)
        ui.app.setQuitOnLastWindowClosed(True)
        previous = signal.signal(signal.SIGINT, lambda *_: quit_())
        wake = QTimer()  # lets Python see Ctrl-C while Qt waits
        wake.timeout.connect(lambda: None)
        wake.start(250)
        demo.step("The kiosk window and the control panel are open: try it; close a window to stop")
        try:
            ui.app.exec_()
        finally:
            signal.signal(signal.SIGINT, previous)
            for timer in ui.timers + [wake]:
                timer.stop()
            panel.close()
            window.close()
    return 0
