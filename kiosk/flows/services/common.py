"""What every citizen service shares: its screen helper, what it holds and wipes, and the last steps.

A service flow is ``class XFlow(<step mixins>, ServiceBase, Flow)`` with its own chart. The
mixins (``id_step``, ``code_step``, ``face_step``, ``finger_step``, ``pin_step``) hold each
common step's callbacks, named after the states every chart uses (``entering_id``,
``entering_code``, ``capturing_face`` ...), so a step is written once and each service only
declares its order. This base holds the end of every service: ``confirming`` -> ``submitting``
-> ``done``, and the ways out (``offline``, ``refused``, ``finished``).

Everything a person typed or gave (ID, codes, PIN, details, sealed captures) lives only in the
flow and is wiped when it reaches ``finished`` (cancel, inactivity, or home after the result).
"""

import logging
import uuid

from kiosk.errors import StorageError
from kiosk.flows.services.ports import ServiceRequest
from kiosk.flows.services.rules import mask_id

log = logging.getLogger(__name__)

# the reason a refusal shows when the event itself says why
REFUSED_BY_EVENT = {"consent_declined": "consent_declined", "identity_not_verified": "not_verified"}


def new_reference():
    """A reference number a person can read out: 12 digits in groups of four."""
    digits = f"{uuid.uuid4().int % 10 ** 12:012d}"
    return "-".join(digits[i:i + 4] for i in range(0, 12, 4))


class ServiceBase:
    """The shared part of the service flows (see the module docstring)."""

    service = None
    steps = {}        # state id -> step number, for the progress bar
    back_from = ()    # states that offer "back one step"
    consent_kinds = ()

    def __init__(self, *, ports, clock, settings, rng=None):
        self.settings = settings
        self.rng = rng
        self.reference = new_reference()
        self.face_attempt = None
        self._wipe()
        self.result = None  # what ``done`` showed (the reference), kept after the wipe
        super().__init__(ports=ports, clock=clock)

    # --- what is held -----------------------------------------------------------------------------

    def _wipe(self):
        self.national_id = None
        self.fields = {}
        self.proofs = {}
        self.sealed = {}
        self.exceptions = []
        self.quality = {}
        self.code = None
        self.code_sent_s = None
        self.code_error = None
        self.retry_after_s = None
        self.first_pin = None
        self.finger_index = 0
        self.finger_failures = 0
        self.finger_problems = []
        self.face_failures = 0
        self.verify_failures = 0
        self.assist_kind = None
        self.method = None
        if self.face_attempt is not None:
            self.face_attempt.reset()
        self.face_attempt = None

    def on_enter_finished(self):
        self._wipe()
        self.ports.stop_capture("face")
        self.ports.stop_capture("finger")

    def inactivity_s(self):
        return self.settings.ui.inactivity_timeout_s

    def context(self, name):
        """What a sealed capture is bound to: this service, this request, this capture."""
        return f"service:{self.service}:{self.reference}:{name}"

    # --- the screen -------------------------------------------------------------------------------

    def show(self, screen, **data):
        state = self.state
        step = [self.steps.get(state, 0), max(self.steps.values(), default=0)]
        self.ports.show(screen, service=self.service, step=step, can_back=state in self.back_from, **data)

    # --- consent ------------------------------------------------------------------------------------

    def on_enter_consenting(self):
        self.show("service_consent", kinds=list(self.consent_kinds))

    # --- the end: confirm, submit, done; offline; refused -------------------------------------------

    def summary(self):
        items = {"national_id": mask_id(self.national_id or "")}
        if "mobile" in self.fields:
            items["mobile"] = self.fields["mobile"]
        captured = sorted(self.sealed)
        if captured:
            items["captured"] = ", ".join(captured)
        if self.exceptions:
            items["exceptions"] = ", ".join(f"{e['kind']}{':' + e['finger'] if e.get('finger') else ''} "
                                            f"({e['reason']})" for e in self.exceptions)
        return items

    confirm_error = None

    def on_enter_confirming(self):
        error, self.confirm_error = self.confirm_error, None
        self.show("service_confirm", summary=self.summary(), error=error)

    def note_not_saved(self):
        self.ports.signal("error")
        self.confirm_error = "not_saved"

    def request(self):
        return ServiceRequest(service=self.service, reference=self.reference, national_id=self.national_id,
                              fields=dict(self.fields), sealed=dict(self.sealed), exceptions=tuple(self.exceptions),
                              proofs=dict(self.proofs), quality=dict(self.quality))

    def on_enter_submitting(self):
        try:
            submitted = self.ports.submit(self.request())
        except StorageError as e:
            log.error("%s request %s could not be stored: %s", self.service, self.reference, type(e).__name__)
            self.send("submit_failed")
            return
        self.send("submitted", reference=submitted.reference, queued=submitted.queued)

    def on_enter_done(self, reference=None, queued=True):
        self.result = reference
        log.info("%s request %s submitted%s", self.service, reference, " (queued)" if queued else "")
        self._wipe()
        self.ports.signal("ok")
        self.show("service_done", reference=reference, queued=bool(queued))

    def on_enter_offline(self, at=None):
        self.ports.stop_capture("face")
        self.ports.stop_capture("finger")
        self.ports.signal("error")
        self.show("service_offline", at=at if at in ("code", "verify") else "code")

    def on_enter_refused(self, reason=None, retry_after_s=None, event=None):
        reason = REFUSED_BY_EVENT.get(str(event), reason)
        self.ports.stop_capture("face")
        self.ports.stop_capture("finger")
        self.ports.signal("error")
        self.show("service_refused", reason=reason or "refused", retry_in_s=retry_after_s)
