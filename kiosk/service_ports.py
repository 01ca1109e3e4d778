"""The citizen-service flows' ports on a real kiosk: the screen, the sensor, the sync client, the outbox.

``app.py`` builds one ``ServicePorts`` per service session and hands it to the flow (see
``kiosk.flows.services.ports`` for the protocol). Questions for the server go through the
signed sync client (every answer is verified against the pinned server key before anything in
it is used); a server that cannot be reached, or an answer that is not the real server's, is
``offline`` for the flow. Captures are sealed to the server's X25519 key the moment they are
taken; a finished request is sealed whole and committed to the outbox as one ``service_request``
record, which the sync worker uploads and deletes once the server acknowledges it.
"""

import json
import logging
import math
import uuid

from kiosk.errors import RejectedError, StorageError, SyncError, UntrustedAnswerError
from kiosk.flows.services import ports
from kiosk.storage import outbox, sealbox
from kiosk.storage.db import ensure_room_for_enrolment, transaction
from kiosk.sync.client import ServerUnavailableError
from kiosk.sync.protocol import SERVICE_REQUEST_KIND

log = logging.getLogger(__name__)

CODE_OUTCOMES = ("too_many_codes", "locked", "resend_too_soon", "unknown_id", "not_verified")
CHECK_OUTCOMES = ("wrong", "expired", "locked")
MAX_WAIT_S = 86400.0


