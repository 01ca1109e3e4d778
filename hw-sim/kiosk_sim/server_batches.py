"""The server simulator's checks of one uploaded batch: its shape, each event against the hash chain.

Used by ``ServerStore.store_batch`` (kiosk_sim/server_store.py), which keeps the state they are
checked against.
"""

import hashlib
import re

from kiosk_sim.server_refusal import Refusal

from kiosk.storage.chain import canonical_json
from kiosk.sync import protocol

EVENT_FIELDS = ("id", "seq", "person_id", "status", "verify_mode", "score", "wall_time", "clock_synced",
                "prev_hash", "hash")
_EVENT_FIELD_SET = frozenset(EVENT_FIELDS)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def record_result(record_id, status, reason=None):
    out = {"id": record_id, "status": status}
    if reason:
        out["reason"] = reason
    return out


def check_batch(device_id, body):
    if not isinstance(body, dict):
        raise Refusal(400, protocol.MALFORMED, "a batch is a JSON object")
    batch_id, records = body.get("batch_id"), body.get("records")
    if not isinstance(batch_id, str) or not batch_id or not isinstance(records, list):
        raise Refusal(400, protocol.MALFORMED, "a batch needs batch_id (string) and records (list)")
    if body.get("device_id") not in (None, device_id):
        raise Refusal(400, protocol.MALFORMED, "the batch names another device than the one that signed it")
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or \
                not isinstance(record.get("data"), dict) or not _kind_ok(record.get("kind", "")):
            raise Refusal(400, protocol.MALFORMED, "each record needs id (string), kind and data (object)")
    if len({record["id"] for record in records}) != len(records):
        ids = set()
        for record in records:
            if record["id"] in ids:
                raise Refusal(400, protocol.MALFORMED, f"record {record['id']} appears twice in the batch")
            ids.add(record["id"])
    return batch_id, records


def _kind_ok(kind):
    # the kinds the protocol names match KIND_RE: only others need the pattern
    return kind in protocol.RECORD_KINDS or KIND_RE.match(str(kind)) is not None


def event_problem(record_id, data):
    """(why the event breaks the chain, None) or (None, the canonical JSON its hash was checked over)."""
    if not data.keys() >= _EVENT_FIELD_SET:
        missing = [name for name in EVENT_FIELDS if name not in data]
        return f"record {record_id}: event lacks {', '.join(missing)}", None
    if data["id"] != record_id:
        return f"record {record_id}: its data names id {data['id']}", None
    if not isinstance(data["seq"], int):
        return f"record {record_id}: seq is not an integer", None
    try:
        canonical = canonical_json(data)
    except (TypeError, ValueError):
        return f"record {record_id}: fields cannot be hashed", None
    if hashlib.sha256(canonical.encode()).hexdigest() != data["hash"]:
        return f"record {record_id} (seq {data['seq']}): hash does not match its contents (record altered)", None
    return None, canonical


def event_text(data, canonical):
    """The JSON stored for a checked event: its canonical JSON plus the hash, unless it carries other fields.

    Saves encoding every event twice; ``data["hash"]`` has matched a sha256 hex digest, so it
    needs no escaping.
    """
    if len(data) == len(EVENT_FIELDS):  # every field is there (checked): so no other
        return f'{canonical[:-1]},"hash":"{data["hash"]}"}}'
    return protocol.dumps(data).decode()


def event_content_problem(data):
    if data["status"] not in range(6):
        return f"status {data['status']!r} is not an attendance status code (0-5)"
    if data["verify_mode"] not in ("face", "fingerprint", "pin", "card", "voice", "face+voice", "fingerprint+voice"):
        return f"verify mode {data['verify_mode']!r} is unknown"
    return None
