"""The ports of the citizen-service flows, and the plain answers they give back.

Effects (``show``, ``signal``, ``start_capture``, ``stop_capture``) are the ones every flow has
(``kiosk.flows.ports``); the questions below go to the central server through the sync client
(``kiosk.service_ports`` on a kiosk, a recorder in tests). Nothing here raises for a server that
cannot be reached: the answer's ``outcome`` is ``"offline"`` and the flow says so.

Biometrics leave a flow only sealed: ``seal`` encrypts a capture to the server's public key the
moment it is taken, and the flow keeps the sealed box, never the plaintext.
"""

from dataclasses import dataclass, field
from typing import Protocol

OFFLINE = "offline"


@dataclass(frozen=True)
class CodeRequest:
    """The answer to "send a one-time code".

    ``outcome``: ``sent`` | ``too_many_codes`` (per ID or device per hour) | ``locked`` (too many
    wrong codes) | ``resend_too_soon`` | ``unknown_id`` | ``refused`` | ``offline``.
    """

    outcome: str
    code_id: str = None
    code_length: int = 6
    expires_in_s: float = 0.0
    resend_after_s: float = 0.0
    attempts_left: int = 0
    phone_hint: str = ""
    retry_after_s: float = None


@dataclass(frozen=True)
class CodeCheck:
    """The answer to a typed code: ``ok`` (with ``token``) | ``wrong`` | ``expired`` | ``locked`` | ``refused`` | ``offline``."""

    outcome: str
    token: str = None
    attempts_left: int = None
    retry_after_s: float = None


@dataclass(frozen=True)
class Verification:
    """The server's comparison of a sealed capture with the person's enrolled template.

    ``outcome``: ``match`` (with ``token``) | ``no_match`` | ``no_record`` | ``refused`` | ``offline``.
    """

    outcome: str
    token: str = None


@dataclass(frozen=True)
class Submitted:
    """A service request sealed and committed to the outbox (it reaches the server when it can)."""

    reference: str
    queued: bool = True


@dataclass(frozen=True)
class ServiceRequest:
    """Everything one service sends, as the flow hands it to ``submit``.

    ``fields`` are plain details (mobile, e-mail, username, language, PIN); ``sealed`` maps a
    capture name (``face``, ``finger:right_index``) to its sealed box; ``exceptions`` lists the
    biometric exceptions of the assisted path ({kind, finger, reason}); ``proofs`` holds the
    server's tokens (code verified, biometric verified).
    """

    service: str
    reference: str
    national_id: str
    fields: dict = field(default_factory=dict)
    sealed: dict = field(default_factory=dict)
    exceptions: tuple = ()
    proofs: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)


class ServicePorts(Protocol):
    """What a service flow may do and ask."""

    def show(self, screen, **data): ...
    def signal(self, kind): ...                    # "ok" | "error" | "warn"
    def start_capture(self, kind, **options): ...  # "face" (mode "enrol") | "finger" (mode "enrol", finger=name;
    #                                                 or mode "sample": one capture's character file, to verify)
    def can_capture(self, kind): ...               # "finger": True when the kiosk has a fingerprint sensor
    def stop_capture(self, kind): ...

    def request_code(self, *, service, national_id, phone=None, proof=None, resend_of=None): ...  # -> CodeRequest
    def verify_code(self, code_id, code): ...     # -> CodeCheck
    def seal(self, data, *, context): ...         # bytes -> sealed box (dict) to the server's key
    def verify_face(self, *, national_id, sealed, context): ...  # -> Verification
    def verify_finger(self, *, national_id, sealed, context): ...  # -> Verification (sealed character file)
    def submit(self, request): ...                # ServiceRequest -> Submitted (committed before it returns)
