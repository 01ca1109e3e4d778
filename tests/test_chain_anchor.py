"""Tamper evidence against an edited SD card: the chain is anchored to heads the server confirmed.

The attack: open the database, change one event, recompute the hash of it and of every later
event (and of their outbox copies). The chain still links, so a local check alone passes; the
server-confirmed head stored beside it, and the server itself, do not agree.
"""

import json
import sqlite3
import subprocess
import sys

import pytest
from sync_helpers import make_device

from kiosk.errors import ChainError, RejectedError
from kiosk.storage import chain_anchor, db, events
from kiosk.storage.chain import event_hash
from kiosk.sync import keys, protocol

CONFIRMED = 12  # events uploaded and confirmed by the server
PENDING = 4  # events recorded after the last upload


@pytest.fixture
def device(tmp_path, server):
    device = make_device(tmp_path, server)
    device.record(CONFIRMED)
    device.worker.uploader.drain()
    device.record(PENDING, start=CONFIRMED)
    yield device
    device.database.close()


def rewrite_chain(path, seq):
    """The attack: alter event ``seq``, then recompute every later hash (events and outbox copies)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("BEGIN IMMEDIATE")
    rows = conn.execute("SELECT * FROM attendance_events WHERE seq >= ? ORDER BY seq", [seq - 1]).fetchall()
    prev_hash = rows[0]["hash"] if seq > 1 else "0" * 64
    for row in rows if seq == 1 else rows[1:]:
        record = events.row_to_record(row)
        if record["seq"] == seq:
            record["person_id"] = "someone-else"
        record["prev_hash"] = prev_hash
        record["hash"] = event_hash(record)
        conn.execute("UPDATE attendance_events SET person_id = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     [record["person_id"], record["prev_hash"], record["hash"], record["seq"]])
        conn.execute("UPDATE outbox SET payload = ? WHERE record_id = ?", [json.dumps(record), record["id"]])
        prev_hash = record["hash"]
    conn.execute("COMMIT")
    conn.close()


def snapshot(device, tmp_path, name):
    """A copy of the device's database to attack (the SD card taken out)."""
    copy = tmp_path / f"{name}.db"
    with sqlite3.connect(copy) as target:
        device.database.conn.backup(target)
    target.close()
    return copy


def test_upload_stores_the_server_confirmed_head_and_the_server_keeps_the_signed_checkpoint(device, server):
    head = chain_anchor.check(device.database)
    assert head["seq"] == CONFIRMED
    assert head["hash"] == chain_anchor.local_hash(device.database, CONFIRMED)
    checkpoints = server.store.checkpoints(device.device_id)
    assert checkpoints and checkpoints[-1]["seq"] == CONFIRMED and checkpoints[-1]["hash"] == head["hash"]
    # the checkpoint verifies with the device's public key alone (anyone can check it later)
    assert protocol.verify_checkpoint(protocol.public_key_hex(device.key), device.device_id, checkpoints[-1])


@pytest.mark.parametrize("seq", range(1, CONFIRMED + PENDING + 1))
def test_recomputed_chain_is_detected_up_to_the_confirmed_head(device, tmp_path, seq):
    path = snapshot(device, tmp_path, f"attacked-{seq}")
    rewrite_chain(path, seq)
    attacked = db.open_db(path)
    try:
        assert events.verify_chain(attacked) == CONFIRMED + PENDING  # the chain alone is fooled
        if seq <= CONFIRMED:
            with pytest.raises(ChainError, match=f"seq {CONFIRMED}: local hash"):
                chain_anchor.check(attacked)
        else:
            # what the anchor cannot show: events after the last confirmed head (docs/reliability.md 8)
            assert chain_anchor.check(attacked)["seq"] == CONFIRMED
    finally:
        attacked.close()


