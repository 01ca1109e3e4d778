"""The device against the server simulator: registration, TLS, upload, rejections, clock, activation codes."""

import json
import logging
import time

import pytest
import requests
from kiosk_sim.server import ServerSimulator
from sync_helpers import make_device

from kiosk.errors import ProvisioningError, RejectedError
from kiosk.storage import sync_state
from kiosk.sync import keys, protocol, registration
from kiosk.sync.client import ServerUnavailableError, SyncClient
from kiosk.sync.worker import status


def test_health_schema_and_server_time(server):
    answer = requests.get(server.url + "/v1/health", timeout=5)
    assert answer.json()["status"] == "ok"
    assert abs(float(answer.headers[protocol.HEADER_SERVER_TIME]) - time.time()) < 5
    schema = requests.get(server.url + "/openapi.json", timeout=5).json()
    assert "/v1/batches" in schema["paths"]


def test_registration_is_one_time_but_idempotent_for_the_same_key(server, tmp_path):
    token = server.issue_enrolment_token()
    key = keys.load_or_create_device_key(tmp_path / "a.key")
    first = registration.register(server_url=server.url, token=token, device_key=key)
    assert first.device_id and len(bytes.fromhex(first.server_public_key)) == 32
    assert first.settings["sync"]["batch_size"] == 500
    assert abs(first.server_time - time.time()) < 5
    again = registration.register(server_url=server.url, token=token, device_key=key)
    assert again.device_id == first.device_id
    other = keys.load_or_create_device_key(tmp_path / "b.key")
    with pytest.raises(ProvisioningError, match="token_used"):
        registration.register(server_url=server.url, token=token, device_key=other)
    with pytest.raises(ProvisioningError, match="token_unknown"):
        registration.register(server_url=server.url, token="made-up", device_key=other)
    expired = server.issue_enrolment_token(ttl_s=-1)
    with pytest.raises(ProvisioningError, match="token_expired"):
        registration.register(server_url=server.url, token=expired, device_key=other)


