"""Signed provisioning codes: the compact payload a QR code carries, its signature and its checks.

A code is text ``KP1:`` + base32 (no padding) of ``packed || signature``:

- ``packed`` is the zlib stream (RFC 1950) of the body, the canonical JSON of the payload: keys
  sorted, no spaces, UTF-8, nothing else accepted (a body that does not re-encode to the same
  bytes is refused, so one payload has one meaning and duplicate keys cannot smuggle a second
  value past the signature). The signature covers the packed bytes, so nothing is unpacked
  before it is verified, and unpacking stops at MAX_BODY_BYTES (no zip bomb);
- ``signature`` is the 64-byte Ed25519 signature over ``DOMAIN + packed`` by the fleet's
  provisioning key. The kiosk knows only public halves, baked into the image at build time
  (KIOSK_IMG_PROVISIONING_KEYS, written to /etc/kiosk/provisioning-keys).

Base32 keeps the text inside QR's alphanumeric mode (upper case, digits, ``:``), which packs
5.5 bits a character instead of 8. The payload keys are short because a smaller code is read
from further away: see FIELDS. Every refusal carries a ``reason`` (a stable word a screen can
translate) and a one-line remedy; the checks run in the order of the attacks they stop
(size, shape, signature before any parsing, then fields, expiry, reuse).
"""

import base64
import binascii
import json
import logging
import os
import re
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import ProvisioningError
from kiosk.files import fsync_dir

log = logging.getLogger(__name__)

PREFIX = "KP1:"
DOMAIN = b"kiosk-provision-code-v1\x00"
SIGNATURE_BYTES = 64
MAX_BODY_BYTES = 2048        # the unpacked JSON
MAX_CODE_CHARS = 1200        # about QR version 22 in alphanumeric mode at error level M
MAX_USED_IDS = 10_000        # the used-code list stays bounded; expired ids go first
ID_RE = re.compile(r"^[0-9a-f]{16,32}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")

# payload key: (meaning, required, type)
FIELDS = {
    "id": ("code id (random, refused when seen again)", True, str),
    "exp": ("expiry, Unix seconds", True, int),
    "u": ("server URL", True, str),
    "t": ("one-time enrolment token (first provisioning)", False, str),
    "ca": ("sha256 of the server's CA certificate (DER), hex", False, str),
    "k": ("sha256 of the server's signing key, hex", False, str),
    "s": ("site", False, str),
    "d": ("door", False, str),
    "z": ("time zone", False, str),
    "l": ("language (ar or en)", False, str),
    "w": ("Wi-Fi: [ssid, passphrase, country]", False, list),
    "p": ("admin PIN hash", False, str),
    "rk": ("Ed25519 key (hex) that may sign re-provisioning files later", False, str),
    "dev": ("re-provisioning: the registered device this code changes (admin PIN asked)", False, str),
}

# reason -> remedy: one line for the technician, in the order the checks run
REMEDIES = {
    "not_a_code": "This is not a kiosk provisioning code: show the code printed by `kiosk provision make-code`.",
    "too_large": "The code is too large: make it again with fewer fields.",
    "malformed": "The code is damaged or incomplete: print or show it again, flat and sharp.",
    "unsigned": "The code is not signed: make it with `kiosk provision make-code` and the fleet key.",
    "no_key": "This image has no provisioning key: rebuild it with KIOSK_IMG_PROVISIONING_KEYS, or use a file.",
    "bad_signature": "The code is not signed by this fleet's key: ask the fleet administrator for a new code.",
    "bad_field": "The code's contents are invalid: make it again from a checked provisioning file.",
    "expired": "The code has expired: ask for a new one.",
    "reused": "This code was already used on this kiosk: each code works once; ask for a new one.",
    "already_provisioned": "This kiosk is already registered: decommission it first, or use a re-provisioning code.",
    "not_provisioned": "This is a re-provisioning code, but the kiosk is not registered yet: show its first code.",
    "wrong_device": "This re-provisioning code is for another kiosk: check the device id on the sheet.",
    "admin_pin": "Re-provisioning needs this kiosk's admin PIN: enter it, then show the code again.",
    "ca_missing": ("The code names a CA certificate that is neither kiosk-ca.pem on the boot partition "
                   "nor /etc/kiosk/fleet-ca.pem: copy the server's CA there."),
}


