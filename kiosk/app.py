"""Composition root: the only place that builds and wires the parts.

Nothing imports this module but ``kiosk.cli``. Builders here pick backends by name from the
settings (never silently) and hand each part what it needs.
"""

import json
import logging
import os
import sys
import time

from kiosk import config

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level="INFO", json_lines=False, stream=None):
    """Configure logging once: journal-friendly text (no timestamps: journald adds them) or JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    from kiosk.admin_pages import RECENT

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(RECENT)  # the admin's log page
    root.setLevel(level)


def load_settings(args=None):
    """Settings from --config / $KIOSK_CONFIG / /etc/kiosk/kiosk.toml and the environment."""
    return config.load(getattr(args, "config", None))


# --- hardware: camera, GPIO board, simulators -------------------------------------------------

CAMERA_BACKENDS = {"pi": "picamera2", "usb": "v4l2", "sim": "player"}


def build_scenario_player(settings, *, full_size=False):
    """The simulator's camera: plays ``camera.scenario`` (a scenario name, video file or image folder).

    ``full_size``: frames of camera.width x camera.height (reading a provisioning code needs them)
    instead of the simulator's 640x480."""
    from kiosk_sim.camera import ScenarioPlayer

    if full_size:
        return ScenarioPlayer(settings.camera.scenario, fps=settings.camera.fps,
                              size=(settings.camera.width, settings.camera.height))
    return ScenarioPlayer(settings.camera.scenario, fps=settings.camera.fps)


def build_camera(settings, *, player=None, clock=None):
    """The camera for ``hardware.backend``: Pi camera, USB camera, or the scenario player (sim)."""
    from kiosk.drivers import camera

    backend = CAMERA_BACKENDS[settings.hardware.backend]
    if backend == "player" and player is None:
        player = build_scenario_player(settings)
    return camera.from_settings(backend, settings.camera, player=player, clock=clock)


MICROPHONE_BACKENDS = {"pi": "sounddevice", "usb": "sounddevice", "sim": "player"}


def build_microphone(settings, *, player=None):
    """The microphone for ``hardware.backend``: ALSA through sounddevice, or the simulator's player (sim)."""
    from kiosk.drivers import microphone

    backend = MICROPHONE_BACKENDS[settings.hardware.backend]
    if backend == "player" and player is None:
        from kiosk_sim.microphone import ScenarioMicrophone

        player = ScenarioMicrophone()
    return microphone.from_settings(backend, settings.voice, player=player)


def build_voice_step(settings, *, microphone, show, rng=None):
    """Voice print capture (phrase, gate, embedding, decision) with the ``voice`` settings."""
    from kiosk.flows.voice_step import VoiceStep
    from kiosk.models.vad import Vad
    from kiosk.models.voice_embedder import load_voice_embedder

    digits = None
    if settings.voice.digit_check:
        from kiosk.models.spoken_digits import SpokenDigits

        digits = SpokenDigits(vad=Vad())
    return VoiceStep.from_settings(settings.voice, microphone=microphone, vad=Vad(), show=show, rng=rng,
                                   embedder=load_voice_embedder(threads=1), digits=digits)


def build_pin_factory(settings):
    """RPi.GPIO on a Pi 4, lgpio on a Pi 5, the simulator's recording MockFactory for 'sim'."""
    from kiosk.drivers import gpio

    name = gpio.pin_factory_name(settings.hardware.backend, settings.hardware.pi_model)
    if name == "mock":
        from kiosk_sim.gpio import SimFactory

        return SimFactory()
    return gpio.make_pin_factory(name)


def build_board(settings, *, pin_factory=None):
    """The GPIO board (door relay, lights, buzzer, inputs); it closes a factory it made itself."""
    from kiosk.drivers.gpio import Board

    own = pin_factory is None
    factory = build_pin_factory(settings) if own else pin_factory
    try:
        return Board(settings.gpio, pin_factory=factory, close_factory=own)
    except Exception:
        if own:
            factory.close()
        raise


def build_fingerprint_sensor(settings):
    """The fingerprint driver on ``fingerprint.port`` (not opened yet)."""
    from kiosk.drivers.fingerprint import FingerprintSensor

    return FingerprintSensor.from_settings(settings.fingerprint)


