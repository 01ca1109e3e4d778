"""Only the real server is obeyed: answers signed by the pinned key, bound to their request; http only on loopback.

The attacks are real servers on 127.0.0.1: an impostor running the server simulator with the
real server's public data but another signing key, a plain HTTP server answering unsigned JSON,
and a server replaying an answer the real server signed for another request.
"""

import gzip
import json
import logging
import sqlite3
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import numpy as np
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kiosk_sim.server import ServerSimulator
from sync_helpers import make_device

from kiosk import config, provision_file
from kiosk.errors import ConfigError, ProvisioningError, SyncError, UntrustedAnswerError
from kiosk.storage import outbox, people, seal
from kiosk.sync import protocol, registration
from kiosk.sync.client import SyncClient
from kiosk.sync.worker import SyncHooks, SyncWorker, status


class Door:
    """Stands in for the app's door hook: records each opening."""

    def __init__(self):
        self.openings = []

    def hooks(self):
        return SyncHooks(commands={"open_door": lambda args: self.openings.append(args) or {}})


def rewired(device, url, *, hooks, data_key=None):
    """The same device (database, keys, pinned server key), talking to ``url`` instead."""
    client = SyncClient(server_url=url, server_key=device.server_key, device_id=device.device_id,
                        device_key=device.key, clock=device.clock, timeout_s=5.0)
    return SyncWorker(device.database, client, settings=device.worker.settings, clock=device.clock,
                      data_key=data_key, hooks=hooks)


def plant_admin(server, device_id):
    """What an attacker wants from the downlink and the commands: a door opened and an admin with a face."""
    server.add_person("mallory", name="Mallory", role="admin")
    server.set_face_templates("mallory", "sface_int8", [np.ones(128, dtype=np.float32)])
    server.queue_command(device_id, "open_door", {"seconds": 5})


def test_an_impostor_with_another_key_can_neither_open_the_door_nor_plant_an_admin(server, tmp_path, caplog):
    data_key = seal.DataKey.create(tmp_path / "data.key")
    door = Door()
    device = make_device(tmp_path, server, data_key=data_key, hooks=door.hooks())
    device.drain()
    device.record(3)
    # the impostor has everything public (a copy of the server's database: devices, their keys),
    # but not the server's private signing key
    (tmp_path / "impostor").mkdir()
    with sqlite3.connect(server.db_path) as source, sqlite3.connect(tmp_path / "impostor" / "server.db") as copy:
        source.backup(copy)
    with ServerSimulator(db_path=tmp_path / "impostor" / "server.db",
                         signing_key=Ed25519PrivateKey.generate()) as impostor:
        plant_admin(impostor, device.device_id)
        worker = rewired(device, impostor.url, hooks=door.hooks(), data_key=data_key)
        with caplog.at_level(logging.ERROR):
            worker.run_once()
        assert door.openings == []
        assert people.get_person(device.database, "mallory") is None
        assert outbox.stats(device.database)["pending"] == 3  # its "stored" answer acknowledged nothing
        assert status(device.database)["state"] == "untrusted"
        with pytest.raises(UntrustedAnswerError):
            worker.client.commands()
    assert "REFUSED the answer to POST /batches" in caplog.text
    assert "does not verify with the pinned server key" in caplog.text
    # the real server is obeyed as before
    server.queue_command(device.device_id, "open_door", {"seconds": 2})
    device.worker.run_once()
    assert door.openings == [{"seconds": 2.0, "door": 1}]
    assert outbox.stats(device.database)["pending"] == 0