def test_registration_failure_never_logs_the_token(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    key = keys.load_or_create_device_key(tmp_path / "a.key")
    secret = "very-secret-token-value"
    with pytest.raises(ProvisioningError) as info:
        registration.register(server_url=server.url, token=secret, device_key=key)
    assert secret not in caplog.text and secret not in str(info.value)


def test_tls_with_pinned_ca_works_and_another_ca_is_refused(tmp_path):
    with ServerSimulator(db_path=tmp_path / "server.db", tls=True) as server:
        device = make_device(tmp_path, server)
        assert server.url.startswith("https://")
        device.record(20)
        device.drain()
        assert len(server.events()) == 20
        with ServerSimulator(workdir=tmp_path / "other", tls=True) as other:
            client = SyncClient(server_url=server.url, server_key=device.server_key, ca_file=other.ca_file,
                                clock=device.clock)
            with pytest.raises(ServerUnavailableError, match="TLS"):
                client.health()


def test_upload_is_answered_per_record_and_resending_is_duplicate(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(30)
    device.drain()
    stored = server.events()
    assert [e["id"] for e in stored] == [e.id for e in created]
    assert stored[-1]["hash"] == created[-1].hash
    # the same records again (as after a lost answer): duplicates, nothing stored twice
    wire = [{"id": e.id, "kind": "event", "seq": e.seq, "data": e.as_record()} for e in created[:10]]
    answer = device.client.upload_batch(protocol.batch_body("again-1", device.device_id, wire, created_at=0))
    assert {r["status"] for r in answer["results"]} == {"duplicate"}
    assert len(server.events()) == 30


def _status_after_cycle(device):
    device.worker.run_once()
    return status(device.database)


def test_batch_signed_with_the_wrong_key_is_rejected_and_nothing_is_lost(server, tmp_path, caplog):
    device = make_device(tmp_path, server)
    device.record(12)
    device.client.device_key = protocol.new_private_key()
    caplog.set_level(logging.ERROR)
    current = _status_after_cycle(device)
    assert current["state"] == "rejected"
    assert current["last_rejection"]["reason"] == protocol.BAD_SIGNATURE
    assert current["pending"] == 12
    assert "REJECTED" in caplog.text and protocol.BAD_SIGNATURE in caplog.text
    assert server.events() == []
    device.client.device_key = device.key
    device.clock.advance(60)
    device.drain()
    assert len(server.events()) == 12 and status(device.database)["pending"] == 0


def test_unregistered_device_is_rejected(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(5)
    device.client.device_id = "kiosk-never-registered"
    current = _status_after_cycle(device)
    assert current["state"] == "rejected"
    assert current["last_rejection"]["reason"] == protocol.UNKNOWN_DEVICE
    assert current["pending"] == 5 and server.events() == []


def test_revoked_device_is_rejected(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(3)
    server.revoke_device(device.device_id)
    assert _status_after_cycle(device)["last_rejection"]["reason"] == "device_revoked"


def test_replayed_request_is_rejected(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(4)
    wire = [{"id": e.id, "kind": "event", "seq": e.seq, "data": e.as_record()} for e in created]
    raw = protocol.encode_body(protocol.batch_body("b-1", device.device_id, wire, created_at=0))
    headers = protocol.sign_request(device.key, device.device_id, "POST", "/v1/batches", raw, now=time.time())
    headers.update({"Content-Encoding": "gzip", "Content-Type": "application/json"})
    first = requests.post(server.url + "/v1/batches", data=raw, headers=headers, timeout=5)
    assert first.status_code == 200
    replay = requests.post(server.url + "/v1/batches", data=raw, headers=headers, timeout=5)
    assert replay.status_code == 409 and replay.json()["error"] == protocol.REPLAYED_NONCE
    stale = protocol.sign_request(device.key, device.device_id, "POST", "/v1/batches", raw, now=time.time() - 3600)
    stale.update({"Content-Encoding": "gzip"})
    late = requests.post(server.url + "/v1/batches", data=raw, headers=stale, timeout=5)
    assert late.status_code == 401 and late.json()["error"] == protocol.STALE_TIMESTAMP
    assert len(server.events()) == 4


def test_device_that_replays_a_nonce_reports_it_and_keeps_records(server, tmp_path):
    device = make_device(tmp_path, server)
    device.client._nonce = lambda: "ab" * 16  # a broken random source: every request reuses one nonce
    device.record(3)
    current = _status_after_cycle(device)
    # the first request (the batch) got through; the next one (delta download) was refused as a replay
    assert current["state"] == "rejected" and current["last_rejection"]["reason"] == protocol.REPLAYED_NONCE
    assert "replayed" in current["last_rejection"]["message"]


def test_batch_id_reused_with_other_records_is_rejected(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(4)
    wire = [{"id": e.id, "kind": "event", "seq": e.seq, "data": e.as_record()} for e in created]
    device.client.upload_batch(protocol.batch_body("fixed", device.device_id, wire[:2], created_at=0))
    with pytest.raises(RejectedError) as info:
        device.client.upload_batch(protocol.batch_body("fixed", device.device_id, wire, created_at=0))
    assert info.value.reason == protocol.BATCH_ID_REUSED
    # the same batch id with the same records is a harmless resend
    again = device.client.upload_batch(protocol.batch_body("fixed", device.device_id, wire[:2], created_at=0))
    assert {r["status"] for r in again["results"]} == {"duplicate"}


def test_altered_record_breaks_the_chain_and_is_reported(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(10)
    row = device.database.execute("SELECT payload FROM outbox WHERE record_id = ?", [created[4].id]).fetchone()
    payload = json.loads(row[0])
    payload["person_id"] = "someone-else"
    device.database.execute("UPDATE outbox SET payload = ? WHERE record_id = ?", [json.dumps(payload), created[4].id])
    current = _status_after_cycle(device)
    assert current["last_rejection"]["reason"] == protocol.BROKEN_CHAIN
    assert created[4].id in current["last_rejection"]["message"]
    assert current["pending"] == 10 and server.events() == []


def test_removed_record_breaks_the_chain(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(6)
    device.drain()
    more = device.record(6)
    device.database.execute("DELETE FROM outbox WHERE record_id = ?", [more[0].id])
    current = _status_after_cycle(device)
    assert current["last_rejection"]["reason"] == protocol.BROKEN_CHAIN
    assert "removed or altered" in current["last_rejection"]["message"]
    assert current["pending"] == 5
    assert len(server.events()) == len(created)


def test_record_refused_on_its_merits_is_kept_and_not_resent(server, tmp_path):
    device = make_device(tmp_path, server)
    created = device.record(3)
    # a record whose content the server refuses (status code 9), still correctly chained
    bad = dict(created[-1].as_record(), id="bad-record", seq=4, prev_hash=created[-1].hash, status=9)
    from kiosk.storage.chain import event_hash

    bad["hash"] = event_hash(bad)
    from kiosk.storage import outbox

    outbox.enqueue(device.database, "event", "bad-record", bad, now=device.clock.time())
    device.drain()
    current = status(device.database)
    assert current["pending"] == 1 and current["rejected"] == 1
    assert current["rejected_records"][0]["record_id"] == "bad-record"
    assert "status" in current["rejected_records"][0]["reason"]
    assert len(server.events()) == 3
    assert device.database.execute("SELECT count(*) FROM outbox WHERE record_id='bad-record'").fetchone()[0] == 1
    assert sync_state.retry_rejected(device.database) == 1


def test_clock_skew_is_corrected_and_flagged(server, tmp_path):
    device = make_device(tmp_path, server)
    device.clock.set_wall(time.time() - 7200)  # a Pi that booted without network: two hours behind
    device.record(5)
    device.worker.run_once()
    current = status(device.database)
    assert current["state"] == "ok" and len(server.events()) == 5
    assert current["clock_offset_s"] == pytest.approx(7200, abs=30)
    assert current["clock_suspect"] is True
    server.set_fault("skew", skew_s=900.0)
    device.record(5, start=5)
    device.clock.advance(1)
    device.worker.run_once()
    assert status(device.database)["clock_offset_s"] == pytest.approx(8100, abs=30)
    assert len(server.events()) == 10


def test_activation_codes_go_to_the_sms_log_only(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    device = make_device(tmp_path, server)
    answer = device.client.request_activation_code("١٠٠٠٠٠٠٠٠٨", request_id="r-1")
    assert answer["attempts_left"] == 3 and answer["phone_hint"].startswith("+9665")
    code = server.last_code()
    assert code and len(code) == 6 and code.isdigit()
    assert code not in caplog.text and "1000000008" not in caplog.text
    assert "1000000008" not in "\n".join(server.sms_messages())  # the id is masked even there
    # the same request id again does not send a second SMS
    assert device.client.request_activation_code("1000000008", request_id="r-1")["activation_id"] == \
        answer["activation_id"]
    assert len(server.sms_messages()) == 1
    wrong = "000000" if code != "000000" else "111111"
    assert device.client.verify_activation_code(answer["activation_id"], wrong) == \
        {"verified": False, "attempts_left": 2, "server_time": pytest.approx(time.time(), abs=30)}
    ok = device.client.verify_activation_code(answer["activation_id"], code)
    assert ok["verified"] is True and ok["activation_token"]
    with pytest.raises(RejectedError, match="code_used"):
        device.client.verify_activation_code(answer["activation_id"], code)
    with pytest.raises(ValueError):
        device.client.request_activation_code("1000000000")


def test_activation_attempts_are_limited(server, tmp_path):
    device = make_device(tmp_path, server)
    answer = device.client.request_activation_code("2000000006")
    code = server.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        assert device.client.verify_activation_code(answer["activation_id"], wrong)["verified"] is False
    with pytest.raises(RejectedError, match="too_many_attempts"):
        device.client.verify_activation_code(answer["activation_id"], code)


def test_server_simulator_cli_registers_and_prints_help():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "kiosk_sim.cli", "server", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--fault" in result.stdout


def test_server_simulator_cli_serves(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kiosk_sim.cli", "server", "--port", str(port),
                             "--db", str(tmp_path / "s.db")], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first
        assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["openapi"].startswith("3")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
