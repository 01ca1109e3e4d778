"""Document fingerprints (capture or update the fingerprints on record): ID -> SMS code -> consent -> fingers -> confirm.

The chart (``docs/flows/fingerprints.md`` is drawn from it by ``kiosk flows diagrams``)::

    entering_id --id_entered--> sending_code --code_sent--> entering_code --code_entered--> checking_code
    checking_code --code_accepted--> consenting --consent_given--> capturing_finger (x4) --finger_enrolled--> confirming
    capturing_finger --finger_failed (3rd)|capture_impossible--> assisted --continue_requested--> next finger | confirming
    confirming --confirmed--> submitting --submitted--> done
    sending_code | checking_code --server_offline--> offline;  --code_refused--> refused
    every waiting state --cancelled|timed_out--> finished (everything wiped)

A finger that cannot be captured (worn, injured, missing) is recorded as a biometric exception
in the request, and the person is told an officer completes it; the other fingers still count.
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import _all_to
from kiosk.flows.services.code_step import CodeStep, code_transitions
from kiosk.flows.services.common import ServiceBase
from kiosk.flows.services.finger_step import FingerStep
from kiosk.flows.services.id_step import IdStep

log = logging.getLogger(__name__)


class FingerprintsFlow(IdStep, CodeStep, FingerStep, ServiceBase, Flow):
    """Document fingerprints (see the module docstring)."""

    service = "fingerprints"
    consent_kinds = ("finger",)
    fingers = ("right_thumb", "right_index", "left_thumb", "left_index")
    steps = {"entering_id": 1, "entering_code": 2, "code_cooldown": 2, "consenting": 3, "capturing_finger": 4,
             "assisted": 4, "confirming": 5, "done": 6}
    back_from = ("entering_code", "capturing_finger", "confirming")

    entering_id = State(initial=True)
    sending_code = State()
    entering_code = State()
    checking_code = State()
    code_cooldown = State()
    consenting = State()
    capturing_finger = State()
    assisted = State()
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

    consent_given = consenting.to(capturing_finger)
    consent_declined = consenting.to(refused)

    finger_step = capturing_finger.to.itself(internal=True, on="show_finger_action")
    finger_enrolled = (capturing_finger.to.itself(internal=True, cond=["template_ok", "more_fingers"],
                                                  on=["keep_finger", "next_finger"])
                       | capturing_finger.to(confirming, cond="template_ok", on="keep_finger")
                       | capturing_finger.to.itself(internal=True, on="refuse_template"))
    finger_failed = (capturing_finger.to.itself(internal=True, cond="finger_retry_left", on="finger_retry")
                     | capturing_finger.to(assisted, on="finger_exception"))
    capture_impossible = capturing_finger.to(assisted, on="finger_exception")
    continue_requested = assisted.to(capturing_finger, cond="assist_goes_to_fingers") | assisted.to(confirming)

    confirmed = confirming.to(submitting)
    submitted = submitting.to(done)
    submit_failed = submitting.to(confirming, on="note_not_saved")

    back_requested = entering_code.to(entering_id) | capturing_finger.to(consenting) | confirming.to(capturing_finger)

    timed_out = code_cooldown.to(entering_code, on="cooldown_over") | _all_to(
        finished, entering_id, entering_code, consenting, capturing_finger, assisted, confirming, done, offline,
        refused)
    cancelled = _all_to(finished, entering_id, entering_code, code_cooldown, consenting, capturing_finger, assisted,
                        confirming, done, offline, refused)

    timeouts = {**dict.fromkeys(("entering_id", "entering_code", "consenting", "capturing_finger", "assisted",
                                 "confirming", "done", "offline", "refused"), "inactivity_s"),
                "code_cooldown": "cooldown_s"}

    def on_enter_assisted(self):
        self.ports.signal("warn")
        last = self.exceptions[-1]
        self.show("service_assisted", kind=last["kind"], finger=last["finger"], reason=last["reason"],
                  next_step="continue_assisted")
