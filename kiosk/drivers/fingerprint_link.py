"""The wire under pyfingerprint: per-call timeouts, silence detection, retries, error mapping.

pyfingerprint reads one byte at a time with a 2 s timeout and treats a timed-out read as a
byte, so a silent (unplugged) sensor costs it 12 timeouts before it complains about a bad
header. ``GuardedSerial`` wraps the library's pyserial object: it applies the timeout the
driver chose for the current call and raises at the first read that times out, as
``DeviceAbsentError`` when nothing at all came back since the last write, as
``CommunicationError`` when a reply stopped halfway, and as ``CommunicationError`` too once the
call's deadline has passed (a module that streams bytes without end never times out a read, so
only a deadline on the whole call frees the driver). ``translate`` maps the
library's plain ``Exception`` messages and unknown confirmation codes onto ``kiosk.errors``.
"""

import logging
import re

import serial

from kiosk.errors import (
    CommunicationError,
    DeviceAbsentError,
    DeviceBusyError,
    FingerMovedError,
    PoorImageError,
    SensorError,
    WrongPasswordError,
)

log = logging.getLogger(__name__)

# confirmation codes the library reports only as "Unknown error 0x.."
CODE_CANNOT_RECEIVE = 0x0E  # "module can't receive the following packets": busy with something else
CODE_PASSWORD_REQUIRED = 0x21  # the module forgot our VfyPwd (power cycle): handshake again
CODE_UNSUPPORTED = 0xFC


class SessionLostError(WrongPasswordError):
    """The module asks for the password again (it was power-cycled)."""


class CallDeadlineError(CommunicationError):
    """The call ran past its deadline: the sensor kept sending (retrying would not help)."""


class GuardedSerial:
    """A pyserial port as pyfingerprint uses it, with the driver's timeout and silence checks."""

    def __init__(self, port, *, monotonic):
        self.port = port
        self.timeout_s = port.timeout
        self.received = 0  # bytes read since the last write
        self._monotonic = monotonic
        self._deadline = None  # monotonic time the current call must end by
        self._budget_s = None

    def set_deadline(self, budget_s):
        """Bound the current call (all its reads and discards) to ``budget_s`` from now; None: none."""
        self._budget_s = budget_s
        self._deadline = None if budget_s is None else self._monotonic() + budget_s

    def _check_deadline(self):
        if self._deadline is not None and self._monotonic() >= self._deadline:
            raise CallDeadlineError(f"the fingerprint sensor on {self.port.port} was still sending after the "
                                     f"call's {self._budget_s:.1f} s deadline (a module streaming without end?)")

    def set_timeout(self, timeout_s):
        self.timeout_s = timeout_s
        if self.port.timeout != timeout_s:
            self.port.timeout = timeout_s

    def write(self, data):
        self.received = 0
        return self.port.write(data)

    def read(self, size=1):
        self._check_deadline()
        data = self.port.read(size)
        if not data:
            if self.received == 0:
                raise DeviceAbsentError(f"fingerprint sensor on {self.port.port} does not answer within "
                                        f"{self.timeout_s:.2f} s (unplugged, unpowered, or another baud "
                                        "rate or module address?)")
            raise CommunicationError(f"reply from the fingerprint sensor stopped after {self.received} bytes")
        self.received += len(data)
        return data

    def discard_input(self, *, quiet_s=0.0):
        """Drop whatever is waiting; with ``quiet_s``, also what arrives until the line is quiet."""
        self.port.reset_input_buffer()
        if quiet_s <= 0:
            return
        saved = self.port.timeout
        self.port.timeout = quiet_s
        try:
            while self.port.read(4096):
                self._check_deadline()
        finally:
            self.port.timeout = saved

    def isOpen(self):  # the spelling pyfingerprint calls
        return self.port.is_open

    is_open = property(isOpen)

    def open(self):
        self.port.open()

    def close(self):
        if self.port.is_open:
            self.port.close()


_UNKNOWN_CODE = re.compile(r"Unknown error (0x[0-9a-fA-F]+)")

# pyfingerprint 1.5 raises plain Exception with these messages
_MESSAGES = (
    ("valid header", CommunicationError, "reply from the sensor did not start with a packet header (line noise?)"),
    ("checksum is wrong", CommunicationError, "reply from the sensor had a wrong checksum"),
    ("no ack packet", CommunicationError, "the sensor sent something other than an acknowledgement"),
    ("no data packet", CommunicationError, "the sensor sent something other than a data packet"),
    ("Communication error", CommunicationError, "the sensor received a corrupt packet from us"),
    ("The address is wrong", CommunicationError, "the sensor has another module address"),
    ("too messy", PoorImageError,
     "image too messy: the finger is probably wet, oily or smudged; clean and dry it, then press flat"),
    ("too few feature points", PoorImageError,
     "too few features: the finger is probably dirty, too dry or not pressed flat over the window"),
    ("image is invalid", PoorImageError, "no usable image: press the finger flat over the whole window",
     "press_flat"),
    ("Could not read image", FingerMovedError, "the finger moved or was lifted while the image was taken"),
    ("Could not upload characteristics", DeviceBusyError, "the sensor cannot receive data now (busy)"),
)


def translate(exc, what):
    """The kiosk error for an exception out of a pyfingerprint call (``what`` names the call)."""
    if isinstance(exc, (CommunicationError, DeviceAbsentError, DeviceBusyError, SensorError)):
        return exc
    if isinstance(exc, serial.SerialException) or isinstance(exc, OSError):
        return DeviceAbsentError(f"{what}: serial port failed: {exc}")
    message = str(exc)
    match = _UNKNOWN_CODE.search(message)
    if match:
        code = int(match.group(1), 16)
        if code == CODE_CANNOT_RECEIVE:
            return DeviceBusyError(f"{what}: the sensor is busy (code {code:#04x})")
        if code == CODE_PASSWORD_REQUIRED:
            return SessionLostError(f"{what}: the sensor asks for the password again")
        if code == CODE_UNSUPPORTED:
            return SensorError(f"{what}: this sensor model does not support the command")
        return SensorError(f"{what}: the sensor answered with code {code:#04x}")
    for needle, error_type, text, *guidance in _MESSAGES:
        if needle in message:
            return error_type(f"{what}: {text}", guidance=guidance[0] if guidance else None)
    return SensorError(f"{what}: {message}")
