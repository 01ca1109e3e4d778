"""The personal PIN step: exactly 6 digits, not trivial, typed twice."""

import logging

from kiosk.digits import western_digits
from kiosk.flows.services.rules import pin_problem

log = logging.getLogger(__name__)


def _typed(pin):
    return len(western_digits(pin)) if isinstance(pin, str) and len(pin) <= 64 else 0


class PinStep:
    """Callbacks of ``entering_pin`` and ``confirming_pin`` (event ``pin_entered(pin=...)``)."""

    pin_error = None

    def on_enter_entering_pin(self):
        error, self.pin_error = self.pin_error, None
        self.first_pin = None
        self.fields.pop("pin", None)
        self.show("service_pin", stage="first", typed=0, error=error)

    def pin_ok(self, pin=None):
        return pin_problem(pin) is None

    def hold_pin(self, pin=None):
        self.first_pin = western_digits(pin)

    def refuse_pin(self, pin=None):
        self.extend_deadline()
        self.show("service_pin", stage="first", typed=_typed(pin), error=pin_problem(pin))

    def on_enter_confirming_pin(self):
        self.show("service_pin", stage="confirm", typed=0, error=None)

    def pin_repeated(self, pin=None):
        return isinstance(pin, str) and self.first_pin is not None and western_digits(pin) == self.first_pin

    def keep_pin(self, pin=None):
        self.fields["pin"] = self.first_pin
        self.first_pin = None

    def pin_mismatch(self, pin=None):
        self.ports.signal("warn")
        self.first_pin = None
        self.pin_error = "mismatch"
