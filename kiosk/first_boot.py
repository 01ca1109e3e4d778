"""First boot on the screen: wait for a provisioning file or a signed code, register, self-test, done.

`kiosk run` comes here while the kiosk is not registered (no ``sync.device_id``, no
registration.json), and `kiosk provision --scan-camera` does the same on the device's first boot
(kiosk-firstboot.service). Everything the technician needs to read goes through the provisioning
status model (provision_status.py) to one ``show(screen, **data)`` port: the touchscreen, or a
headless screen that logs.

The loop: the waiting screen; then, until registered, a provisioning file on the boot partition
is taken as soon as it appears, and camera frames are searched for a code (each different code
is checked once: a forged, expired or reused one is refused with its reason on screen, and the
kiosk keeps looking). A file or code that failed is not taken again until it changes, so a bad
token does not hammer the server. Registration retries with backoff while the server is down,
saying why on screen. Then the doctor's checks, each with its remedy, and the done screen, each
held ``hold_s`` so a technician can read it before the kiosk's home screen replaces it.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import provision, provision_code, provision_file, provision_status
from kiosk.errors import CameraError, ProvisioningError

log = logging.getLogger(__name__)

FILE_CHECK_S = 1.0       # how often the boot partition is looked at while the camera scans
FRAME_WAIT_S = 2.0


@dataclass(frozen=True)
class Options:
    """Where first boot reads and writes, and how patiently it waits (see `kiosk run --help`)."""

    paths: provision.Paths = field(default_factory=provision.Paths)
    hold_s: float = 5.0              # the self-test and done screens stay this long before home
    scan_timeout_s: float = 0.0      # 0: look for a code until one is accepted (or stop is set)
    max_attempts: int = 0
    max_backoff_s: float = 300.0
    timeout_s: float = 15.0


class Stopped(ProvisioningError):
    """First boot was stopped (SIGTERM) before the kiosk was registered."""


def is_registered(settings, paths):
    """Whether this kiosk has been provisioned: a device id in its settings, or a registration record."""
    return bool(settings.sync.device_id) or Path(paths.registration_file).exists()


def needs_provisioning(settings, paths):
    """Not registered, on a kiosk image (ETC_DIR/kiosk exists: the image made it) or with a file waiting.

    A development machine without ETC_DIR/kiosk runs `kiosk run` unregistered, as before first
    boot existed (records stay on the device), instead of waiting for provisioning."""
    if is_registered(settings, paths):
        return False
    return Path(paths.kiosk_etc).is_dir() or (Path(paths.boot_dir) / provision_file.FILE_NAME).exists()


def status_console(show, paths, console=None):
    """The status model behind a text console, showing on ``show``; ways from the image's keys."""
    keys = provision_code.load_public_keys(paths.provisioning_keys)
    status = provision_status.ProvisioningStatus(show, ways=["file", "code"] if keys else ["file"],
                                                 file_path=str(Path(paths.boot_dir) / provision_file.FILE_NAME))
    return provision_status.StatusConsole(status, console)


def run(options, *, console, open_camera, self_test, clock, sleep, stop):
    """Provision this kiosk from a file or a code, then self-test; return provision.Outcome.

    ``console``: a provision_status.StatusConsole. ``open_camera()``: a started-or-not
    kiosk.drivers.camera.Camera (None: files only); ``self_test()``: a doctor Report for the
    settings provisioning wrote (None: no self-test). ``sleep(s)`` waits between registration
    attempts and holds the last screens; ``stop`` (threading.Event) ends the wait with Stopped.
    """
    paths = options.paths
    console.status.waiting()
    outcome = _wait_and_provision(options, console=console, open_camera=open_camera, clock=clock, sleep=sleep,
                                  stop=stop)
    report = self_test() if self_test is not None else None
    if report is not None:
        console.status.self_test(report)
        sleep(options.hold_s)
    console.status.done(**getattr(console, "finished", {"device_id": outcome.device_id}))
    sleep(options.hold_s)
    log.info("first boot done: device %s (%s)", outcome.device_id, paths.registration_file)
    return outcome