class CodeRefusedError(ProvisioningError):
    """A provisioning code that the kiosk will not act on; ``reason`` is a key of REMEDIES."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.remedy = REMEDIES[reason]
        super().__init__(f"provisioning code refused ({reason}){': ' + detail if detail else ''}. {self.remedy}")


@dataclass(frozen=True)
class Code:
    """A verified code: its payload and the public key (hex) that signed it."""

    payload: dict
    signer: str

    @property
    def code_id(self):
        return self.payload["id"]

    @property
    def expires_at_s(self):
        return float(self.payload["exp"])


def canonical(payload):
    """The one byte encoding of ``payload`` that gets signed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_code_id():
    return secrets.token_hex(8)


def encode(payload, private_key):
    """Sign ``payload`` (checked first) with an Ed25519 private key; return the code text."""
    problems = field_problems(payload)
    if problems:
        raise ProvisioningError("cannot make a code: " + "; ".join(problems))
    packed = zlib.compress(canonical(payload), 9)
    signature = private_key.sign(DOMAIN + packed)
    text = PREFIX + base64.b32encode(packed + signature).decode("ascii").rstrip("=")
    if len(text) > MAX_CODE_CHARS:
        raise ProvisioningError(f"the code would be {len(text)} characters, over the limit of {MAX_CODE_CHARS}: "
                                "leave out optional fields (admin PIN hash, Wi-Fi)")
    return text


def decode(text, *, public_keys, now_s, used=None):
    """Verify the code ``text``; return a Code or raise CodeRefusedError with the first reason found.

    ``public_keys``: hex Ed25519 keys trusted to sign codes. ``used``: a UsedCodes store (the
    code's id must not be in it). Nothing is remembered here: the caller marks the code used
    once it has acted on it.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CodeRefusedError("not_a_code", "not text") from None
    if len(text) > MAX_CODE_CHARS:
        raise CodeRefusedError("too_large", f"{len(text)} characters")
    text = text.strip()
    if not text.startswith(PREFIX):
        if text.startswith(("{", "KP0:", "[server]")):
            raise CodeRefusedError("unsigned")
        raise CodeRefusedError("not_a_code")
    packed = text[len(PREFIX):]
    try:
        blob = base64.b32decode(packed + "=" * (-len(packed) % 8), casefold=False)
    except (binascii.Error, ValueError):
        raise CodeRefusedError("malformed", "not base32") from None
    if len(blob) <= SIGNATURE_BYTES:
        raise CodeRefusedError("unsigned", "no room for a signature")
    packed, signature = blob[:-SIGNATURE_BYTES], blob[-SIGNATURE_BYTES:]
    keys = [k for k in public_keys if HEX64_RE.match(k)]
    if not keys:
        raise CodeRefusedError("no_key")
    signer = None
    for key in keys:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(signature, DOMAIN + packed)
            signer = key
            break
        except InvalidSignature:
            continue
    if signer is None:
        raise CodeRefusedError("bad_signature")
    # signed by us from here on; still checked, because a signing tool can have bugs
    unpacker = zlib.decompressobj()
    try:
        body = unpacker.decompress(packed, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise CodeRefusedError("malformed", "not a zlib stream") from None
    if len(body) > MAX_BODY_BYTES or unpacker.unconsumed_tail or not unpacker.eof or unpacker.unused_data:
        raise CodeRefusedError("malformed", "the packed body is incomplete, trailed or too large")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CodeRefusedError("malformed", "body is not JSON") from None
    if not isinstance(payload, dict) or canonical(payload) != body:
        raise CodeRefusedError("malformed", "body is not canonical JSON")
    problems = field_problems(payload)
    if problems:
        raise CodeRefusedError("bad_field", "; ".join(problems))
    if now_s >= payload["exp"]:
        raise CodeRefusedError("expired")
    if used is not None and used.contains(payload["id"]):
        raise CodeRefusedError("reused")
    return Code(payload=payload, signer=signer)


def field_problems(payload):
    """Problems of a payload's keys and types (not of their meaning: provision_file checks that)."""
    problems = []
    for key in payload:
        if key not in FIELDS:
            problems.append(f"{key}: unknown field")
    for key, (meaning, required, kind) in FIELDS.items():
        if key not in payload:
            if required:
                problems.append(f"{key} ({meaning}): missing")
            continue
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            problems.append(f"{key} ({meaning}): expected {kind.__name__}")
    if isinstance(payload.get("id"), str) and not ID_RE.match(payload["id"]):
        problems.append("id: must be 16 to 32 lower-case hex digits")
    for key in ("ca", "k", "rk"):
        if isinstance(payload.get(key), str) and not HEX64_RE.match(payload[key]):
            problems.append(f"{key}: must be 64 lower-case hex digits")
    if "t" not in payload and "dev" not in payload:
        problems.append("t (one-time enrolment token): missing; only a re-provisioning code (dev) has none")
    if "t" in payload and "dev" in payload:
        problems.append("t and dev: a code either registers a kiosk (t) or changes one (dev), not both")
    wifi = payload.get("w")
    if isinstance(wifi, list) and (len(wifi) != 3 or not all(isinstance(x, str) for x in wifi)):
        problems.append("w: must be [ssid, passphrase, country]")
    return problems


