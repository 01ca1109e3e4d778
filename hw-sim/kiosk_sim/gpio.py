"""GPIO simulator: the far side of the kiosk's wires, over gpiozero's MockFactory.

``SimFactory`` is a MockFactory whose pins remember every level change with a timestamp from
a clock, and whose inputs can be held by an outside wire (a closed switch stays low even when
the driver turns its pull-up on, as on a real board). ``Panel`` drives the inputs the way a
person or the building would and reads back what the outputs did::

    factory = SimFactory()
    panel = Panel(factory, settings.gpio)          # before the Board: the enclosure starts closed
    board = Board(settings.gpio, pin_factory=factory)
    panel.press_exit(); panel.release_exit()
    panel.trip_tamper(); panel.motion(True)
    panel.history("door")   # [(t_s, is_active), ...]
"""

import logging
import time

from gpiozero.pins.mock import MockFactory, MockPin

log = logging.getLogger(__name__)

OUTPUTS = {"door": "door_pin", "green": "green_pin", "red": "red_pin", "amber": "amber_pin",
           "buzzer": "buzzer_pin"}
INPUTS = {"exit": "exit_button_pin", "tamper": "tamper_pin", "pir": "pir_pin"}


class _Clock:
    def monotonic(self):
        return time.monotonic()


class RecordingPin(MockPin):
    """A mock pin that records (timestamp_s, level) for every change and honours an outside wire."""

    def __init__(self, factory, info):
        self.wire = None  # None: floating/pull decides; True/False: held high/low from outside
        self.changes = []
        self._clock = getattr(factory, "clock", None) or _Clock()
        super().__init__(factory, info)
        self.changes = [(self._clock.monotonic(), self._state)]

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            self.changes.append((self._clock.monotonic(), value))
        return changed

    def output_with_state(self, state):
        # A real pin becomes an output already at its level (no blip); history starts there.
        super().output_with_state(state)
        self.changes = [(self._clock.monotonic(), self._state)]

    def _set_pull(self, value):
        super()._set_pull(value)
        if self.wire is not None and self._function == "input":
            self.drive_high() if self.wire else self.drive_low()


class SimFactory(MockFactory):
    """MockFactory making ``RecordingPin``s timestamped by ``clock`` (anything with monotonic())."""

    def __init__(self, *, clock=None):
        super().__init__(pin_class=RecordingPin)
        self.clock = clock or _Clock()


class Panel:
    """Buttons, switches and sensors wired to a ``SimFactory``, and a record of the outputs."""

    def __init__(self, factory, gpio_settings, *, enclosure_closed=True):
        if not isinstance(factory, SimFactory):
            raise TypeError("Panel needs a kiosk_sim.gpio.SimFactory")
        self.factory = factory
        self.settings = gpio_settings
        self._drive("exit", None)
        self._drive("pir", None)
        self._drive("tamper", False if enclosure_closed else None)

    def pin(self, name):
        """The mock pin behind an input or output name (door, green, red, amber, buzzer, exit, tamper, pir)."""
        field = OUTPUTS.get(name) or INPUTS.get(name)
        if field is None:
            raise KeyError(f"unknown GPIO part {name!r} (known: {', '.join([*OUTPUTS, *INPUTS])})")
        return self.factory.pin(getattr(self.settings, field))

    def _drive(self, name, level):
        pin = self.pin(name)
        pin.wire = level
        if level is None:
            pin._set_pull(pin._get_pull()) if pin.function == "input" else None
        elif pin.function == "input":
            pin.drive_high() if level else pin.drive_low()
        log.debug("sim gpio: %s wire %s", name, level)

    # --- inputs ------------------------------------------------------------------------------

    def press_exit(self):
        """Hold the exit button down (its pin goes to ground)."""
        self._drive("exit", False)

    def release_exit(self):
        self._drive("exit", None)

    def click_exit(self):
        """Press and release the exit button."""
        self.press_exit()
        self.release_exit()

    def trip_tamper(self):
        """Open the enclosure: the normally closed switch opens, the pull-up takes the pin high."""
        self._drive("tamper", None)

    def restore_tamper(self):
        """Close the enclosure again."""
        self._drive("tamper", False)

    def motion(self, present=True):
        """The PIR sensor sees someone (output high) or nobody any more (low)."""
        self._drive("pir", True if present else False)

    # --- outputs -----------------------------------------------------------------------------

    def active_high(self, name):
        """Whether the output is active at a high level (the door relay may be active-low)."""
        return not (name == "door" and self.settings.door_active_low)

    def history(self, name, *, levels=False):
        """[(timestamp_s, active)] for an output since the start or the last ``clear_history()``.

        ``levels=True`` gives raw pin levels instead of active/inactive.
        """
        if name not in OUTPUTS:
            raise KeyError(f"{name!r} is not an output (outputs: {', '.join(OUTPUTS)})")
        changes = self.pin(name).changes
        if levels or self.active_high(name):
            return list(changes)
        return [(t, not level) for t, level in changes]

    def is_active(self, name):
        """The output's state now (door open, light on, buzzer sounding)."""
        level = self.pin(name).state
        return bool(level) if self.active_high(name) else not level

    def pulses(self, name):
        """[(start_s, duration_s)] of completed activations of an output."""
        out, start = [], None
        for t, active in self.history(name):
            if active and start is None:
                start = t
            elif not active and start is not None:
                out.append((start, t - start))
                start = None
        return out

    def clear_history(self):
        """Forget recorded changes (each pin keeps its current level as the first entry)."""
        for name in OUTPUTS:
            pin = self.pin(name)
            pin.changes = [(self.factory.clock.monotonic(), pin.state)]
