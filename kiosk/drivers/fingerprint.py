"""Optical fingerprint module on a UART (R30x/ZFM/AS608 family), driven through pyfingerprint.

The module captures, extracts features, builds templates and searches its own flash library;
this driver sequences those steps, applies sensible timeouts, retries corrupt replies and
turns every failure into a ``kiosk.errors`` type with a guidance code. All calls block: run
them on ``SensorWorker`` (kiosk.drivers.fingerprint_worker), never on the UI thread.

A sensor that stops answering is reported as ``DeviceAbsentError`` after one short timeout
(``probe_timeout_s`` for the probe, ``command_timeout_s`` for image capture and other quick
commands); the next call opens the port again if needed and repeats the handshake, so a
sensor that comes back is picked up without restarting anything.
"""

import logging
import tempfile
import termios
import threading
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import serial

from kiosk.clock import SystemClock
from kiosk.drivers import fingerprint_link as link
from kiosk.errors import (
    CancelledError,
    CommunicationError,
    DeviceAbsentError,
    FingerMismatchError,
    KioskError,
    NoFingerError,
    NoMatchError,
    SensorError,
    WrongPasswordError,
)

log = logging.getLogger(__name__)

LED_MODELS = ("R503",)
LED_MODES = {"breathing": 1, "flashing": 2, "on": 3, "off": 4, "fade_in": 5, "fade_out": 6}
LED_COLORS = {"red": 1, "blue": 2, "purple": 3, "green": 4, "yellow": 5, "cyan": 6, "white": 7}
_AURA_LED_CONFIG = 0x35
IMAGE_SHAPE = (288, 256)


@dataclass(frozen=True)
class SensorInfo:
    """What a probe learnt: the handshake worked, and the module's library state.

    Also reads as a mapping (``dict(info)``) for reports such as `kiosk doctor --json`.
    """

    handshake: bool
    model: str
    capacity: int
    template_count: int
    security_level: int
    packet_size: int
    baud: int
    busy: bool
    port: str

    def keys(self):
        return [f.name for f in fields(self)]

    def __getitem__(self, name):
        return getattr(self, name)


@dataclass(frozen=True)
class Enrollment:
    """A finished enrolment: the 512-byte template, and the slot it was stored at (or None)."""

    template: bytes
    slot: int | None