def external_sensor_port(settings):
    """The pty of an external `kiosk-sim sensor` if ``fingerprint.port`` points at one, else None."""
    port = settings.fingerprint.port
    real = os.path.realpath(port)
    if real.startswith("/dev/pts/") and os.path.exists(real):
        return port
    return None


class Simulators:
    """The simulators started in-process for ``hardware.backend = 'sim'``; ``close()`` stops them."""

    def __init__(self, *, sensor=None, player=None, pin_factory=None, panel=None, sensor_port=None):
        self.sensor = sensor            # kiosk_sim.r30x.SensorSimulator, or None if external
        self.sensor_port = sensor_port  # the pty the fingerprint driver should open
        self.player = player            # kiosk_sim.camera.ScenarioPlayer
        self.pin_factory = pin_factory  # kiosk_sim.gpio.SimFactory
        self.panel = panel              # kiosk_sim.gpio.Panel

    def settings_for(self, settings):
        """``settings`` with ``fingerprint.port`` pointing at the simulated sensor."""
        return settings.replace(fingerprint={"port": self.sensor_port})

    def follow_prompts(self, screen):
        """When the camera plays a scripted person, let them read ``screen`` and do what it asks."""
        from kiosk_sim.scripted_person import PromptFollower

        scene = self.player.scene
        person = getattr(scene, "person", None) or (scene if hasattr(scene, "perform") else None)
        if person is not None and hasattr(screen, "listeners"):
            screen.listeners.append(PromptFollower(person))
            log.info("simulated person %s follows the screen's prompts", getattr(person, "person", "?"))

    def close(self):
        sensor, self.sensor = self.sensor, None
        if sensor is not None:
            sensor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_simulators(settings, *, faults=(), sensor_speed=1.0, full_size=False):
    """Start the sensor simulator (unless an external one is configured), camera player and mock GPIO.

    ``faults`` are (part, kind) pairs applied at start: ('sensor', 'silence'|'busy'|...),
    ('camera', 'stall'|'freeze'|'unplug').
    """
    from kiosk.errors import ConfigError
    from kiosk_sim.gpio import Panel, SimFactory

    faults = list(faults)
    player = build_scenario_player(settings, full_size=full_size)
    factory = SimFactory()
    panel = Panel(factory, settings.gpio)
    sensor = None
    port = external_sensor_port(settings)
    if port is None:
        from kiosk_sim.r30x import start_simulator

        sensor = start_simulator(model=settings.fingerprint.sensor_model, speed=sensor_speed,
                                 password=settings.fingerprint.password)
        port = sensor.port
        log.info("fingerprint simulator on %s", port)
    else:
        log.info("using the external fingerprint simulator at %s", port)
    sims = Simulators(sensor=sensor, player=player, pin_factory=factory, panel=panel, sensor_port=port)
    try:
        for part, kind in faults:
            if part == "sensor":
                if sensor is None:
                    raise ConfigError("sensor faults need the in-process simulator (fingerprint.port points "
                                      "at an external one: start that with --fault instead)")
                sensor.set_fault(kind)
            elif part == "camera" and kind in ("stall", "freeze", "unplug"):
                getattr(player, kind)()
            else:
                raise ConfigError(f"unknown simulator fault {part}:{kind} (known: sensor:<fault>, "
                                  "camera:stall|freeze|unplug)")
    except Exception:
        sims.close()
        raise
    return sims


# --- the appliance ----------------------------------------------------------------------------

def open_storage(settings):
    """The database and the data key; a key that does not match the database is an error.

    The database is checked (PRAGMA quick_check) first: an empty or damaged file stops the kiosk
    with a CorruptDatabaseError that says how to recover; it is never replaced silently.
    """
    from kiosk.storage import db, people
    from kiosk.storage.seal import DataKey

    database = db.open_db(settings.db_path, check=True)
    key = DataKey.load_or_create(settings.security.data_key_file)
    people.bind_key(database, key)
    return database, key


