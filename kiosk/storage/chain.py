"""The attendance hash chain: each event's hash covers its fields and the previous hash.

Shared by the device (storage) and anyone verifying a chain (the server simulator).
"""

import hashlib
import json
from json.encoder import encode_basestring_ascii

GENESIS = "0" * 64
CHAINED_FIELDS = ("id", "seq", "person_id", "status", "verify_mode", "score", "wall_time",
                  "clock_synced", "prev_hash")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_SORTED_FIELDS = tuple(sorted(CHAINED_FIELDS))
_KEYS = tuple(f'"{name}":' for name in _SORTED_FIELDS)  # plain ASCII names: nothing to escape


def canonical_json(record):
    """The canonical JSON (sorted keys, no spaces, ASCII) of an event record's chained fields: what its hash covers.

    Built field by field for the value types an event has (text, whole and finite numbers,
    booleans, null), exactly as ``json.dumps(sort_keys=True, separators=(",", ":"))`` writes
    them: a device and a server verifying its chain both hash every event, and the general
    encoder costs about twice as much. Any other value takes the general encoder.
    """
    parts = []
    for key, name in zip(_KEYS, _SORTED_FIELDS):
        value = record[name]
        kind = type(value)
        if kind is str:
            text = encode_basestring_ascii(value)
        elif kind is int:
            text = int.__repr__(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        elif kind is float and value - value == 0:  # finite (NaN and infinities are not)
            text = float.__repr__(value)
        else:
            return _CANONICAL.encode({name: record[name] for name in CHAINED_FIELDS})
        parts.append(key + text)
    return "{" + ",".join(parts) + "}"


def event_hash(record):
    """sha256 hex over the canonical JSON of an event record's chained fields."""
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()


def verify_records(records, *, prev_hash=GENESIS):
    """Check a run of event records in sequence order; return (ok, index_of_first_bad, reason)."""
    for index, record in enumerate(records):
        if record["prev_hash"] != prev_hash:
            return False, index, "previous-hash link broken (a record before it was removed or altered)"
        if event_hash(record) != record["hash"]:
            return False, index, "hash does not match the record's contents (record altered)"
        prev_hash = record["hash"]
    return True, None, ""
