"""The kiosk sync protocol's wire format: bodies, request signatures, batches (client and server share it).

Every request a registered device makes is signed with its Ed25519 key over
``KIOSK-SIG-1 \\n METHOD \\n PATH?QUERY \\n TIMESTAMP \\n NONCE \\n sha256(body as sent)``.
Every answer of the server is signed with the server's Ed25519 key over
``KIOSK-ANSWER-1 \\n NONCE \\n DEVICE \\n METHOD \\n PATH?QUERY \\n STATUS \\n SERVER-TIME \\n sha256(JSON)``,
where NONCE is the request's own ``X-Nonce``: an answer verifies only for the request it answers.
Bodies are JSON, gzip-compressed on the wire; numbers must be finite (no NaN or Infinity).
See docs/sync-protocol.md.
"""

import base64
import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from json.encoder import encode_basestring

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.digits import western_digits

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
SIGNATURE_SCHEME = "KIOSK-SIG-1"
ANSWER_SCHEME = "KIOSK-ANSWER-1"
REGISTRATION_SCHEME = "KIOSK-REGISTER-1"
ROTATION_SCHEME = "KIOSK-ROTATE-1"
CHECKPOINT_SCHEME = "KIOSK-CHECKPOINT-1"
MAX_SKEW_S = 300.0
MAX_BODY_BYTES = 32 * 1024 * 1024
# level 1: a batch of 3,800 events compressed in about a third of level 5's time, 1% larger
# (measured in docs/benchmarks.md, Sync); the kiosk's CPU is scarcer than its bandwidth
GZIP_LEVEL = 1

HEADER_DEVICE = "X-Device-Id"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"
HEADER_SERVER_TIME = "X-Server-Time"
HEADER_SERVER_SIGNATURE = "X-Server-Signature"
HEADER_SERVER_KEY = "X-Server-Signing-Key"  # hex Ed25519 key; only a registering device uses it (then pins it)

# per-record answers to an uploaded batch
STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"
ACKED = (STORED, DUPLICATE)

# batch- or request-level refusals (the "error" field of a 4xx answer)
BAD_SIGNATURE = "bad_signature"
UNKNOWN_DEVICE = "unknown_device"
STALE_TIMESTAMP = "stale_timestamp"
REPLAYED_NONCE = "replayed_nonce"
BATCH_ID_REUSED = "batch_id_reused"
BROKEN_CHAIN = "broken_chain"
CHECKPOINT_CONFLICT = "checkpoint_conflict"
MALFORMED = "malformed"

# record kinds a batch carries: events are hash-chained; people enrolled or deleted at the kiosk are
# validated by the server (their templates sealed to its key, kiosk/storage/sealbox.py); other kinds
# (activation packets) are stored as they are; citizen service requests (kiosk/service_ports.py) are
# sealed whole to the server's key, opened and checked by it, and deleted from the outbox once acknowledged
EVENT_KIND = "event"
PERSON_ENROLLED_KIND = "person_enrolled"
PERSON_DELETED_KIND = "person_deleted"
SERVICE_REQUEST_KIND = "service_request"
RECORD_KINDS = (EVENT_KIND, PERSON_ENROLLED_KIND, PERSON_DELETED_KIND, "activation", SERVICE_REQUEST_KIND)

COMMAND_KINDS = ("open_door", "sync_now", "purge_person", "reboot", "rotate_key")
COMMAND_RESULTS = ("done", "failed", "unsupported", "expired")
CHANGE_TYPES = ("person", "face_templates", "finger_templates", "voice_template", "settings", "revocation")