def _wait_and_provision(options, *, console, open_camera, clock, sleep, stop):
    paths = options.paths
    boot_file = Path(paths.boot_dir) / provision_file.FILE_NAME
    keys = provision_code.load_public_keys(paths.provisioning_keys)
    used = provision_code.UsedCodes(paths.used_codes)
    tried_file = None          # (mtime, size) of a file that failed: taken again only once it changes
    camera = scanner = None
    want_camera = bool(keys) and open_camera is not None
    deadline = clock.monotonic() + options.scan_timeout_s if options.scan_timeout_s else None
    common = dict(paths=paths, console=console, sleep=_stoppable(sleep, stop), clock=clock,
                  max_attempts=options.max_attempts, max_backoff_s=options.max_backoff_s, timeout_s=options.timeout_s)
    try:
        next_file_check = clock.monotonic()
        last_index = None
        while not stop.is_set():
            if deadline is not None and clock.monotonic() > deadline:
                raise ProvisioningError(f"no provisioning file or accepted code within {options.scan_timeout_s:g} s")
            if camera is None or clock.monotonic() >= next_file_check:
                next_file_check = clock.monotonic() + FILE_CHECK_S
                seen = _file_stamp(boot_file)
                if seen is not None and seen != tried_file:
                    try:
                        outcome = provision.provision(file=boot_file, **common)
                    except ProvisioningError:      # on screen already (refused or failed)
                        tried_file = _file_stamp(boot_file)
                    else:
                        if outcome.action != "nothing":
                            return outcome
            if want_camera:      # after the first look at the boot partition: a file needs no camera
                want_camera = False
                camera, scanner = _start_scanning(open_camera, keys=keys, used=used, clock=clock)
                if camera is None:
                    _files_only(console)
            if camera is None:
                stop.wait(FILE_CHECK_S)
                continue
            try:
                frame = camera.wait_for_frame(FRAME_WAIT_S, after_index=last_index)
            except CameraError as e:
                if not camera.is_running:      # the camera went away: a file can still provision
                    log.error("the camera stopped while looking for a code (%s)", e)
                    camera.stop()
                    camera = None
                    _files_only(console)
                else:
                    log.warning("no frame while looking for a code: %s", e)
                continue
            last_index = frame.index
            verdict = scanner.offer(frame.image)
            if verdict is None:
                continue
            if verdict[0] == "refused":
                error = verdict[1]
                console.show("provisioning code refused", error.remedy, f"(reason: {error.reason})")
                console.refused(source="code", reason=error.reason, remedy=error.remedy)
                continue
            from kiosk import provision_by_code

            try:
                return provision_by_code.provision_code(scanner.last_text, **common)
            except ProvisioningError:          # refused or failed: said on screen; keep looking
                continue
        raise Stopped("stopped before the kiosk was provisioned")
    finally:
        if camera is not None:
            camera.stop()


def _start_scanning(open_camera, *, keys, used, clock):
    """(camera, CodeScanner), started; (None, None) when the camera does not start (files still work)."""
    from kiosk import code_reader

    camera = None
    try:
        camera = open_camera()
        camera.start()
    except Exception as e:   # no camera, or its library missing: provisioning by file still works
        log.error("the camera does not start (%s): only a provisioning file can provision this kiosk", e)
        if camera is not None:
            camera.stop()
        return None, None
    scanner = code_reader.CodeScanner(
        check=lambda text: provision_code.decode(text, public_keys=keys, now_s=clock.time(), used=used))
    return camera, scanner


def _files_only(console):
    """The waiting screen again, offering only the provisioning file (no camera to read a code)."""
    console.status.ways = ["file"]
    console.status.waiting()


def _file_stamp(path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _stoppable(sleep, stop):
    """``sleep`` that gives up (Stopped) once ``stop`` is set, so SIGTERM ends a registration wait."""
    def wait(seconds):
        if stop.is_set():
            raise Stopped("stopped while waiting for the server")
        sleep(seconds)
        if stop.is_set():
            raise Stopped("stopped while waiting for the server")
    return wait
