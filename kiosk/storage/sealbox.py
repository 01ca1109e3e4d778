"""Seal bytes to the central server's X25519 public key, so only the server can open them.

Used for biometric templates that must travel to the server (enrolments at the kiosk): they are
sealed when the record is made, so they never rest in the outbox or travel in clear. The kiosk
cannot open what it sealed; its own copy of the templates is sealed at rest with the data key.

Format (version 1, a JSON object)::

    {"v": 1, "alg": "X25519-HKDF-SHA256-AES256GCM",
     "epk": "<hex, 32-byte ephemeral X25519 public key>",
     "nonce": "<base64, 12 bytes>", "ct": "<base64 AES-256-GCM ciphertext + 16-byte tag>"}

    shared = X25519(ephemeral private, server public)
    key    = HKDF-SHA256(shared, length=32, salt=epk || server public key, info="kiosk-sealbox-v1")
    ct     = AES-256-GCM(key, nonce, plaintext, associated data = context)

A fresh ephemeral key per sealed box. ``context`` (e.g. ``person_enrolled:<record id>:<person id>``)
is authenticated but not sent: the opener must know it, so a box moved to another record fails.
"""

import base64
import binascii
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = logging.getLogger(__name__)

VERSION = 1
ALGORITHM = "X25519-HKDF-SHA256-AES256GCM"
INFO = b"kiosk-sealbox-v1"
NONCE_BYTES = 12
MAX_SEALED_BYTES = 4 * 1024 * 1024


def _raw(public_key):
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_from_hex(text):
    """An X25519 public key from 64 hex characters; ValueError otherwise."""
    try:
        raw = bytes.fromhex(str(text))
    except ValueError:
        raise ValueError("the server public key is not hex") from None
    if len(raw) != 32:
        raise ValueError("the server public key must be 32 bytes (64 hex characters)")
    return X25519PublicKey.from_public_bytes(raw)


def _derive(shared, epk_raw, server_raw):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk_raw + server_raw, info=INFO).derive(shared)


def seal_to(server_public_key, plaintext, *, context):
    """Seal ``plaintext`` to the server key (hex text or X25519PublicKey); returns the JSON-ready box."""
    if isinstance(server_public_key, str):
        server_public_key = public_key_from_hex(server_public_key)
    ephemeral = X25519PrivateKey.generate()
    epk_raw, server_raw = _raw(ephemeral.public_key()), _raw(server_public_key)
    key = _derive(ephemeral.exchange(server_public_key), epk_raw, server_raw)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, bytes(plaintext), context.encode())
    return {"v": VERSION, "alg": ALGORITHM, "epk": epk_raw.hex(),
            "nonce": base64.b64encode(nonce).decode(), "ct": base64.b64encode(ciphertext).decode()}


def open_sealed(server_private_key, box, *, context):
    """The plaintext of a box sealed to ``server_private_key``; ValueError for anything that does not open."""
    if not isinstance(box, dict) or box.get("v") != VERSION or box.get("alg") != ALGORITHM:
        raise ValueError(f"not a version {VERSION} {ALGORITHM} sealed box")
    fields = (box.get("epk"), box.get("nonce"), box.get("ct"))
    if not all(isinstance(f, str) for f in fields):
        raise ValueError("a sealed box needs epk, nonce and ct as strings")
    if len(box["ct"]) > MAX_SEALED_BYTES * 4 // 3 + 4:
        raise ValueError(f"sealed box larger than {MAX_SEALED_BYTES} bytes")
    try:
        epk = public_key_from_hex(box["epk"])
        nonce = base64.b64decode(box["nonce"], validate=True)
        ciphertext = base64.b64decode(box["ct"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"malformed sealed box: {e}") from None
    if len(nonce) != NONCE_BYTES or len(ciphertext) < 16:
        raise ValueError("malformed sealed box: bad nonce or ciphertext length")
    try:
        shared = server_private_key.exchange(epk)
    except ValueError:
        raise ValueError("sealed box has a degenerate ephemeral key") from None
    key = _derive(shared, _raw(epk), _raw(server_private_key.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, context.encode())
    except InvalidTag:
        raise ValueError("sealed box does not open with this key and context (wrong key, altered, or moved)") \
            from None