def build_sensor_keeper(settings, *, data_key, clock=None):
    """The fingerprint sensor behind its worker thread, with its library reconciled to the database.

    Returns (worker, reconcile) where ``reconcile()`` queues a reconcile on the sensor's thread;
    (None, None) when the sensor does not answer: the kiosk keeps running (face and PIN still
    work) and `kiosk doctor` names the sensor. The working set is sized from the capacity the
    sensor reports now; reconciles share one write budget (``fingerprint.reconcile_writes_per_min``).
    """
    from kiosk.clock import SystemClock
    from kiosk.drivers.fingerprint_worker import SensorWorker
    from kiosk.errors import HardwareError
    from kiosk.flows import working_set
    from kiosk.flows.sensor_library import reconcile
    from kiosk.storage import db

    clock = clock or SystemClock()
    sensor = build_fingerprint_sensor(settings)
    try:
        sensor.open()
        capacity = sensor.capacity
    except HardwareError as e:
        log.error("fingerprint sensor unavailable (%s); continuing without it", e)
        sensor.close()
        return None, None
    size = working_set.working_set_size(settings.fingerprint, capacity)
    budget = working_set.WriteBudget(settings.fingerprint.reconcile_writes_per_min, clock=clock)
    log.info("fingerprint working set: %d of the sensor's %d slots", size, capacity)
    worker = SensorWorker(sensor)
    database = db.open_db(settings.db_path)  # used only on the sensor's thread

    def queue_reconcile(_changed=None):
        worker.run(_run_reconcile)

    def _run_reconcile(sensor):
        try:
            reconcile(sensor, database, data_key, sensor_model=settings.fingerprint.sensor_model, clock=clock,
                      size=size, budget=budget)
        except Exception:  # the next sync or restart tries again; the database keeps the truth
            log.exception("fingerprint library reconcile failed")

    queue_reconcile()
    return worker, queue_reconcile


def build_sync_worker(settings, *, clock, data_key, board, on_fingers_changed=None, on_faces_changed=None):
    """The central-server sync worker on its own connection, or None before provisioning."""
    from kiosk.storage import db
    from kiosk.sync.command_path import Limits
    from kiosk.sync.service import build_worker
    from kiosk.sync.worker import SyncHooks

    if not settings.sync.device_id:
        log.warning("not provisioned (sync.device_id is empty): records stay on this device until "
                    "`kiosk provision` registers it")
        return None

    def open_door(args):
        # args were checked by the command path: a finite pulse within gpio.door_max_pulse_s
        board.open_door(args["seconds"])
        return {"opened_s": args["seconds"]}

    hooks = SyncHooks(commands={"open_door": open_door}, on_fingers_changed=on_fingers_changed,
                      on_faces_changed=on_faces_changed,
                      limits=Limits(settings.gpio.door_pulse_s, settings.gpio.door_max_pulse_s))
    return build_worker(settings, db.open_db(settings.db_path), clock=clock, hooks=hooks, data_key=data_key)


def build_adms_adapter(settings, *, clock, board, request_restart=None):
    """The optional ZKTeco PUSH/ADMS adapter, or None when ``sync.adms_url`` is empty.

    ``request_restart()``: what an ADMS REBOOT does; `kiosk run` passes "stop cleanly", and
    kiosk.service (Restart=always) starts the service again. The machine is never rebooted.
    """
    from kiosk.storage import db
    from kiosk.sync.adms import AdmsAdapter

    if not settings.sync.adms_url:
        return None

    def open_door(*, door=1, seconds):
        board.open_door(seconds)

    return AdmsAdapter.from_settings(settings, db.open_db(settings.db_path), open_door=open_door, clock=clock,
                                     request_restart=request_restart)


# --- the kiosk: flows on the hardware ---------------------------------------------------------

def build_face_engine(settings, database, key):
    """Face pipeline, the gallery loaded from storage, and the engine the flows read frames through."""
    import numpy as np

    from kiosk.models.embedder import CROP_SIZE
    from kiosk.models.engine import FaceEngine
    from kiosk.models.gallery import Gallery
    from kiosk.models.pipeline import FacePipeline

    pipeline = FacePipeline.from_settings(settings.face)
    dim = len(pipeline.embedder.embed(np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)))
    # near-ties read their float32 templates through ``database`` during a search: in the kiosk
    # that is the flows' own connection, and the flows thread is where the engine searches
    gallery = Gallery.load(database, key, pipeline.model_id, dim=dim)
    passive = None
    if settings.face.liveness in ("passive", "both"):
        from kiosk.models.liveness import PassiveAntiSpoof

        passive = PassiveAntiSpoof(threads=settings.face.threads, threshold=settings.face.passive_threshold)
    return FaceEngine.from_settings(settings.face, pipeline=pipeline, gallery=gallery, passive=passive)


