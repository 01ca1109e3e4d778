"""Hardware, storage and connectivity self-test: the library behind `kiosk doctor`.

Each check returns a ``CheckResult`` (pass, warn, fail or skip) with a one-line detail and, when
it did not pass, a one-line remedy. ``run_checks`` runs them in order and never raises: a check
that blows up is a failed check. Parts are handed in as *openers* (functions that build the
part), so building a part is itself checked, and each part is closed when its check ends.
"""

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
CHECK_NAMES = ("camera", "fingerprint", "gpio", "disk", "database", "keys", "provisioning", "clock", "server",
               "models", "microphone")
DARK_BRIGHTNESS = 25.0
BRIGHT_BRIGHTNESS = 235.0


@dataclass
class CheckResult:
    """The outcome of one check."""

    name: str
    status: str
    detail: str
    remedy: str = ""
    duration_s: float = 0.0
    figures: dict = field(default_factory=dict)


@dataclass
class Report:
    """All check results; ``ok`` is False when any check failed."""

    checks: list

    @property
    def ok(self):
        return not any(c.status == FAIL for c in self.checks)

    @property
    def failed(self):
        return [c for c in self.checks if c.status == FAIL]

    def as_dict(self):
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


# --- the checks -------------------------------------------------------------------------------

def check_camera(open_camera, *, frames=10, timeout_s=5.0, expected_fps=None):
    """Frames arrive, at what rate, and how bright they are."""
    cam = open_camera()
    try:
        cam.start()
        first = cam.wait_for_frame(timeout_s)
        start = time.monotonic()
        last = first
        for _ in range(frames - 1):
            last = cam.wait_for_frame(max(0.1, timeout_s - (time.monotonic() - start)), after_index=last.index)
        span = last.timestamp_s - first.timestamp_s
        fps = (last.index - first.index) / span if span > 0 else 0.0
        grey = last.lores.mean(axis=2) if last.lores.ndim == 3 else last.lores
        brightness = float(grey.mean())
    finally:
        cam.close()
    h, w = last.image.shape[:2]
    lh, lw = last.lores.shape[:2]
    figures = {"fps": round(fps, 2), "brightness": round(brightness, 1), "size": [w, h], "lores_size": [lw, lh]}
    detail = f"{w}x{h} (inference {lw}x{lh}), {fps:.1f} fps, brightness {brightness:.0f}/255"
    if brightness < DARK_BRIGHTNESS:
        return CheckResult("camera", WARN, detail + ": very dark",
                           "light the area in front of the kiosk, or check the lens is not covered", figures=figures)
    if brightness > BRIGHT_BRIGHTNESS:
        return CheckResult("camera", WARN, detail + ": overexposed",
                           "move the kiosk away from direct light or a window behind the user", figures=figures)
    if expected_fps and fps < expected_fps * 0.5:
        return CheckResult("camera", WARN, detail + f": below half the configured {expected_fps:g} fps",
                           "lower camera.width/height or camera.fps; use a USB 2 port for USB cameras",
                           figures=figures)
    return CheckResult("camera", PASS, detail, figures=figures)


