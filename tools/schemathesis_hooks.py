"""Schemathesis hooks that sign requests as a kiosk does, so an outside fuzzer gets past authentication.

The sync protocol (docs/sync-protocol.md) wants every device request signed with the device's
Ed25519 key. These hooks register a fresh device with an enrolment token on first use, then sign
each request schemathesis sends (method, path with query, timestamp, nonce, sha256 of the body bytes
as sent), so every operation is exercised, not only its 401. Self-contained: schemathesis and
cryptography are all it needs (neither is a firmware dependency). The command is in
docs/reliability.md, section 3:

    kiosk-sim server --port 8443 --db /tmp/fuzz.db          # prints "enrolment token: ..."
    KIOSK_FUZZ_URL=http://127.0.0.1:8443 KIOSK_FUZZ_TOKEN=<token> SCHEMATHESIS_HOOKS=schemathesis_hooks \\
        PYTHONPATH=tools st run http://127.0.0.1:8443/openapi.json --url http://127.0.0.1:8443

Only point it at a server on this machine (loopback): it sends thousands of hostile requests.
"""

import base64
import hashlib
import json
import logging
import os
import threading
import time

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = logging.getLogger(__name__)

SIGNATURE_SCHEME = "KIOSK-SIG-1"
REGISTRATION_SCHEME = "KIOSK-REGISTER-1"


class KioskSignature(requests.auth.AuthBase):
    """requests auth that signs the prepared request (its final bytes) with a device key."""

    def __init__(self, device_id, private_key, *, clock=time.time):
        self.device_id = device_id
        self.private_key = private_key
        self.clock = clock

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):  # a streamed body: read it once, send the bytes that were signed
            body = b"".join(body)
            request.body = body
        timestamp = f"{self.clock():.3f}"
        nonce = os.urandom(16).hex()
        message = "\n".join((SIGNATURE_SCHEME, request.method.upper(), request.path_url, timestamp, nonce,
                             hashlib.sha256(body).hexdigest())).encode()
        request.headers.update({
            "X-Device-Id": self.device_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": base64.b64encode(self.private_key.sign(message)).decode("ascii")})
        return request


def register_device(base_url, token, *, private_key=None, timeout_s=10.0):
    """Register a new device key with an enrolment token; returns (device_id, private_key)."""
    private_key = private_key or Ed25519PrivateKey.generate()
    key_text = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    message = "\n".join((REGISTRATION_SCHEME, hashlib.sha256(token.encode()).hexdigest(), key_text)).encode()
    body = {"token": token, "public_key": key_text, "proof": base64.b64encode(private_key.sign(message)).decode(),
            "info": {"model": "schemathesis"}}
    response = requests.post(base_url.rstrip("/") + "/v1/devices/register", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"}, timeout=timeout_s)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"registration refused: HTTP {response.status_code} {response.text[:200]}")
    return response.json()["device_id"], private_key


_signer = None
_lock = threading.Lock()


def signer_from_environment(environ=os.environ):
    """The signer for this run: a device registered with $KIOSK_FUZZ_TOKEN at $KIOSK_FUZZ_URL (once)."""
    global _signer
    with _lock:
        if _signer is None:
            url, token = environ.get("KIOSK_FUZZ_URL"), environ.get("KIOSK_FUZZ_TOKEN")
            if not url or not token:
                raise RuntimeError("set KIOSK_FUZZ_URL (the server simulator) and KIOSK_FUZZ_TOKEN (an enrolment "
                                   "token it printed) for the signing hooks")
            device_id, key = register_device(url, token)
            log.info("schemathesis signs as device %s", device_id)
            _signer = KioskSignature(device_id, key)
        return _signer


try:
    import schemathesis
except ImportError:  # the test suite imports this file to check the signing without schemathesis
    schemathesis = None

if schemathesis is not None:
    @schemathesis.hook
    def before_call(context, case, kwargs):
        """Sign every request as the registered device (the body is signed as sent, after serialising)."""
        kwargs["auth"] = signer_from_environment()
