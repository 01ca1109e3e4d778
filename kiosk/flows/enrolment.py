"""Enrolling an employee at the kiosk (run by an admin), and deleting one.

The chart (``docs/flows/enrolment.md`` is drawn from it by ``kiosk flows diagrams``)::

    ready --enrol_requested--> entering_details --details_entered--> capturing_face
    capturing_face --face_captured--> checking_face --face_unique--> capturing_finger (x2 fingers)
    checking_face --face_duplicate_found--> face_refused (the other id is shown; retry or cancel)
    capturing_finger --finger_enrolled--> checking_finger --finger_unique--> entering_pin
    capturing_finger --finger_failed--> finger_retry;  checking_finger --finger_duplicate_found--> finger_refused
    (where the door takes voice prints, the fingers lead to capturing_voice instead of entering_pin)
    capturing_voice --voice_enrolled--> entering_pin;  capturing_voice --voice_failed--> voice_retry
    entering_pin --pin_entered--> confirming_pin --pin_entered--> summary --confirmed--> saving
    saving --saved--> done;  saving --save_failed--> failed (retry or cancel)
    ready --person_delete_requested--> confirming_delete --confirmed--> deleting --deleted--> done
    every waiting state --cancelled|timed_out--> finished (everything captured is wiped)

Face captures are frames that passed the quality gate (``guidance is None``), at least
``CAPTURE_GAP_S`` apart by the camera's clock, all of one tracked face that also matches the
first capture; another face entering the view starts the captures over. Face or fingers may be
skipped (worn fingerprints), but the enrolment cannot be confirmed without a face, a finger, a
voice print or a PIN. The voice print is taken only where the door uses voice prints
(``attendance.verify_modes`` has ``voice``, or ``attendance.voice_second_factor``): the voice
worker takes 3 readings of different phrases (``kiosk.flows.voice_step``), showing each phrase,
the level and any guidance itself, then posts ``voice_enrolled`` or ``voice_failed``. A duplicate (the same face or finger already enrolled under another id) refuses the step:
the admin sees the other id and may retry (the wrong person was in view) or cancel, not skip it.
The captured vectors, templates and PIN live only in this object and are wiped when it ends.
"""

import functools
import logging
import operator

import numpy as np

from kiosk.flows.base import Flow, State
from kiosk.flows.tracking import FaceTracker
from kiosk.pinhash import normalise_pin

log = logging.getLogger(__name__)


def _box(box):
    """A face box as four finite numbers, or None."""
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        return None
    return values if len(values) == 4 and all(np.isfinite(values)) else None


def _all_to(target, *sources):
    """One event taking each of ``sources`` to ``target``."""
    return functools.reduce(operator.or_, (source.to(target) for source in sources))

ROLES = ("employee", "admin")
MAX_ID_CHARS, MAX_NAME_CHARS = 64, 200
PIN_DIGITS = 6                    # the personal PIN is exactly 6 digits, entered twice
FINGERS = 2                       # fingers enrolled per person
CAPTURE_GAP_S = 0.3               # face captures this far apart: not near-identical frames
MAX_EMBEDDING_DIMS = 4096
MAX_TEMPLATE_BYTES = 4096         # an R30x template is 512-768 bytes; more is not a template
# a new track is started only after this long without the face (the admin may lean in briefly)
TRACK_GAP_S = 1.5


