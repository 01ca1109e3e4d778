"""The sync fast paths of issue 13 keep every promise of the slow ones they replaced.

Stored payload text sent as it is (only text that is exactly one JSON object), acknowledgement by
ranges of outbox row ids (never a row the answer did not name), the event hash built field by
field, the server's number checks while parsing and its container-only depth walk, the batch
digest from ids and hashes, and one commit per batch for the nonce and the records.
"""

import gzip
import json
import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from kiosk_sim.server_input import decode_request_body, json_problem
from kiosk_sim.server_store import Refusal
from sync_helpers import make_device

from kiosk.errors import StorageError
from kiosk.storage import chain, outbox, sync_state
from kiosk.sync import protocol
from kiosk.sync.uploader import Uploader
from kiosk.sync.worker import status


def _pending(device):
    return [row[0] for row in device.database.execute(
        "SELECT record_id FROM outbox WHERE acked_at IS NULL ORDER BY id").fetchall()]


# --- the device ----------------------------------------------------------------------------------

def test_batch_json_parses_to_the_batch_body(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(5)
    outbox.enqueue(device.database, "activation", "act-1", {"name": "سارة", "note": 'quote " and \\ slash'},
                   now=device.clock.time())
    device.record(2, start=5)
    records = sync_state.pending_for_upload(device.database, limit=100)
    assert [r.kind for r in records].count("activation") == 1
    raw = protocol.batch_json("b-1", device.device_id, records, created_at=12.5, device_key=device.key)
    wire = [protocol.outbox_to_wire(r) for r in records]
    assert json.loads(raw) == protocol.batch_body("b-1", device.device_id, wire, created_at=12.5,
                                                  device_key=device.key)


@pytest.mark.parametrize("text", ['{"a":1}{"b":2}', '{"a":1},"records":[{"b":2}', '{"score":NaN}', '[1]',
                                  'not json', '{"a":1} trailing'])
def test_an_outbox_row_that_is_not_one_json_object_is_refused_before_anything_is_sent(server, tmp_path, text):
    device = make_device(tmp_path, server)
    device.record(3)
    device.database.execute("INSERT INTO outbox (record_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                            ["spliced", "activation", text, device.clock.time()])
    with pytest.raises(StorageError, match="spliced"):
        sync_state.pending_for_upload(device.database, limit=100)
    requests_before = server.requests
    device.worker.run_once()
    # the batch was never built: nothing reached the server, every record is still pending
    assert status(device.database)["state"] == "error" and status(device.database)["pending"] == 4
    assert server.record_count() == 0 and server.requests == requests_before


def test_acknowledge_rows_marks_exactly_the_rows_named(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(6)
    outbox.enqueue(device.database, outbox.DELETE_ON_ACK_KINDS[0], "sealed-1", {"sealed": "x"}, now=0.0)
    device.record(6, start=6)
    rows = sync_state.pending_for_upload(device.database, limit=100)
    # gaps between runs of consecutive row ids: a range over the whole batch would take them too
    chosen = [rows[i] for i in (0, 1, 2, 4, 5, 6, 9, 12)]
    assert rows[6].kind == outbox.DELETE_ON_ACK_KINDS[0]
    assert outbox.acknowledge_rows(device.database, chosen, now=1.0) == 8
    assert outbox.acknowledge_rows(device.database, chosen, now=2.0) == 0  # a second answer changes nothing
    expected_pending = [rows[i].record_id for i in (3, 7, 8, 10, 11)]
    assert _pending(device) == expected_pending
    assert device.database.execute("SELECT count(*) FROM outbox WHERE record_id = 'sealed-1'").fetchone()[0] == 0
    acked_at = {row[0] for row in device.database.execute("SELECT acked_at FROM outbox WHERE acked_at IS NOT NULL")}
    assert acked_at == {1.0}


def test_a_partial_and_garbled_answer_acknowledges_only_the_records_it_names(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(30)
    real_upload = device.client.upload_batch
    named = []

    def garbled(body):
        answer = real_upload(body)
        results = answer["results"]
        kept = [r for i, r in enumerate(results) if i % 4 != 1 and i not in (6, 10, 14)]
        named.extend(r["id"] for r in kept)
        # a trusted server answering oddly: entries missing, not objects, ids that are no text, others' ids
        answer["results"] = kept + ["junk", {"id": ["x"]}, {"id": 7, "status": "stored"}, None,
                                    {"id": "not-in-this-batch", "status": "stored"}]
        return answer

    device.client.upload_batch = garbled
    uploader = Uploader(device.database, device.client, clock=device.clock, batch_size=100)
    report = uploader.drain(max_batches=1)
    assert report.stored == len(named) == 19
    assert _pending(device) == [e.id for e in created if e.id not in set(named)]
    device.client.upload_batch = real_upload
    report = uploader.drain()
    assert report.duplicate == 11 and status(device.database)["pending"] == 0
    assert [e["id"] for e in server.events()] == [e.id for e in created]


# --- the server ----------------------------------------------------------------------------------

def test_a_refused_batch_replayed_is_refused_as_a_replay(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(4)
    wire = [{"id": e.id, "kind": "event", "seq": e.seq, "data": e.as_record()} for e in created[1:]]
    raw = protocol.encode_body(protocol.batch_body("gap", device.device_id, wire, created_at=0))
    headers = protocol.sign_request(device.key, device.device_id, "POST", "/v1/batches", raw, now=time.time())
    headers.update({"Content-Encoding": "gzip", "Content-Type": "application/json"})
    first = requests.post(server.url + "/v1/batches", data=raw, headers=headers, timeout=5)
    assert first.status_code == 422 and first.json()["error"] == protocol.BROKEN_CHAIN
    device.drain()  # the chain moves on: the same request would now continue it
    assert len(server.events()) == 4
    replay = requests.post(server.url + "/v1/batches", data=raw, headers=headers, timeout=5)
    assert replay.status_code == 409 and replay.json()["error"] == protocol.REPLAYED_NONCE


def test_the_batch_digest_names_ids_kinds_event_hashes_and_other_data():
    def body(*records):
        return {"records": [{"id": i, "kind": k, "seq": None, "data": d} for i, k, d in records]}

    event = {"seq": 1, "hash": "a" * 64, "person_id": "1"}
    base = body(("e1", "event", event), ("x1", "activation", {"blob": "1"}))
    digest = protocol.batch_digest(base)
    assert protocol.batch_digest(json.loads(json.dumps(base))) == digest
    for changed in (body(("e2", "event", event), ("x1", "activation", {"blob": "1"})),
                    body(("e1", "event", dict(event, hash="b" * 64)), ("x1", "activation", {"blob": "1"})),
                    body(("e1", "event", event), ("x1", "activation", {"blob": "2"})),
                    body(("e1", "event", event), ("x1", "person_deleted", {"blob": "1"})),
                    body(("e1", "event", event))):
        assert protocol.batch_digest(changed) != digest


scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
           | st.sampled_from(["\ud800", "\udfff", "\ud83d\ude00", "é", 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=3) | st.just("\udc00"), inner, max_size=3), max_leaves=12)


def _nested(depth, leaf):
    text = json.dumps(leaf)
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"k":{text}}}'
    return text


def _texts():
    plain = values.map(lambda value: json.dumps(value, ensure_ascii=True))
    raw = values.map(lambda value: json.dumps(value, ensure_ascii=False))  # lone surrogates travel as themselves
    deep = st.builds(_nested, st.integers(28, 36), st.sampled_from([1, [], {}, "x", [1]]))
    numbers = st.sampled_from(["1e308", "1e309", "-1e999", "1.5e-400", "9223372036854775807",
                               "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                               '"9223372036854775808"', "NaN", "[Infinity]"]).map(lambda n: '{"n":%s}' % n)
    return plain | raw | deep | numbers


@given(_texts(), st.sampled_from(["utf-8", "utf-16", "utf-32"]), st.booleans())
@settings(max_examples=400, deadline=None)
def test_the_servers_fast_body_check_refuses_exactly_what_the_full_walk_refuses(text, encoding, compress):
    raw = text.encode(encoding, "surrogatepass")
    raw = gzip.compress(raw) if compress else raw
    encoding_header = "gzip" if compress else ""
    try:
        reference = json_problem(protocol.decode_body(raw, content_encoding=encoding_header))
    except (ValueError, RecursionError):
        reference = "not JSON"
    try:
        decode_request_body(raw, content_encoding=encoding_header)
        fast = None
    except Refusal as e:
        assert e.http_status == 400
        fast = e.message
    assert (fast is None) == (reference is None), (text, fast, reference)


event_values = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
                | st.sampled_from([0.1 + 0.2, 1e-7, 1e22, 5e-324, -0.0, 0.8, 123456789.125, "é\u2028\x00"])
                | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(st.fixed_dictionaries({name: event_values for name in chain.CHAINED_FIELDS}))
@settings(max_examples=300, deadline=None)
def test_the_event_hash_covers_the_same_canonical_json_as_before(record):
    expected = json.dumps({name: record[name] for name in chain.CHAINED_FIELDS}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True)
    assert chain.canonical_json(record) == expected


texts = st.text(max_size=12) | st.sampled_from(["\ud800", "é\u2028\x00\"\\", "سارة"])
well_typed_events = st.fixed_dictionaries({
    "id": texts, "seq": st.integers(), "person_id": texts, "status": st.integers(), "verify_mode": texts,
    "score": st.none() | st.floats() | st.sampled_from([0.1 + 0.2, 1e-7, 1e22, 5e-324, -0.0]),
    "wall_time": texts, "clock_synced": st.booleans(), "prev_hash": texts})


@given(well_typed_events)
@settings(max_examples=300, deadline=None)
def test_the_event_hash_of_well_typed_events_covers_the_same_canonical_json_as_before(record):
    expected = json.dumps({name: record[name] for name in chain.CHAINED_FIELDS}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True)
    assert chain.canonical_json(record) == expected