def refresh_gallery(gallery, database, key, person_ids):
    """Reload the face templates of ``person_ids`` after a sync changed them (removed ones vanish)."""
    from kiosk.storage import people

    wanted = set(person_ids)
    fresh = [(p, v) for p, v in people.face_templates(database, key, gallery.model_id) if p in wanted]
    for person_id in wanted:
        gallery.remove(person_id)
    for person_id, vector in fresh:
        gallery.add(person_id, vector, model_id=gallery.model_id)
    log.info("gallery refreshed for %d people (%d templates)", len(wanted), len(fresh))


class Kiosk:
    """The running kiosk's parts: flows host, ports, face engine, sensor poller, camera; ``close()``."""

    def __init__(self, *, host, ports, engine, flow, camera=None, poller=None, screen=None):
        self.host = host
        self.ports = ports
        self.engine = engine
        self.flow = flow
        self.camera = camera
        self.poller = poller
        self.screen = screen

    @property
    def gallery(self):
        return self.engine.gallery

    def problems(self):
        """What a person at the kiosk cannot use now: ``camera_unavailable``, ``sensor_unavailable``."""
        found = []
        if self.camera is None or not self.camera.is_healthy:
            found.append("camera_unavailable")
        if self.poller is None or not self.poller.is_alive or not self.poller.healthy:
            found.append("sensor_unavailable")
        return found

    def close(self):
        if self.poller is not None:
            self.poller.close()
        if self.camera is not None:
            self.camera.stop()


def voice_in_use(settings):
    """Whether this door takes voice prints (alone or as a second factor)."""
    return "voice" in settings.attendance.verify_modes or settings.attendance.voice_second_factor


def build_voice_worker(settings, *, microphone, ports, post, before=None):
    """The voice verification worker (not started), showing through ``ports`` and posting to the flows."""
    from kiosk.voice_worker import VoiceWorker

    step = build_voice_step(settings, microphone=microphone, show=ports.show)
    return VoiceWorker(step, post, template_for=ports.voice_print, show=ports.show, before=before)


def build_kiosk(settings, *, clock, board, camera, sensor_worker, data_key, screen=None, rng=None,
                reconcile_sensor=None, microphone=None):
    """The flows wired to the hardware: a FlowHost (not started), its ports, engine and poller.

    Attendance is the home flow; ``admin_requested`` switches to a fresh AdminFlow (enrolment
    runs inside it), and the host goes home when it finishes.
    """
    from kiosk.admin_pages import PUNCH_MODE_META, PUNCH_MODES, AdminPages
    from kiosk.device_ports import DevicePorts, HeadlessScreen
    from kiosk.flows.admin import AdminFlow
    from kiosk.flows.attendance import AttendanceFlow
    from kiosk.host import FlowHost, SensorPoller
    from kiosk.storage import db

    database = db.open_db(settings.db_path)  # the flows' own connection, used on their thread
    engine = build_face_engine(settings, database, data_key)
    screen = screen or HeadlessScreen()
    server_key = None
    if settings.security.server_public_key:
        from kiosk.storage.sealbox import public_key_from_hex

        server_key = public_key_from_hex(settings.security.server_public_key)
    ports = DevicePorts(settings=settings, database=database, data_key=data_key, clock=clock, screen=screen,
                        board=board, gallery=engine.gallery, server_key=server_key,
                        on_fingers_changed=reconcile_sensor)
    host = FlowHost(None, clock=clock, camera=camera, engine=engine)
    ports.host = host
    if sensor_worker is not None:
        ports.poller = SensorPoller(sensor_worker, host.post,
                                    capture_timeout_s=min(1.0, settings.fingerprint.capture_timeout_s))
    if microphone is not None and voice_in_use(settings):
        ports.voice = build_voice_worker(settings, microphone=microphone, ports=ports, post=host.post)
    flow = AttendanceFlow(ports=ports, clock=clock, settings=settings, rng=rng)
    chosen = db.get_meta(database, PUNCH_MODE_META)
    if chosen in PUNCH_MODES and chosen != settings.attendance.status_rule:
        log.info("punch-state mode %s (chosen on the admin page)", chosen)
        flow.set_punch_rule(chosen)
    host.home = host.flow = flow
    ports.pages = AdminPages(settings=settings, database=database, clock=clock, board=board, camera=camera,
                             poller=ports.poller, gallery=engine.gallery, attendance=flow)
    host.flow_factories["admin_requested"] = lambda: AdminFlow(ports=ports, clock=clock, settings=settings)
    add_service_flows(host, settings, clock=clock, database=database, screen=screen, board=board,
                      poller=ports.poller, client=build_service_client(settings, clock=clock), rng=rng)
    if board is not None:
        board.when_motion = lambda: host.post("presence_detected")
    return Kiosk(host=host, ports=ports, engine=engine, flow=flow, camera=camera, poller=ports.poller, screen=screen)


