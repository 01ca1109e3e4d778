"""The fingerprint step: named fingers on the sensor, guidance for wet, dirty, oily or misplaced fingers.

The sensor's worker captures (``start_capture("finger", mode="enrol", finger=name)``, the
``SensorPoller`` of ``kiosk.host``) and posts ``finger_step``, ``finger_enrolled(template=...)`` or
``finger_failed(guidance=...)``. Each template is sealed to the server's key the moment it
arrives. A failed capture is retried with the reason's guidance; after ``FINGER_ATTEMPTS`` (or
when the person says the finger cannot be given) the assisted path records the exception for
that finger and the next finger follows. What is recorded per finger: attempts and the problems
the sensor reported (the R30x gives no image quality score).
"""

import logging

log = logging.getLogger(__name__)

FINGER_ATTEMPTS = 3
MAX_TEMPLATE_BYTES = 4096
# the sensor's reason -> what the screen says
GUIDANCE = {"clean_and_dry": "clean_dry_finger", "hold_still": "press_flat", "same_finger_again": "press_flat",
            "place_finger": "press_flat"}
ACTIONS = ("place_finger", "lift_finger")


class FingerStep:
    """Callbacks of ``capturing_finger``; ``fingers`` names the fingers asked, in order."""

    fingers = ("right_index", "left_index")

    @property
    def finger(self):
        return self.fingers[min(self.finger_index, len(self.fingers) - 1)]

    def on_enter_capturing_finger(self, source=None):
        if source is None or source.id not in ("capturing_finger", "assisted"):
            self.finger_index = 0
            for name in [n for n in self.sealed if n.startswith("finger:")]:
                del self.sealed[name]
            self.exceptions = [e for e in self.exceptions if e["kind"] != "finger"]
        self._start_finger()

    def _start_finger(self, guidance=None):
        if guidance is None:
            self.finger_failures = 0
            self.finger_problems = []
        self.ports.start_capture("finger", mode="enrol", finger=self.finger)
        self._show_finger(action="place_finger", guidance=guidance)

    def on_exit_capturing_finger(self):
        self.ports.stop_capture("finger")

    def _show_finger(self, *, action, guidance):
        self.show("service_finger", finger=self.finger, number=self.finger_index + 1, of=len(self.fingers),
                  action=action, guidance=guidance, attempt=self.finger_failures + 1, attempts=FINGER_ATTEMPTS)

    def show_finger_action(self, step=None, number=None, finger=None):
        if step not in ACTIONS:
            return
        self.extend_deadline()
        self._show_finger(action=step, guidance=None)

    def template_ok(self, template=None, finger=None):
        return isinstance(template, (bytes, bytearray)) and 0 < len(template) <= MAX_TEMPLATE_BYTES

    def more_fingers(self, template=None, finger=None):
        return self.finger_index + 1 < len(self.fingers)

    def keep_finger(self, template=None, finger=None):
        name = f"finger:{self.finger}"
        self.sealed[name] = self.ports.seal(bytes(template), context=self.context(name))
        self.quality[name] = {"attempts": self.finger_failures + 1, "problems": list(self.finger_problems)}
        self.finger_index += 1

    def next_finger(self, template=None, finger=None):
        self.extend_deadline()
        self._start_finger()

    def refuse_template(self, template=None, finger=None):
        log.warning("%s: the sensor returned no usable template", self.service)
        self._start_finger(guidance="try_again")

    def finger_retry_left(self, guidance=None):
        return self.finger_failures + 1 < FINGER_ATTEMPTS

    def finger_retry(self, guidance=None):
        self.extend_deadline()
        self.finger_failures += 1
        self.finger_problems.append(guidance if guidance in GUIDANCE else "try_again")
        self.ports.signal("warn")
        self._start_finger(guidance=GUIDANCE.get(guidance, "try_again"))

    def finger_exception(self, guidance=None, reason=None):
        reason = "failed_repeatedly" if reason is None and guidance is not None else reason or "cannot_capture"
        self.assist_kind = "finger"
        self.exceptions.append({"kind": "finger", "finger": self.finger, "reason": reason})
        self.finger_index += 1

    def assist_goes_to_fingers(self):
        return self.assist_kind == "face" or self.finger_index < len(self.fingers)
