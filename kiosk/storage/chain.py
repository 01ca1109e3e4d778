"""The attendance hash chain: each event's hash covers its fields and the previous hash.

Shared by the device (storage) and anyone verifying a chain (the server simulator).
"""

import hashlib
import json
from json.encoder import encode_basestring_ascii as _ascii

GENESIS = "0" * 64
CHAINED_FIELDS = ("id", "seq", "person_id", "status", "verify_mode", "score", "wall_time",
                  "clock_synced", "prev_hash")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_json(record):
    """The canonical JSON (sorted keys, no spaces, ASCII) of an event record's chained fields: what its hash covers.

    Written directly for the value types an event has (text, whole numbers, a finite score or
    null, a boolean), exactly as ``json.dumps(sort_keys=True, separators=(",", ":"))`` writes
    them: a device and a server checking its chain hash every event, and the general encoder
    costs about twice as much. Any other value takes the general encoder.
    """
    synced, event_id, person_id, prev_hash, score, seq, status, mode, wall_time = (
        record["clock_synced"], record["id"], record["person_id"], record["prev_hash"], record["score"],
        record["seq"], record["status"], record["verify_mode"], record["wall_time"])
    if type(synced) is bool and type(event_id) is str and type(person_id) is str and type(prev_hash) is str \
            and type(seq) is int and type(status) is int and type(mode) is str and type(wall_time) is str \
            and (score is None or (type(score) is float and score - score == 0)):  # finite: not NaN or infinite
        return (f'{{"clock_synced":{"true" if synced else "false"},"id":{_ascii(event_id)},'
                f'"person_id":{_ascii(person_id)},"prev_hash":{_ascii(prev_hash)},'
                f'"score":{"null" if score is None else float.__repr__(score)},"seq":{int.__repr__(seq)},'
                f'"status":{int.__repr__(status)},"verify_mode":{_ascii(mode)},"wall_time":{_ascii(wall_time)}}}')
    return _CANONICAL.encode({name: record[name] for name in CHAINED_FIELDS})


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
