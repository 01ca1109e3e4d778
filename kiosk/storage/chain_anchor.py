"""The chain head the central server has confirmed, kept beside the chain to check it against.

A hash chain alone shows only that the records agree with each other: whoever can write the
database can change one event and recompute every later hash. Each upload carries a checkpoint
(seq and hash of the batch's last event) signed with the device key; the server keeps the chain
it has received, refuses any checkpoint that contradicts it, and answers with the head it holds.
That confirmed head is stored here. Because each hash covers the previous one, a confirmed
(seq, hash) pins every event up to seq: ``check`` fails if the local chain has another hash there.
The stored head is on the same card as the chain, so it is only as good as the card; the
server's copy is the reference (docs/reliability.md, section 8).
"""

import logging

from kiosk.errors import ChainError
from kiosk.storage.db import get_meta, set_meta

log = logging.getLogger(__name__)

CONFIRMED_HEAD = "chain.confirmed_head"


def confirmed_head(database):
    """{seq, hash, confirmed_at} of the last head the server confirmed, or None."""
    return get_meta(database, CONFIRMED_HEAD)


def local_hash(database, seq):
    """The hash of the local event ``seq``, or None if there is no such event."""
    row = database.execute("SELECT hash FROM attendance_events WHERE seq = ?", [seq]).fetchone()
    return row[0] if row else None


def record_confirmed_head(database, seq, head_hash, *, now):
    """Store a head the server confirmed (part of the caller's transaction); never moves backwards."""
    current = confirmed_head(database)
    if current and current["seq"] > seq:
        log.warning("server confirmed chain head seq %d, below the seq %d it confirmed before: kept %d",
                    seq, current["seq"], current["seq"])
        return current
    mine = local_hash(database, seq)
    if mine != head_hash:
        log.error("the server's chain head for seq %d (%s...) disagrees with this device's (%s): "
                  "the local chain was altered, or the server holds another device's chain",
                  seq, head_hash[:12], f"{mine[:12]}..." if mine else "no such event")
    head = {"seq": int(seq), "hash": head_hash, "confirmed_at": float(now)}
    set_meta(database, CONFIRMED_HEAD, head)
    return head


def check(database):
    """The confirmed head if the local chain agrees with it (None if there is none); else ChainError."""
    head = confirmed_head(database)
    if head is None:
        return None
    mine = local_hash(database, head["seq"])
    if mine is None:
        raise ChainError(f"the server confirmed the chain up to seq {head['seq']}, but this database has no "
                         "event with that seq (events were removed)")
    if mine != head["hash"]:
        raise ChainError(f"seq {head['seq']}: local hash {mine[:12]}... differs from the server-confirmed "
                         f"{head['hash'][:12]}...: an event at or before seq {head['seq']} was altered and the "
                         "hashes after it recomputed")
    return head