NONCE_RE = re.compile(r"^[0-9a-f]{16,64}$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


# one encoder for every body: json.dumps with options builds a new encoder on every call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(obj):
    """Compact JSON bytes (UTF-8); ValueError for NaN or infinity, which JSON does not have."""
    return _ENCODER.encode(obj).encode()


def _refuse_constant(name):
    # Python's json module would otherwise accept NaN, Infinity and -Infinity
    raise ValueError(f"{name} is not a JSON number (numbers must be finite)")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class GzippedBody(bytes):
    """A request body already encoded by ``encode_body`` (the uploader prepares the next batch's ahead)."""


def encode_body(obj, *, level=GZIP_LEVEL):
    """JSON then gzip: the bytes sent with ``Content-Encoding: gzip``; ``obj`` may be JSON bytes already.

    A ``GzippedBody`` is returned as it is.
    """
    if isinstance(obj, GzippedBody):
        return obj
    raw = obj if isinstance(obj, (bytes, bytearray)) else dumps(obj)
    return gzip.compress(raw, compresslevel=level, mtime=0)


def decode_body(raw, *, content_encoding=""):
    """Parse a request or response body (gzip or identity); raises ValueError if it is not JSON."""
    if not raw:
        return None
    text = body_text(raw, content_encoding=content_encoding)
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"body is not JSON: {e}") from None


def body_text(raw, *, content_encoding=""):
    """A body's JSON text: gunzipped (at most MAX_BODY_BYTES) and decoded as ``json.loads`` decodes bytes."""
    if content_encoding.strip().lower() == "gzip":
        try:
            raw = _gunzip_limited(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"body is not valid gzip: {e}") from None
    try:
        return raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError as e:
        raise ValueError(f"body is not JSON: {e}") from None


def finite_number(value, what):
    """``value`` as a finite float; ValueError naming ``what`` for text, booleans, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return number


def _gunzip_limited(raw):
    # a small gzip body must not expand into gigabytes (zip bomb)
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
        out = stream.read(MAX_BODY_BYTES + 1)
    if len(out) > MAX_BODY_BYTES:
        raise OSError(f"decompressed body larger than {MAX_BODY_BYTES} bytes")
    return out


def body_digest(raw):
    """sha256 hex of the body bytes exactly as sent (compressed); empty body hashes b''."""
    return hashlib.sha256(raw or b"").hexdigest()


def canonical_request(method, path, timestamp, nonce, digest):
    """The string a request signature covers."""
    return "\n".join((SIGNATURE_SCHEME, method.upper(), path, timestamp, nonce, digest)).encode()


def answer_message(*, nonce, device_id, method, path, status, server_time, body):
    """The bytes a server answer's signature covers (``body``: the JSON bytes, without Content-Encoding)."""
    return "\n".join((ANSWER_SCHEME, nonce, device_id, method.upper(), path, str(int(status)), server_time,
                      body_digest(body))).encode()


def sign_answer(private_key, **fields):
    """The ``X-Server-Signature`` value for one answer (fields as in ``answer_message``)."""
    return b64(private_key.sign(answer_message(**fields)))


def verify_answer(public_key, signature_text, **fields):
    """True if ``signature_text`` (base64) is the server key's signature over this answer."""
    if not signature_text:
        return False
    try:
        signature = unb64(signature_text)
    except ValueError:
        return False
    return verify(public_key, signature, answer_message(**fields))


def key_fingerprint(public_key_text):
    """sha256 hex of a raw 32-byte public key given as hex: what a technician compares or pins."""
    return hashlib.sha256(bytes.fromhex(public_key_text)).hexdigest()


def new_nonce():
    return os.urandom(16).hex()


def format_timestamp(seconds):
    return f"{seconds:.3f}"


def sign_request(private_key, device_id, method, path, body, *, now, nonce=None):
    """The signature headers for one request (``path`` includes the query string)."""
    timestamp = format_timestamp(now)
    nonce = nonce or new_nonce()
    signature = private_key.sign(canonical_request(method, path, timestamp, nonce, body_digest(body)))
    return {HEADER_DEVICE: device_id, HEADER_TIMESTAMP: timestamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: b64(signature)}


@dataclass(frozen=True)
class SignedRequest:
    """The signature fields of a request, parsed (not yet verified)."""

    device_id: str
    timestamp: float
    nonce: str
    signature: bytes


