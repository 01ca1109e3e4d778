"""Signed provisioning codes: every attack a stranger with a printer can try, then the good path."""

import base64
import json
import secrets
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import provision_code as pc
from kiosk.errors import ProvisioningError

NOW = 1_700_000_000.0


def public_hex(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@pytest.fixture(scope="module")
def fleet_key():
    return Ed25519PrivateKey.generate()     # a throwaway test key, never stored


def payload(**over):
    base = {"id": "0123456789abcdef", "exp": int(NOW) + 3600, "u": "https://server.example:8443",
            "t": "one-time-token-1234", "s": "HQ", "d": "north", "z": "Asia/Riyadh", "l": "en"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def refused(text, keys, *, used=None, now_s=NOW):
    with pytest.raises(pc.CodeRefusedError) as info:
        pc.decode(text, public_keys=keys, now_s=now_s, used=used)
    assert info.value.remedy and "\n" not in info.value.remedy
    return info.value.reason


def raw_code(packed, signature):
    return pc.PREFIX + base64.b32encode(packed + signature).decode().rstrip("=")


def signed(body, key, *, pack=True):
    """A code of ``body`` (packed with zlib unless told not to) correctly signed by ``key``."""
    packed = zlib.compress(body) if pack else body
    return raw_code(packed, key.sign(pc.DOMAIN + packed))


def test_a_good_code_round_trips_and_stays_in_qr_alphanumeric_mode(fleet_key):
    text = pc.encode(payload(), fleet_key)
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    code = pc.decode(text, public_keys=[public_hex(fleet_key)], now_s=NOW)
    assert code.payload == payload() and code.signer == public_hex(fleet_key)


def test_a_strangers_key_is_refused(fleet_key):
    forged = pc.encode(payload(), Ed25519PrivateKey.generate())
    assert refused(forged, [public_hex(fleet_key)]) == "bad_signature"


def test_one_changed_byte_breaks_the_signature(fleet_key):
    packed = zlib.compress(pc.canonical(payload()))
    signature = fleet_key.sign(pc.DOMAIN + packed)
    tampered = zlib.compress(pc.canonical(payload(u="https://attack.example")))
    assert refused(raw_code(tampered, signature), [public_hex(fleet_key)]) == "bad_signature"
    flipped = bytes([packed[0] ^ 1]) + packed[1:]
    assert refused(raw_code(flipped, signature), [public_hex(fleet_key)]) == "bad_signature"


def test_a_signature_without_the_domain_prefix_is_refused(fleet_key):
    # a signature the fleet key made for some other purpose over the same bytes proves nothing here
    packed = zlib.compress(pc.canonical(payload()))
    assert refused(raw_code(packed, fleet_key.sign(packed)), [public_hex(fleet_key)]) == "bad_signature"


def test_a_signed_zip_bomb_is_refused_after_unpacking_a_bounded_amount(fleet_key):
    # 2 kB of padding is a few bytes packed; unpacking stops one byte past MAX_BODY_BYTES
    small_bomb = zlib.compress(pc.canonical(payload(s="a" * pc.MAX_BODY_BYTES)), 9)   # canonical, just too big
    assert refused(raw_code(small_bomb, fleet_key.sign(pc.DOMAIN + small_bomb)), [public_hex(fleet_key)]) == "malformed"


def test_signed_but_not_zlib_or_trailed_is_refused(fleet_key):
    keys = [public_hex(fleet_key)]
    assert refused(signed(pc.canonical(payload()), fleet_key, pack=False), keys) == "malformed"
    trailed = zlib.compress(pc.canonical(payload())) + b"extra"
    assert refused(raw_code(trailed, fleet_key.sign(pc.DOMAIN + trailed)), keys) == "malformed"
    cut = zlib.compress(pc.canonical(payload()))[:-6]
    assert refused(raw_code(cut, fleet_key.sign(pc.DOMAIN + cut)), keys) == "malformed"


def test_unsigned_codes_are_refused(fleet_key):
    keys = [public_hex(fleet_key)]
    assert refused(json.dumps(payload()), keys) == "unsigned"
    assert refused(raw_code(pc.canonical(payload()), b"")[:60], keys) == "unsigned"
    assert refused("KP0:" + base64.b32encode(pc.canonical(payload())).decode(), keys) == "unsigned"


def test_a_kiosk_without_a_baked_key_accepts_nothing(fleet_key):
    assert refused(pc.encode(payload(), fleet_key), []) == "no_key"
    assert refused(pc.encode(payload(), fleet_key), ["not-hex"]) == "no_key"


def test_expired_code_is_refused_at_its_expiry_second(fleet_key):
    text = pc.encode(payload(exp=int(NOW) + 10), fleet_key)
    pc.decode(text, public_keys=[public_hex(fleet_key)], now_s=NOW + 9.9)
    assert refused(text, [public_hex(fleet_key)], now_s=NOW + 10) == "expired"


def test_a_used_code_is_refused_after_a_restart(fleet_key, tmp_path):
    text = pc.encode(payload(), fleet_key)
    keys = [public_hex(fleet_key)]
    used = pc.UsedCodes(tmp_path / "used-codes.json")
    code = pc.decode(text, public_keys=keys, now_s=NOW, used=used)
    used.remember(code.code_id, expires_at_s=code.expires_at_s, now_s=NOW)
    again = pc.UsedCodes(tmp_path / "used-codes.json")          # a new process reads the disk
    assert refused(text, keys, used=again) == "reused"


def test_a_damaged_used_list_refuses_every_code(fleet_key, tmp_path):
    (tmp_path / "used.json").write_text("{not json")
    with pytest.raises(ProvisioningError):
        pc.decode(pc.encode(payload(), fleet_key), public_keys=[public_hex(fleet_key)], now_s=NOW,
                  used=pc.UsedCodes(tmp_path / "used.json"))


def test_oversized_codes_are_refused_before_any_work(fleet_key):
    assert refused(pc.PREFIX + "A" * pc.MAX_CODE_CHARS, [public_hex(fleet_key)]) == "too_large"
    with pytest.raises(ProvisioningError, match="over the limit"):
        pc.encode(payload(t=secrets.token_urlsafe(700)), fleet_key)     # random: zlib cannot shrink it


@pytest.mark.parametrize("text, reason", [
    ("https://example.com/some-menu", "not_a_code"),
    ("", "not_a_code"),
    (pc.PREFIX + "not base32 !!", "malformed"),
    (pc.PREFIX + "a" * 200, "malformed"),            # lower case is not our alphabet
])
def test_malformed_and_foreign_codes(fleet_key, text, reason):
    assert refused(text, [public_hex(fleet_key)]) == reason


def test_signed_but_not_canonical_is_refused(fleet_key):
    # duplicate keys: a parser that keeps the first and one that keeps the last would disagree
    body = b'{"exp":%d,"id":"0123456789abcdef","t":"tok-12345678","u":"https://a.example","u":"https://b.example"}' % (
        int(NOW) + 60)
    assert refused(signed(body, fleet_key), [public_hex(fleet_key)]) == "malformed"
    spaced = pc.canonical(payload()).replace(b",", b", ")
    assert refused(signed(spaced, fleet_key), [public_hex(fleet_key)]) == "malformed"


def test_signed_but_wrong_fields_are_refused(fleet_key):
    reason = refused(signed(pc.canonical(payload(exp="tomorrow", extra="x")), fleet_key), [public_hex(fleet_key)])
    assert reason == "bad_field"
    with pytest.raises(ProvisioningError, match="unknown field"):
        pc.encode(payload(extra="x"), fleet_key)


def test_used_list_keeps_unexpired_ids_when_pruning(tmp_path, monkeypatch):
    monkeypatch.setattr(pc, "MAX_USED_IDS", 3)
    used = pc.UsedCodes(tmp_path / "used.json")
    used.remember("a" * 16, expires_at_s=NOW - 1, now_s=NOW)
    for n in range(3):
        used.remember(f"{n:016x}", expires_at_s=NOW + 100, now_s=NOW)
    assert not used.contains("a" * 16) and all(used.contains(f"{n:016x}") for n in range(3))
    with pytest.raises(ProvisioningError):
        used.remember("f" * 16, expires_at_s=NOW + 100, now_s=NOW)


def test_keys_file_ignores_comments_and_junk(tmp_path, fleet_key):
    path = tmp_path / "provisioning-keys"
    path.write_text(f"# fleet key 2026\n{public_hex(fleet_key).upper()}\nnot a key\n")
    assert pc.load_public_keys(path) == [public_hex(fleet_key)]
    assert pc.load_public_keys(tmp_path / "absent") == []


def test_to_tables_passes_the_provisioning_file_checks(fleet_key):
    from kiosk import provision_file

    code = pc.decode(pc.encode(payload(w=["Office", "secret-pass", "SA"]), fleet_key),
                     public_keys=[public_hex(fleet_key)], now_s=NOW)
    pf = provision_file.parse(pc.to_tables(code))
    assert (pf.server_url, pf.site, pf.door, pf.wifi_ssid, pf.timezone) == (
        "https://server.example:8443", "HQ", "north", "Office", "Asia/Riyadh")
    bad = pc.decode(pc.encode(payload(z="Mars/Olympus"), fleet_key), public_keys=[public_hex(fleet_key)], now_s=NOW)
    with pytest.raises(ProvisioningError, match="timezone"):
        provision_file.parse(pc.to_tables(bad))
