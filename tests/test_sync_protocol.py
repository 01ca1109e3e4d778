"""Sync protocol codecs and helpers: bodies, signatures, keys, national ids, Retry-After, backoff."""

import json
import random
import stat
from email.utils import formatdate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import ProvisioningError
from kiosk.sync import keys, protocol
from kiosk.backoff import Backoff, parse_retry_after

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_body_round_trips_through_gzip(value):
    raw = protocol.encode_body(value)
    assert raw[:2] == b"\x1f\x8b"
    assert protocol.decode_body(raw, content_encoding="gzip") == value


def test_decode_body_rejects_garbage_and_bombs():
    with pytest.raises(ValueError):
        protocol.decode_body(b"not gzip", content_encoding="gzip")
    with pytest.raises(ValueError):
        protocol.decode_body(b"{not json")
    import gzip

    bomb = gzip.compress(b" " * (protocol.MAX_BODY_BYTES + 10))
    with pytest.raises(ValueError):
        protocol.decode_body(bomb, content_encoding="gzip")


@given(method=st.sampled_from(["GET", "POST"]), path=st.text(min_size=1, max_size=40),
       body=st.binary(max_size=200), now=st.floats(1e9, 3e9))
@settings(max_examples=50, deadline=None)
def test_signed_request_verifies_and_any_change_breaks_it(method, path, body, now):
    key = protocol.new_private_key()
    headers = protocol.sign_request(key, "dev-1", method, path, body, now=now)
    public = protocol.public_key_hex(key)
    assert protocol.verify_request(public, headers, method, path, body)
    assert not protocol.verify_request(public, headers, method, path, body + b"x")
    assert not protocol.verify_request(public, headers, method, path + "x", body)
    other = "POST" if method == "GET" else "GET"
    assert not protocol.verify_request(public, headers, other, path, body)
    later = dict(headers, **{protocol.HEADER_TIMESTAMP: protocol.format_timestamp(now + 1)})
    assert not protocol.verify_request(public, later, method, path, body)
    assert not protocol.verify_request(protocol.public_key_hex(protocol.new_private_key()), headers, method, path, body)


def test_signature_headers_are_checked_for_shape():
    with pytest.raises(ValueError, match="missing"):
        protocol.parse_signature_headers({protocol.HEADER_DEVICE: "d"})
    key = protocol.new_private_key()
    headers = protocol.sign_request(key, "d", "GET", "/v1/x", b"", now=1.7e9)
    with pytest.raises(ValueError, match="hex"):
        protocol.parse_signature_headers(dict(headers, **{protocol.HEADER_NONCE: "NOT-HEX!"}))


def test_registration_body_proves_key_possession():
    key = protocol.new_private_key()
    body = protocol.registration_body("tok", key, info={"site": "x"})
    message = protocol.registration_message("tok", body["public_key"])
    assert protocol.verify(body["public_key"], protocol.unb64(body["proof"]), message)
    assert not protocol.verify(body["public_key"], protocol.unb64(body["proof"]),
                               protocol.registration_message("other", body["public_key"]))
    assert "tok" not in json.dumps({k: v for k, v in body.items() if k != "token"})


def test_batch_body_names_the_chain_head():
    from kiosk.storage.outbox import OutboxRecord

    records = [OutboxRecord(1, "a", "event", {"id": "a", "seq": 1, "hash": "h1"}, 0.0, 0),
               OutboxRecord(2, "b", "activation", {"blob": "..."}, 0.0, 0),
               OutboxRecord(3, "c", "event", {"id": "c", "seq": 2, "hash": "h2"}, 0.0, 0)]
    wire = [protocol.outbox_to_wire(r) for r in records]
    body = protocol.batch_body("batch-1", "dev", wire, created_at=1.0)
    assert body["chain_head"] == {"seq": 2, "hash": "h2"}
    assert [w["seq"] for w in wire] == [1, None, 2]
    assert protocol.batch_digest(body) == protocol.batch_digest(json.loads(json.dumps(body)))
    assert protocol.batch_body("b", "d", wire[1:2], created_at=1.0)["chain_head"] is None


@pytest.mark.parametrize("text,ok", [("1000000008", True), ("١٠٠٠٠٠٠٠٠٨", True), ("1000000000", False),
                                     ("3000000000", False), ("100000000", False), ("2000000006", True)])
def test_national_id_rules(text, ok):
    if ok:
        assert protocol.normalise_national_id(text).isdigit()
    else:
        with pytest.raises(ValueError):
            protocol.normalise_national_id(text)


def test_mask_national_id_hides_all_but_two():
    assert protocol.mask_national_id("1000000008") == "********08"


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("7", now=0) == 7.0
    assert parse_retry_after(None, now=0) is None
    assert parse_retry_after("soon", now=0) is None
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_doubles_with_jitter_up_to_cap_and_honours_retry_after():
    backoff = Backoff(base_s=1.0, cap_s=16.0, rng=random.Random(3))
    delays = [backoff.failure() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(16.0, 2.0 ** n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays[-3:]) <= 16.0
    assert backoff.failure(retry_after_s=120) == 120
    backoff.success()
    assert backoff.failure() <= 1.0
    jittered = {round(Backoff(base_s=1, cap_s=64, rng=random.Random(s)).failure() + 0.0, 6) for s in range(10)}
    assert len(jittered) > 1, "jitter must spread devices out"


def test_device_key_is_created_0600_and_reloads(tmp_path):
    path = tmp_path / "keys" / "device.key"
    key = keys.load_or_create_device_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = keys.load_or_create_device_key(path)
    assert protocol.public_key_hex(again) == protocol.public_key_hex(key)


def test_device_key_errors_are_clear(tmp_path):
    with pytest.raises(ProvisioningError, match="not found"):
        keys.load_device_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("hello")
    bad.chmod(0o600)
    with pytest.raises(ProvisioningError, match="PEM"):
        keys.load_device_key(bad)


def test_openapi_schema_is_valid_json_and_covers_every_route():
    spec = json.loads(Path(protocol.__file__).with_name("openapi.json").read_text())
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/health", "/v1/devices/register", "/v1/batches", "/v1/delta", "/v1/commands",
                 "/v1/commands/{command_id}/result", "/v1/activation/request", "/v1/activation/verify",
                 "/v1/devices/rotate-key", "/v1/services/code", "/v1/services/code/verify", "/v1/services/verify-face",
                 "/v1/services/verify-finger"):
        assert path in spec["paths"], path
    command = spec["components"]["schemas"]["Command"]["properties"]["kind"]["enum"]
    assert set(command) == set(protocol.COMMAND_KINDS)
    change = spec["components"]["schemas"]["Change"]["properties"]["type"]["enum"]
    assert set(change) == set(protocol.CHANGE_TYPES)
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    for ref in refs:
        section, name = ref.split("/")[-2:]
        assert name in spec["components"][section], ref
