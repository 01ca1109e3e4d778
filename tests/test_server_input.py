"""The server simulator answers bad input with a 4xx, never a 5xx or a traceback (issue 12 item 3).

A seeded campaign of malformed requests on loopback: broken HTTP, methods it does not serve,
bad Content-Length, nested-JSON bombs, non-object bodies, NaN and huge numbers, bad query
parameters and signature headers, and mutated bodies of every operation, signed with a
registered device's key so they get past authentication.
"""

import gzip
import json
import random
import socket
import time
import uuid

import pytest

from kiosk.sync import protocol, registration
from kiosk.sync.keys import load_or_create_device_key
from kiosk_sim.server import ServerSimulator

CAMPAIGN_REQUESTS = 2400
SOCKET_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server-input")
    with ServerSimulator(workdir=tmp / "server") as server:
        key = load_or_create_device_key(tmp / "device.key")
        reg = registration.register(server_url=server.url, token=server.issue_enrolment_token(), device_key=key)
        yield server, key, reg.device_id


def exchange(server, raw):
    """Send raw bytes on a fresh connection; return the HTTP status answered (None if it closed silently)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_S) as conn:
        try:
            conn.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it refused early and closed: what it said first is read below
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return None
    parts = data.split(b"\r\n", 1)[0].split()
    return int(parts[1])


def request(method, path, *, body=b"", headers=None, content_length=True):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def signed(key, device_id, method, path, body=b"", *, gzip_body=False, extra=None, now=None):
    raw = gzip.compress(body) if gzip_body else body
    headers = protocol.sign_request(key, device_id, method, path, raw, now=time.time() if now is None else now)
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
    if raw:
        headers["Content-Type"] = "application/json"
    headers.update(extra or {})
    return request(method, path, body=raw, headers=headers)


# --- the specific attacks the issue names ----------------------------------------------------------

def test_nested_json_bomb_is_400(device):
    server, key, device_id = device
    for bomb in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[" * 40 + b"]" * 40):
        assert exchange(server, signed(key, device_id, "POST", "/v1/batches", bomb)) == 400
        assert exchange(server, request("POST", "/v1/devices/register", body=bomb)) == 400


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true", b"[1,2]"])
@pytest.mark.parametrize("path", ["/v1/batches", "/v1/activation/request", "/v1/activation/verify",
                                  "/v1/devices/rotate-key", "/v1/commands/x/result"])
def test_non_object_bodies_are_400(device, body, path):
    server, key, device_id = device
    assert exchange(server, signed(key, device_id, "POST", path, body)) == 400


@pytest.mark.parametrize("query", ["limit=abc", "limit=1e999", "limit=99999999999999999999999999", "cursor=-1",
                                   "cursor=99999999999999999999999", "cursor=1.5", "cursor=%00",
                                   "&".join(f"p{i}=1" for i in range(100))])
def test_bad_query_parameters_are_400(device, query):
    server, key, device_id = device
    assert exchange(server, signed(key, device_id, "GET", f"/v1/delta?{query}")) == 400


@pytest.mark.parametrize("length", ["-1", "-99999", "abc", "1e3", str(protocol.MAX_BODY_BYTES + 1)])
def test_bad_content_length_is_4xx_at_once(device, length):
    server, _, _ = device
    status = exchange(server, request("POST", "/v1/devices/register", body=b"{}", content_length=False,
                                      headers={"Content-Length": length}))
    assert status in (400, 413)


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_signature_timestamp_is_401(device, stamp):
    server, key, device_id = device
    raw = b""
    nonce = protocol.new_nonce()
    signature = protocol.b64(key.sign(protocol.canonical_request("GET", "/v1/commands", stamp, nonce,
                                                                  protocol.body_digest(raw))))
    headers = {protocol.HEADER_DEVICE: device_id, protocol.HEADER_TIMESTAMP: stamp, protocol.HEADER_NONCE: nonce,
               protocol.HEADER_SIGNATURE: signature}
    assert exchange(server, request("GET", "/v1/commands", headers=headers)) == 401


def test_nan_in_a_body_is_400(device):
    server, key, device_id = device
    body = json.dumps({"batch_id": str(uuid.uuid4()), "created_at": float("nan"), "records": []}).encode()
    assert b"NaN" in body
    assert exchange(server, signed(key, device_id, "POST", "/v1/batches", body)) == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "BREW"])
def test_methods_it_does_not_serve_are_405(device, method):
    server, _, _ = device
    assert exchange(server, request(method, "/v1/health")) == 405
    assert exchange(server, request(method, "/v1/batches", body=b"{}")) == 405


def test_an_http_version_it_does_not_speak_is_400(device):
    server, _, _ = device
    assert exchange(server, b"GET /v1/health HTTP/2.0\r\n\r\n") == 400


# --- the campaign ------------------------------------------------------------------------------------

ROUTES = [("POST", "/v1/batches"), ("GET", "/v1/delta"), ("GET", "/v1/commands"),
          ("POST", "/v1/commands/{cid}/result"), ("POST", "/v1/devices/rotate-key"),
          ("POST", "/v1/activation/request"), ("POST", "/v1/activation/verify"), ("POST", "/v1/devices/register"),
          ("GET", "/v1/health"), ("GET", "/openapi.json")]
ODD_VALUES = [None, True, 0, -1, 2 ** 63, -(2 ** 64), 10 ** 400, 1.5, 1e308, "", "x" * 10_000, "\u0000", "\ud800",
              [], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}}, "1000000008", "١٠٠٠٠٠٠٠٠٨", "../../etc/passwd",
              "' OR 1=1 --", "%00", "\r\nX-Injected: 1"]


def valid_body(route, rng, device_id):
    if route == "/v1/batches":
        record = {"id": str(uuid.uuid4()), "kind": "event", "seq": rng.randint(1, 5),
                  "data": {"id": "x", "seq": 1, "person_id": "p", "status": 0, "verify_mode": "face", "score": 0.5,
                           "wall_time": "2026-01-01T00:00:00.000Z", "clock_synced": True, "prev_hash": "0" * 64,
                           "hash": "0" * 64}}
        return {"batch_id": str(uuid.uuid4()), "device_id": device_id, "created_at": time.time(),
                "records": [record], "chain_head": {"seq": 1, "hash": "0" * 64}}
    if route.endswith("/result"):
        return {"status": "done", "detail": {}, "finished_at": time.time()}
    if route.endswith("rotate-key"):
        return {"public_key": "00" * 32, "proof": "AAAA"}
    if route.endswith("activation/request"):
        return {"national_id": "1000000008", "request_id": str(uuid.uuid4())}
    if route.endswith("activation/verify"):
        return {"activation_id": str(uuid.uuid4()), "code": "123456"}
    if route.endswith("register"):
        return {"token": "t", "public_key": "00" * 32, "proof": "AAAA", "info": {}}
    return {}


def mutate(value, rng, depth=0):
    """Replace or tweak one random spot of a JSON value."""
    if depth > 4 or rng.random() < 0.25:
        return rng.choice(ODD_VALUES)
    if isinstance(value, dict) and value:
        value = dict(value)
        key = rng.choice(list(value))
        if rng.random() < 0.15:
            del value[key]
        else:
            value[key] = mutate(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value:
        value = list(value)
        i = rng.randrange(len(value))
        value[i] = mutate(value[i], rng, depth + 1)
        return value
    return rng.choice(ODD_VALUES)


def encode(value, rng):
    text = json.dumps(value, allow_nan=True)
    if rng.random() < 0.1:  # break the JSON itself
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + rng.choice(["", "}", "]]", "\x00", "NaN", "Infinity", '"\\ud800"', "\xff"]) + text[cut:]
    return text.encode("utf-8", "surrogatepass")


def malformed_http(rng):
    choice = rng.randrange(8)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))) + b"\r\n\r\n"
    if choice == 1:
        return b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"
    if choice == 2:
        return b"GET /v1/health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    if choice == 3:
        return b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"v" * 70_000 + b"\r\n\r\n"
    if choice == 4:
        return rng.choice([b"GET\r\n\r\n", b"GET /v1/health HTTP/9.9\r\n\r\n", b"GET /v1/health FOO/1.1\r\n\r\n",
                           b"GET /v1/health HTTP/1.1\r\nNoColonHere\r\n\r\n", b" / HTTP/1.1\r\n\r\n"])
    if choice == 5:
        return request("POST", "/v1/batches", body=b"5\r\nhello\r\n0\r\n\r\n", content_length=False,
                       headers={"Transfer-Encoding": "chunked"})
    if choice == 6:
        return request(rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW", "get"]),
                       rng.choice([r for _, r in ROUTES]))
    return request("POST", "/v1/devices/register", body=b"{}", content_length=False,
                   headers={"Content-Length": rng.choice(["-1", "x", "99999999999999999999", "1 2", "0x10"])})


def campaign_request(rng, key, device_id):
    kind = rng.random()
    if kind < 0.15:
        return malformed_http(rng)
    method, route = rng.choice(ROUTES)
    route = route.replace("{cid}", rng.choice([str(uuid.uuid4()), "x", "%2e%2e", "a" * 300]))
    if kind < 0.3 and method == "GET":
        params = {rng.choice(["cursor", "limit", "face_model", "finger_sensor", "x"]): rng.choice(ODD_VALUES)
                  for _ in range(rng.randint(1, 4))}
        query = "&".join(f"{k}={json.dumps(v, allow_nan=True)[:200]}" for k, v in params.items())
        route = f"{route}?{query}".replace(" ", "%20").replace("\r", "%0D").replace("\n", "%0A")
    body = b"" if method == "GET" else encode(mutate(valid_body(route, rng, device_id), rng), rng)
    if kind < 0.4:  # signature headers themselves broken
        extra = {rng.choice([protocol.HEADER_TIMESTAMP, protocol.HEADER_NONCE, protocol.HEADER_SIGNATURE,
                             protocol.HEADER_DEVICE]): rng.choice(["nan", "inf", "", "zz", "x" * 500, "-1", "é"])}
        return signed(key, device_id, method, route, body, extra=extra)
    if kind < 0.5:
        return request(method, route, body=body)  # unsigned
    return signed(key, device_id, method, route, body, gzip_body=rng.random() < 0.3)


def test_campaign_of_malformed_requests_finds_no_5xx(device):
    server, key, device_id = device
    rng = random.Random(12)
    counts, silent = {}, 0
    started = time.monotonic()
    for _ in range(CAMPAIGN_REQUESTS):
        status = exchange(server, campaign_request(rng, key, device_id))
        if status is None:
            silent += 1
            continue
        counts[status] = counts.get(status, 0) + 1
    elapsed = time.monotonic() - started
    five = {s: n for s, n in counts.items() if s >= 500}
    assert not five, f"5xx answers: {five} (all: {counts})"
    assert sum(counts.values()) + silent == CAMPAIGN_REQUESTS
    assert silent <= CAMPAIGN_REQUESTS * 0.02, f"{silent} connections closed without an answer"
    # the signed mutations got past authentication into the handlers
    assert sum(n for s, n in counts.items() if s not in (401, 405)) > CAMPAIGN_REQUESTS // 3, counts
    print(f"\n[server-fuzz] {CAMPAIGN_REQUESTS} malformed requests in {elapsed:.1f} s: "
          f"{dict(sorted(counts.items()))}, {silent} closed without answer, 0 5xx")


def test_a_method_the_schema_does_not_list_for_a_path_is_405_naming_the_allowed_ones(device):
    server, _, _ = device
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_S) as conn:
        conn.sendall(request("POST", "/v1/health", body=b"{}"))
        answer = conn.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 405") and "\r\nAllow: GET\r\n" in answer
    assert exchange(server, request("GET", "/v1/batches")) == 405


def test_the_schemathesis_hooks_sign_requests_the_server_accepts(device):
    import importlib.util
    from pathlib import Path

    import requests

    server, _, _ = device
    path = Path(__file__).resolve().parent.parent / "tools" / "schemathesis_hooks.py"
    spec = importlib.util.spec_from_file_location("schemathesis_hooks", path)
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    signer = hooks.signer_from_environment({"KIOSK_FUZZ_URL": server.url,
                                            "KIOSK_FUZZ_TOKEN": server.issue_enrolment_token()})
    assert signer.device_id in {d["device_id"] for d in server.devices()}
    answer = requests.get(server.url + "/v1/delta?cursor=&limit=5", auth=signer, timeout=10)
    assert answer.status_code == 200, answer.text
    answer = requests.post(server.url + "/v1/commands/x/result", json={"status": "done"}, auth=signer, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_command"  # past authentication
    assert requests.get(server.url + "/v1/commands", timeout=10).status_code == 401  # unsigned: refused
