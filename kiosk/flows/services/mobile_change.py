"""Change the registered mobile when the old phone is lost: ID -> face verified at the kiosk -> new mobile -> code to it.

The chart (``docs/flows/mobile_change.md`` is drawn from it by ``kiosk flows diagrams``)::

    entering_id --id_entered--> consenting --consent_given--> capturing_face --face_captured--> verifying
    verifying --identity_verified--> entering_mobile --mobile_entered--> sending_code --code_sent--> entering_code
    verifying --identity_not_verified--> verify_failed --retry_requested--> capturing_face (VERIFY_ATTEMPTS, then refused)
    entering_code --code_entered--> checking_code --code_accepted--> confirming --confirmed--> submitting --submitted--> done
    capturing_face --face_failed|capture_impossible--> assisted (an officer at a service centre) --continue_requested--> finished
    verifying | sending_code | checking_code --server_offline--> offline;  --*_refused--> refused
    every waiting state --cancelled|timed_out--> finished (everything wiped)

No code goes to the lost phone: the person proves who they are by face (with the tracked face's
liveness). The captured embedding is sealed to the server's key at capture; the server opens it
and compares it with the embedding enrolled for that ID, so the answer comes from a real
comparison there, and only the server's signed ``match`` (with a token) lets a code go to the
new number. Another person's face is answered ``no_match``.
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import _all_to
from kiosk.flows.services import rules
from kiosk.flows.services.code_step import CodeStep
from kiosk.flows.services.common import ServiceBase
from kiosk.flows.services.face_step import FaceStep
from kiosk.flows.services.id_step import IdStep
from kiosk.flows.services.ports import OFFLINE

log = logging.getLogger(__name__)

VERIFY_ATTEMPTS = 3


class MobileChangeFlow(IdStep, FaceStep, CodeStep, ServiceBase, Flow):
    """Change the registered mobile number (see the module docstring)."""

    service = "mobile_change"
    consent_kinds = ("face",)
    steps = {"entering_id": 1, "consenting": 2, "capturing_face": 3, "verify_failed": 3, "assisted": 3,
             "entering_mobile": 4, "entering_code": 5, "code_cooldown": 5, "confirming": 6, "done": 7}
    back_from = ("capturing_face", "entering_mobile", "entering_code", "confirming")

    entering_id = State(initial=True)
    consenting = State()
    capturing_face = State()
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
    consent_given = consenting.to(capturing_face)
    consent_declined = consenting.to(refused)

    face_seen = capturing_face.to.itself(internal=True, on="consider_face")
    face_captured = capturing_face.to(verifying)
    face_failed = capturing_face.to(assisted, on="face_exception")
    capture_impossible = capturing_face.to(assisted, on="face_exception")
    continue_requested = assisted.to(finished)

    identity_verified = verifying.to(entering_mobile, on="keep_verification")
    identity_not_verified = (verifying.to(verify_failed, cond="verify_retry_left", on="count_verify_failure")
                             | verifying.to(refused, on="count_verify_failure"))
    verify_refused = verifying.to(refused)
    retry_requested = verify_failed.to(capturing_face)

    mobile_entered = (entering_mobile.to(sending_code, cond="mobile_ok", on="keep_mobile")
                      | entering_mobile.to.itself(internal=True, on="refuse_mobile"))
    code_sent = sending_code.to(entering_code, on="hold_code")
    resend_refused = sending_code.to(entering_code, on="note_resend_refused")
    code_refused = sending_code.to(refused) | checking_code.to(refused)
    server_offline = verifying.to(offline) | sending_code.to(offline) | checking_code.to(offline)
    code_entered = (entering_code.to(checking_code, cond="code_format_ok")
                    | entering_code.to.itself(internal=True, on="refuse_code_format"))
    resend_requested = (entering_code.to(sending_code, cond="may_resend")
                        | entering_code.to.itself(internal=True, on="refuse_resend"))
    code_accepted = checking_code.to(confirming, on="keep_code_token")
    code_wrong = checking_code.to(entering_code)
    code_expired = checking_code.to(entering_code)
    code_locked = checking_code.to(code_cooldown)

    confirmed = confirming.to(submitting)
    submitted = submitting.to(done)
    submit_failed = submitting.to(confirming, on="note_not_saved")

    back_requested = (capturing_face.to(consenting) | entering_mobile.to(capturing_face)
                      | entering_code.to(entering_mobile) | confirming.to(entering_mobile))

    timed_out = code_cooldown.to(entering_code, on="cooldown_over") | _all_to(
        finished, entering_id, consenting, capturing_face, verify_failed, assisted, entering_mobile, entering_code,
        confirming, done, offline, refused)
    cancelled = _all_to(finished, entering_id, consenting, capturing_face, verify_failed, assisted, entering_mobile,
                        entering_code, code_cooldown, confirming, done, offline, refused)

    timeouts = {**dict.fromkeys(("entering_id", "consenting", "capturing_face", "verify_failed", "assisted",
                                 "entering_mobile", "entering_code", "confirming", "done", "offline", "refused"),
                                "inactivity_s"),
                "code_cooldown": "cooldown_s"}

    def code_target(self):
        return {"phone": self.fields["mobile"], "proof": self.proofs.get("verified")}

    # --- verifying the face at the server -----------------------------------------------------------

    def on_enter_verifying(self):
        answer = self.ports.verify_face(national_id=self.national_id, sealed=self.sealed["face"],
                                        context=self.context("face"))
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
        self.sealed.pop("face", None)
        log.info("mobile change: face not verified (%d of %d)", self.verify_failures, VERIFY_ATTEMPTS)

    def on_identity_not_verified(self):
        self.ports.signal("error")

    def on_enter_verify_failed(self):
        self.show("service_verify", methods=["face"], error="not_matched",
                  attempts_left=VERIFY_ATTEMPTS - self.verify_failures)

    def on_enter_assisted(self):
        self.ports.signal("warn")
        last = self.exceptions[-1]
        self.show("service_assisted", kind="face", finger=None, reason=last["reason"],
                  next_step="visit_service_centre")

    # --- the new mobile -----------------------------------------------------------------------------

    def on_enter_entering_mobile(self):
        self.show("service_mobile", error=None)

    def mobile_ok(self, mobile=None):
        return rules.mobile_number(mobile) is not None

    def keep_mobile(self, mobile=None):
        self.fields["mobile"] = rules.mobile_number(mobile)

    def refuse_mobile(self, mobile=None):
        self.extend_deadline()
        self.show("service_mobile", error="invalid_mobile")