def _seconds(value, default=None):
    """A finite, bounded number of seconds from the server, or ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return min(max(float(value), 0.0), MAX_WAIT_S)


def _count(value, *, low=0, high=10, default=0):
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else default


class ServicePorts:
    """The ServicePorts protocol over the screen, the fingerprint poller, the sync client and storage."""

    def __init__(self, *, settings, database, clock, screen, client, server_public_key, board=None, host=None,
                 poller=None):
        self.settings = settings
        self.db = database
        self.clock = clock
        self.screen = screen
        self.client = client
        self.server_public_key = server_public_key
        self.board = board
        self.host = host
        self.poller = poller

    # --- effects --------------------------------------------------------------------------------

    def show(self, screen, **data):
        self.screen.show(screen, **data)

    def signal(self, kind):
        if self.board is not None:
            self.board.show({"ok": "ok", "error": "error"}.get(kind, "busy"))
            self.board.beep("ok" if kind == "ok" else "error")

    def start_capture(self, kind, **options):
        if kind == "face" and self.host is not None:
            self.host.set_face_mode(options.get("mode", "enrol"))
        elif kind == "finger" and self.poller is not None:
            # the sensor builds a template of the named finger; the flow names it, the poller numbers captures
            if options.get("mode") == "sample":
                self.poller.set_mode("sample")
            else:
                self.poller.set_mode("enrol", finger=options.get("finger"),
                                     captures=self.settings.fingerprint.enroll_captures)

    def can_capture(self, kind):
        # a sensor that stopped answering is not offered (the poller says so until it answers again)
        return kind == "face" or (kind == "finger" and self.poller is not None and self.poller.healthy)

    def stop_capture(self, kind):
        if kind == "face" and self.host is not None:
            self.host.set_face_mode(None)
        elif kind == "finger" and self.poller is not None:
            self.poller.set_mode(None)

    # --- the server -------------------------------------------------------------------------------

    def _ask(self, call, *args):
        """The server's answer, or None when it cannot be reached or its answer is not to be trusted."""
        if self.client is None:
            return None
        try:
            return call(*args)
        except (ServerUnavailableError, UntrustedAnswerError) as e:
            log.warning("citizen service: the server is not available: %s", type(e).__name__)
            return None
        except RejectedError as e:
            log.warning("citizen service: the server refused the request: %s", getattr(e, "reason", e))
            return {"refused": True}
        except SyncError as e:
            log.warning("citizen service: %s", e)
            return None

    def request_code(self, *, service, national_id, phone=None, proof=None, resend_of=None):
        body = {"service": service, "national_id": national_id, "request_id": str(uuid.uuid4())}
        if phone is not None:
            body["phone"] = phone
        if proof is not None:
            body["proof"] = proof
        if resend_of is not None:
            body["resend_of"] = resend_of
        answer = self._ask(self.client.request_service_code if self.client else None, body)
        if answer is None:
            return ports.CodeRequest(ports.OFFLINE)
        if answer.get("sent") is True and isinstance(answer.get("code_id"), str):
            return ports.CodeRequest("sent", code_id=answer["code_id"][:64],
                                     code_length=_count(answer.get("code_length"), low=4, high=12, default=6),
                                     expires_in_s=_seconds(answer.get("expires_in_s"), 0.0),
                                     resend_after_s=_seconds(answer.get("resend_after_s"), 0.0),
                                     attempts_left=_count(answer.get("attempts_left")),
                                     phone_hint=str(answer.get("phone_hint", ""))[:20])
        reason = answer.get("reason")
        return ports.CodeRequest(reason if reason in CODE_OUTCOMES else "refused",
                                 retry_after_s=_seconds(answer.get("retry_after_s")))

    def verify_code(self, code_id, code):
        answer = self._ask(self.client.verify_service_code if self.client else None, code_id, code)
        if answer is None:
            return ports.CodeCheck(ports.OFFLINE)
        if answer.get("verified") is True and isinstance(answer.get("token"), str):
            return ports.CodeCheck("ok", token=answer["token"][:128])
        reason = answer.get("reason")
        return ports.CodeCheck(reason if reason in CHECK_OUTCOMES else "refused",
                               attempts_left=_count(answer.get("attempts_left")),
                               retry_after_s=_seconds(answer.get("retry_after_s")))

    def seal(self, data, *, context):
        return sealbox.seal_to(self.server_public_key, bytes(data), context=context)

    def verify_face(self, *, national_id, sealed, context):
        return self._verify("face", national_id, sealed, context)

    def verify_finger(self, *, national_id, sealed, context):
        return self._verify("finger", national_id, sealed, context)

    def _verify(self, kind, national_id, sealed, context):
        body = {"national_id": national_id, "kind": kind, "sealed": sealed, "context": context}
        call = None if self.client is None else getattr(self.client, f"verify_service_{kind}")
        answer = self._ask(call, body)
        if answer is None:
            return ports.Verification(ports.OFFLINE)
        outcome = answer.get("outcome")
        if outcome == "match" and isinstance(answer.get("token"), str):
            return ports.Verification("match", token=answer["token"][:128])
        return ports.Verification(outcome if outcome in ("no_match", "no_record") else "refused")

    # --- the outbox -------------------------------------------------------------------------------

    def submit(self, request):
        """Seal the whole request to the server's key and commit it to the outbox; the sync worker sends it."""
        ensure_room_for_enrolment(self.settings.storage.data_dir, self.settings.storage)
        record_id = str(uuid.uuid4())
        secret = {"national_id": request.national_id, "fields": request.fields, "sealed": request.sealed,
                  "exceptions": list(request.exceptions), "proofs": request.proofs, "quality": request.quality}
        context = f"{SERVICE_REQUEST_KIND}:{record_id}:{request.service}:{request.reference}"
        payload = {"service": request.service, "reference": request.reference,
                   "sealed": sealbox.seal_to(self.server_public_key, json.dumps(secret).encode(), context=context)}
        try:
            with transaction(self.db):
                outbox.enqueue(self.db, SERVICE_REQUEST_KIND, record_id, payload, now=self.clock.time())
        except StorageError:
            raise
        except OSError as e:
            raise StorageError(f"the service request could not be stored: {e}") from None
        log.info("citizen service %s: request %s sealed and queued", request.service, request.reference)
        return ports.Submitted(request.reference, queued=True)
