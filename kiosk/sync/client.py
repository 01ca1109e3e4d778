"""HTTP client for the central server: TLS with a pinned CA, gzip bodies, signed requests, server time."""

import logging
import threading
import uuid
from urllib.parse import urlencode, urlsplit

import requests

from kiosk.errors import RejectedError, SyncError
from kiosk.sync import protocol
from kiosk.sync.backoff import parse_retry_after

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

    def __init__(self, *, server_url, device_id="", device_key=None, ca_file="", timeout_s=15.0, clock,
                 session=None, nonce_factory=None):
        parsed = urlsplit(server_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SyncError(f"sync.server_url {server_url!r} is not an http(s) URL")
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
        """POST /v1/devices/register (not signed: the device has no id yet; the body carries a proof)."""
        return self._request("POST", "/devices/register", body=body, signed=False)

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

    # --- plumbing --------------------------------------------------------------------------------

    def _request(self, method, path, *, body=None, query=None, signed=True, _retried=False):
        if self._session is None:
            raise SyncError("sync client is closed")
        full_path = f"{self._base_path}{protocol.API_PREFIX}{path}"
        if query:
            full_path += "?" + urlencode(query)
        raw = protocol.encode_body(body) if body is not None else b""
        headers = {}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if signed:
            if not self.device_id or self.device_key is None:
                raise SyncError("this device is not registered (no device id or key)")
            headers.update(protocol.sign_request(self.device_key, self.device_id, method, full_path, raw,
                                                 now=self.server_now(), nonce=self._nonce()))
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
        self._note_server_time(response.headers.get(protocol.HEADER_SERVER_TIME), sent_wall)
        data = _parse_json(content)
        if isinstance(data, dict) and data.get("server_time") is not None and \
                response.headers.get(protocol.HEADER_SERVER_TIME) is None:
            self._note_server_time(data["server_time"], sent_wall)
        status = response.status_code
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

    def _note_server_time(self, value, sent_wall):
        if value is None:
            return
        try:
            server_time = float(value)
        except (TypeError, ValueError):
            return
        received_wall = self._clock.time()
        self.last_server_time = server_time
        self.clock_offset_s = server_time - (sent_wall + received_wall) / 2


def _parse_json(content):
    try:
        return protocol.decode_body(content)
    except ValueError:
        return None


def _short(error):
    text = str(error)
    return text if len(text) < 200 else text[:200] + "..."
