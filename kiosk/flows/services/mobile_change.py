"""Change the registered mobile when the old phone is lost: ID -> face or finger verified -> new mobile -> code to it.

The chart (``docs/flows/mobile_change.md`` is drawn from it by ``kiosk flows diagrams``)::

    entering_id --id_entered--> consenting --consent_given--> choosing_method (a sensor is there) | capturing_face
    choosing_method | verify_failed --method_chosen(face)--> capturing_face --face_captured--> verifying
    choosing_method | verify_failed --method_chosen(finger)--> checking_finger --finger_sampled--> verifying
    verifying --identity_verified--> entering_mobile --mobile_entered--> sending_code --code_sent--> entering_code
    verifying --identity_not_verified--> verify_failed --retry_requested--> capturing_face (VERIFY_ATTEMPTS, then refused)
    entering_code --code_entered--> checking_code --code_accepted--> confirming --confirmed--> submitting --submitted--> done
    capturing_face | checking_finger --face_failed|finger_failed x3|capture_impossible--> assisted (an officer at a service centre) --continue_requested--> finished
    verifying | sending_code | checking_code --server_offline--> offline;  --*_refused--> refused
    every waiting state --cancelled|timed_out--> finished (everything wiped)

No code goes to the lost phone: the person proves who they are by face (with the tracked face's
liveness) or, when the kiosk has a fingerprint sensor and the person chooses it, by a finger.
The captured embedding (or the sensor's character file of the finger) is sealed to the server's
key at capture; the server opens it and compares it with the face or fingers enrolled for that
ID, so the answer comes from a real comparison there, and only the server's signed ``match``
(with a token) lets a code go to the new number. Another person's face or finger is answered
``no_match``; the failures of both methods count together towards ``VERIFY_ATTEMPTS``.
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import _all_to
from kiosk.flows.services.code_step import CodeStep, code_transitions
from kiosk.flows.services.common import ServiceBase
from kiosk.flows.services.face_step import FaceStep
from kiosk.flows.services.finger_check import FingerCheck
from kiosk.flows.services.id_step import IdStep
from kiosk.flows.services.mobile_step import MobileStep
from kiosk.flows.services.ports import OFFLINE

log = logging.getLogger(__name__)

VERIFY_ATTEMPTS = 3
METHODS = ("face", "finger")


class MobileChangeFlow(IdStep, MobileStep, FaceStep, FingerCheck, CodeStep, ServiceBase, Flow):
    """Change the registered mobile number (see the module docstring)."""

    service = "mobile_change"

    @property
    def consent_kinds(self):
        return tuple(self.methods())
    steps = {"entering_id": 1, "consenting": 2, "choosing_method": 3, "capturing_face": 3, "checking_finger": 3,
             "verify_failed": 3, "assisted": 3,
             "entering_mobile": 4, "entering_code": 5, "code_cooldown": 5, "confirming": 6, "done": 7}
    back_from = ("choosing_method", "capturing_face", "checking_finger", "entering_mobile", "entering_code", "confirming")

    entering_id = State(initial=True)
    consenting = State()
    choosing_method = State()
    capturing_face = State()
    checking_finger = State()
    verifying = State()
    verify_failed = State()
    assisted = State()
    entering_mobile = State()
    sending_code = State()
    entering_code = State()
    checking_code = State()
    code_cooldown = State()
    confirming = State()
    submitting = State()
    done = State()
    offline = State()
    refused = State()
    finished = State(final=True)

    id_entered = (entering_id.to(consenting, cond="id_ok", on="remember_id")
                  | entering_id.to.itself(internal=True, on="refuse_id"))
    consent_given = consenting.to(choosing_method, cond="finger_offered") | consenting.to(capturing_face)
    method_chosen = (choosing_method.to(capturing_face, cond="face_chosen")
                     | choosing_method.to(checking_finger, cond="finger_chosen")
                     | choosing_method.to.itself(internal=True)
                     | verify_failed.to(capturing_face, cond="face_chosen")
                     | verify_failed.to(checking_finger, cond="finger_chosen")
                     | verify_failed.to.itself(internal=True))
    consent_declined = consenting.to(refused)

    face_seen = capturing_face.to.itself(internal=True, on="consider_face")
    face_captured = capturing_face.to(verifying)
    face_failed = capturing_face.to(assisted, on="face_exception")
    capture_impossible = (capturing_face.to(assisted, on="face_exception")
                          | checking_finger.to(assisted, on="check_exception"))
    finger_sampled = (checking_finger.to(verifying, cond="sample_ok", on="keep_sample")
                      | checking_finger.to.itself(internal=True, on="refuse_sample"))
    finger_failed = (checking_finger.to.itself(internal=True, cond="check_retry_left", on="check_retry")
                     | checking_finger.to(assisted, on="check_exception"))
    continue_requested = assisted.to(finished)

    identity_verified = verifying.to(entering_mobile, on="keep_verification")
    identity_not_verified = (verifying.to(verify_failed, cond="verify_retry_left", on="count_verify_failure")
                             | verifying.to(refused, on="count_verify_failure"))
    verify_refused = verifying.to(refused)
    retry_requested = verify_failed.to(capturing_face)

    mobile_entered = (entering_mobile.to(sending_code, cond="mobile_ok", on="keep_mobile")
                      | entering_mobile.to.itself(internal=True, on="refuse_mobile"))
    (code_sent, resend_refused, code_refused, server_offline, code_entered, resend_requested, code_accepted,
     code_wrong, code_expired, code_locked) = code_transitions(
        sending=sending_code, entering=entering_code, checking=checking_code, cooldown=code_cooldown,
        refused=refused, offline=offline, then=confirming)
    server_offline = verifying.to(offline) | server_offline

    confirmed = confirming.to(submitting)
    submitted = submitting.to(done)
    submit_failed = submitting.to(confirming, on="note_not_saved")

    back_requested = (choosing_method.to(consenting) | capturing_face.to(consenting)
                      | checking_finger.to(consenting)
                      | entering_mobile.to(choosing_method, cond="finger_offered") | entering_mobile.to(capturing_face)
                      | entering_code.to(entering_mobile) | confirming.to(entering_mobile))

    timed_out = code_cooldown.to(entering_code, on="cooldown_over") | _all_to(
        finished, entering_id, consenting, choosing_method, capturing_face, checking_finger, verify_failed, assisted,
        entering_mobile, entering_code, confirming, done, offline, refused)
    cancelled = _all_to(finished, entering_id, consenting, choosing_method, capturing_face, checking_finger,
                        verify_failed, assisted, entering_mobile, entering_code, code_cooldown, confirming, done,
                        offline, refused)

    timeouts = {**dict.fromkeys(("entering_id", "consenting", "choosing_method", "capturing_face",
                                 "checking_finger", "verify_failed", "assisted",
                                 "entering_mobile", "entering_code", "confirming", "done", "offline", "refused"),
                                "inactivity_s"),
                "code_cooldown": "cooldown_s"}

    def code_target(self):
        return {"phone": self.fields["mobile"], "proof": self.proofs.get("verified")}

    # --- face or finger -----------------------------------------------------------------------------

    def methods(self):
        """The ways to verify this kiosk offers: the face always, a finger when it has a sensor."""
        return [m for m in METHODS if m == "face" or self.ports.can_capture(m)]

    def finger_offered(self):
        return "finger" in self.methods()

    def face_chosen(self, method=None):
        return method == "face"

    def finger_chosen(self, method=None):
        return method == "finger" and self.finger_offered()

    def on_enter_choosing_method(self):
        self.method = None
        for method in METHODS:  # back here from the new mobile: the person verifies again
            self.sealed.pop(method, None)
        self.show("service_verify", methods=self.methods(), error=None,
                  attempts_left=VERIFY_ATTEMPTS - self.verify_failures)

    def on_enter_capturing_face(self):
        self.method = "face"
        super().on_enter_capturing_face()

    def on_enter_checking_finger(self):
        self.method = "finger"
        super().on_enter_checking_finger()

    # --- verifying at the server --------------------------------------------------------------------

    def on_enter_verifying(self):
        method = self.method
        verify = self.ports.verify_finger if method == "finger" else self.ports.verify_face
        answer = verify(national_id=self.national_id, sealed=self.sealed[method], context=self.context(method))
        if answer.outcome == "match":
            self.send("identity_verified", token=answer.token)
        elif answer.outcome == "no_match":
            self.send("identity_not_verified")
        elif answer.outcome == OFFLINE:
            self.send("server_offline", at="verify")
        else:
            reason = "unknown_id" if answer.outcome == "no_record" else "refused"
            self.send("verify_refused", reason=reason)

    def keep_verification(self, token=None):
        self.proofs["verified"] = token

    def verify_retry_left(self):
        return self.verify_failures + 1 < VERIFY_ATTEMPTS

    def count_verify_failure(self):
        self.verify_failures += 1
        self.sealed.pop(self.method, None)
        log.info("mobile change: %s not verified (%d of %d)", self.method, self.verify_failures, VERIFY_ATTEMPTS)

    def on_identity_not_verified(self):
        self.ports.signal("error")

    def on_enter_verify_failed(self):
        self.show("service_verify", methods=self.methods(), error="not_matched",
                  attempts_left=VERIFY_ATTEMPTS - self.verify_failures)

    def on_enter_assisted(self):
        self.ports.signal("warn")
        last = self.exceptions[-1]
        self.show("service_assisted", kind=last["kind"], finger=None, reason=last["reason"],
                  next_step="visit_service_centre")
