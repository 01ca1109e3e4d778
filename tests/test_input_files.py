"""Settings and provisioning files: every problem at once, strict validators, and a fuzz campaign (issue 12 item 3)."""

import copy
import math
import random
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
import tomli_w

from kiosk import config, pinhash, provision_file
from kiosk.errors import ConfigError, ProvisioningError
from kiosk.sync.adms_codec import resolve_timezone

ROOT = Path(__file__).resolve().parent.parent
PROVISION_EXAMPLE = ROOT / "image-build" / "kiosk-provision.toml.example"
GOOD_HASH = provision_file.hash_pin("4321", salt=b"0123456789abcdef")


def test_settings_file_lists_every_problem_at_once(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[sync]\nserver_url = "http://[::1"\nbatch_size = -1\n[device]\ntimezone = "Asia"\n'
                    '[camera]\nfps = "fast"\nbogus = 1\n[nope]\nx = 1\n')
    with pytest.raises(ConfigError) as caught:
        config.check_file(path)
    problems = caught.value.problems
    assert len(problems) == 6, problems
    text = str(caught.value)
    for needle in ("sync.server_url", "Invalid IPv6", "sync.batch_size", "device.timezone", "camera.fps",
                   "camera.bogus", "[nope]"):
        assert needle in text
    assert all(str(path) in p for p in problems)  # each names the file


@pytest.mark.parametrize("url", ["http://[::1", "https://[fe80::1/x", "http://host:99999", "http://host:port/",
                                 "http://exa mple.org", "ftp://host", "http://", "https://ok\n.example"])
def test_malformed_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="sync.server_url"):
        config.build([("t", {"sync": {"server_url": url}})])


@pytest.mark.parametrize("zone", ["Asia", "Asia/Nowhere", "../../etc/passwd", "/etc/localtime", "", "UTC\0",
                                  "x" * 300])
def test_unknown_time_zones_are_config_errors(zone):
    with pytest.raises(ConfigError, match="device.timezone"):
        config.build([("t", {"device": {"timezone": zone}})])
    config.build([("t", {"device": {"timezone": "Asia/Riyadh"}, "sync": {"adms_timezone": "+03:00"}})])
    with pytest.raises(ConfigError, match="adms_timezone"):
        config.build([("t", {"sync": {"adms_timezone": zone or "+3"}})])


@pytest.mark.parametrize("offset, minutes", [("+14:00", 840), ("-12:00", -720), ("-00:30", -30), ("+05:45", 345)])
def test_an_adms_offset_the_settings_accept_is_one_the_rows_can_use(offset, minutes):
    settings = config.build([("t", {"sync": {"adms_timezone": offset}})])
    assert resolve_timezone(settings.sync.adms_timezone, None).utcoffset(None) == timedelta(minutes=minutes)


@pytest.mark.parametrize("offset", ["+14:30", "-14:59", "+15:00"])
def test_an_adms_offset_past_14_hours_is_a_config_error_not_a_kiosk_that_will_not_start(offset):
    with pytest.raises(ConfigError, match="adms_timezone"):
        config.build([("t", {"sync": {"adms_timezone": offset}})])


BAD_HASHES = [
    "scrypt$abc",
    "scrypt$3$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$" + "A" * 44,            # N not a power of two
    "scrypt$1073741824$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$" + "A" * 44,   # N = 2**30: gigabytes
    "scrypt$16384$255$1$MDEyMzQ1Njc4OWFiY2RlZg==$" + "A" * 44,      # r too large
    "scrypt$16384$8$0$MDEyMzQ1Njc4OWFiY2RlZg==$" + "A" * 44,        # p = 0
    "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg=$" + "A" * 44,         # bad base64 padding
    "scrypt$16384$8$1$AA==$" + "A" * 44,                            # 1-byte salt
    "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$AAAA",              # 3-byte digest
    GOOD_HASH.replace("scrypt", "bcrypt"),
]


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_malformed_pin_hash_is_refused_when_loaded_and_never_crashes_a_check(bad, tmp_path):
    with pytest.raises(ConfigError, match="admin_pin_hash"):
        config.build([("t", {"security": {"admin_pin_hash": bad}})])
    text = PROVISION_EXAMPLE.read_text().replace('pin_hash = ""', f"pin_hash = {tomli_w.dumps({'v': bad})[4:]}")
    text = text.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", "tok").replace('ca_file = "kiosk-ca.pem"', "")
    path = tmp_path / provision_file.FILE_NAME
    path.write_text(text)
    with pytest.raises(ProvisioningError, match="admin.pin_hash"):
        provision_file.load(path)
    assert provision_file.check_pin("4321", bad) is False


def test_a_good_pin_hash_still_passes():
    assert pinhash.problem(GOOD_HASH) is None and pinhash.problem(GOOD_HASH + "\n") is not None
    assert provision_file.check_pin("4321", GOOD_HASH) and not provision_file.check_pin("4322", GOOD_HASH)
    config.build([("t", {"security": {"admin_pin_hash": GOOD_HASH}})])


