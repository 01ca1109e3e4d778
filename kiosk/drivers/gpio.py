"""GPIO board: door relay, status lights, buzzer, exit button, tamper switch and PIR sensor.

The ``Board`` is built from small gpiozero devices sharing one pin factory, which the caller
chooses by name (``make_pin_factory``): ``rpigpio`` on a Pi 4, ``lgpio`` on a Pi 5, ``mock`` for
the simulator. The hardware libraries are imported only inside those functions, and nothing
falls back silently: a Pi 5 without lgpio is an error, not a simulator.

Wiring conventions (docs/hardware.md): the exit button and the tamper switch pull their pin to
ground, with the internal pull-up; the tamper switch is normally closed (a closed enclosure
reads low, an opened one or a cut wire reads high); the PIR module drives its output high on
presence.
"""

import logging
import math
import threading
import time
from pathlib import Path

from kiosk.errors import ActuatorLimitError, ConfigError, HardwareError

log = logging.getLogger(__name__)

PIN_FACTORIES = ("rpigpio", "lgpio", "mock")
BUTTON_BOUNCE_S = 0.05

# buzzer patterns: (on seconds, off seconds, repetitions)
BEEP_PATTERNS = {
    "ok": (0.10, 0.0, 1),
    "error": (0.15, 0.10, 3),
    "alarm": (0.50, 0.25, 6),
}

# which lights show which status
STATUS_LIGHTS = {
    "off": (),
    "ready": ("green",),
    "ok": ("green",),
    "busy": ("amber",),
    "error": ("red",),
    "offline": ("amber", "red"),
}


def make_pin_factory(name):
    """A gpiozero pin factory by name: 'rpigpio' (Pi 4), 'lgpio' (Pi 5) or 'mock' (simulator)."""
    if name == "rpigpio":
        return _rpigpio_factory()
    if name == "lgpio":
        return _lgpio_factory()
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    raise ConfigError(f"unknown pin factory {name!r} (known: {', '.join(PIN_FACTORIES)})")


def _rpigpio_factory():
    try:
        from gpiozero.pins.rpigpio import RPiGPIOFactory
    except ImportError as e:
        raise HardwareError("RPi.GPIO is not installed (pip install 'kiosk[pi]' or apt install python3-rpi.gpio)") from e
    try:
        return RPiGPIOFactory()
    except RuntimeError as e:
        raise HardwareError(f"RPi.GPIO cannot open the GPIO: {e} (is this a Pi 4? is the user in group gpio?)") from e


def _lgpio_factory():
    try:
        from gpiozero.pins.lgpio import LGPIOFactory
    except ImportError as e:
        raise HardwareError("lgpio is not installed (pip install 'kiosk[pi]' or apt install python3-lgpio)") from e
    try:
        return LGPIOFactory()
    except Exception as e:  # lgpio raises its own 'error' type
        raise HardwareError(f"lgpio cannot open /dev/gpiochip*: {e} (is the user in group gpio?)") from e


def detect_pi_model(model_path="/proc/device-tree/model"):
    """'pi4' or 'pi5' from the device tree, or None when this is not a Pi 4 or 5."""
    try:
        model = Path(model_path).read_bytes().decode("ascii", "replace")
    except OSError:
        return None
    if "Raspberry Pi 5" in model or "Compute Module 5" in model:
        return "pi5"
    if "Raspberry Pi 4" in model or "Compute Module 4" in model or "Raspberry Pi 400" in model:
        return "pi4"
    return None


def pin_factory_name(backend, pi_model="auto", *, model_path="/proc/device-tree/model"):
    """The pin factory for a hardware backend: the simulator's mock, or the Pi's own library."""
    if backend == "sim":
        return "mock"
    if backend not in ("pi", "usb"):
        raise ConfigError(f"hardware.backend: unknown backend {backend!r}")
    model = detect_pi_model(model_path) if pi_model == "auto" else pi_model
    if model is None:
        raise HardwareError("hardware.pi_model = 'auto' but this is not a Raspberry Pi 4 or 5; "
                            "set hardware.pi_model or use hardware.backend = 'sim'")
    return {"pi4": "rpigpio", "pi5": "lgpio"}[model]


