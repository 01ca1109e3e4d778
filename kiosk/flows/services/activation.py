"""Activate a digital identity: ID -> SMS code -> consent -> face -> two fingers -> PIN twice -> confirm.

The chart (``docs/flows/activation.md`` is drawn from it by ``kiosk flows diagrams``)::

    entering_id --id_entered--> sending_code --code_sent--> entering_code --code_entered--> checking_code
    checking_code --code_accepted--> consenting --consent_given--> capturing_face
    checking_code --code_wrong|code_expired--> entering_code;  --code_locked--> code_cooldown --timed_out--> entering_code
    capturing_face --face_captured--> capturing_finger (x2) --finger_enrolled--> entering_pin
    capturing_face --face_failed|capture_impossible--> assisted --continue_requested--> capturing_finger
    capturing_finger --finger_failed (3rd)|capture_impossible--> assisted --continue_requested--> next finger | entering_pin
    entering_pin --pin_entered--> confirming_pin --pin_entered--> confirming --confirmed--> submitting --submitted--> done
    sending_code | checking_code --server_offline--> offline;  --code_refused--> refused
    every waiting state --cancelled|timed_out--> finished (everything wiped)

The face and fingers are sealed to the server's key as they are captured; the request (with the
PIN and the code's proof) is sealed and committed to the outbox at ``submitting``, so the kiosk
needs the server only for the code: a server gone after that finds the request queued.
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import _all_to
from kiosk.flows.services.code_step import CodeStep, code_transitions
from kiosk.flows.services.common import ServiceBase
from kiosk.flows.services.face_step import FaceStep
from kiosk.flows.services.finger_step import FingerStep
from kiosk.flows.services.id_step import IdStep
from kiosk.flows.services.pin_step import PinStep

log = logging.getLogger(__name__)


class ActivationFlow(IdStep, CodeStep, FaceStep, FingerStep, PinStep, ServiceBase, Flow):
    """Activate a digital identity (see the module docstring)."""

    service = "activation"
    consent_kinds = ("face", "finger")
    fingers = ("right_index", "left_index")
    steps = {"entering_id": 1, "entering_code": 2, "code_cooldown": 2, "consenting": 3, "capturing_face": 4,
             "capturing_finger": 5, "assisted": 5, "entering_pin": 6, "confirming_pin": 6, "confirming": 7,
             "done": 8}
    back_from = ("entering_code", "capturing_face", "capturing_finger", "entering_pin", "confirming_pin",
                 "confirming")

    entering_id = State(initial=True)
    sending_code = State()
    entering_code = State()
    checking_code = State()
    code_cooldown = State()
    consenting = State()
    capturing_face = State()
    capturing_finger = State()
    assisted = State()
    entering_pin = State()
    confirming_pin = State()
    confirming = State()
    submitting = State()
    done = State()
    offline = State()
    refused = State()
    finished = State(final=True)

    id_entered = (entering_id.to(sending_code, cond="id_ok", on="remember_id")
                  | entering_id.to.itself(internal=True, on="refuse_id"))
    (code_sent, resend_refused, code_refused, server_offline, code_entered, resend_requested, code_accepted,
     code_wrong, code_expired, code_locked) = code_transitions(
        sending=sending_code, entering=entering_code, checking=checking_code, cooldown=code_cooldown,
        refused=refused, offline=offline, then=consenting)

    consent_given = consenting.to(capturing_face)
    consent_declined = consenting.to(refused)

    face_seen = capturing_face.to.itself(internal=True, on="consider_face")
    face_captured = capturing_face.to(capturing_finger)
    face_failed = capturing_face.to(assisted, on="face_exception")
    capture_impossible = (capturing_face.to(assisted, on="face_exception")
                          | capturing_finger.to(assisted, on="finger_exception"))

    finger_step = capturing_finger.to.itself(internal=True, on="show_finger_action")
    finger_enrolled = (capturing_finger.to.itself(internal=True, cond=["template_ok", "more_fingers"],
                                                  on=["keep_finger", "next_finger"])
                       | capturing_finger.to(entering_pin, cond="template_ok", on="keep_finger")
                       | capturing_finger.to.itself(internal=True, on="refuse_template"))
    finger_failed = (capturing_finger.to.itself(internal=True, cond="finger_retry_left", on="finger_retry")
                     | capturing_finger.to(assisted, on="finger_exception"))
    continue_requested = assisted.to(capturing_finger, cond="assist_goes_to_fingers") | assisted.to(entering_pin)

    pin_entered = (entering_pin.to(confirming_pin, cond="pin_ok", on="hold_pin")
                   | entering_pin.to.itself(internal=True, on="refuse_pin")
                   | confirming_pin.to(confirming, cond="pin_repeated", on="keep_pin")
                   | confirming_pin.to(entering_pin, on="pin_mismatch"))
    confirmed = confirming.to(submitting)
    submitted = submitting.to(done)
    submit_failed = submitting.to(confirming, on="note_not_saved")

    back_requested = (entering_code.to(entering_id) | capturing_face.to(consenting)
                      | capturing_finger.to(capturing_face) | entering_pin.to(capturing_finger)
                      | confirming_pin.to(entering_pin) | confirming.to(entering_pin))

    timed_out = code_cooldown.to(entering_code, on="cooldown_over") | _all_to(
        finished, entering_id, entering_code, consenting, capturing_face, capturing_finger, assisted, entering_pin,
        confirming_pin, confirming, done, offline, refused)
    cancelled = _all_to(finished, entering_id, entering_code, code_cooldown, consenting, capturing_face,
                        capturing_finger, assisted, entering_pin, confirming_pin, confirming, done, offline, refused)

    timeouts = {**dict.fromkeys(("entering_id", "entering_code", "consenting", "capturing_face", "capturing_finger",
                                 "assisted", "entering_pin", "confirming_pin", "confirming", "done", "offline",
                                 "refused"), "inactivity_s"),
                "code_cooldown": "cooldown_s"}

    def on_enter_assisted(self):
        self.ports.signal("warn")
        last = self.exceptions[-1]
        self.show("service_assisted", kind=last["kind"], finger=last["finger"], reason=last["reason"],
                  next_step="continue_assisted")