def check_fingerprint(open_sensor, *, port="", written_slots=None):
    """The sensor answers the handshake; its capacity and stored template count.

    With ``written_slots`` (a function giving the slots the kiosk database wrote), a sensor
    holding templates the database does not know is a warning: reconciliation leaves them
    alone until an admin clears them.
    """
    sensor = open_sensor()
    try:
        info = sensor.probe()
        occupied = sensor.slots() if written_slots is not None else []
    finally:
        sensor.close()
    info = dict(info)
    model = info.get("model") or info.get("sensor_model") or "sensor"
    detail = f"{model} on {port}: {info.get('template_count', '?')} of {info.get('capacity', '?')} templates"
    figures = {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool))}
    if written_slots is not None:
        ours = set(written_slots())
        unknown = [slot for slot in occupied if slot not in ours]
        figures["unknown_templates"] = len(unknown)
        if unknown:
            shown = ", ".join(str(s) for s in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            return CheckResult("fingerprint", WARN,
                               detail + f"; {len(unknown)} not written by this kiosk's database (slots {shown})",
                               "left alone on purpose; if they are stale, clear them from the admin page "
                               "(clear unknown templates)", figures=figures)
    return CheckResult("fingerprint", PASS, detail, figures=figures)


def check_gpio(open_board, *, pulse_s=0.3, pulse_door=False):
    """The board builds, the lights and buzzer switch; with ``pulse_door`` the door relay pulses and lets go.

    The door is pulsed only when asked (`kiosk doctor --door`): a self-test must not unlock an
    entrance by itself.
    """
    board = open_board()
    try:
        notes = []
        if pulse_door:
            board.door.pulse(pulse_s)
            opened = board.door.is_open
            closed_again = board.door.wait_for_closed(pulse_s + 2.0) and not board.door.is_open
            if not (opened and closed_again):
                return CheckResult("gpio", FAIL, f"door relay did not pulse (opened={opened}, "
                                   f"closed again={closed_again})",
                                   "check gpio.door_pin and the relay wiring (docs/hardware.md)")
            notes.append(f"door pulsed {pulse_s:g} s")
        else:
            notes.append("door not pulsed (kiosk doctor --door pulses it)")
        for name in ("green", "amber", "red"):
            light = getattr(board, name)
            light.on()
            if not light.is_active:
                return CheckResult("gpio", FAIL, f"{name} light output did not switch on",
                                   f"check gpio.{name}_pin")
            light.off()
        board.beep("ok", wait=True)
        board.show("ready")
        tampered = board.is_tampered
        notes.append("enclosure " + ("OPEN" if tampered else "closed"))
        notes.append("exit button " + ("held" if board.is_exit_pressed else "released"))
        notes.append("motion" if board.motion_detected else "no motion")
    finally:
        board.close()
    detail = ", ".join(notes)
    if tampered:
        return CheckResult("gpio", WARN, detail, "close the enclosure; check the tamper switch wiring "
                           "(normally closed to ground)")
    return CheckResult("gpio", PASS, detail)


def check_disk(data_dir, *, min_free_mb_enrol, min_free_mb_attendance):
    """Free space where the database lives, against the enrolment and attendance floors."""
    path = Path(data_dir)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_mb = usage.free / 2**20
    figures = {"free_mb": round(free_mb), "total_mb": round(usage.total / 2**20)}
    detail = f"{free_mb:,.0f} MB free of {usage.total / 2**20:,.0f} MB at {probe}"
    if free_mb < min_free_mb_attendance:
        return CheckResult("disk", FAIL, detail + f" (attendance stops below {min_free_mb_attendance} MB)",
                           "free space on the SD card: sync pending records, remove old logs", figures=figures)
    if free_mb < min_free_mb_enrol:
        return CheckResult("disk", WARN, detail + f" (enrolment stops below {min_free_mb_enrol} MB)",
                           "free space on the SD card or use a larger card", figures=figures)
    if not path.exists():
        return CheckResult("disk", WARN, detail + f"; {path} does not exist yet",
                           f"create {path} (owned by the kiosk user) or run `kiosk run` once", figures=figures)
    return CheckResult("disk", PASS, detail, figures=figures)


def check_database(db_path):
    """The database passes PRAGMA quick_check and its folder is writable (a missing one is made at first start)."""
    import os
    import tempfile

    from kiosk.errors import CorruptDatabaseError
    from kiosk.storage import db, events, outbox

    path = Path(db_path)
    folder = path.parent
    if not folder.is_dir():
        return CheckResult("database", WARN, f"{folder} does not exist yet",
                           f"create {folder} (owned by the kiosk user) or run `kiosk run` once")
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=folder)
        os.write(fd, b"probe")
        os.fsync(fd)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return CheckResult("database", FAIL, f"{folder} is not writable ({e.strerror})",
                           f"give {folder} to the kiosk user (chown kiosk: {folder}); check the card is not read-only")
    if not path.exists():
        return CheckResult("database", WARN, f"no database yet at {path} (made at the first start)",
                           "run `kiosk run` (or `kiosk provision`) once")
    try:
        database = db.open_db(path, migrate=False, create=False, check=True)
    except CorruptDatabaseError as e:
        return CheckResult("database", FAIL, str(e).split(";")[0], str(e).split("; ", 1)[-1])
    try:
        applied = [v for v, _, at in db.migration_status(database) if at]
        if len(applied) < len(db.migration_status(database)):
            return CheckResult("database", WARN, f"{path}: schema migrations pending", "run `kiosk db migrate`")
        stats = outbox.stats(database)
        count = events.count(database)
    finally:
        database.close()
    return CheckResult("database", PASS, f"{path}: integrity ok, {count} events, {stats['pending']} pending upload",
                       figures={"events": count, "pending": stats["pending"]})


def check_keys(*, data_key_file, device_key_file, provisioned):
    """The data key (and, once provisioned, the device key) load: present, 0600, well-formed."""
    from kiosk.errors import KioskError
    from kiosk.storage.seal import DataKey
    from kiosk.sync.keys import load_device_key

    notes = []
    if Path(data_key_file).exists() or provisioned:
        try:
            key = DataKey.load(data_key_file)
        except KioskError as e:
            return CheckResult("keys", FAIL, str(e), "restore the data key file from the device's backup, "
                               "or re-provision (sealed templates then come down again from the server)")
        notes.append(f"data key {key.key_id} ok")
    else:
        return CheckResult("keys", WARN, f"no data key at {data_key_file} yet (made by `kiosk provision`)",
                           "provision the kiosk")
    if provisioned:
        try:
            load_device_key(device_key_file)
        except KioskError as e:
            return CheckResult("keys", FAIL, str(e), "fix the file's mode, or re-provision the kiosk")
        notes.append("device key ok")
    return CheckResult("keys", PASS, ", ".join(notes))