class FingerprintSensor:
    """One fingerprint module on a serial port; a context manager; ``close()`` is idempotent.

    Timeouts: ``timeout_s`` bounds the slow calls (search, template and image transfers);
    ``command_timeout_s`` (at most ``timeout_s``) every other command, image capture included;
    ``probe_timeout_s`` the handshake and ``probe()``. Each is how long a silent sensor takes to
    be reported absent on that path. A corrupt or truncated reply is retried ``retries`` times.
    Deadlines bound each call as a whole, retries included (the handshake again after a power
    cycle starts a new one), against a sensor that keeps sending:
    ``deadline_s`` the quick commands and the handshake, ``transfer_deadline_s`` the slow calls
    (an image upload takes about 6.4 s at 57,600 bps).
    ``security_level`` (1-5), when given, is written to the module on the handshake if it differs.
    """

    def __init__(self, *, port, baud=57600, password=0, address=0xFFFFFFFF, timeout_s=2.0,
                 command_timeout_s=0.7, probe_timeout_s=0.3, retries=2, model="R307",
                 security_level=None, capture_timeout_s=10.0, enroll_captures=3,
                 poll_interval_s=0.05, deadline_s=3.0, transfer_deadline_s=15.0, clock=None):
        self.port = str(port)
        self.baud = baud
        self.model = model
        self.timeout_s = timeout_s  # slow commands: search, template and image transfers
        self.command_timeout_s = min(command_timeout_s, timeout_s)  # everything else
        self.probe_timeout_s = min(probe_timeout_s, self.command_timeout_s)
        self.retries = retries
        self.security_level = security_level
        self.capture_timeout_s = capture_timeout_s
        self.enroll_captures = enroll_captures
        self.poll_interval_s = poll_interval_s
        self.deadline_s = deadline_s
        self.transfer_deadline_s = max(transfer_deadline_s, deadline_s)
        self._password = password
        self._address = address
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._fp = None
        self._wire = None
        self._ready = False
        self._params = None
        self._closed = False
        self._line_dirty = False  # a call ran past its deadline: late bytes may still arrive

    @classmethod
    def from_settings(cls, settings, **overrides):
        """Build from the ``fingerprint`` settings section; keyword overrides win (e.g. port=)."""
        options = dict(port=settings.port, baud=settings.baud, password=settings.password,
                       address=settings.address, timeout_s=settings.timeout_s, model=settings.sensor_model,
                       security_level=settings.security_level, capture_timeout_s=settings.capture_timeout_s,
                       enroll_captures=settings.enroll_captures)
        options.update(overrides)
        return cls(**options)

    # -- life cycle --------------------------------------------------------------------------

    def open(self):
        """Open the port and shake hands; a no-op when already open. Raises if the sensor is absent."""
        with self._lock:
            self._closed = False
            self._ensure_ready()
        return self

    def close(self):
        with self._lock:
            self._closed = True
            self._drop_port()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    @property
    def is_open(self):
        return self._fp is not None

    def _drop_port(self):
        self._ready = False
        if self._wire is not None:
            try:
                self._wire.close()
            except (OSError, serial.SerialException):
                pass
        self._fp = self._wire = None

    def _open_port(self):
        from pyfingerprint.pyfingerprint import PyFingerprint

        try:
            fp = PyFingerprint(self.port, self.baud, self._address, self._password)
        except (serial.SerialException, OSError) as e:
            raise DeviceAbsentError(f"fingerprint sensor port {self.port} cannot be opened: {e}") from None
        # pyfingerprint keeps its pyserial object in a name-mangled attribute; we put our guard
        # around it (timeouts, silence detection) without changing the library.
        self._wire = link.GuardedSerial(fp._PyFingerprint__serial, monotonic=self._clock.monotonic)
        fp._PyFingerprint__serial = self._wire
        self._fp = fp
        log.info("fingerprint sensor port %s open at %d bps", self.port, self.baud)

    def _ensure_ready(self):
        """Open the port if needed and do the handshake (password, parameters) once per session."""
        if self._ready:
            return
        if self._fp is None:
            self._open_port()
        self._wire.set_deadline(self.deadline_s)
        try:
            self._attempt("handshake", self._handshake, self.probe_timeout_s, handshake=True)
        finally:
            if self._wire is not None:
                self._wire.set_deadline(None)
        self._ready = True

    def _handshake(self):
        if not self._fp.verifyPassword():
            raise WrongPasswordError(f"fingerprint sensor on {self.port} rejected the password")
        params = self._fp.getSystemParameters()
        if self.security_level and params[3] != self.security_level:
            self._wire.set_timeout(self.command_timeout_s)  # a flash write, slower than a probe
            self._fp.setSecurityLevel(self.security_level)
            params = self._fp.getSystemParameters()
        (log.debug if self._params == params else log.info)(
            "fingerprint sensor ready: capacity %d, security level %d", params[2], params[3])
        self._params = params

    # -- the call machinery ------------------------------------------------------------------

    def _call(self, what, fn, timeout_s=None):
        """Run one library call with handshake, retries and error mapping; returns its result."""
        with self._lock:
            if self._closed:
                raise SensorError("the fingerprint sensor is closed")
            self._ensure_ready()
            deadline_s = self.deadline_s if timeout_s is None else self.transfer_deadline_s
            self._wire.set_deadline(deadline_s)
            try:
                return self._attempt(what, fn, timeout_s or self.command_timeout_s)
            except link.SessionLostError:
                self._ready = False  # the module was power-cycled: handshake, then once more
                self._ensure_ready()
                self._wire.set_deadline(deadline_s)
                return self._attempt(what, fn, timeout_s or self.command_timeout_s)
            finally:
                if self._wire is not None:
                    self._wire.set_deadline(None)

    def _attempt(self, what, fn, timeout_s, *, handshake=False):
        last = None
        for attempt in range(self.retries + 1):
            try:
                self._wire.set_timeout(timeout_s)
                # a late or corrupt reply must not be read as the answer to this command; after
                # a deadline, replies to the abandoned commands may still be on their way
                self._wire.discard_input(quiet_s=0.05 if last or self._line_dirty else 0.0)
                self._line_dirty = False
                return fn()
            except KioskError as e:  # from GuardedSerial: silence or a reply cut short
                error = e
            except (serial.SerialException, OSError, termios.error) as e:
                self._drop_port()  # the port itself failed (adapter unplugged): reopen it next time
                raise DeviceAbsentError(f"{what}: serial port {self.port} failed: {e}") from None
            except Exception as e:  # pyfingerprint raises plain Exception for everything else
                error = link.translate(e, what)
            if isinstance(error, CommunicationError) and not isinstance(error, link.CallDeadlineError):
                last = error
                log.warning("%s (attempt %d of %d)", error, attempt + 1, self.retries + 1)
                continue
            if isinstance(error, link.SessionLostError) and handshake:
                error = WrongPasswordError(f"{what}: the sensor keeps asking for the password")
            if isinstance(error, (DeviceAbsentError, WrongPasswordError)):
                self._ready = False
            if isinstance(error, link.CallDeadlineError):
                self._line_dirty = True
            raise error from None
        self._ready = False
        raise CommunicationError(f"{last} ({self.retries + 1} attempts)") from None

    def _sleep(self, seconds, cancel):
        if cancel is not None and cancel.is_set():
            raise CancelledError("fingerprint operation cancelled")
        self._clock.sleep(seconds)

    # -- health ------------------------------------------------------------------------------

    def probe(self):
        """Handshake, then read the library state; cheap, for `kiosk doctor`. Raises if unhealthy."""
        with self._lock:
            if self._closed:
                self._closed = False
            self._ready = False  # always repeat the handshake: that is what a probe checks

            def read():
                params = self._fp.getSystemParameters()
                return params, self._fp.getTemplateCount()

            self._ensure_ready()
            self._wire.set_deadline(self.deadline_s)
            try:
                params, count = self._attempt("probe", read, self.probe_timeout_s)
            finally:
                if self._wire is not None:
                    self._wire.set_deadline(None)
            self._params = params
            return SensorInfo(handshake=True, model=self.model, capacity=params[2], template_count=count,
                              security_level=params[3], packet_size=(32, 64, 128, 256)[params[5] & 3],
                              baud=params[6] * 9600, busy=bool(params[0] & 1), port=self.port)

    def is_present(self):
        """True when the sensor answers a probe (within about ``probe_timeout_s``)."""
        try:
            self.probe()
            return True
        except (SensorError, CommunicationError, DeviceAbsentError, OSError) as e:
            log.debug("fingerprint sensor not present: %s", e)
            return False

    # -- capture -----------------------------------------------------------------------------

    def finger_present(self):
        """Take one image; True if a finger was on the glass (the image stays in the sensor)."""
        return bool(self._call("read image", self._fp_call("readImage")))

    def wait_for_finger(self, *, timeout_s=None, cancel=None):
        """Poll until an image of a finger is taken; NoFingerError after ``timeout_s``."""
        timeout_s = self.capture_timeout_s if timeout_s is None else timeout_s
        deadline = self._clock.monotonic() + timeout_s
        while True:
            if cancel is not None and cancel.is_set():
                raise CancelledError("fingerprint capture cancelled")
            if self.finger_present():
                return
            if self._clock.monotonic() >= deadline:
                raise NoFingerError(f"no finger on the sensor within {timeout_s:.1f} s")
            self._sleep(self.poll_interval_s, cancel)

    def wait_for_lift(self, *, timeout_s=None, cancel=None):
        """Poll until the glass is empty (between enrolment captures)."""
        timeout_s = self.capture_timeout_s if timeout_s is None else timeout_s
        deadline = self._clock.monotonic() + timeout_s
        while self.finger_present():
            if self._clock.monotonic() >= deadline:
                raise SensorError(f"the finger stayed on the sensor for {timeout_s:.1f} s", guidance="lift_finger")
            self._sleep(self.poll_interval_s, cancel)

    def capture(self, *, timeout_s=None, cancel=None, buffer=1):
        """Wait for a finger, image it and extract its features into char buffer 1 or 2."""
        self.wait_for_finger(timeout_s=timeout_s, cancel=cancel)
        self._call("extract features", self._fp_call("convertImage", buffer))

    def identify(self, *, timeout_s=None, cancel=None):
        """Capture, then 1:N search: (slot, score); NoMatchError when nobody matches."""
        self.capture(timeout_s=timeout_s, cancel=cancel)
        return self.search()

    def verify(self, template, *, timeout_s=None, cancel=None):
        """Capture, then 1:1 match on the sensor against ``template`` (DownChar into buffer 2, Match): the score.

        Raises NoMatchError when the finger on the glass is not the one ``template`` was made from.
        """
        return self.verify_any([template], timeout_s=timeout_s, cancel=cancel)

    def verify_any(self, templates, *, timeout_s=None, cancel=None):
        """Capture once, then match against each of a claimed person's templates: the best score, or NoMatchError."""
        if not templates:
            raise ValueError("no template to verify against")
        self.capture(timeout_s=timeout_s, cancel=cancel)
        best = 0
        for template in templates:
            try:
                best = max(best, self.match(template))
            except NoMatchError:
                continue
        if not best:
            raise NoMatchError("the finger does not match the claimed person's templates")
        return best

    def match(self, template):
        """Match char buffer 1 against ``template`` loaded into buffer 2: the score, or NoMatchError."""
        self.load_characteristics(template, buffer=2)
        score = self._call("match", self._fp_call("compareCharacteristics"), self.timeout_s)
        if not score:
            raise NoMatchError("the finger does not match the claimed template")
        return score

    def characteristics(self, *, buffer=1):
        """The character file in ``buffer`` (after a capture: the features of the finger on the glass)."""
        return bytes(self._call("read characteristics", self._fp_call("downloadCharacteristics", buffer),
                                self.timeout_s))

    def enroll(self, *, captures=None, slot=None, timeout_s=None, cancel=None, on_step=None):
        """Build a template from ``captures`` placements of one finger; store it at ``slot`` if given.

        ``on_step(step, number)`` is called before each wait with ``("place_finger", n)`` or
        ``("lift_finger", n)``, and after each good capture with ``("captured", n)``.
        Raises FingerMismatchError when a capture is not the same finger as the first ones.
        """
        captures = captures or self.enroll_captures
        if captures < 2:
            raise ValueError("an enrolment needs at least 2 captures")
        if slot is not None:
            self._check_slot(slot)
        step = on_step or (lambda *_: None)
        for number in range(1, captures + 1):
            if number > 1:
                step("lift_finger", number - 1)
                self.wait_for_lift(timeout_s=timeout_s, cancel=cancel)
            step("place_finger", number)
            self.capture(timeout_s=timeout_s, cancel=cancel, buffer=1 if number == 1 else 2)
            if number == 2:
                if not self._call("merge captures", self._fp_call("createTemplate")):
                    raise FingerMismatchError("the second capture is not the same finger as the first")
            elif number > 2:
                if not self._call("compare capture", self._fp_call("compareCharacteristics")):
                    raise FingerMismatchError(f"capture {number} is not the same finger as the first ones")
            step("captured", number)
        template = bytes(self._call("read template", self._fp_call("downloadCharacteristics", 1),
                                    self.timeout_s))
        if slot is not None:
            self.store(slot)
        return Enrollment(template=template, slot=slot)

    # -- library -----------------------------------------------------------------------------

    @property
    def capacity(self):
        """Template slots in the module's library."""
        if self._params is None:
            self.open()
        return self._params[2]

    def count(self):
        """Templates stored in the module."""
        return self._call("template count", self._fp_call("getTemplateCount"))

    def slots(self):
        """Sorted numbers of the occupied slots."""
        capacity = self.capacity
        used = []
        for page in range((capacity + 255) // 256):
            index = self._call("template index", self._fp_call("getTemplateIndex", page))
            used += [page * 256 + i for i, on in enumerate(index) if on and page * 256 + i < capacity]
        return used

    def free_slot(self):
        """The lowest empty slot; SensorError when the library is full."""
        used = set(self.slots())
        for slot in range(self.capacity):
            if slot not in used:
                return slot
        raise SensorError("the sensor's template library is full")

    def _check_slot(self, slot):
        if not isinstance(slot, int) or not 0 <= slot < self.capacity:
            raise ValueError(f"slot must be within 0..{self.capacity - 1}, got {slot!r}")

    def store(self, slot, *, buffer=1):
        """Store the template in char buffer 1 (or 2) at ``slot``."""
        self._check_slot(slot)
        self._call("store template", self._fp_call("storeTemplate", slot, buffer))

    def search(self):
        """1:N search of char buffer 1 over the whole library: (slot, score) or NoMatchError."""
        slot, score = self._call("search", self._fp_call("searchTemplate"), self.timeout_s)
        if slot < 0:
            raise NoMatchError("the finger matches no template on the sensor")
        return slot, score

    def delete(self, slot, *, count=1):
        """Empty ``count`` slots from ``slot`` on, in one command (emptying an empty slot is fine)."""
        self._check_slot(slot)
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self._check_slot(slot + count - 1)
        if not self._call("delete template", self._fp_call("deleteTemplate", slot, count)):
            raise SensorError(f"the sensor could not delete slots {slot}..{slot + count - 1}")

    def clear(self):
        """Empty the whole library."""
        if not self._call("clear library", self._fp_call("clearDatabase"), self.timeout_s):
            raise SensorError("the sensor could not clear its library")

    def download_template(self, slot):
        """The template stored at ``slot`` (512 bytes on R30x modules)."""
        self._check_slot(slot)
        self._call("load template", self._fp_call("loadTemplate", slot, 1))
        return bytes(self._call("read template", self._fp_call("downloadCharacteristics", 1), self.timeout_s))

    def upload_template(self, slot, template):
        """Write ``template`` (from download_template or the database) into ``slot``."""
        self._check_slot(slot)
        self.load_characteristics(template)
        self.store(slot)

    def load_characteristics(self, template, *, buffer=1):
        """Put ``template`` into char buffer 1 or 2 without storing it (then ``search()`` finds its owner)."""
        data = list(bytes(template))
        if not data:
            raise ValueError("empty template")
        if not self._call("write template", self._fp_call("uploadCharacteristics", buffer, data), self.timeout_s):
            raise CommunicationError("the template read back from the sensor differs from the one written")

    def download_image(self):
        """The last captured image as a 288x256 uint8 array (16 grey levels). Slow: ~7 s at 57,600 bps."""
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="kiosk-finger-") as tmp:
            path = Path(tmp) / "finger.bmp"
            self._call("read image", self._fp_call("downloadImage", str(path)), self.timeout_s)
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L"), dtype=np.uint8).copy()
        if pixels.shape != IMAGE_SHAPE:
            raise CommunicationError(f"image of unexpected size {pixels.shape}")
        return pixels

    def random_number(self):
        """A 32-bit number from the module's generator."""
        return self._call("random number", self._fp_call("generateRandomNumber"))

    def led(self, mode="on", color="blue", *, speed=128, count=0):
        """Set the R503 LED ring; returns False (and does nothing) on models without one."""
        if self.model not in LED_MODELS:
            return False
        if mode not in LED_MODES or color not in LED_COLORS:
            raise ValueError(f"mode must be one of {sorted(LED_MODES)}, color one of {sorted(LED_COLORS)}")
        payload = (_AURA_LED_CONFIG, LED_MODES[mode], speed & 0xFF, LED_COLORS[color], count & 0xFF)

        def send():
            # pyfingerprint has no LED call: use its own packet framing for this one command
            self._fp._PyFingerprint__writePacket(0x01, payload)
            kind, reply = self._fp._PyFingerprint__readPacket()
            if kind != 0x07:
                raise Exception("The received packet is no ack packet!")
            if reply[0] != 0x00:
                raise Exception(f"Unknown error {reply[0]:#x}")
            return True

        return self._call("LED ring", send)

    def _fp_call(self, name, *args):
        return lambda: getattr(self._fp, name)(*args)
