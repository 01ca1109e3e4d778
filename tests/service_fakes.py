"""Test doubles for the citizen-service flows: ports that record effects and answer from scripts.

``ServicePortsFake`` records every effect like ``flow_fakes.RecordingPorts`` and answers the
server questions from queues a test fills (``code_answers``, ``check_answers``, ``verify_answers``);
``seal`` really seals to a test X25519 key, so a test can open what the flow sealed.
"""

import collections

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.flows.services.ports import CodeCheck, CodeRequest, Submitted, Verification
from kiosk.flows.services.screens import keys_of
from kiosk.storage import sealbox

from flow_fakes import RecordingPorts

GOOD_ID = "1000000008"
SENT = CodeRequest("sent", code_id="c1", code_length=6, expires_in_s=300.0, resend_after_s=60.0, attempts_left=3,
                   phone_hint="+9665******12")


class ServicePortsFake(RecordingPorts):
    """RecordingPorts plus the service questions, answered from queues (default: success)."""

    def __init__(self, clock):
        super().__init__(clock)
        self.server_key = X25519PrivateKey.generate()
        self.code_answers = collections.deque()
        self.check_answers = collections.deque()
        self.verify_answers = collections.deque()
        self.submitted = []
        self.finger_sensor = False
        self.fail_submit = None
        self.asked = []

    def show(self, screen, **data):
        """Every screen a service flow shows must be in the screen contract with exactly its keys."""
        assert set(data) == keys_of(screen), (screen, sorted(data), sorted(keys_of(screen)))
        super().show(screen, **data)

    def request_code(self, *, service, national_id, phone=None, proof=None, resend_of=None):
        self.asked.append(("request_code", dict(service=service, national_id=national_id, phone=phone, proof=proof,
                                                resend_of=resend_of)))
        return self.code_answers.popleft() if self.code_answers else SENT

    def verify_code(self, code_id, code):
        self.asked.append(("verify_code", dict(code_id=code_id, code=code)))
        return self.check_answers.popleft() if self.check_answers else CodeCheck("ok", token="tok-code")

    def seal(self, data, *, context):
        self.asked.append(("seal", dict(context=context, size=len(data))))
        return sealbox.seal_to(self.server_key.public_key(), data, context=context)

    def open(self, box, context):
        return sealbox.open_sealed(self.server_key, box, context=context)

    def can_capture(self, kind):
        return kind == "face" or (kind == "finger" and self.finger_sensor)

    def verify_face(self, *, national_id, sealed, context):
        self.asked.append(("verify_face", dict(national_id=national_id, context=context)))
        return self.verify_answers.popleft() if self.verify_answers else Verification("match", token="tok-face")

    def verify_finger(self, *, national_id, sealed, context):
        self.asked.append(("verify_finger", dict(national_id=national_id, context=context)))
        return self.verify_answers.popleft() if self.verify_answers else Verification("match", token="tok-finger")

    def submit(self, request):
        if self.fail_submit is not None:
            error, self.fail_submit = self.fail_submit, None
            raise error
        self.submitted.append(request)
        self._call("submit", service=request.service)
        return Submitted(request.reference, queued=True)


def make(flow_class, *, face=None, clock=None, rng=None):
    clock = clock or FakeClock(start=1_700_000_000.0)
    settings = config.build([("test", {"face": face or {}, "ui": {"inactivity_timeout_s": 30.0}})])
    ports = ServicePortsFake(clock)
    flow = flow_class(ports=ports, clock=clock, settings=settings, rng=rng)
    return flow, ports, clock