def to_tables(code, *, ca_pem=""):
    """The payload as provisioning-file tables, for provision_file.parse to check like a file."""
    p = code.payload
    server = {"url": p["u"]}
    if "t" in p:
        server["enrolment_token"] = p["t"]
    if "k" in p:
        server["signing_key_sha256"] = p["k"]
    if ca_pem:
        server["ca_pem"] = ca_pem
    device = {name: p[key] for key, name in (("s", "site"), ("d", "door"), ("z", "timezone"), ("l", "language"))
              if key in p}
    tables = {"server": server, "device": device}
    if "w" in p:
        tables["wifi"] = dict(zip(("ssid", "psk", "country"), p["w"]))
    admin = {name: p[key] for key, name in (("p", "pin_hash"), ("rk", "signing_public_key")) if key in p}
    if admin:
        tables["admin"] = admin
    if "dev" in p:      # the sequence of a file is replaced by the code's id, remembered once used
        tables["reprovision"] = {"device_id": p["dev"], "sequence": 1}
    return tables


def ca_fingerprint(pem):
    """sha256 (hex) of the DER of the first certificate in ``pem``."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificates(pem.encode())[0]
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def load_public_keys(path):
    """Hex Ed25519 public keys, one a line (``#`` comments), from the file baked into the image."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        log.error("%s: unreadable (%s): no code can be accepted", path, e)
        return []
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if HEX64_RE.match(line):
            keys.append(line)
        else:
            log.error("%s line %d: not a 64-hex-digit Ed25519 public key; ignored", path, number)
    return keys


class UsedCodes:
    """Ids of codes already acted on, kept on disk (fsynced) so a reboot does not forget them."""

    def __init__(self, path):
        self.path = Path(path)

    def _read(self):
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            # a damaged list must not let old codes back in: refuse everything until it is fixed
            raise ProvisioningError(f"{self.path}: unreadable ({e}); codes are refused until it is restored") from None
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def contains(self, code_id):
        return code_id in self._read()

    def remember(self, code_id, *, expires_at_s, now_s):
        """Add ``code_id``; past MAX_USED_IDS the expired ones (refused anyway) are dropped."""
        used = self._read()
        used[code_id] = float(expires_at_s)
        if len(used) > MAX_USED_IDS:
            used = {k: v for k, v in used.items() if v > now_s}
            if len(used) > MAX_USED_IDS:
                raise ProvisioningError(f"{self.path}: more than {MAX_USED_IDS} unexpired codes used")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, json.dumps(used, sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
