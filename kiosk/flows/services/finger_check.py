"""The fingerprint check: one finger on the sensor, its character file sealed at once for the server to compare.

Unlike ``finger_step`` (which builds templates to enrol), the sensor's worker captures once and
reads back the character file of the finger on the glass (``start_capture("finger",
mode="sample")``; the ``SensorPoller`` posts ``finger_sampled(sample=...)`` or
``finger_failed(guidance=...)``). The kiosk never compares it: the sample is sealed to the
server's key the moment it arrives and only the sealed box is kept; the server opens it and
compares it with the fingers enrolled for the ID. A failed capture is retried with the reason's
guidance; after ``FINGER_ATTEMPTS`` (or when the person says no finger can be given) the
assisted path takes over.
"""

import logging

from kiosk.flows.services.finger_step import FINGER_ATTEMPTS, GUIDANCE, MAX_TEMPLATE_BYTES

log = logging.getLogger(__name__)


class FingerCheck:
    """Callbacks of ``checking_finger`` (events ``finger_sampled``, ``finger_failed``, ``capture_impossible``)."""

    def on_enter_checking_finger(self):
        self.finger_failures = 0
        self.sealed.pop("finger", None)
        self._start_check(guidance=None)

    def on_exit_checking_finger(self):
        self.ports.stop_capture("finger")

    def _start_check(self, *, guidance):
        self.ports.start_capture("finger", mode="sample")
        self.show("service_finger", finger=None, number=1, of=1, action="place_finger", guidance=guidance,
                  attempt=self.finger_failures + 1, attempts=FINGER_ATTEMPTS)

    def sample_ok(self, sample=None):
        return isinstance(sample, (bytes, bytearray)) and 0 < len(sample) <= MAX_TEMPLATE_BYTES

    def keep_sample(self, sample=None):
        self.sealed["finger"] = self.ports.seal(bytes(sample), context=self.context("finger"))
        self.quality["finger"] = {"attempts": self.finger_failures + 1}

    def refuse_sample(self, sample=None):
        log.warning("%s: the sensor returned no usable finger sample", self.service)
        self._start_check(guidance="try_again")

    def check_retry_left(self, guidance=None):
        return self.finger_failures + 1 < FINGER_ATTEMPTS

    def check_retry(self, guidance=None):
        self.extend_deadline()
        self.finger_failures += 1
        self.ports.signal("warn")
        self._start_check(guidance=GUIDANCE.get(guidance, "try_again"))

    def check_exception(self, guidance=None, reason=None):
        reason = "failed_repeatedly" if reason is None and guidance is not None else reason or "cannot_capture"
        self.assist_kind = "finger"
        self.exceptions.append({"kind": "finger", "finger": None, "reason": reason})