class Door:
    """The door-strike relay: ``pulse(seconds)`` opens the door and closes it again on time.

    The relay itself refuses a pulse that is not a finite number in (0, ``max_pulse_s``]: a
    door held open by a bad number (infinity, NaN, an hour) is the failure that matters most.
    """

    def __init__(self, pin, *, active_low=False, max_pulse_s, pin_factory):
        from gpiozero import OutputDevice

        if not (isinstance(max_pulse_s, (int, float)) and math.isfinite(max_pulse_s) and max_pulse_s > 0):
            raise ConfigError(f"door max_pulse_s must be a positive finite number, not {max_pulse_s!r}")
        self.max_pulse_s = float(max_pulse_s)
        self.relay = OutputDevice(pin, active_high=not active_low, initial_value=False, pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._closed.set()
        self._deadline_s = 0.0
        self._thread = None
        self.pulses = 0

    @property
    def is_open(self):
        """True while the relay is released to let the door open."""
        return bool(self.relay.value)

    def pulse(self, seconds):
        """Open now and close ``seconds`` from now; a pulse while open extends the opening.

        ActuatorLimitError (a ValueError) for anything but a finite number in (0, max_pulse_s].
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ActuatorLimitError(f"door pulse refused: {seconds!r} is not a finite number of seconds")
        if seconds <= 0:
            raise ActuatorLimitError("door pulse refused: it must last more than 0 s")
        if seconds > self.max_pulse_s:
            raise ActuatorLimitError(f"door pulse refused: {seconds:g} s is longer than the maximum "
                                     f"{self.max_pulse_s:g} s (gpio.door_max_pulse_s)")
        with self._lock:
            self._deadline_s = time.monotonic() + seconds
            self.relay.on()
            self._closed.clear()
            self.pulses += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._close_on_time, name="door-pulse", daemon=True)
                self._thread.start()
            else:
                self._wake.set()
        log.info("door opened for %.1f s", seconds)

    def _close_on_time(self):
        while True:
            with self._lock:
                remaining = self._deadline_s - time.monotonic()
                if remaining <= 0:
                    self._shut()
                    self._thread = None
                    return
            self._wake.wait(remaining)
            self._wake.clear()

    def _shut(self):
        if not self.relay.closed:
            self.relay.off()
        self._closed.set()

    def lock(self):
        """Close the door now, ending any pulse."""
        with self._lock:
            self._deadline_s = 0.0
            self._shut()
        self._wake.set()

    def wait_for_closed(self, timeout=None):
        """Block until the door is closed again; True if it is."""
        return self._closed.wait(timeout)

    def close(self):
        if self.relay.closed:
            return
        self.lock()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)
        self.relay.close()


class Board:
    """The kiosk's GPIO parts on one pin factory; a context manager, ``close()`` is idempotent.

    Callbacks (called on gpiozero's thread, with no arguments): ``when_exit_pressed``,
    ``when_tampered``, ``when_tamper_cleared``, ``when_motion``, ``when_no_motion``.
    """

    def __init__(self, gpio_settings, *, pin_factory, close_factory=False):
        from gpiozero import LED, Button, Buzzer, DigitalInputDevice

        _check_pins(gpio_settings)
        self.settings = gpio_settings
        self.pin_factory = pin_factory
        self._close_factory = close_factory
        self._devices = []
        self._closed = False
        self.when_exit_pressed = None
        self.when_tampered = None
        self.when_tamper_cleared = None
        self.when_motion = None
        self.when_no_motion = None
        s, f = gpio_settings, pin_factory
        try:
            self.door = self._add(Door(s.door_pin, active_low=s.door_active_low, max_pulse_s=s.door_max_pulse_s,
                                       pin_factory=f))
            self.green = self._add(LED(s.green_pin, pin_factory=f))
            self.red = self._add(LED(s.red_pin, pin_factory=f))
            self.amber = self._add(LED(s.amber_pin, pin_factory=f))
            self.buzzer = self._add(Buzzer(s.buzzer_pin, pin_factory=f))
            self.exit_button = self._add(Button(s.exit_button_pin, pull_up=True, bounce_time=BUTTON_BOUNCE_S,
                                                pin_factory=f))
            # normally closed to ground: active (low) = enclosure shut, inactive = opened or wire cut
            self.tamper_switch = self._add(DigitalInputDevice(s.tamper_pin, pull_up=True,
                                                              bounce_time=BUTTON_BOUNCE_S, pin_factory=f))
            self.pir = self._add(DigitalInputDevice(s.pir_pin, pull_up=False, pin_factory=f))
        except Exception as e:
            self.close()
            if isinstance(e, HardwareError):
                raise
            raise HardwareError(f"GPIO board could not be set up: {e}") from e
        self.exit_button.when_pressed = lambda: self._call(self.when_exit_pressed)
        self.tamper_switch.when_deactivated = lambda: self._call(self.when_tampered)
        self.tamper_switch.when_activated = lambda: self._call(self.when_tamper_cleared)
        self.pir.when_activated = lambda: self._call(self.when_motion)
        self.pir.when_deactivated = lambda: self._call(self.when_no_motion)
        log.info("GPIO board ready (door on GPIO%d%s)", s.door_pin, ", active low" if s.door_active_low else "")

    def _add(self, device):
        self._devices.append(device)
        return device

    # --- outputs -----------------------------------------------------------------------------

    def open_door(self, seconds=None):
        """Pulse the door relay for ``seconds`` (default: gpio.door_pulse_s)."""
        self.door.pulse(seconds if seconds is not None else self.settings.door_pulse_s)

    def show(self, status):
        """Light the status lights for ``status``: off, ready, ok, busy, error or offline."""
        try:
            lit = STATUS_LIGHTS[status]
        except KeyError:
            raise ValueError(f"unknown status {status!r} (known: {', '.join(STATUS_LIGHTS)})") from None
        for name in ("green", "red", "amber"):
            getattr(self, name).value = name in lit

    def beep(self, pattern="ok", *, wait=False):
        """Sound a buzzer pattern: ok (one short beep), error (three beeps) or alarm."""
        try:
            on_s, off_s, count = BEEP_PATTERNS[pattern]
        except KeyError:
            raise ValueError(f"unknown beep pattern {pattern!r} (known: {', '.join(BEEP_PATTERNS)})") from None
        self.buzzer.blink(on_time=on_s, off_time=off_s, n=count, background=not wait)

    # --- inputs ------------------------------------------------------------------------------

    @property
    def is_exit_pressed(self):
        return self.exit_button.is_pressed

    @property
    def is_tampered(self):
        """True when the enclosure is open (or the tamper wire is cut)."""
        return not self.tamper_switch.is_active

    @property
    def motion_detected(self):
        return bool(self.pir.value)

    def _call(self, callback):
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("GPIO callback %r failed", callback)

    # --- life cycle --------------------------------------------------------------------------

    @property
    def closed(self):
        return self._closed

    def close(self):
        """Lock the door, turn everything off and release the pins; safe to call again."""
        if self._closed:
            return
        self._closed = True
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception:
                log.exception("closing %r", device)
        self._devices.clear()
        if self._close_factory and self.pin_factory is not None:
            self.pin_factory.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_pins(s):
    pins = {}
    for name in ("door_pin", "green_pin", "red_pin", "amber_pin", "buzzer_pin", "exit_button_pin",
                 "tamper_pin", "pir_pin"):
        pin = getattr(s, name)
        if pin in pins:
            raise ConfigError(f"gpio.{name} and gpio.{pins[pin]} are both GPIO{pin}")
        if pin in (14, 15):
            raise ConfigError(f"gpio.{name} = {pin} is a UART pin (the fingerprint sensor uses GPIO14/15)")
        pins[pin] = name