def test_verify_chain_command_reports_both_checks_and_fails_on_a_rewritten_chain(device, tmp_path):
    kiosk = [sys.executable, "-m", "kiosk.cli", "db", "--db"]
    clean = subprocess.run(kiosk + [str(snapshot(device, tmp_path, "clean")), "verify-chain"],
                           capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"chain ok: {CONFIRMED + PENDING} events" in clean.stdout
    assert f"server-confirmed head: seq {CONFIRMED}" in clean.stdout and "matches the local chain" in clean.stdout
    assert f"{PENDING} later event(s) not yet confirmed" in clean.stdout

    attacked = snapshot(device, tmp_path, "attacked")
    rewrite_chain(attacked, 5)
    bad = subprocess.run(kiosk + [str(attacked), "verify-chain"], capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"chain ok: {CONFIRMED + PENDING} events" in bad.stdout  # the local check alone passes ...
    assert f"seq {CONFIRMED}" in bad.stdout and "DISAGREES" in bad.stdout  # ... the anchor does not


def test_a_device_with_a_rewritten_chain_is_refused_at_its_next_upload(device, server, tmp_path):
    # also edit the stored confirmed head, so the device itself notices nothing
    device.database.close()
    rewrite_chain(device.path, 3)
    attacked = db.open_db(device.path)
    with db.transaction(attacked):
        db.set_meta(attacked, chain_anchor.CONFIRMED_HEAD,
                    {"seq": CONFIRMED, "hash": chain_anchor.local_hash(attacked, CONFIRMED), "confirmed_at": 0.0})
    assert chain_anchor.check(attacked)["seq"] == CONFIRMED
    device.worker.uploader._db = attacked
    with pytest.raises(RejectedError, match=protocol.BROKEN_CHAIN):
        device.worker.uploader.drain()
    assert server.store.confirmed_head(device.device_id)["seq"] == CONFIRMED
    attacked.close()
    device.database = db.open_db(device.path)


def _checkpoint_batch(device, seq, head_hash, key=None):
    body = protocol.batch_body("b-" + head_hash[:8], device.device_id, [], created_at=device.clock.time())
    body["checkpoint"] = protocol.sign_checkpoint(key or device.key, device.device_id, seq, head_hash)
    return body


def test_server_refuses_a_checkpoint_that_contradicts_a_confirmed_head(device, server):
    confirmed = server.store.confirmed_head(device.device_id)
    with pytest.raises(RejectedError, match=protocol.CHECKPOINT_CONFLICT):
        device.client.upload_batch(_checkpoint_batch(device, CONFIRMED, "ab" * 32))
    with pytest.raises(RejectedError, match=protocol.CHECKPOINT_CONFLICT):
        device.client.upload_batch(_checkpoint_batch(device, 7, "cd" * 32))  # an earlier seq it holds
    with pytest.raises(RejectedError, match=protocol.BAD_SIGNATURE):
        device.client.upload_batch(_checkpoint_batch(device, CONFIRMED, confirmed["hash"],
                                                     key=keys.Ed25519PrivateKey.generate()))
    with pytest.raises(RejectedError, match=protocol.BROKEN_CHAIN):
        device.client.upload_batch(_checkpoint_batch(device, CONFIRMED + 1, "ef" * 32))  # not held yet
    # the checkpoint of what the server does hold is accepted again, and the head is unchanged
    answer = device.client.upload_batch(_checkpoint_batch(device, CONFIRMED, confirmed["hash"]))
    assert answer["confirmed_head"] == confirmed
    assert server.store.confirmed_head(device.device_id) == confirmed


def test_a_confirmed_head_from_the_server_is_checked_and_never_moves_back(device, caplog):
    database = device.database
    first = chain_anchor.confirmed_head(database)
    with db.transaction(database):
        chain_anchor.record_confirmed_head(database, 3, chain_anchor.local_hash(database, 3), now=1.0)
    assert chain_anchor.confirmed_head(database) == first  # a lower head does not replace a higher one
    for bad in ({"seq": "12", "hash": first["hash"]}, {"seq": 0, "hash": first["hash"]},
                {"seq": 12, "hash": "xyz"}, [12, first["hash"]], {"seq": True, "hash": first["hash"]}):
        with pytest.raises(ValueError):
            protocol.parse_head(bad)
    assert device.worker.uploader._confirmed_head({"confirmed_head": {"seq": 1e9, "hash": "00"}}) is None