def parse_signature_headers(headers):
    """SignedRequest from request headers; ValueError naming what is missing or malformed."""
    missing = [h for h in (HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE) if not headers.get(h)]
    if missing:
        raise ValueError(f"missing headers: {', '.join(missing)}")
    try:
        timestamp = float(headers[HEADER_TIMESTAMP])
    except ValueError:
        raise ValueError(f"{HEADER_TIMESTAMP} is not a number") from None
    if not math.isfinite(timestamp):  # NaN compares false with everything: it would pass any freshness test
        raise ValueError(f"{HEADER_TIMESTAMP} is not a finite number")
    nonce = headers[HEADER_NONCE]
    if not NONCE_RE.match(nonce):
        raise ValueError(f"{HEADER_NONCE} must be 16-64 lowercase hex characters")
    try:
        signature = unb64(headers[HEADER_SIGNATURE])
    except ValueError:
        raise ValueError(f"{HEADER_SIGNATURE} is not base64") from None
    return SignedRequest(headers[HEADER_DEVICE], timestamp, nonce, signature)


def verify_request(public_key, headers, method, path, body):
    """True if the request's signature headers are valid for ``public_key`` (timestamp freshness aside)."""
    try:
        signed = parse_signature_headers(headers)
    except ValueError:
        return False
    message = canonical_request(method, path, headers[HEADER_TIMESTAMP], signed.nonce, body_digest(body))
    return verify(public_key, signed.signature, message)


def verify(public_key, signature, message):
    """Ed25519 verification that answers True/False."""
    if isinstance(public_key, str):
        public_key = public_key_from_hex(public_key)
    try:
        public_key.verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(str(e)) from None


def public_key_hex(key):
    """Raw 32-byte Ed25519 (or X25519) public key as hex; accepts a private or public key."""
    if hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def public_key_from_hex(text):
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise ValueError("public key is not hex") from None
    if len(raw) != 32:
        raise ValueError("public key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def registration_message(token, public_key_text):
    """What a registering device signs to prove it holds the private key it enrols."""
    return "\n".join((REGISTRATION_SCHEME, hashlib.sha256(token.encode()).hexdigest(), public_key_text)).encode()


def rotation_message(device_id, new_public_key_text):
    """What the new key signs when a device rotates its key."""
    return "\n".join((ROTATION_SCHEME, device_id, new_public_key_text)).encode()


def registration_body(token, private_key, *, info=None):
    """Body of POST /v1/devices/register."""
    key_text = public_key_hex(private_key)
    return {"token": token, "public_key": key_text,
            "proof": b64(private_key.sign(registration_message(token, key_text))), "info": info or {}}


def outbox_to_wire(record):
    """One outbox record as it travels in a batch."""
    data = record.payload
    return {"id": record.record_id, "kind": record.kind,
            "seq": data.get("seq") if record.kind == "event" else None, "data": data}


def chain_head(wire_records):
    """{seq, hash} of the last event in a batch, or None if it has no events."""
    for item in reversed(wire_records):
        if item["kind"] == "event":
            return {"seq": item["data"]["seq"], "hash": item["data"]["hash"]}
    return None


def batch_body(batch_id, device_id, wire_records, *, created_at, device_key=None):
    """Body of POST /v1/batches; with ``device_key``, the chain head goes as a signed checkpoint too."""
    head = chain_head(wire_records)
    body = {"batch_id": batch_id, "device_id": device_id, "created_at": created_at,
            "records": wire_records, "chain_head": head}
    if head is not None and device_key is not None:
        body["checkpoint"] = sign_checkpoint(device_key, device_id, head["seq"], head["hash"])
    return body


def checkpoint_message(device_id, seq, head_hash):
    """What the device key signs for a chain checkpoint: 'this device's chain has this hash at seq'."""
    return "\n".join((CHECKPOINT_SCHEME, device_id, str(int(seq)), head_hash)).encode()


def sign_checkpoint(private_key, device_id, seq, head_hash):
    """{seq, hash, signature}: a chain checkpoint signed with the device key."""
    return {"seq": int(seq), "hash": head_hash,
            "signature": b64(private_key.sign(checkpoint_message(device_id, seq, head_hash)))}


def verify_checkpoint(public_key, device_id, checkpoint):
    """True if ``checkpoint`` ({seq, hash, signature}) is well formed and signed by ``public_key``."""
    try:
        seq, head_hash = parse_head(checkpoint)
        signature = unb64(checkpoint["signature"])
    except (KeyError, TypeError, ValueError):
        return False
    return verify(public_key, signature, checkpoint_message(device_id, seq, head_hash))


def parse_head(value):
    """(seq, hash) of a {seq, hash} object from outside; ValueError unless seq >= 1 and hash is sha256 hex."""
    if not isinstance(value, dict):
        raise ValueError("a chain head is an object with seq and hash")
    seq, head_hash = value.get("seq"), value.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"chain head seq must be an integer >= 1, got {seq!r}")
    if not isinstance(head_hash, str) or not _HASH_RE.match(head_hash):
        raise ValueError("chain head hash must be 64 lowercase hex characters")
    return seq, head_hash


