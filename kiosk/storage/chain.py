"""The attendance hash chain: each event's hash covers its fields and the previous hash.

Shared by the device (storage) and anyone verifying a chain (the server simulator).
"""

import hashlib
import json

GENESIS = "0" * 64
CHAINED_FIELDS = ("id", "seq", "person_id", "status", "verify_mode", "score", "wall_time",
                  "clock_synced", "prev_hash")


# one encoder for every hash: json.dumps with options builds a new encoder on every call
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def event_hash(record):
    """sha256 hex over the canonical JSON of an event record's chained fields."""
    body = {name: record[name] for name in CHAINED_FIELDS}
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


def verify_records(records, *, prev_hash=GENESIS):
    """Check a run of event records in sequence order; return (ok, index_of_first_bad, reason)."""
    for index, record in enumerate(records):
        if record["prev_hash"] != prev_hash:
            return False, index, "previous-hash link broken (a record before it was removed or altered)"
        if event_hash(record) != record["hash"]:
            return False, index, "hash does not match the record's contents (record altered)"
        prev_hash = record["hash"]
    return True, None, ""