class EnrolmentFlow(Flow):
    """Person details, face captures, two fingers, PIN, confirm, save; or delete (see the module docstring)."""

    ready = State(initial=True)
    entering_details = State()
    capturing_face = State()
    checking_face = State()
    face_refused = State()
    capturing_finger = State()
    checking_finger = State()
    finger_retry = State()
    finger_refused = State()
    capturing_voice = State()
    voice_retry = State()
    entering_pin = State()
    confirming_pin = State()
    summary = State()
    saving = State()
    confirming_delete = State()
    deleting = State()
    failed = State()
    done = State()
    finished = State(final=True)

    enrol_requested = ready.to(entering_details) | done.to(entering_details)
    person_delete_requested = (ready.to(confirming_delete, cond="deletable", on="remember_target")
                               | ready.to(failed, on="unknown_target"))
    details_entered = (entering_details.to(capturing_face, cond="details_ok", on="remember_details")
                       | entering_details.to.itself(internal=True, on="refuse_details"))

    # the face
    face_seen = capturing_face.to.itself(internal=True, on="consider_frame")
    face_captured = capturing_face.to(checking_face)
    face_unique = checking_face.to(capturing_finger)
    face_duplicate_found = checking_face.to(face_refused)
    face_skipped = capturing_face.to(capturing_finger, on="wipe_face")

    # the fingers: the sensor worker captures, the flow follows its steps
    finger_step = capturing_finger.to.itself(internal=True, on="show_step")
    finger_enrolled = (capturing_finger.to(checking_finger, cond="template_ok", on="hold_template")
                       | capturing_finger.to(finger_retry, on="refuse_template"))
    finger_failed = capturing_finger.to(finger_retry)
    finger_unique = (checking_finger.to(capturing_finger, cond="more_fingers", on="keep_template")
                     | checking_finger.to(capturing_voice, cond="voice_wanted", on="keep_template")
                     | checking_finger.to(entering_pin, on="keep_template"))
    finger_duplicate_found = checking_finger.to(finger_refused)
    fingers_skipped = (capturing_finger.to(capturing_voice, cond="voice_wanted")
                       | capturing_finger.to(entering_pin) | finger_retry.to(capturing_voice, cond="voice_wanted")
                       | finger_retry.to(entering_pin))

    # the voice print, where the door takes them: the voice worker records, the flow waits
    voice_enrolled = (capturing_voice.to(entering_pin, cond="voice_ok", on="hold_voice")
                      | capturing_voice.to(voice_retry, on="refuse_voice"))
    voice_failed = capturing_voice.to(voice_retry)
    voice_skipped = capturing_voice.to(entering_pin) | voice_retry.to(entering_pin)

    # the PIN (optional when a biometric was taken), typed twice
    pin_entered = (entering_pin.to(confirming_pin, cond="pin_valid", on="hold_pin")
                   | entering_pin.to.itself(internal=True, on="refuse_pin")
                   | confirming_pin.to(summary, cond="pin_repeated")
                   | confirming_pin.to(entering_pin, on="pin_mismatch"))
    pin_skipped = (entering_pin.to(summary, cond="has_biometric")
                   | entering_pin.to.itself(internal=True, on="need_proof"))

    # saving and deleting
    confirmed = summary.to(saving, cond="has_proof") | confirming_delete.to(deleting)
    saved = saving.to(done)
    save_failed = saving.to(failed)
    deleted = deleting.to(done)
    delete_failed = deleting.to(failed)
    retry_requested = (face_refused.to(capturing_face) | finger_retry.to(capturing_finger)
                       | finger_refused.to(capturing_finger) | voice_retry.to(capturing_voice)
                       | failed.to(saving, cond="can_retry_save") | failed.to(deleting, cond="can_retry_delete"))

    # one step back, where that makes sense (each step it leaves is taken again)
    back_requested = (capturing_face.to(entering_details) | capturing_finger.to(capturing_face)
                      | capturing_voice.to(capturing_finger)
                      | entering_pin.to(capturing_voice, cond="voice_wanted") | entering_pin.to(capturing_finger)
                      | confirming_pin.to(entering_pin)
                      | summary.to(entering_pin))

    # leaving: every state that waits for the admin (transient ones do not wait)
    cancelled = _all_to(finished, ready, entering_details, capturing_face, face_refused, capturing_finger,
                        finger_retry, finger_refused, capturing_voice, voice_retry, entering_pin, confirming_pin,
                        summary, confirming_delete, failed, done)
    timed_out = _all_to(finished, ready, entering_details, capturing_face, face_refused, capturing_finger,
                        finger_retry, finger_refused, capturing_voice, voice_retry, entering_pin, confirming_pin,
                        summary, confirming_delete, failed, done)

    timeouts = {**dict.fromkeys(("ready", "entering_details", "capturing_face", "face_refused", "capturing_finger",
                                 "finger_retry", "finger_refused", "voice_retry", "entering_pin", "confirming_pin",
                                 "summary", "confirming_delete", "failed", "done"), "inactivity_s"),
                "capturing_voice": "voice_timeout_s"}

    def __init__(self, *, ports, clock, settings):
        self.settings = settings
        self.captures_needed = settings.face.enrol_captures
        self.tracker = FaceTracker(max_gap_s=TRACK_GAP_S)
        self._wipe()
        self.target = None          # the person to delete
        self.outcome = None         # what ``done`` shows, kept after the wipe
        self.error = None           # why ``failed``
        super().__init__(ports=ports, clock=clock)

    # --- what is held, and wiping it ------------------------------------------------------------

    def _wipe(self):
        self.person_id = self.name = self.role = None
        self.vectors, self.last_capture_s = [], None
        self.tracker.reset()
        self.templates, self.template = [], None
        self.voice = None           # (model_id, unit vector) from the voice worker
        self.pin = self.first_pin = None

    def wipe_face(self):
        self.vectors, self.last_capture_s = [], None
        self.tracker.reset()

    def _wipe_fingers(self):
        self.templates, self.template = [], None

    def on_enter_finished(self):
        self._wipe()
        self.target = None
        self.ports.stop_capture("face")
        self.ports.stop_capture("finger")
        self.ports.stop_capture("voice")

    # --- timeouts and guards --------------------------------------------------------------------

    def inactivity_s(self):
        return self.settings.ui.inactivity_timeout_s

    def _show(self, screen, **data):
        self.ports.show(screen, **data)

    def details_ok(self, person_id=None, name=None, role="employee"):
        return self._details_problem(person_id, name, role) is None

    def _details_problem(self, person_id, name, role):
        if not isinstance(person_id, str) or not person_id.strip() or len(person_id.strip()) > MAX_ID_CHARS \
                or not person_id.strip().isprintable():
            return "invalid_id"
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS \
                or not name.strip().isprintable():
            return "invalid_name"
        if role not in ROLES:
            return "invalid_role"
        if self.ports.person(person_id.strip()) is not None:
            return "already_enrolled"
        return None

    def voice_timeout_s(self):
        # up to 6 readings (3 needed, retries for unusable ones), each window plus reading the phrase
        return max(self.inactivity_s(), 6 * (self.settings.voice.record_s + 5.0))

    def voice_wanted(self):
        attendance = self.settings.attendance
        return "voice" in attendance.verify_modes or attendance.voice_second_factor

    def voice_ok(self, template=None, model_id=None):
        return self._voice_vector(template) is not None and isinstance(model_id, str) and 0 < len(model_id) <= 64

    @staticmethod
    def _voice_vector(template):
        try:
            vector = np.asarray(template, dtype=np.float32).ravel()
        except (TypeError, ValueError):
            return None
        if not 0 < vector.size <= MAX_EMBEDDING_DIMS or not np.all(np.isfinite(vector)):
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0.0 else None

    def has_biometric(self):
        return bool(self.vectors) or bool(self.templates) or self.voice is not None

    def has_proof(self):
        return self.has_biometric() or self.pin is not None

    def more_fingers(self):
        return len(self.templates) + 1 < FINGERS

    def template_ok(self, template=None):
        return isinstance(template, (bytes, bytearray)) and 0 < len(template) <= MAX_TEMPLATE_BYTES

    def pin_valid(self, pin=None):
        return self._pin_digits(pin) is not None

    def pin_repeated(self, pin=None):
        digits = self._pin_digits(pin)
        return digits is not None and digits == self.first_pin

    @staticmethod
    def _pin_digits(pin):
        try:
            digits = normalise_pin(pin)
        except ValueError:
            return None
        return digits if len(digits) == PIN_DIGITS else None

    def deletable(self, person_id=None):
        # a person deactivated centrally cannot clock in, but their templates are still here to delete
        return isinstance(person_id, str) and self.ports.person(person_id, include_inactive=True) is not None

    def can_retry_save(self):
        return self.error == "save"

    def can_retry_delete(self):
        return self.error == "delete"

    # --- details --------------------------------------------------------------------------------

    def on_enter_entering_details(self):
        self._wipe()
        self.outcome = None
        self._show("enrol_details", roles=list(ROLES), error=None)

    def remember_details(self, person_id=None, name=None, role="employee"):
        self.person_id, self.name, self.role = person_id.strip(), name.strip(), role

    def refuse_details(self, person_id=None, name=None, role="employee"):
        self.extend_deadline()
        self._show("enrol_details", roles=list(ROLES), error=self._details_problem(person_id, name, role))

    # --- the face -------------------------------------------------------------------------------

    def on_enter_capturing_face(self):
        self.wipe_face()
        self._wipe_fingers()
        self.ports.start_capture("face", mode="enrol")
        self._show("enrol_face", guidance=None, captured=0, needed=self.captures_needed)

    def on_exit_capturing_face(self):
        self.ports.stop_capture("face")

    def consider_frame(self, frame=None):
        """One analysed camera frame: guidance, or one more capture of the same face."""
        box = _box(getattr(frame, "box", None))
        if box is None:
            self._show("enrol_face", guidance="no_face", captured=len(self.vectors), needed=self.captures_needed)
            return
        self.extend_deadline()  # someone is in front of the camera
        vector = self._unit(frame.embedding)
        _, new_track = self.tracker.update(box, vector, frame.timestamp_s)
        if new_track and self.vectors:
            log.info("enrolment: another face came into view; face captures start over")
            self.vectors, self.last_capture_s = [], None
        guidance = frame.guidance
        if guidance is None:
            guidance = self._take(vector, frame.timestamp_s)
        if len(self.vectors) >= self.captures_needed:
            self.send("face_captured")
            return
        self._show("enrol_face", guidance=guidance, captured=len(self.vectors), needed=self.captures_needed)

    def _unit(self, embedding):
        """The embedding as a finite unit vector the size of the others, or None."""
        if embedding is None:
            return None
        try:
            vector = np.asarray(embedding, dtype=np.float32).ravel()
        except (TypeError, ValueError):
            return None
        if not 0 < vector.size <= MAX_EMBEDDING_DIMS or not np.all(np.isfinite(vector)):
            return None
        track = self.tracker.track
        known = self.vectors[0] if self.vectors else (track.embedding if track is not None else None)
        if known is not None and known.size != vector.size:
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0.0 else None

    def _take(self, vector, timestamp_s):
        """Keep this good frame as a capture if it is far enough from the last; returns guidance or None."""
        if vector is None:
            return "hold_still"
        if self.last_capture_s is not None and timestamp_s - self.last_capture_s < CAPTURE_GAP_S:
            return None  # good, but too close to the last capture to add anything
        if self.vectors and float(np.dot(vector, self.vectors[0])) < self.settings.face.match_threshold:
            log.info("enrolment: a capture did not match the first one; face captures start over")
            self.vectors, self.last_capture_s = [], None
            self.tracker.reset()
            return "one_person_only"
        self.vectors.append(vector)
        self.last_capture_s = timestamp_s
        return None

    def on_enter_checking_face(self):
        other = self.ports.face_duplicate(list(self.vectors))
        if other is not None:
            self.send("face_duplicate_found", other_id=other)
        else:
            self.send("face_unique")

    def on_face_duplicate_found(self, other_id=None):
        log.warning("enrolment of %s refused: the face is already enrolled as %s", self.person_id, other_id)
        self.wipe_face()
        self.ports.signal("error")
        self._show("enrol_duplicate", kind="face", other_id=other_id, person_id=self.person_id)

    # --- the fingers ----------------------------------------------------------------------------

    @property
    def finger_number(self):
        return len(self.templates) + 1

    def on_enter_capturing_finger(self, source=None):
        if source is not None and source.id in ("capturing_face", "checking_face", "entering_pin", "capturing_voice"):
            self._wipe_fingers()
        self.template = None
        captures = self.settings.fingerprint.enroll_captures
        self.ports.start_capture("finger", mode="enrol", finger=self.finger_number, captures=captures)
        self._show("enrol_finger", finger=self.finger_number, fingers=FINGERS, step="place_finger",
                   number=1, captures=captures, guidance=None)

    def on_exit_capturing_finger(self):
        self.ports.stop_capture("finger")

    def show_step(self, step=None, number=None):
        if step not in ("place_finger", "lift_finger", "captured") or type(number) is not int or not 0 <= number <= 10:
            return
        self.extend_deadline()
        self._show("enrol_finger", finger=self.finger_number, fingers=FINGERS, step=step, number=number,
                   captures=self.settings.fingerprint.enroll_captures, guidance=None)

    def hold_template(self, template=None):
        self.template = bytes(template)

    def refuse_template(self, template=None):
        log.warning("enrolment: the sensor returned no usable template")
        self._finger_trouble("bad_template")

    def on_finger_failed(self, guidance=None):
        self._finger_trouble(guidance if isinstance(guidance, str) else "try_again")

    def _finger_trouble(self, guidance):
        self.ports.signal("warn")
        self._show("enrol_finger_retry", finger=self.finger_number, guidance=guidance)

    def on_enter_checking_finger(self):
        other = self.ports.finger_duplicate(self.template)
        if other is not None:
            self.send("finger_duplicate_found", other_id=other)
        else:
            self.send("finger_unique")

    def keep_template(self):
        self.templates.append(self.template)
        self.template = None

    def on_finger_duplicate_found(self, other_id=None):
        log.warning("enrolment of %s refused: finger %d is already enrolled as %s",
                    self.person_id, self.finger_number, other_id)
        self.template = None
        self.ports.signal("error")
        self._show("enrol_duplicate", kind="finger", other_id=other_id, person_id=self.person_id,
                   finger=self.finger_number)

    # --- the voice print -------------------------------------------------------------------------

    def on_enter_capturing_voice(self):
        self.voice = None
        self.ports.start_capture("voice", mode="enrol")

    def on_exit_capturing_voice(self):
        self.ports.stop_capture("voice")

    def hold_voice(self, template=None, model_id=None):
        self.voice = (model_id, self._voice_vector(template))

    def refuse_voice(self, template=None, model_id=None):
        log.warning("enrolment: the voice worker returned no usable voice print")
        self._show("enrol_voice_retry", guidance="other")

    def on_voice_failed(self, guidance=None):
        self.ports.signal("warn")
        self._show("enrol_voice_retry", guidance=guidance if isinstance(guidance, str) else "other")

    # --- the PIN --------------------------------------------------------------------------------

    def on_enter_entering_pin(self, event=None):
        self.pin = self.first_pin = None
        if str(event) != "pin_entered":  # a mismatch shows its own error
            self._show("enrol_pin", repeat=False, error=None, optional=self.has_biometric())

    def hold_pin(self, pin=None):
        self.first_pin = self._pin_digits(pin)
        self._show("enrol_pin", repeat=True, error=None, optional=self.has_biometric())

    def refuse_pin(self, pin=None):
        self.extend_deadline()
        self._show("enrol_pin", repeat=False, error="pin_six_digits", optional=self.has_biometric())

    def pin_mismatch(self, pin=None):
        self._show("enrol_pin", repeat=False, error="pins_differ", optional=self.has_biometric())

    def need_proof(self):
        self.extend_deadline()
        self._show("enrol_pin", repeat=False, error="face_finger_or_pin_needed", optional=False)

    def on_enter_summary(self, source=None):
        if source is not None and source.id == "confirming_pin":
            self.pin, self.first_pin = self.first_pin, None
        self._show("enrol_summary", person_id=self.person_id, name=self.name, role=self.role,
                   faces=len(self.vectors), fingers=len(self.templates), voice=self.voice is not None,
                   pin=self.pin is not None)

    # --- saving ---------------------------------------------------------------------------------

    def on_enter_saving(self):
        self.error = None
        try:
            # voice only when one was taken: ports of doors without voice prints need not know it
            voice = {"voice": self.voice} if self.voice is not None else {}
            result = self.ports.enrol(person_id=self.person_id, name=self.name, role=self.role,
                                      faces=list(self.vectors), fingers=list(self.templates), pin=self.pin, **voice)
        except Exception as e:  # storage refused (disk full, sensor full ...): say so, keep the data to retry
            log.error("enrolment of %s not saved: %s", self.person_id, type(e).__name__)
            self.send("save_failed", reason=getattr(e, "guidance", None) or "not_saved")
            return
        self.send("saved", result=result)

    def on_saved(self, result=None):
        log.info("enrolled %s (%d face captures, %d fingers, pin: %s)", self.person_id, result.faces,
                 result.fingers, self.pin is not None)
        self.outcome = {"action": "enrolled", "person_id": self.person_id, "name": self.name,
                        "faces": result.faces, "fingers": result.fingers, "slots": list(result.slots),
                        "voice": getattr(result, "voices", 0) > 0, "pin": self.pin is not None}
        self._wipe()
        self.ports.signal("ok")

    def on_save_failed(self, reason=None):
        self.error = "save"
        self.ports.signal("error")
        self._show("enrol_failed", reason=reason, person_id=self.person_id, retry=True)

    def on_enter_done(self):
        self._show("enrol_done", **self.outcome)

    # --- deleting -------------------------------------------------------------------------------

    def remember_target(self, person_id=None):
        self.target = self.ports.person(person_id, include_inactive=True)
        self._show("delete_confirm", person_id=self.target.person_id, name=self.target.name,
                   role=self.target.role)

    def unknown_target(self, person_id=None):
        self.error = None
        self._show("enrol_failed", reason="unknown_person", person_id=None, retry=False)

    def on_enter_deleting(self):
        self.error = None
        try:
            self.ports.delete_person(self.target.person_id)
        except Exception as e:
            log.error("deleting %s failed: %s", self.target.person_id, type(e).__name__)
            self.send("delete_failed", reason=getattr(e, "guidance", None) or "not_deleted")
            return
        self.send("deleted")

    def on_deleted(self):
        log.info("deleted %s", self.target.person_id)
        self.outcome = {"action": "deleted", "person_id": self.target.person_id, "name": self.target.name}
        self.target = None
        self.ports.signal("ok")

    def on_delete_failed(self, reason=None):
        self.error = "delete"
        self.ports.signal("error")
        self._show("enrol_failed", reason=reason, person_id=self.target.person_id, retry=True)