# the event that starts each citizen service (from the touchscreen's home page) -> its flow class
SERVICE_FLOWS = {"activation_requested": ("kiosk.flows.services.activation", "ActivationFlow"),
                 "account_requested": ("kiosk.flows.services.account", "AccountFlow"),
                 "fingerprints_requested": ("kiosk.flows.services.fingerprints", "FingerprintsFlow"),
                 "mobile_change_requested": ("kiosk.flows.services.mobile_change", "MobileChangeFlow")}


def build_service_client(settings, *, clock):
    """The citizen services' own signed client to the central server, or None when not registered."""
    from kiosk.errors import ProvisioningError
    from kiosk.sync import keys
    from kiosk.sync.client import SyncClient

    sync, security = settings.sync, settings.security
    if not (sync.device_id and sync.server_url and security.server_signing_key):
        return None
    try:
        device_key = keys.load_device_key(security.device_key_file)
    except ProvisioningError as e:  # the services then say "offline"; attendance goes on
        log.error("citizen services: no device key (%s)", e)
        return None
    return SyncClient(server_url=sync.server_url, server_key=security.server_signing_key, device_id=sync.device_id,
                      device_key=device_key, ca_file=sync.ca_file, timeout_s=sync.request_timeout_s, clock=clock)


def add_service_flows(host, settings, *, clock, database, screen, client, board=None, poller=None, rng=None):
    """Let ``host`` start each citizen service flow on its event (SERVICE_FLOWS); each session gets fresh ports.

    Without the server's X25519 key (``security.server_public_key``, set at provisioning) nothing
    could be sealed, so the services are not offered. Returns the events registered.
    """
    import importlib

    from kiosk.service_ports import ServicePorts

    key = settings.security.server_public_key
    if not key:
        log.warning("citizen services off: security.server_public_key is empty (run `kiosk provision`)")
        return []

    def factory(module, name):
        cls = getattr(importlib.import_module(module), name)

        def build():
            ports = ServicePorts(settings=settings, database=database, clock=clock, screen=screen, client=client,
                                 server_public_key=key, board=board, host=host, poller=poller)
            return cls(ports=ports, clock=clock, settings=settings, rng=rng)
        return build

    for event, (module, name) in SERVICE_FLOWS.items():
        host.flow_factories[event] = factory(module, name)
    return list(SERVICE_FLOWS)


def start_kiosk(settings, *, stack, clock, board, data_key, player=None, sensor_worker=None, screen=None,
                stop, rng=None, reconcile_sensor=None):
    """Camera, face engine, flows and the fingerprint poller, started; closed by ``stack``."""
    camera = build_camera(settings, player=player)
    microphone = build_microphone(settings) if voice_in_use(settings) else None
    kiosk = build_kiosk(settings, clock=clock, board=board, camera=camera, sensor_worker=sensor_worker,
                        data_key=data_key, screen=screen, rng=rng, reconcile_sensor=reconcile_sensor,
                        microphone=microphone)
    stack.callback(kiosk.close)
    if kiosk.ports.voice is not None:
        stack.callback(microphone.stop)
        stack.callback(kiosk.ports.voice.close)
        kiosk.ports.voice.start()
    try:
        camera.start()
    except Exception as e:  # fingerprint and PIN still work; doctor names the camera
        log.error("camera unavailable (%s); attendance by fingerprint and PIN only", e)
    if kiosk.poller is not None:
        kiosk.poller.start()
    if board is not None:
        board.when_exit_pressed = lambda: board.open_door()
        board.when_tampered = lambda: log.error("tamper switch: the enclosure was opened")
    kiosk.host.start(stop)
    return kiosk


def _prepare_ui(settings):
    """The touchscreen's Qt side for `kiosk run`, or None when running headless (``ui.display``)."""
    from kiosk.device_ports import HeadlessScreen
    from kiosk.ui.runner import display_mode

    mode = display_mode(settings.ui)
    if mode == "headless":
        return None
    from kiosk.ui import runner

    return runner.prepare(settings, HeadlessScreen(), mode=mode)


