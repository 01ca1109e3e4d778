"""The uploader prepares batch N+1 while N is in flight and sends it once N's answer is verified (one request in flight).

Attacks and failures first: a batch that fails (no answer, a temporary error, an answer lost
after the server stored it) stops the drain before the prepared next batch is sent, so no answer
is ever read out of order; records an answer leaves out are sent again before anything after them.
A kill while N+1 is in flight and N's acknowledgements are not committed: tests/test_sync_crash.py.
"""

import sqlite3

import pytest
from kiosk_sim.server import ServerSimulator
from sync_helpers import make_device

from kiosk.storage import sync_state
from kiosk.sync import protocol
from kiosk.sync.client import ServerUnavailableError
from kiosk.sync.uploader import Uploader


def _acked(device):
    return [row[0] for row in device.database.execute(
        "SELECT record_id FROM outbox WHERE acked_at IS NOT NULL ORDER BY id")]


def _sent_ids(body):
    return [record["id"] for record in protocol.decode_body(bytes(body), content_encoding="gzip")["records"]]


def _watch_requests(device):
    """Record the record ids of every batch the client sends (the real client still sends it)."""
    sent = []
    real_upload = device.client.upload_batch

    def upload(body):
        sent.append(_sent_ids(body))
        return real_upload(body)

    device.client.upload_batch = upload
    return sent


@pytest.mark.parametrize("fault", ["unavailable", "lost_ack", "reset"])
def test_a_failed_batch_stops_the_drain_before_the_prepared_next_one_is_sent(server, tmp_path, fault):
    device = make_device(tmp_path, server)
    created = [event.id for event in device.record(50)]
    sent = _watch_requests(device)
    server.set_fault(fault, times=1, skip=1)  # batch 2 fails; batch 3 is prepared while it is in flight
    uploader = Uploader(device.database, device.client, clock=device.clock, batch_size=10, max_batch_size=10)
    with pytest.raises(ServerUnavailableError):
        uploader.drain()
    assert sent == [created[:10], created[10:20]], "a batch was sent after one that failed"
    assert _acked(device) == created[:10]
    held = [event["id"] for event in server.events()]
    assert held == (created[:20] if fault in ("lost_ack", "reset") else created[:10])

    report = Uploader(device.database, device.client, clock=device.clock, batch_size=10, max_batch_size=10).drain()
    assert report.drained and sync_state.pending_stats(device.database)["pending"] == 0
    assert [event["id"] for event in server.events()] == created  # each once, in chain order
    assert report.duplicate == (10 if fault in ("lost_ack", "reset") else 0)


def test_one_request_is_in_flight_at_a_time_and_each_waits_for_the_answer_before_it(server, tmp_path):
    device = make_device(tmp_path, server)
    created = [event.id for event in device.record(95)]
    real_upload = device.client.upload_batch
    in_flight, overlaps, order = [], [], []

    def upload(body):
        ids = _sent_ids(body)
        if in_flight:
            overlaps.append(ids[0])
        in_flight.append(ids[0])
        order.extend(ids)
        try:
            return real_upload(body)
        finally:
            in_flight.remove(ids[0])

    device.client.upload_batch = upload
    report = Uploader(device.database, device.client, clock=device.clock, batch_size=10, max_batch_size=40).drain()
    assert overlaps == [], "a batch was sent before the answer to the one before it"
    assert order == created, "batches left out of outbox order"
    assert report.batches >= 4 and report.stored == 95 and report.drained
    assert [event["id"] for event in server.events()] == created


def test_records_an_answer_left_out_are_sent_again_before_the_records_after_them(server, tmp_path):
    # the server's chain continues from the last record it stored: if it did not store the ones its
    # answer left out, a batch of the records after them would be refused as a broken chain
    device = make_device(tmp_path, server)
    created = [event.id for event in device.record(30)]
    sent = _watch_requests(device)
    watched_upload = device.client.upload_batch
    left_out = created[3:5]

    def answer_leaving_out_two(body):
        answer = watched_upload(body)
        if len(sent) == 1:
            answer["results"] = [r for r in answer["results"] if r["id"] not in left_out]
        return answer

    device.client.upload_batch = answer_leaving_out_two
    report = Uploader(device.database, device.client, clock=device.clock, batch_size=10, max_batch_size=10).drain()
    assert sent[0] == created[:10]
    assert sent[1][:2] == left_out, "the batch prepared after the cursor went before the records left out"
    assert report.drained and sync_state.pending_stats(device.database)["pending"] == 0
    assert [event["id"] for event in server.events()] == created


def test_max_batches_is_kept_and_nothing_more_is_sent(server, tmp_path):
    device = make_device(tmp_path, server)
    created = [event.id for event in device.record(50)]
    sent = _watch_requests(device)
    report = Uploader(device.database, device.client, clock=device.clock, batch_size=10,
                      max_batch_size=10).drain(max_batches=2)
    assert report.batches == 2 and not report.drained
    assert sent == [created[:10], created[10:20]] and _acked(device) == created[:20]


def test_a_drain_keeps_one_tls_connection_for_all_its_batches(tmp_path):
    # a TLS handshake per batch would cost a Pi more than the batch's signatures
    with ServerSimulator(db_path=tmp_path / "server.db", tls=True) as tls_server:
        device = make_device(tmp_path, tls_server)
        device.record(60)
        before = tls_server.stats()["connections"]
        report = Uploader(device.database, device.client, clock=device.clock, batch_size=10,
                          max_batch_size=10).drain()
        assert report.batches == 6 and report.drained
        assert tls_server.stats()["connections"] - before == 1