class _UnsignedServer(BaseHTTPRequestHandler):
    """A plain HTTP 'central server' that answers everything with unsigned JSON a device would act on."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def _answer(self, body):
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header(protocol.HEADER_SERVER_TIME, "1")  # a wrong clock it would like us to adopt
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self.seen.append(("GET", self.path))
        if self.path.startswith("/v1/delta"):
            vector = protocol.b64(np.ones(128, dtype="<f4").tobytes())
            return self._answer({"changes": [
                {"type": "person", "op": "upsert", "person": {"person_id": "mallory", "role": "admin", "active": True}},
                {"type": "face_templates", "person_id": "mallory", "model_id": "sface_int8", "vectors": [vector]}],
                "cursor": "999", "more": False})
        if self.path.startswith("/v1/commands"):
            return self._answer({"commands": [{"id": "c1", "kind": "open_door", "args": {"seconds": 5}}]})
        return self._answer({"status": "ok"})

    def do_POST(self):
        self.seen.append(("POST", self.path))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v1/batches":
            body = json.loads(gzip.decompress(raw))
            return self._answer({"batch_id": body["batch_id"],
                                 "results": [{"id": r["id"], "status": "stored"} for r in body["records"]]})
        return self._answer({})


@pytest.fixture
def unsigned_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _UnsignedServer)
    Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    _UnsignedServer.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_plain_http_server_answering_unsigned_json_is_not_obeyed(server, unsigned_server, tmp_path, caplog):
    data_key = seal.DataKey.create(tmp_path / "data.key")
    door = Door()
    device = make_device(tmp_path, server, data_key=data_key, hooks=door.hooks())
    device.record(4)
    worker = rewired(device, unsigned_server, hooks=door.hooks(), data_key=data_key)
    offset = worker.client.clock_offset_s
    with caplog.at_level(logging.ERROR):
        worker.run_once()  # stops at the first unsigned answer
        worker.backoff.success()
        worker.run_once()
    assert ("POST", "/v1/batches") in _UnsignedServer.seen  # it was asked, and answered
    assert outbox.stats(device.database)["pending"] == 4
    assert status(device.database)["state"] == "untrusted"
    assert "not signed (no X-Server-Signature header)" in caplog.text
    # each answer on its own, as if the ones before it had passed
    with pytest.raises(UntrustedAnswerError, match="not signed"):
        worker.client.delta(cursor="", limit=10)
    with pytest.raises(UntrustedAnswerError, match="not signed"):
        worker.client.commands()
    assert door.openings == []
    assert people.get_person(device.database, "mallory") is None
    assert worker.client.clock_offset_s == offset  # the unsigned clock was not believed


def test_a_signed_answer_replayed_for_another_request_is_refused(server, tmp_path):
    device = make_device(tmp_path, server)
    server.queue_command(device.device_id, "open_door", {"seconds": 5})
    captured = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **kw: captured.append(response))
    eavesdropped = SyncClient(server_url=server.url, server_key=device.server_key, device_id=device.device_id,
                              device_key=device.key, clock=device.clock, session=session)
    assert [c["kind"] for c in eavesdropped.commands()] == ["open_door"]  # genuine, signed for that request
    answer = captured[-1]

    class Replay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(answer.status_code)
            for name in ("Content-Type", protocol.HEADER_SERVER_TIME, protocol.HEADER_SERVER_SIGNATURE):
                self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        replayed = SyncClient(server_url=f"http://127.0.0.1:{httpd.server_address[1]}", server_key=device.server_key,
                              device_id=device.device_id, device_key=device.key, clock=device.clock)
        with pytest.raises(UntrustedAnswerError, match="replayed"):
            replayed.commands()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_answer_signature_covers_nonce_device_request_status_time_and_body():
    key = Ed25519PrivateKey.generate()
    public = protocol.public_key_hex(key)
    fields = dict(nonce="ab" * 16, device_id="kiosk-1", method="GET", path="/v1/commands", status=200,
                  server_time="1717000000.000", body=b'{"commands":[]}')
    signature = protocol.sign_answer(key, **fields)
    assert protocol.verify_answer(public, signature, **fields)
    for name, other in [("nonce", "cd" * 16), ("device_id", "kiosk-2"), ("method", "POST"),
                        ("path", "/v1/delta"), ("status", 201), ("server_time", "1"), ("body", b"{}")]:
        assert not protocol.verify_answer(public, signature, **{**fields, name: other}), name
    assert not protocol.verify_answer(protocol.public_key_hex(Ed25519PrivateKey.generate()), signature, **fields)
    assert not protocol.verify_answer(public, "", **fields)
    assert not protocol.verify_answer(public, "not base64!", **fields)


def test_registration_pins_the_key_and_a_provisioned_fingerprint_refuses_an_impostor(server, tmp_path):
    from kiosk.sync import keys

    key = keys.load_or_create_device_key(tmp_path / "device.key")
    reg = registration.register(server_url=server.url, token=server.issue_enrolment_token(), device_key=key,
                                server_key_sha256=server.signing_key_fingerprint)
    assert reg.server_signing_key == server.signing_public_key
    with ServerSimulator(workdir=tmp_path / "impostor", signing_key=Ed25519PrivateKey.generate()) as impostor:
        with pytest.raises(UntrustedAnswerError, match="pinned fingerprint"):
            registration.register(server_url=impostor.url, token=impostor.issue_enrolment_token(),
                                  device_key=keys.load_or_create_device_key(tmp_path / "other.key"),
                                  server_key_sha256=server.signing_key_fingerprint)
    assert protocol.key_fingerprint(reg.server_signing_key) == server.signing_key_fingerprint


def test_a_worker_without_a_pinned_key_refuses_to_talk(server, tmp_path):
    device = make_device(tmp_path, server)
    client = SyncClient(server_url=server.url, server_key=None, device_id=device.device_id, device_key=device.key,
                        clock=device.clock)
    with pytest.raises(SyncError, match="no server signing key is pinned"):
        client.commands()
    settings = config.build([]).replace(sync={"server_url": server.url, "device_id": device.device_id},
                                        security={"device_key_file": str(device.key_path)})
    from kiosk.sync.service import build_worker

    with pytest.raises(ProvisioningError, match="server_signing_key"):
        build_worker(settings, device.database, clock=device.clock)


# --- plain http only on loopback -----------------------------------------------------------------

LOOPBACK = ["http://127.0.0.1:8443", "http://127.9.9.9", "http://localhost:1", "http://[::1]:2",
            "https://kiosk-server.example.org", "https://10.1.2.3:8443"]
REMOTE_HTTP = ["http://kiosk-server.example.org", "http://10.1.2.3:8443", "http://192.168.1.5",
               "http://[2001:db8::1]:80", "http://localhost.example.org", "http://0.0.0.0:8443"]


@pytest.mark.parametrize("url", LOOPBACK)
def test_https_and_loopback_http_urls_are_accepted(url):
    assert config.build([("test", {"sync": {"server_url": url, "adms_url": url}})]).sync.server_url == url


@pytest.mark.parametrize("url", REMOTE_HTTP)
@pytest.mark.parametrize("key", ["server_url", "adms_url"])
def test_remote_plain_http_is_refused_in_settings(url, key):
    with pytest.raises(ConfigError, match=f"sync.{key}: .*plain http is refused"):
        config.build([("kiosk.toml", {"sync": {key: url}})])


@pytest.mark.parametrize("url", REMOTE_HTTP)
def test_remote_plain_http_is_refused_in_provisioning_files_and_by_the_client(url):
    data = {"server": {"url": url, "enrolment_token": "t"}}
    with pytest.raises(ProvisioningError, match="server.url: .*plain http is refused"):
        provision_file.parse(data)
    with pytest.raises(SyncError, match="plain http is refused"):
        SyncClient(server_url=url, server_key=None, clock=None)


def test_the_default_server_url_is_not_plain_http():
    assert not config.build([]).sync.server_url.startswith("http:")


def test_a_provisioning_file_may_pin_the_server_key_fingerprint():
    base = {"server": {"url": "https://kiosk-server.example.org", "enrolment_token": "t"}}
    fingerprint = "ab" * 32
    pf = provision_file.parse({"server": {**base["server"], "signing_key_sha256": fingerprint.upper()}})
    assert pf.server_key_sha256 == fingerprint
    with pytest.raises(ProvisioningError, match="server.signing_key_sha256"):
        provision_file.parse({"server": {**base["server"], "signing_key_sha256": "abc"}})