# a flows step is one frame's analysis plus a few database writes: far under this even on a Pi 4
FLOWS_STALL_LIMIT_S = 15.0


def run_appliance(settings, *, backend=None, stop_event=None, on_ready=None, sim_faults=()):
    """`kiosk run`: storage, hardware, the flows, sync and the systemd watchdog until SIGTERM.

    With a display (``ui.display``) the touchscreen runs on the main thread's Qt loop: READY=1 is
    sent when its first screen is painted and the heartbeat runs from that loop, so a hung UI is
    restarted too; headless, READY=1 is sent once everything is up. WATCHDOG=1 only while the
    flows, the fingerprint poller and the sync workers are alive and the flows thread keeps
    stepping (a flow stuck for ``FLOWS_STALL_LIMIT_S`` counts as dead), so a hung kiosk is
    restarted by systemd. ``on_ready(kiosk, sims)`` is called once running (tests and the demo use it);
    ``sim_faults`` start the simulators broken (`kiosk run --sim-fault`, as `kiosk doctor`'s).
    """
    import contextlib
    import signal
    import threading

    from kiosk.clock import SystemClock
    from kiosk.notify import Notifier, watchdog_interval_s

    if backend:
        settings = settings.replace(hardware={"backend": backend})
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier()
    clock = SystemClock()
    with contextlib.ExitStack() as stack:
        notifier.status("starting")
        factory = sims = player = None
        if settings.hardware.backend == "sim":
            sims = stack.enter_context(start_simulators(settings, faults=sim_faults))
            settings, factory, player = sims.settings_for(settings), sims.pin_factory, sims.player
        database, key = open_storage(settings)
        stack.callback(database.close)
        board = stack.enter_context(build_board(settings, pin_factory=factory))
        sensor_worker, reconcile_sensor = build_sensor_keeper(settings, data_key=key, clock=clock)
        if sensor_worker is not None:
            stack.callback(sensor_worker.close)
        flows_stop = threading.Event()
        stack.callback(flows_stop.set)
        ui = _prepare_ui(settings)
        kiosk = start_kiosk(settings, stack=stack, clock=clock, board=board, data_key=key, player=player,
                            sensor_worker=sensor_worker, stop=flows_stop, reconcile_sensor=reconcile_sensor,
                            screen=ui.screen if ui is not None else None)
        if sims is not None:
            sims.follow_prompts(kiosk.screen)

        def faces_changed(person_ids):
            refresh_gallery(kiosk.gallery, database, key, person_ids)

        sync_worker = build_sync_worker(settings, clock=clock, data_key=key, board=board,
                                        on_fingers_changed=reconcile_sensor, on_faces_changed=faces_changed)
        kiosk.ports.pages.sync_worker = sync_worker
        adms = build_adms_adapter(settings, clock=clock, board=board, request_restart=stop.set)
        workers = [w for w in (sync_worker, adms) if w is not None]
        for worker in workers:
            worker.start()
            stack.callback(worker.close)
        watched = [kiosk.host] + ([kiosk.poller] if kiosk.poller is not None else []) + workers
        status = (f"running ({settings.hardware.backend} hardware, {len(kiosk.gallery)} face templates, "
                  f"{len(workers)} sync worker(s))")

        def up():
            notifier.ready(status)
            log.info("kiosk %s", status)
            if on_ready is not None:
                on_ready(kiosk, sims)

        def heartbeat():
            dead = [type(w).__name__ for w in watched if not w.is_alive]
            stalled = kiosk.host.stalled_s()
            if stalled > FLOWS_STALL_LIMIT_S:
                dead.append(f"FlowHost (no step for {stalled:.0f} s)")
            if dead:
                log.error("stopped: %s; withholding the watchdog so systemd restarts us", dead)
                return
            notifier.watchdog()

        if ui is not None:
            # READY once the first screen is painted; the heartbeat comes from the Qt loop itself
            ui.run(post=kiosk.host.post, clock=clock, camera=kiosk.camera, mode=ui.mode, stop=stop,
                   heartbeat=heartbeat, on_first_screen=up, health=kiosk.problems)
        else:
            up()
            interval = watchdog_interval_s() or 5.0
            while not stop.wait(min(interval, 1.0)):
                heartbeat()
        notifier.stopping()
        log.info("kiosk stopping")
    notifier.close()
    return 0