def batch_json(batch_id, device_id, records, *, created_at, device_key=None):
    """The JSON bytes of ``batch_body`` for outbox records, their stored payload text spliced in as it is.

    ``records`` carry ``record_id``, ``kind``, ``payload`` (parsed) and ``payload_text``: exactly one
    JSON object with finite numbers, as ``kiosk.storage.sync_state.pending_for_upload`` checked when
    it read it (so splicing it cannot change the shape of the batch around it). Parsing these
    bytes gives what ``batch_body`` builds; only the re-encoding of every record is saved.
    """
    parts = []
    head = None
    for record in records:
        seq = None
        if record.kind == EVENT_KIND:
            seq = record.payload.get("seq")
            head = record
        parts.append(f'{{"id":{_json_text(record.record_id)},"kind":{_json_text(record.kind)},'
                     f'"seq":{seq if type(seq) is int else _ENCODER.encode(seq)},"data":{record.payload_text}}}')
    if head is not None:
        head = {"seq": head.payload.get("seq"), "hash": head.payload.get("hash")}
    fields = {"batch_id": batch_id, "device_id": device_id, "created_at": created_at, "chain_head": head}
    if head is not None and device_key is not None:
        fields["checkpoint"] = sign_checkpoint(device_key, device_id, head["seq"], head["hash"])
    outer = _ENCODER.encode(fields)
    return (outer[:-1] + ',"records":[' + ",".join(parts) + "]}").encode()


def _json_text(value):
    # the C string encoder straight away for the usual case (text), the full encoder for anything else
    return encode_basestring(value) if type(value) is str else _ENCODER.encode(value)


def batch_digest(body, *, data_texts=None):
    """sha256 naming a batch's records: the same batch id must always carry the same records.

    An event is named by its id and hash (the hash covers its contents, and a record whose id and
    hash the server holds is answered as a duplicate); any other record by its id, kind and data.
    ``data_texts``: {index in records: ``dumps`` of its data} for the records that are not events,
    when the caller has made them already (the server stores them).
    """
    names, texts = [], []
    for index, record in enumerate(body.get("records", [])):
        if record.get("kind") == EVENT_KIND:
            names.append([record.get("id"), EVENT_KIND, record.get("data", {}).get("hash")])
        else:
            names.append([record.get("id"), record.get("kind"), None])
            texts.append(data_texts[index] if data_texts is not None else dumps(record.get("data")))
    # compact JSON has no raw newline: the joined parts split back into exactly these
    return hashlib.sha256(b"\n".join([dumps(names), *texts])).hexdigest()


def luhn_ok(digits):
    total = 0
    for index, ch in enumerate(reversed(digits)):
        n = int(ch)
        if index % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def normalise_national_id(text):
    """A national id / iqama number with Eastern Arabic digits folded to Western; ValueError if invalid."""
    digits = western_digits(text)
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError("a national id has exactly 10 digits")
    if digits[0] not in "12":
        raise ValueError("a national id starts with 1 (citizen) or 2 (resident)")
    if not luhn_ok(digits):
        raise ValueError("the national id's check digit is wrong")
    return digits


def mask_national_id(digits):
    """For logs: the id with all but the last two digits hidden."""
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def new_private_key():
    return Ed25519PrivateKey.generate()
