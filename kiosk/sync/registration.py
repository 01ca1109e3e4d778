"""Device registration: trade a one-time enrolment token and our public key for a device id."""

import logging
from dataclasses import dataclass, field

from kiosk.clock import SystemClock
from kiosk.errors import ProvisioningError, RejectedError, SyncError
from kiosk.sync import protocol
from kiosk.sync.client import SyncClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """What the server answers a successful registration with."""

    device_id: str
    server_public_key: str  # X25519, hex: activation packets are sealed to it
    server_signing_key: str  # Ed25519, hex: every answer of the server is signed by it (pinned)
    settings: dict = field(default_factory=dict)
    server_time: float = 0.0


def register(*, server_url, token, device_key, ca_file=None, timeout_s=15.0, info=None, clock=None,
             session=None, server_key_sha256=""):
    """Register this device once; returns a Registration or raises ProvisioningError / SyncError.

    ``device_key`` is the device's Ed25519 private key; only its public half and a proof of
    possession are sent. Repeating the call with the same token and key (an answer was lost)
    returns the same device id; the token is otherwise single-use. The answer must be signed by
    the signing key it names; with ``server_key_sha256`` (from the provisioning file) that key
    must also have this fingerprint, so registration is not trust-on-first-use.
    """
    if not token:
        raise ProvisioningError("no enrolment token: put one in the provisioning file")
    clock = clock or SystemClock()
    client = SyncClient(server_url=server_url, server_key=None, ca_file=ca_file or "", timeout_s=timeout_s,
                        clock=clock, session=session, server_key_sha256=server_key_sha256)
    try:
        answer = client.register(protocol.registration_body(token, device_key, info=info))
    except RejectedError as e:
        # never log or echo the token itself
        raise ProvisioningError(f"the server refused registration: {getattr(e, 'reason', '')}: "
                                f"{getattr(e, 'detail', e)}") from None
    finally:
        client.close()
    try:
        registration = Registration(device_id=str(answer["device_id"]),
                                    server_public_key=str(answer["server_public_key"]),
                                    server_signing_key=protocol.public_key_hex(client.server_key),
                                    settings=dict(answer.get("settings") or {}),
                                    server_time=float(answer.get("server_time") or 0.0))
    except (KeyError, TypeError, ValueError) as e:
        raise SyncError(f"registration answer is missing {e}") from None
    log.info("registered with %s as device %s; pinned server signing key sha256 %s", server_url,
             registration.device_id, protocol.key_fingerprint(registration.server_signing_key))
    return registration