def test_provisioning_file_lists_problems_inside_settings_too(tmp_path):
    path = tmp_path / provision_file.FILE_NAME
    path.write_text('[server]\nurl = "http://[::1"\nenrolment_token = "t"\n[device]\ntimezone = "Asia"\n'
                    '[settings.sync]\nbatch_size = 0\n[settings.camera]\nfps = 0\n')
    with pytest.raises(ProvisioningError) as caught:
        provision_file.load(path)
    text = str(caught.value)
    assert "4 problem(s)" in text
    for needle in ("server.url", "device.timezone", "sync.batch_size", "camera.fps"):
        assert needle in text


# --- fuzz: mutated files give ConfigError / ProvisioningError with a message, never anything else ---------

HOSTILE = [math.nan, math.inf, -math.inf, -1, 0, 2 ** 63, 10 ** 30, -(2 ** 64), 1.5, True, "", " ", "\0",
           "http://[::1", "https://[fe80::", "http://[x]y", "http://[::1]:99999", "http://h:port", "Asia", "../..",
           "x" * 5000, "scrypt$1$1$1$A$A", [], [1, "a"], {}, {"a": {"b": 1}}, "١٢٣", "\ud7ff", "ok",
           "https://h.example", "+03:00", "/dev/null"]


def hostile(rng, extra=()):
    return copy.deepcopy(rng.choice(HOSTILE + list(extra)))


def mutate_table(data, rng):
    data = tomllib.loads(tomli_w.dumps(data))  # a deep copy
    for _ in range(rng.randint(1, 4)):
        sections = list(data) or ["x"]
        section = rng.choice(sections)
        roll = rng.random()
        if roll < 0.1:
            data[rng.choice(["nope", section + "x", "settings"])] = hostile(rng, [{"k": 1}])
        elif not isinstance(data.get(section), dict) or not data[section]:
            data[section] = hostile(rng)
        elif roll < 0.2:
            data[section]["unknown_" + str(rng.randint(0, 9))] = hostile(rng)
        else:
            keys = list(data[section])
            # half the time aim at the keys with parsers behind them (URLs, zones, hashes, files)
            aimed = [k for k in keys if any(w in k for w in ("url", "timezone", "hash", "file", "ssid", "psk"))]
            key = rng.choice(aimed if aimed and rng.random() < 0.5 else keys)
            data[section][key] = hostile(rng)
    return data


def mutate_bytes(raw, rng):
    raw = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        at = rng.randrange(len(raw)) if raw else 0
        if op < 0.4 and raw:
            raw[at] = rng.randrange(256)
        elif op < 0.7:
            raw[at:at] = rng.choice([b"=", b"[", b"]", b'"', b"\n", b"\\u0000", b"nan", b"[[x]]", b"\xff", b"{a=1}"])
        else:
            lines = bytes(raw).split(b"\n")
            del lines[rng.randrange(len(lines))]
            raw = bytearray(b"\n".join(lines))
    return bytes(raw)


def settings_table(settings_sections):
    return {name: dict(values) for name, values in settings_sections.items()}


def fuzz_cases(base_raw, rng, count):
    base = tomllib.loads(base_raw.decode())
    for n in range(count):
        if n % 2:
            yield mutate_bytes(base_raw, rng)
        else:
            try:
                yield tomli_w.dumps(mutate_table(base, rng)).encode()
            except (TypeError, ValueError):  # a value tomli_w cannot write (e.g. a lone surrogate)
                yield mutate_bytes(base_raw, rng)


def run_campaign(load, base_raw, path, expected, *, seed, count):
    rng = random.Random(seed)
    outcomes = {"ok": 0, "refused": 0}
    for raw in fuzz_cases(base_raw, rng, count):
        path.write_bytes(raw)
        try:
            load(path)
            outcomes["ok"] += 1
        except expected as e:
            assert str(e).strip(), f"an error without a message for {raw!r}"
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{type(e).__name__}: {e} for file {raw!r}")
    return outcomes


def test_fuzz_settings_files_give_only_config_errors(tmp_path):
    base = config.example_toml().encode()
    outcomes = run_campaign(config.check_file, base, tmp_path / "kiosk.toml", ConfigError, seed=12, count=1000)
    assert outcomes["refused"] > 500 and sum(outcomes.values()) == 1000
    print(f"\n[settings-fuzz] 1000 mutated settings files: {outcomes}, 0 other exceptions")


def test_fuzz_provisioning_files_give_only_provisioning_errors(tmp_path):
    (tmp_path / "kiosk-ca.pem").write_text("not a certificate\n")
    base = PROVISION_EXAMPLE.read_text().replace('pin_hash = ""', f'pin_hash = "{GOOD_HASH}"')
    base = base.replace('ssid = ""', 'ssid = "office"').replace('psk = ""', 'psk = "correct horse"')
    base = base.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", "tok-12345").replace('ca_file = "kiosk-ca.pem"', "")
    base += '\n[settings.sync]\nbatch_size = 200\n[settings.device]\ntimezone = "UTC"\n'
    outcomes = run_campaign(provision_file.load, base.encode(), tmp_path / provision_file.FILE_NAME,
                            ProvisioningError, seed=12, count=1000)
    assert outcomes["refused"] > 500 and outcomes["ok"] > 50 and sum(outcomes.values()) == 1000
    print(f"\n[provisioning-fuzz] 1000 mutated provisioning files: {outcomes}, 0 other exceptions")