def check_provisioning(settings):
    """Whether this kiosk is registered with a server (sync.device_id is set)."""
    sync = settings.sync
    if not sync.device_id:
        return CheckResult("provisioning", WARN, "not provisioned: records stay on this kiosk",
                           "put kiosk-provision.toml on the boot partition and run `kiosk provision`")
    return CheckResult("provisioning", PASS, f"registered as {sync.device_id} with {sync.server_url}")


def check_clock(clock):
    """Whether the kernel says the wall clock is NTP-synchronized."""
    synced = clock.is_synchronized()
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(clock.time()))
    if synced:
        return CheckResult("clock", PASS, f"synchronized ({now})")
    return CheckResult("clock", WARN, f"not synchronized ({now}); records are marked unsynchronized",
                       "enable NTP: `sudo timedatectl set-ntp true` and allow UDP 123 to a time server")


def check_server(server_url, *, timeout_s=3.0, ca_file="", required=False):
    """GET {server_url}/v1/health answers 2xx."""
    import requests

    bad = FAIL if required else WARN
    if not server_url:
        return CheckResult("server", bad, "sync.server_url is not set",
                           "set sync.server_url in /etc/kiosk/kiosk.toml (or provision the kiosk)")
    url = server_url.rstrip("/") + "/v1/health"
    start = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout_s, verify=ca_file or True)
    except requests.RequestException as e:
        reason = type(e).__name__
        return CheckResult("server", bad, f"{url} unreachable ({reason})",
                           "check the network and sync.server_url; records queue until the server is back")
    rtt_ms = (time.monotonic() - start) * 1000
    if not 200 <= response.status_code < 300:
        return CheckResult("server", bad, f"{url} answered HTTP {response.status_code}",
                           "check the server's status and sync.server_url", figures={"rtt_ms": round(rtt_ms)})
    return CheckResult("server", PASS, f"{url} OK in {rtt_ms:.0f} ms", figures={"rtt_ms": round(rtt_ms)})


def check_models(verify):
    """Every shipped model file matches its sha256 in kiosk/models/assets/MODELS.md."""
    report = verify()
    bad = {name: problem for name, problem in report.items() if problem != "ok"}
    if not report:
        return CheckResult("models", FAIL, "no model files found", "reinstall the kiosk package")
    if bad:
        listed = ", ".join(f"{name}: {problem}" for name, problem in sorted(bad.items()))
        return CheckResult("models", FAIL, listed, "reinstall the kiosk package (model files are damaged "
                           "or missing)")
    return CheckResult("models", PASS, f"{len(report)} files match MODELS.md")


def check_microphone(open_microphone, *, record_s=2.2, digit_check=False):
    """Record ``record_s`` from the microphone: it opens, delivers audio that is not exact zeros, is not
    pinned at full scale; with the digit check on, pocketsphinx must load."""
    mic = open_microphone()
    try:
        samples = mic.record(record_s)  # MicrophoneError when unplugged or delivering only zeros
    finally:
        mic.stop()
    import numpy as np

    from kiosk.drivers.microphone import level_dbfs

    level = round(level_dbfs(samples), 1)
    clipped = float((np.abs(samples) >= 0.98).mean())
    figures = {"seconds": round(samples.size / 16000, 2), "level_dbfs": level, "clipped_fraction": round(clipped, 4)}
    detail = f"{mic.source.name}: {figures['seconds']:g} s recorded, level {level:g} dBFS"
    if digit_check:
        from kiosk.models.spoken_digits import SpokenDigits
        from kiosk.models.vad import Vad

        SpokenDigits(vad=Vad())  # raises ModelError when pocketsphinx is missing
        detail += "; digit check loaded"
    if clipped > 0.01:
        return CheckResult("microphone", WARN, detail + f": {clipped:.0%} of samples at full scale",
                           "lower the capture gain (alsamixer) or move the microphone away from noise",
                           figures=figures)
    return CheckResult("microphone", PASS, detail, figures=figures)


# --- running ----------------------------------------------------------------------------------

REMEDIES = {
    "camera": "check the camera cable, camera.* settings and group video (docs/hardware.md)",
    "fingerprint": "check the sensor's power and UART wiring, fingerprint.port (/dev/serial0 on a Pi 4, "
                   "/dev/ttyAMA0 on a Pi 5), baud and password, group dialout, and that the serial "
                   "console is off (docs/hardware.md)",
    "gpio": "check gpio.* pin settings and that the user is in group gpio (docs/hardware.md)",
    "disk": "check storage.data_dir exists and is readable",
    "database": "check storage.data_dir and the database file (kiosk db status)",
    "keys": "check security.data_key_file and security.device_key_file (mode 0600)",
    "provisioning": "run `kiosk provision`",
    "clock": "check the system clock service (systemd-timesyncd)",
    "server": "check sync.server_url and the network",
    "models": "reinstall the kiosk package",
    "microphone": "check the microphone's USB cable or HAT, voice.microphone_device (arecord -l lists devices), "
                  "group audio, libportaudio2 (docs/hardware.md)",
}


