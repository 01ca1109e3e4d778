"""Typed settings: defaults < /etc/kiosk/kiosk.toml < KIOSK_<SECTION>__<KEY> environment variables.

Every setting lives in a section dataclass below with its type, default and limits. Loading
rejects unknown keys, wrong types and out-of-range values with an error that names the key and
the file (or environment variable) it came from.
"""

import dataclasses
import logging
import math
import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.errors import ConfigError
from kiosk.urls import url_problem

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/kiosk.toml")
ENV_PREFIX = "KIOSK_"
SECRET_MARK = "secret"
BCM_PINS = range(0, 28)
# a phrase and then 4 digits read at a normal pace, with the quality gate's margins at both ends
DIGIT_CHECK_MIN_RECORD_S = 6.5


def setting(default, *, min=None, max=None, choices=None, kind=None, secret=False, doc=""):
    """Declare one setting with its limits; ``kind``: 'url', 'pin', 'path', 'hex', 'key' (Ed25519, hex),
    'timezone', 'utc_offset_or_zone', 'pin_hash', 'windows'."""
    meta = {"min": min, "max": max, "choices": choices, "kind": kind, SECRET_MARK: secret, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DeviceSettings:
    timezone: str = setting("UTC", kind="timezone", doc="IANA time zone for local times on screen and in ADMS rows")


@dataclass(frozen=True)
class HardwareSettings:
    backend: str = setting("pi", choices=("pi", "usb", "sim"),
                           doc="pi: Pi camera + GPIO; usb: USB camera + GPIO; sim: the simulators (never chosen implicitly)")
    pi_model: str = setting("auto", choices=("auto", "pi4", "pi5"), doc="picks the GPIO pin factory")


@dataclass(frozen=True)
class CameraSettings:
    width: int = setting(1280, min=160, max=4056)
    height: int = setting(720, min=120, max=3040)
    lores_width: int = setting(640, min=96, max=1920, doc="inference stream")
    lores_height: int = setting(360, min=96, max=1080, doc="keep the aspect of width x height (no stretching)")
    fps: float = setting(15.0, min=1.0, max=120.0)
    rotation: int = setting(0, choices=(0, 90, 180, 270))
    device: str = setting("/dev/video0", kind="path", doc="USB camera node (usb backend)")
    scenario: str = setting("walk_up", doc="simulator scenario name (sim backend)")
    frame_timeout_s: float = setting(2.0, min=0.1, max=60.0, doc="no frame for this long = camera lost")
    frozen_frames: int = setting(30, min=2, max=10000, doc="identical frames in a row = camera frozen")


@dataclass(frozen=True)
class FingerprintSettings:
    port: str = setting("/dev/serial0", kind="path")
    baud: int = setting(57600, choices=tuple(9600 * n for n in range(1, 13)))
    password: int = setting(0, min=0, max=0xFFFFFFFF, secret=True)
    address: int = setting(0xFFFFFFFF, min=0, max=0xFFFFFFFF)
    timeout_s: float = setting(2.0, min=0.05, max=30.0, doc="serial read timeout")
    capture_timeout_s: float = setting(10.0, min=0.5, max=120.0, doc="wait for a finger this long")
    enroll_captures: int = setting(3, min=2, max=6)
    security_level: int = setting(4, min=1, max=5, doc="4-5 recommended for 1:N")
    sensor_model: str = setting("R307", choices=("R305", "R307", "R503", "AS608", "ZFM"))
    working_set_size: int = setting(0, min=0, max=65535,
                                    doc="templates kept on the sensor for 1:N search (the working set); "
                                        "0 = the capacity the sensor reports at start minus enrol_reserve_slots")
    enrol_reserve_slots: int = setting(10, min=0, max=1000,
                                       doc="with working_set_size 0: sensor slots left free for enrolment at the kiosk")
    reconcile_writes_per_min: int = setting(60, min=1, max=10000,
                                            doc="template writes and deletes over the UART that keeping the "
                                                "working set current may make per minute (the rest waits)")


@dataclass(frozen=True)
class GpioSettings:
    door_pin: int = setting(17, kind="pin")
    door_active_low: bool = setting(False)
    door_pulse_s: float = setting(3.0, min=0.1, max=60.0, doc="how long the door opens; at most door_max_pulse_s")
    door_max_pulse_s: float = setting(10.0, min=0.1, max=60.0,
                                      doc="the door driver refuses any longer pulse (server commands included)")
    green_pin: int = setting(22, kind="pin")
    red_pin: int = setting(27, kind="pin")
    amber_pin: int = setting(23, kind="pin")
    buzzer_pin: int = setting(18, kind="pin")
    exit_button_pin: int = setting(5, kind="pin")
    tamper_pin: int = setting(6, kind="pin")
    pir_pin: int = setting(12, kind="pin")


@dataclass(frozen=True)
class FaceSettings:
    detector: str = setting("blazeface_short_then_full",
                            choices=("blazeface_short_then_full", "blazeface_short", "blazeface_full"),
                            doc="face detector; blazeface_short_then_full: the full-range model only on frames where "
                                "the short-range one finds no face it is sure of (a person still far away)")
    embedder: str = setting("sface-int8-v2", choices=("sface-int8-v2", "sface-fp16-v1", "mobilefacenet-v1"),
                            doc="model id of the embedder (see kiosk/models/assets/MODELS.md); "
                                "sface-fp16-v1: set match_threshold to its calibrated 0.56; mobilefacenet-v1 has research-only training data")
    threads: int = setting(2, min=1, max=8, doc="CPU threads of the face mesh and the embedder (the detector uses one)")
    # 0.57: per-comparison FAR ~1e-7, i.e. FAR 1e-4 at 1:N with 1,000 enrolled, extrapolated from
    # the impostor tail of sface-int8-v2 on LFW (TAR 0.84 per single comparison there; the same
    # rule gives 0.56 for sface-fp16-v1); figures and method in docs/benchmarks.md "Threshold
    # calibration" (tools/face_threshold.py)
    match_threshold: float = setting(0.57, min=-1.0, max=1.0,
                                     doc="cosine score to accept (calibrated for sface-int8-v2; 0.56 for sface-fp16-v1)")
    match_margin: float = setting(0.05, min=0.0, max=2.0, doc="lead over the second-best identity")
    agree_frames: int = setting(2, min=1, max=30, doc="K: frames that must agree ...")
    window_frames: int = setting(3, min=1, max=30, doc="... out of the last N")
    liveness: str = setting("challenge", choices=("off", "passive", "challenge", "both"))
    min_face_px: int = setting(80, min=16, max=2000)
    max_yaw_deg: float = setting(25.0, min=1.0, max=90.0)
    max_pitch_deg: float = setting(25.0, min=1.0, max=90.0)
    max_roll_deg: float = setting(20.0, min=1.0, max=90.0)
    guide_width_fraction: float = setting(0.6, min=0.1, max=1.0, doc="on-screen guide: centred, this share of the frame width")
    guide_height_fraction: float = setting(0.85, min=0.1, max=1.0, doc="... and of the frame height")
    min_sharpness: float = setting(12.0, min=0.0, max=10000.0,
                                   doc="variance of Laplacian of the face at 112 px wide (LFW: 5th pct 12.5)")
    min_brightness: float = setting(50.0, min=0.0, max=255.0, doc="mean grey of the face")
    max_brightness: float = setting(215.0, min=0.0, max=255.0)
    min_contrast: float = setting(18.0, min=0.0, max=128.0, doc="grey standard deviation of the face")
    min_eye_ratio: float = setting(0.16, min=0.0, max=1.0, doc="eye aspect ratio below this = eyes closed")
    challenge: str = setting("turn_or_blink", choices=("turn_or_blink", "turn", "blink"),
                             doc="active liveness: what the screen may ask (chosen at random per attempt)")
    enrol_captures: int = setting(3, min=3, max=5, doc="face captures passing the quality gate taken at enrolment")
    challenge_timeout_s: float = setting(6.0, min=1.0, max=60.0, doc="time to perform the liveness challenge")
    challenge_yaw_deg: float = setting(18.0, min=5.0, max=60.0, doc="head turn needed to pass the challenge")
    passive_threshold: float = setting(0.2, min=0.0, max=1.0, doc="FaceAntiSpoofing score at or above = attack")


@dataclass(frozen=True)
class VoiceSettings:
    microphone_device: str = setting("", doc="PortAudio/ALSA input device name or number; empty = the system default")
    dead_s: float = setting(2.0, min=0.1, max=60.0, doc="exact digital silence this long = microphone lost")
    record_s: float = setting(5.0, min=2.0, max=30.0, doc="length of one recording window")
    min_snr_db: float = setting(15.0, min=0.0, max=60.0, doc="speech over the noise floor below this = 'too noisy'")
    min_level_dbfs: float = setting(-40.0, min=-90.0, max=0.0, doc="speech level below this = 'too quiet'")
    max_clipped_fraction: float = setting(0.002, min=0.0, max=1.0, doc="share of samples at full scale above this = 'clipped'")
    min_speech_s: float = setting(1.5, min=0.3, max=30.0, doc="less speech than this = 'too little speech'")
    edge_s: float = setting(0.15, min=0.0, max=2.0, doc="speech within this of the window's start or end = "
                                                        "'spoke outside the recording window'")
    # 0.50: the rule "threshold at FAR 1e-3 fitted on half the speakers of `kiosk bench voice`
    # (those at even positions), rounded up to 2 decimals" (0.490 fitted); on the other half it gave
    # FAR 0.92%, TAR 99.89%; seven speakers are far too few to trust this (docs/benchmarks.md, "Voice print")
    match_threshold: float = setting(0.50, min=-1.0, max=1.0, doc="cosine score to the voice print to accept "
                                                                  "(calibrated for campplus-fp16-v1)")
    digit_check: bool = setting(False, doc="at a voice check, also require the 4 digits shown to have been read "
                                           "(English digits only, pocketsphinx): a recording replayed with other "
                                           "digits is refused; needs record_s of at least 6.5 s "
                                           "(the phrase and then the digits)")


@dataclass(frozen=True)
class AttendanceSettings:
    status_rule: str = setting("toggle", choices=("time_windows", "toggle", "first_in_last_out", "ask", "fixed"),
                               doc="how the punch state is chosen (see docs/flows/README.md)")
    time_windows: list = setting(["00:00-11:00=0", "11:00-24:00=1"], kind="windows",
                                 doc="for time_windows: 'HH:MM-HH:MM=code' local time (may wrap past midnight; "
                                     "24:00 ends a day, 00:00-24:00 is all of it), first match wins; "
                                     "codes 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in, "
                                     "5 overtime-out; outside every window the toggle rule decides")
    fixed_status: int = setting(0, min=0, max=5, doc="for fixed: the status code every punch gets")
    ask_timeout_s: float = setting(5.0, min=1.0, max=120.0, doc="for ask: the toggle rule's answer is taken after this")
    repeat_guard_s: float = setting(60.0, min=0.0, max=3600.0,
                                    doc="the same person again within this is told 'already recorded', no new record")
    open_door: bool = setting(True, doc="pulse the door relay after a punch")
    verify_modes: list = setting(["face", "fingerprint", "pin"], doc="which proofs this door accepts: face, "
                                                                     "fingerprint, pin, voice")
    face_wait_s: float = setting(5.0, min=0.5, max=600.0, doc="keep looking this long after the last face, then idle")
    face_attempt_s: float = setting(12.0, min=2.0, max=120.0,
                                    doc="one face not in position, live and matched within this is refused")
    unrecognised_frames: int = setting(12, min=2, max=1000,
                                       doc="good frames after liveness passed with no match = not recognised "
                                           "(frames of the head still held at the asked turn do not count)")
    face_attempts_before_fallback: int = setting(2, min=1, max=20,
                                                 doc="unrecognised attempts before fingerprint and PIN are offered")
    result_s: float = setting(2.5, min=0.5, max=60.0, doc="how long the result stays on screen")
    voice_second_factor: bool = setting(False, doc="after a face or fingerprint match, also ask for the voice print "
                                                   "(someone without one is refused); 'voice' in verify_modes "
                                                   "lets people with a voice print clock in by ID number and voice")
    voice_attempts: int = setting(3, min=1, max=10, doc="unusable voice recordings in a row before a refusal")
    pin_max_failures: int = setting(5, min=1, max=100, doc="wrong PINs for one person before a lockout")
    pin_cooldown_s: float = setting(300.0, min=1.0, max=86400.0, doc="how long a PIN lockout lasts")
    face_then_finger: bool = setting(False, doc="two-factor door: a face match is confirmed by the same "
                                                "person's finger, verified 1:1 on the sensor, before a punch")


@dataclass(frozen=True)
class SyncSettings:
    server_url: str = setting("", kind="url", doc="central server (https; http only on loopback); "
                                                   "empty = not provisioned (set by `kiosk provision`)")
    ca_file: str = setting("", kind="path", doc="PEM CA to pin for https; empty = system store")
    batch_size: int = setting(500, min=1, max=10000)
    interval_s: float = setting(30.0, min=0.1, max=86400.0)
    request_timeout_s: float = setting(15.0, min=0.1, max=600.0)
    max_backoff_s: float = setting(300.0, min=1.0, max=86400.0)
    retention_days: float = setting(30.0, min=0.0, max=3650.0, doc="keep acknowledged records this long")
    min_backoff_s: float = setting(1.0, min=0.001, max=3600.0, doc="first retry delay; doubles per failure")
    max_batch_size: int = setting(5000, min=1, max=50000, doc="batch size may grow to this while answers are fast")
    target_request_s: float = setting(2.0, min=0.01, max=600.0, doc="batches shrink when an answer takes longer")
    max_batches_per_cycle: int = setting(50, min=1, max=100000, doc="then download and commands get a turn")
    delta_page_size: int = setting(500, min=1, max=5000, doc="changes per download page")
    clock_skew_warn_s: float = setting(10.0, min=0.1, max=86400.0, doc="flag the clock when off the server's by more")
    device_id: str = setting("")
    adms_url: str = setting("", kind="url", doc="ZKTeco PUSH/ADMS server (https; http only on loopback); "
                                                 "empty = off")
    adms_door_commands: bool = setting(False, doc="obey ADMS door commands (AC_UNLOCK, CONTROL DEVICE); ADMS "
                                                  "answers are not signed, so any server on the path could open the door")
    adms_reboot_command: bool = setting(False, doc="obey the ADMS REBOOT command (a restart of the kiosk service, "
                                                   "at most once an hour); off: answered -1, like the door commands")
    adms_serial: str = setting("", doc="SN the ADMS server knows this kiosk by; empty = device_id")
    adms_timezone: str = setting("", kind="utc_offset_or_zone", doc="ADMS row time zone: '+03:00' or 'Asia/Riyadh'; "
                                         "empty = device.timezone (the server's TimeZone is only checked)")
    adms_token: str = setting("", secret=True, doc="device communication key or token the ADMS server expects; "
                                                   "empty = none sent; never logged")
    adms_token_via: str = setting("pushcommkey", choices=("pushcommkey", "param", "header"),
                                  doc="how adms_token is sent: pushcommkey=<token> query parameter, "
                                      "<adms_token_name>=<token> query parameter, or <adms_token_name> header")
    adms_token_name: str = setting("token", doc="query parameter or header name for adms_token_via = param / header")


@dataclass(frozen=True)
class UiSettings:
    language: str = setting("ar", choices=("ar", "en"), doc="the language each session starts in")
    inactivity_timeout_s: float = setting(30.0, min=3.0, max=3600.0, doc="no input this long: wipe and go home")
    dim_after_s: float = setting(60.0, min=1.0, max=86400.0, doc="idle this long: dim the screen")
    display: str = setting("auto", choices=("auto", "fullscreen", "window", "headless"),
                           doc="`kiosk run`'s screen: fullscreen (the Pi), window (a desktop), headless (no "
                               "screen); auto = fullscreen when a display is there (DISPLAY, WAYLAND_DISPLAY or "
                               "QT_QPA_PLATFORM set), headless otherwise")
    window_size: str = setting("1024x600", choices=("800x480", "1024x600", "1280x800", "720x1280"),
                               doc="the window's size when display = window")
    rotation: int = setting(0, choices=(0, 90, 180, 270), doc="turn the picture (degrees clockwise) for a panel "
                                                              "mounted sideways or upside down")
    hide_cursor: bool = setting(True, doc="no mouse pointer on the touchscreen (display = fullscreen)")
    screen_diagonal_in: float = setting(7.0, min=3.0, max=40.0, doc="the panel's diagonal in inches: sizes touch "
                                                                    "targets in millimetres (at least 11.6 mm)")
    eastern_digits: bool = setting(False, doc="show digits as ٠١٢٣٤٥٦٧٨٩ on Arabic screens")
    large_text: bool = setting(False, doc="text 30% larger")
    high_contrast: bool = setting(False, doc="white and yellow on black, thicker borders")
    inactivity_warning_s: float = setting(10.0, min=0.0, max=600.0, doc="warn this long before the inactivity "
                                                                        "timeout, with a countdown and 'more time'")


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = setting("/var/lib/kiosk", kind="path")
    min_free_mb_enrol: int = setting(512, min=0, max=1_000_000, doc="below this, enrolment stops")
    min_free_mb_attendance: int = setting(64, min=0, max=1_000_000, doc="below this, attendance stops")


@dataclass(frozen=True)
class SecuritySettings:
    data_key_file: str = setting("/etc/kiosk/data.key", kind="path", doc="AES-256 key sealing templates (0600)")
    device_key_file: str = setting("/etc/kiosk/device.key", kind="path", doc="Ed25519 device key (0600)")
    server_public_key: str = setting("", kind="hex", doc="X25519 key activation packets are sealed to")
    server_signing_key: str = setting("", kind="key", doc="the server's Ed25519 key, pinned at registration: "
                                                           "sync answers not signed by it are refused")
    admin_pin_hash: str = setting("", kind="pin_hash", secret=True,
                                  doc="made by `kiosk provision --hash-pin` (scrypt$N$r$p$salt$hash)")
    admin_max_failures: int = setting(5, min=1, max=100, doc="wrong admin PINs before a lockout")
    admin_cooldown_s: float = setting(600.0, min=1.0, max=86400.0, doc="how long an admin lockout lasts")


@dataclass(frozen=True)
class Settings:
    device: DeviceSettings = field(default_factory=DeviceSettings)
    hardware: HardwareSettings = field(default_factory=HardwareSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    fingerprint: FingerprintSettings = field(default_factory=FingerprintSettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    face: FaceSettings = field(default_factory=FaceSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    attendance: AttendanceSettings = field(default_factory=AttendanceSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    @property
    def db_path(self):
        return Path(self.storage.data_dir) / "kiosk.db"

    def replace(self, **sections):
        """Return a copy with whole sections or ``section={key: value}`` overrides applied."""
        updates = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = _build_section(name, {**dataclasses.asdict(getattr(self, name)), **value}, "override")
            updates[name] = value
        return dataclasses.replace(self, **updates)


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Settings)}


def load(path=None, *, environ=None):
    """Load settings from defaults, a TOML file and the environment.

    ``path`` None means $KIOSK_CONFIG or /etc/kiosk/kiosk.toml if it exists; an explicit path
    (or $KIOSK_CONFIG) that does not exist is an error.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("KIOSK_CONFIG"))
    path = Path(path or environ.get("KIOSK_CONFIG") or DEFAULT_CONFIG_PATH)
    layers = []
    if explicit or path.exists():
        layers.append((str(path), read_file(path)))
    layers.append(("environment", _from_environ(environ)))
    return build(layers)


def read_file(path):
    """Parse one TOML file into a dict, with errors that name the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: file not readable (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def check_file(path):
    """Validate one file on its own (defaults fill what it omits); return the settings."""
    return build([(str(path), read_file(path))])


def build(layers):
    """Merge ``[(source, {section: {key: value}})]`` over the defaults and validate.

    Every problem is collected: the ConfigError lists them all (and carries them as ``.problems``).
    """
    merged = {name: {} for name in SECTIONS}
    origin = {}
    problems = []
    for source, data in layers:
        if not isinstance(data, dict):
            problems.append(f"{source}: expected a table of sections")
            continue
        for section, values in data.items():
            if section not in SECTIONS:
                problems.append(f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
                continue
            if not isinstance(values, dict):
                problems.append(f"{source}: {section}: expected a [{section}] table, got {type(values).__name__}")
                continue
            for key, value in values.items():
                merged[section][key] = value
                origin[section, key] = source
    sections = {}
    for name, values in merged.items():
        sections[name] = _build_section(name, values, origin, problems)
    if problems:
        raise config_error(problems)
    settings = Settings(**sections)
    _check_relations(settings, origin)
    return settings


def _check_relations(settings, origin):
    """Limits that tie two settings together."""
    gpio = settings.gpio
    if gpio.door_pulse_s > gpio.door_max_pulse_s:
        source = origin.get(("gpio", "door_pulse_s"), "defaults")
        raise ConfigError(f"{source}: gpio.door_pulse_s: {gpio.door_pulse_s!r} is above "
                          f"gpio.door_max_pulse_s ({gpio.door_max_pulse_s!r})")
    voice = settings.voice
    if voice.digit_check and voice.record_s < DIGIT_CHECK_MIN_RECORD_S:
        # the digits come last: a shorter window cuts them off and every check by voice would fail
        source = origin.get(("voice", "record_s"), origin.get(("voice", "digit_check"), "defaults"))
        raise ConfigError(f"{source}: voice.record_s: {voice.record_s!r} is too short for voice.digit_check "
                          f"(the phrase and then the digits need at least {DIGIT_CHECK_MIN_RECORD_S} s)")


def config_error(problems):
    """One ConfigError naming every problem (one line when there is one)."""
    if len(problems) == 1:
        error = ConfigError(problems[0])
    else:
        error = ConfigError(f"{len(problems)} problems:\n  " + "\n  ".join(problems))
    error.problems = list(problems)
    return error


def _build_section(name, values, origin, problems=None):
    """The section dataclass; with a ``problems`` list, bad keys are noted there (and left at their default)."""
    cls = SECTIONS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = {}
    own = [] if problems is None else problems
    for key, value in values.items():
        source = origin if isinstance(origin, str) else origin.get((name, key), "defaults")
        where = f"{source}: {name}.{key}"
        if key not in fields:
            own.append(f"{where}: unknown key (known in [{name}]: {', '.join(fields)})")
            continue
        try:
            checked[key] = _check_value(where, fields[key], value)
        except ConfigError as e:
            own.append(str(e))
    if problems is None and own:
        raise config_error(own)
    return cls(**checked)


def _check_value(where, f, value):
    """Validate one value against its field; return it (an int given for a float becomes a float)."""
    meta = f.metadata
    expected = f.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is not bool and isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    if expected is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if meta["min"] is not None and value < meta["min"]:
        raise ConfigError(f"{where}: {value!r} is below the minimum {meta['min']}")
    if meta["max"] is not None and value > meta["max"]:
        raise ConfigError(f"{where}: {value!r} is above the maximum {meta['max']}")
    kind = meta["kind"]
    if kind == "url" and value and url_problem(value):
        raise ConfigError(f"{where}: {url_problem(value)}")
    if kind == "timezone" and timezone_problem(value):
        raise ConfigError(f"{where}: {timezone_problem(value)}")
    if kind == "utc_offset_or_zone" and value and not UTC_OFFSET_RE.match(value) and timezone_problem(value):
        raise ConfigError(f"{where}: {value!r} is neither a UTC offset like '+03:00' nor a known time zone")
    if kind == "pin_hash" and value:
        from kiosk import pinhash

        if pinhash.problem(value):
            raise ConfigError(f"{where}: {pinhash.problem(value)}")
    if kind == "windows":
        from kiosk.timewindows import parse_window

        for item in value:
            try:
                parse_window(item)
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None
    if kind == "pin" and value not in BCM_PINS:
        raise ConfigError(f"{where}: {value!r} is not a BCM GPIO number (0-27)")
    if kind == "path" and "\0" in value:
        raise ConfigError(f"{where}: path contains a NUL byte")
    if kind == "hex" and value:
        try:
            bytes.fromhex(value)
        except ValueError:
            raise ConfigError(f"{where}: not a hex string") from None
    if kind == "key" and value and not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise ConfigError(f"{where}: not an Ed25519 public key (64 lowercase hex digits)")
    return value


UTC_OFFSET_RE = re.compile(r"^[+-]((0\d|1[0-3]):[0-5]\d|14:00)$")  # no zone is further than 14 h from UTC


def timezone_problem(value):
    """None if ``value`` names an IANA time zone known here, else a one-line reason."""
    if value == "localtime":    # zoneinfo/localtime points back at /etc/localtime: provisioning would link a loop
        return "'localtime' is the system's own setting, not a time zone (e.g. 'Asia/Riyadh', 'UTC')"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"{value!r} is not a known time zone (e.g. 'Asia/Riyadh', 'UTC')"
    return None


def _from_environ(environ):
    """KIOSK_SYNC__SERVER_URL=... -> {"sync": {"server_url": ...}}; values parse as TOML when they can."""
    data = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in SECTIONS:
            raise ConfigError(f"environment: {name}: unknown section {section!r}")
        data.setdefault(section, {})[key] = _parse_env_value(raw)
    return data


def _parse_env_value(raw):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def as_dict(settings, *, mask_secrets=True):
    """The effective settings as nested dicts, secrets replaced by '***'."""
    out = {}
    for sf in dataclasses.fields(settings):
        section = getattr(settings, sf.name)
        values = {}
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if mask_secrets and f.metadata.get(SECRET_MARK) and value not in ("", 0):
                value = "***"
            values[f.name] = value
        out[sf.name] = values
    return out


def to_toml(data):
    """Render nested dicts as TOML (for `kiosk config show` and provisioning)."""
    import tomli_w

    return tomli_w.dumps(data)


SECTION_DOCS = {
    "device": "This kiosk's local time (written by `kiosk provision`).",
    "hardware": "Which hardware the kiosk drives. Production never falls back to the simulator.",
    "camera": "Camera: a large display stream and a small inference (lores) stream.",
    "fingerprint": "Optical fingerprint module (R30x / ZFM / AS608) on a UART.",
    "gpio": "GPIO parts, BCM numbering (see docs/hardware.md for the wiring table).",
    "face": "On-device face pipeline and the attendance decision rule (see docs/benchmarks.md).",
    "attendance": "Clocking in and out.",
    "sync": "Central server and optional ZKTeco PUSH/ADMS server.",
    "ui": "What the flows tell the screen: the session language, the inactivity timeout and dimming.",
    "storage": "Where data lives and the free-space floors.",
    "security": "Keys. Files named here must be mode 0600, owned by the kiosk user.",
}


def example_toml():
    """A fully commented settings file showing every key at its default (docs/kiosk.example.toml)."""
    import tomli_w

    lines = ["# Kiosk settings: /etc/kiosk/kiosk.toml",
             "# Every key is shown at its default. Precedence: defaults < this file < environment",
             "# variables KIOSK_<SECTION>__<KEY> (e.g. KIOSK_SYNC__BATCH_SIZE=200).",
             "# Validate with: kiosk config check FILE   Show the effective settings: kiosk config show", ""]
    for sf in dataclasses.fields(Settings):
        lines.append(f"# {SECTION_DOCS.get(sf.name, '')}")
        lines.append(f"[{sf.name}]")
        for f in dataclasses.fields(sf.default_factory):
            meta = f.metadata
            notes = [meta["doc"]] if meta["doc"] else []
            if meta["choices"]:
                notes.append("one of: " + ", ".join(map(str, meta["choices"][:12])))
            if meta["min"] is not None or meta["max"] is not None:
                notes.append(f"range {meta['min']} .. {meta['max']}")
            if meta["kind"] == "pin":
                notes.append("BCM GPIO 0-27")
            if meta[SECRET_MARK]:
                notes.append("secret: masked by `kiosk config show`")
            if notes:
                lines.append("# " + "; ".join(notes))
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(tomli_w.dumps({f.name: default}).strip())
        lines.append("")
    return "\n".join(lines)
