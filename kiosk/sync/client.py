"""HTTP client for the central server: TLS with a pinned CA, gzip bodies, signed requests and answers, server time.

Only the real server is obeyed: every answer must carry the server's Ed25519 signature over the
request it answers (its nonce, device, method, path), the status, the server time and the body.
The server's key is pinned at registration (``security.server_signing_key``); an answer that is
unsigned, wrongly signed or signed by another key raises ``UntrustedAnswerError`` before any of
it is used, and an unsigned 5xx or 429 only counts as "server unavailable".
"""

import logging
import math
import threading
import uuid
from urllib.parse import urlencode, urlsplit

import requests

from kiosk.backoff import parse_retry_after
from kiosk.errors import RejectedError, SyncError, UntrustedAnswerError
from kiosk.sync import protocol
from kiosk.urls import url_problem

log = logging.getLogger(__name__)

USER_AGENT = "kiosk-sync/1"


class ServerUnavailableError(SyncError):
    """The server is unreachable, timed out, or answered with a temporary error (5xx, 429)."""

    def __init__(self, message="", *, retry_after_s=None, http_status=None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.http_status = http_status


def rejected(reason, message, *, http_status=None):
    """A RejectedError carrying the server's reason code (e.g. 'bad_signature')."""
    error = RejectedError(f"server rejected the request: {reason}: {message}")
    error.reason = reason
    error.detail = message
    error.http_status = http_status
    return error


class SyncClient:
    """One device's connection to the central server (thread-safe for one caller at a time)."""

    def __init__(self, *, server_url, server_key, device_id="", device_key=None, ca_file="", timeout_s=15.0, clock,
                 session=None, nonce_factory=None, server_key_sha256=""):
        """``server_key``: the pinned hex Ed25519 key answers must be signed by; None only to register,
        when the key arrives in the answer (and must then match ``server_key_sha256`` if given)."""
        problem = url_problem(server_url)
        if problem:
            raise SyncError(f"sync.server_url: {problem}")
        parsed = urlsplit(server_url)
        self.server_url = server_url.rstrip("/")
        self._base_path = parsed.path.rstrip("/")
        self.device_id = device_id
        self.device_key = device_key
        self.timeout_s = timeout_s
        self._clock = clock
        self._nonce = nonce_factory or protocol.new_nonce
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.headers["Accept-Encoding"] = "gzip"
        # pinning: with a CA file, only that CA is trusted (not the system store). Passed with every
        # request, because requests lets REQUESTS_CA_BUNDLE override a Session's own verify setting.
        self._verify = ca_file if ca_file else True
        self.server_key = _public_key(server_key) if server_key else None
        self._server_key_sha256 = (server_key_sha256 or "").lower()
        self._lock = threading.Lock()
        self.clock_offset_s = 0.0
        self.last_server_time = None
        self.last_latency_s = None

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def server_now(self):
        """Our best estimate of the server's clock: the local clock corrected by the last offset."""
        return self._clock.time() + self.clock_offset_s

    # --- endpoints -------------------------------------------------------------------------------

    def health(self):
        return self._request("GET", "/health", signed=False)

    def register(self, body):
        """POST /v1/devices/register (not signed: the device has no id yet; the body carries a proof).

        The answer names the server's signing key and must be signed by it; with a pinned
        ``server_key_sha256`` the key must also have that fingerprint. The client keeps the key.
        """
        return self._request("POST", "/devices/register", body=body, signed=False, registration=True)

    def upload_batch(self, body):
        """POST /v1/batches; returns the per-record answer."""
        return self._request("POST", "/batches", body=body)

    def delta(self, *, cursor, limit, face_model="", finger_sensor=""):
        query = {"cursor": cursor or "", "limit": limit}
        if face_model:
            query["face_model"] = face_model
        if finger_sensor:
            query["finger_sensor"] = finger_sensor
        return self._request("GET", "/delta", query=query)

    def commands(self):
        return self._request("GET", "/commands").get("commands", [])

    def command_result(self, command_id, *, status, detail=None):
        body = {"status": status, "detail": detail or {}, "finished_at": self.server_now()}
        return self._request("POST", f"/commands/{command_id}/result", body=body)

    def rotate_key(self, new_key):
        """Ask the server to accept ``new_key`` (signed by the current key, proven by the new one)."""
        key_text = protocol.public_key_hex(new_key)
        proof = protocol.b64(new_key.sign(protocol.rotation_message(self.device_id, key_text)))
        return self._request("POST", "/devices/rotate-key", body={"public_key": key_text, "proof": proof})

    def request_activation_code(self, national_id, *, request_id=None):
        """Ask the server to send a one-time code to the phone registered for ``national_id``."""
        body = {"national_id": protocol.normalise_national_id(national_id),
                "request_id": request_id or str(uuid.uuid4())}
        return self._request("POST", "/activation/request", body=body)

    def verify_activation_code(self, activation_id, code):
        return self._request("POST", "/activation/verify", body={"activation_id": activation_id, "code": code})

    def request_service_code(self, body):
        """POST /v1/services/code: a one-time code for a citizen service (the answer says sent or why not)."""
        return self._request("POST", "/services/code", body=body)

    def verify_service_code(self, code_id, code):
        """POST /v1/services/code/verify: the typed code; a token when right."""
        return self._request("POST", "/services/code/verify", body={"code_id": code_id, "code": code})

    def verify_service_face(self, body):
        """POST /v1/services/verify-face: a sealed face embedding compared by the server with the enrolled one."""
        return self._request("POST", "/services/verify-face", body=body)

    def verify_service_finger(self, body):
        """POST /v1/services/verify-finger: a sealed finger sample compared by the server with the enrolled fingers."""
        return self._request("POST", "/services/verify-finger", body=body)

    # --- plumbing --------------------------------------------------------------------------------

    def _request(self, method, path, *, body=None, query=None, signed=True, registration=False, _retried=False):
        if self._session is None:
            raise SyncError("sync client is closed")
        if self.server_key is None and not registration:
            raise SyncError("no server signing key is pinned (security.server_signing_key): "
                            "provision the kiosk again (`kiosk provision`)")
        full_path = f"{self._base_path}{protocol.API_PREFIX}{path}"
        if query:
            full_path += "?" + urlencode(query)
        raw = protocol.encode_body(body) if body is not None else b""
        nonce = self._nonce()
        headers = {protocol.HEADER_NONCE: nonce}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if signed:
            if not self.device_id or self.device_key is None:
                raise SyncError("this device is not registered (no device id or key)")
            headers.update(protocol.sign_request(self.device_key, self.device_id, method, full_path, raw,
                                                 now=self.server_now(), nonce=nonce))
        url = self.server_url[: len(self.server_url) - len(self._base_path)] + full_path
        sent_at = self._clock.monotonic()
        sent_wall = self._clock.time()
        with self._lock:
            try:
                response = self._session.request(method, url, data=raw or None, headers=headers,
                                                 timeout=self.timeout_s, verify=self._verify)
                content = response.content
            except requests.exceptions.SSLError as e:
                raise ServerUnavailableError(f"TLS verification of {self.server_url} failed "
                                             f"(is sync.ca_file the server's CA?): {e}") from None
            except requests.exceptions.Timeout:
                raise ServerUnavailableError(f"{method} {path}: no answer within {self.timeout_s:g} s") from None
            except requests.exceptions.RequestException as e:
                raise ServerUnavailableError(f"{method} {path}: {type(e).__name__}: {_short(e)}") from None
        self.last_latency_s = max(0.0, self._clock.monotonic() - sent_at)
        status = response.status_code
        data = _parse_json(content)
        server_time = response.headers.get(protocol.HEADER_SERVER_TIME, "")
        key = self._answer_key(response.headers.get(protocol.HEADER_SERVER_KEY), data) if registration \
            else self.server_key
        problem = self._signature_problem(key, response.headers.get(protocol.HEADER_SERVER_SIGNATURE), nonce=nonce,
                                          device_id=self.device_id if signed else "", method=method,
                                          path=full_path, status=status, server_time=server_time, body=content)
        if problem and (status >= 500 or status == 429):
            # nothing in it is used: the device only waits, as it would for a dead server
            raise ServerUnavailableError(f"{method} {path}: server answered {status} (unsigned, not trusted)")
        if problem:
            log.error("REFUSED the answer to %s %s from %s: %s; nothing in it is used", method, path,
                      self.server_url, problem)
            raise UntrustedAnswerError(f"{method} {path}: answer refused: {problem}")
        if registration:
            self.server_key = key
        # the server's clock is believed only from answers it signed
        self._note_server_time(server_time or None, sent_wall)
        if isinstance(data, dict) and data.get("server_time") is not None and not server_time:
            self._note_server_time(data["server_time"], sent_wall)
        if status < 300:
            if not isinstance(data, dict):
                raise ServerUnavailableError(f"{method} {path}: answer {status} is not a JSON object")
            return data
        reason = (data or {}).get("error", f"http_{status}") if isinstance(data, dict) else f"http_{status}"
        message = (data or {}).get("message", response.reason or "") if isinstance(data, dict) else ""
        if status >= 500 or status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock.time())
            raise ServerUnavailableError(f"{method} {path}: server answered {status} {message}".strip(),
                                         retry_after_s=retry_after, http_status=status)
        if reason == protocol.STALE_TIMESTAMP and signed and not _retried:
            # our clock was off; the offset was just corrected from the server's time: sign again
            log.warning("server says our timestamp is stale; clock offset now %+.1f s", self.clock_offset_s)
            return self._request(method, path, body=body, query=query, signed=signed, _retried=True)
        raise rejected(reason, message, http_status=status)

    def _answer_key(self, text, data):
        """At registration: the signing key the answer names, if it matches the pinned fingerprint."""
        if not text:
            return None
        if isinstance(data, dict) and data.get("server_signing_key") not in (None, text):
            log.error("the registration answer names two different server signing keys")
            return None
        try:
            key = _public_key(text)
        except ValueError:
            return None
        if self._server_key_sha256 and protocol.key_fingerprint(text) != self._server_key_sha256:
            log.error("the server's signing key has fingerprint %s, not the %s pinned by the provisioning "
                      "file", protocol.key_fingerprint(text)[:16], self._server_key_sha256[:16])
            return None
        return key

    @staticmethod
    def _signature_problem(key, signature, **fields):
        if key is None:
            return "no usable server signing key (missing, malformed or not the pinned fingerprint)"
        if not signature:
            return f"not signed (no {protocol.HEADER_SERVER_SIGNATURE} header)"
        if not protocol.verify_answer(key, signature, **fields):
            return "the signature does not verify with the pinned server key (another server, or a replayed answer)"
        return None

    def _note_server_time(self, value, sent_wall):
        if value is None:
            return
        try:
            server_time = float(value)
        except (TypeError, ValueError):
            return
        if not math.isfinite(server_time):
            return
        received_wall = self._clock.time()
        self.last_server_time = server_time
        self.clock_offset_s = server_time - (sent_wall + received_wall) / 2


def _public_key(key):
    return protocol.public_key_from_hex(key) if isinstance(key, str) else key


def _parse_json(content):
    try:
        return protocol.decode_body(content)
    except ValueError:
        return None


def _short(error):
    text = str(error)
    return text if len(text) < 200 else text[:200] + "..."