def run_check(name, check, *args, **kwargs):
    """Run one check, timing it; an exception becomes a failed check with the check's remedy."""
    start = time.monotonic()
    try:
        result = check(*args, **kwargs)
    except Exception as e:  # a doctor reports problems, it does not crash on them
        log.debug("check %s failed", name, exc_info=True)
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        result = CheckResult(name, FAIL, f"{type(e).__name__}: {message}", REMEDIES.get(name, ""))
    result.duration_s = round(time.monotonic() - start, 3)
    return result


def render_table(report):
    """The report as a table for people, one row per check, remedies under failures and warnings."""
    lines = [f"{'CHECK':12} {'STATUS':6}  DETAIL"]
    for c in report.checks:
        lines.append(f"{c.name:12} {c.status.upper():6}  {c.detail}")
        if c.remedy and c.status in (FAIL, WARN):
            lines.append(f"{'':12} {'':6}  -> {c.remedy}")
    failed = report.failed
    lines.append("")
    lines.append("all checks passed" if not failed else
                 f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}")
    return "\n".join(lines)


def run_checks(settings, *, open_camera=None, open_sensor=None, open_board=None, clock=None,
               verify_models=None, require_server=False, pulse_door=False, only=None, skipped=None,
               written_slots=None, open_microphone=None):
    """Run every check (or those named in ``only``) and return a Report.

    A part whose opener is None is reported as skipped, with the reason from ``skipped[name]``.
    ``written_slots`` gives the sensor slots the kiosk database wrote (see check_fingerprint).
    The microphone is checked when the door takes voice prints or when asked for by ``only``.
    """
    skipped = dict(skipped or {})
    results = []

    def want(name):
        return only is None or name in only

    def skip(name, default_reason):
        results.append(CheckResult(name, SKIP, skipped.get(name, default_reason)))

    if want("camera"):
        if open_camera is None:
            skip("camera", "no camera configured")
        else:
            results.append(run_check("camera", check_camera, open_camera, expected_fps=settings.camera.fps))
    if want("fingerprint"):
        if open_sensor is None:
            skip("fingerprint", "no fingerprint driver available")
        else:
            results.append(run_check("fingerprint", check_fingerprint, open_sensor,
                                     port=settings.fingerprint.port, written_slots=written_slots))
    if want("gpio"):
        if open_board is None:
            skip("gpio", "no GPIO board configured")
        else:
            results.append(run_check("gpio", check_gpio, open_board, pulse_door=pulse_door))
    if want("disk"):
        results.append(run_check("disk", check_disk, settings.storage.data_dir,
                                 min_free_mb_enrol=settings.storage.min_free_mb_enrol,
                                 min_free_mb_attendance=settings.storage.min_free_mb_attendance))
    if want("database"):
        results.append(run_check("database", check_database, settings.db_path))
    if want("keys"):
        results.append(run_check("keys", check_keys, data_key_file=settings.security.data_key_file,
                                 device_key_file=settings.security.device_key_file,
                                 provisioned=bool(settings.sync.device_id)))
    if want("provisioning"):
        results.append(run_check("provisioning", check_provisioning, settings))
    if want("clock"):
        if clock is None:
            from kiosk.clock import SystemClock

            clock = SystemClock()
        results.append(run_check("clock", check_clock, clock))
    if want("server"):
        results.append(run_check("server", check_server, settings.sync.server_url,
                                 timeout_s=min(3.0, settings.sync.request_timeout_s),
                                 ca_file=settings.sync.ca_file, required=require_server))
    if want("models"):
        if verify_models is None:
            from kiosk.models import assets

            verify_models = assets.verify
        results.append(run_check("models", check_models, verify_models))
    voice_used = "voice" in settings.attendance.verify_modes or settings.attendance.voice_second_factor
    if only is not None and "microphone" in only or only is None and voice_used:
        if open_microphone is None:
            skip("microphone", "no microphone configured")
        else:
            # longer than voice.dead_s, so a device delivering exact zeros is caught
            results.append(run_check("microphone", check_microphone, open_microphone,
                                     record_s=min(10.0, max(1.0, settings.voice.dead_s + 0.2)),
                                     digit_check=settings.voice.digit_check))
    elif only is None:
        skip("microphone", "voice prints not used at this door (attendance.verify_modes, voice_second_factor)")
    return Report(results)
