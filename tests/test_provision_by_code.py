"""Provisioning by a signed code, end to end against the central server simulator (real TLS)."""

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import config, provision, provision_by_code
from kiosk import provision_code as pc
from kiosk.clock import FakeClock
from kiosk.errors import ProvisioningError
from kiosk.storage import audit, db

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def fleet_key():
    return Ed25519PrivateKey.generate()      # throwaway: generated per test run, never stored


@pytest.fixture
def paths(tmp_path, fleet_key, server):
    p = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    p.boot_dir.mkdir()
    (p.boot_dir / "kiosk-ca.pem").write_text(Path(server.ca_file).read_text())
    p.kiosk_etc.mkdir(parents=True)
    public = fleet_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    p.provisioning_keys.write_text(f"# baked in at image build\n{public}\n")
    return p


class Sleeper:
    def __init__(self, on_sleep=None):
        self.delays, self.on_sleep = [], on_sleep

    def __call__(self, seconds):
        self.delays.append(seconds)
        if self.on_sleep:
            self.on_sleep(len(self.delays))


def make(server, key, *, clock, **over):
    payload = {"id": pc.new_code_id(), "exp": int(clock.time()) + 3600, "u": server.url,
               "t": server.issue_enrolment_token(), "ca": pc.ca_fingerprint(Path(server.ca_file).read_text()),
               "s": "Head office", "d": "North door", "z": "Asia/Riyadh", "l": "en"}
    payload.update(over)
    return pc.encode(payload, key)


def run(text, paths, **kw):
    kw.setdefault("console", provision.Console(paths.boot_dir.parent / "tty1"))
    kw.setdefault("clock", FakeClock())
    kw.setdefault("sleep", Sleeper())
    kw.setdefault("timeout_s", 5.0)
    return provision_by_code.provision_code(text, paths=paths, **kw)


def screen(paths):
    return (paths.boot_dir.parent / "tty1").read_text()


def audit_actions(paths):
    database = db.open_db(paths.database)
    try:
        return [(e["action"], e["detail"]) for e in audit.entries(database)]
    finally:
        database.conn.close()


def test_a_signed_code_registers_the_kiosk_and_cannot_be_used_twice(server, fleet_key, paths, caplog):
    clock = FakeClock()
    text = make(server, fleet_key, clock=clock)
    outcome = run(text, paths, clock=clock)
    assert outcome.action == "registered"
    settings = config.load(paths.settings_file)
    assert settings.sync.server_url == server.url and settings.ui.language == "en"
    assert json.loads(paths.registration_file.read_text())["door"] == "North door"
    assert audit_actions(paths)[-1][0] == "registered"
    code_id = pc.decode(text, public_keys=pc.load_public_keys(paths.provisioning_keys), now_s=clock.time()).code_id
    assert pc.UsedCodes(paths.used_codes).contains(code_id)
    # shown again (even after wiping the registration): refused as reused, before anything else
    paths.registration_file.unlink()
    with pytest.raises(pc.CodeRefusedError) as info:
        run(text, paths, clock=clock)
    assert info.value.reason == "reused"
    assert text not in caplog.text and text not in screen(paths)   # codes carry a token: never logged


def test_a_forged_code_is_refused_and_nothing_is_written(server, fleet_key, paths):
    clock = FakeClock()
    with pytest.raises(pc.CodeRefusedError) as info:
        run(make(server, Ed25519PrivateKey.generate(), clock=clock), paths, clock=clock)
    assert info.value.reason == "bad_signature"
    assert "not signed by this fleet's key" in screen(paths)
    assert not paths.registration_file.exists() and not paths.device_key.exists()


def test_an_expired_code_is_refused(server, fleet_key, paths):
    clock = FakeClock()
    text = make(server, fleet_key, clock=clock, exp=int(clock.time()) + 60)
    clock.advance(61)
    with pytest.raises(pc.CodeRefusedError) as info:
        run(text, paths, clock=clock)
    assert info.value.reason == "expired" and "expired" in screen(paths)


def test_a_registered_kiosk_refuses_a_first_provisioning_code(server, fleet_key, paths):
    clock = FakeClock()
    run(make(server, fleet_key, clock=clock), paths, clock=clock)
    with pytest.raises(pc.CodeRefusedError) as info:
        run(make(server, fleet_key, clock=clock, d="Other door"), paths, clock=clock)
    assert info.value.reason == "already_provisioned"
    assert json.loads(paths.registration_file.read_text())["door"] == "North door"
    assert ("provisioning_code_refused", {"reason": "already_provisioned"}) in audit_actions(paths)


def test_a_code_naming_another_ca_is_refused(server, fleet_key, paths):
    clock = FakeClock()
    with pytest.raises(pc.CodeRefusedError) as info:
        run(make(server, fleet_key, clock=clock, ca="ab" * 32), paths, clock=clock)
    assert info.value.reason == "ca_missing"


def test_a_signed_code_with_a_bad_time_zone_is_refused_as_bad_field(server, fleet_key, paths):
    clock = FakeClock()
    with pytest.raises(pc.CodeRefusedError) as info:
        run(make(server, fleet_key, clock=clock, z="Mars/Olympus"), paths, clock=clock)
    assert info.value.reason == "bad_field" and "timezone" in str(info.value)


def test_server_unreachable_then_back(server, fleet_key, paths):
    clock = FakeClock()
    text = make(server, fleet_key, clock=clock)
    server.set_fault("outage")
    try:
        sleeper = Sleeper(on_sleep=lambda n: server.clear_fault() if n == 2 else None)
        outcome = run(text, paths, clock=clock, sleep=sleeper)
    finally:
        server.clear_fault()
    assert outcome.action == "registered" and len(sleeper.delays) == 2
    assert screen(paths).count("waiting for the server") == 2


def test_a_bad_token_is_refused_and_the_code_stays_unused(server, fleet_key, paths):
    clock = FakeClock()
    text = make(server, fleet_key, clock=clock, t="not-a-token-the-server-issued")
    with pytest.raises(ProvisioningError, match="token may be wrong"):
        run(text, paths, clock=clock)
    assert not paths.used_codes.exists()


def reprovision_code(key, *, clock, device_id, server, **over):
    payload = {"id": pc.new_code_id(), "exp": int(clock.time()) + 3600, "u": server.url, "dev": device_id,
               "ca": pc.ca_fingerprint(Path(server.ca_file).read_text()), "s": "Branch 2", "d": "Back door",
               "z": "Europe/London", "l": "ar"}
    payload.update(over)
    return pc.encode(payload, key)


def test_a_reprovisioning_code_moves_the_kiosk_with_the_admin_pin(server, fleet_key, paths):
    from kiosk import pinhash

    clock = FakeClock()
    device_id = run(make(server, fleet_key, clock=clock, p=pinhash.hash_pin("1357")), paths, clock=clock).device_id
    move = reprovision_code(fleet_key, clock=clock, device_id=device_id, server=server)
    for pin, other, reason in ((None, None, "admin_pin"), ("0000", None, "admin_pin"),
                               ("1357", "kiosk-someone-else", "wrong_device")):
        text = move if other is None else reprovision_code(fleet_key, clock=clock, device_id=other, server=server)
        with pytest.raises(pc.CodeRefusedError) as info:
            run(text, paths, clock=clock, admin_pin=pin)
        assert info.value.reason == reason
    assert json.loads(paths.registration_file.read_text())["door"] == "North door"     # nothing changed yet

    outcome = run(move, paths, clock=clock, admin_pin="1357")
    assert (outcome.action, outcome.device_id) == ("reprovisioned", device_id)
    record = json.loads(paths.registration_file.read_text())
    assert (record["site"], record["door"]) == ("Branch 2", "Back door")
    settings = config.load(paths.settings_file)
    assert settings.ui.language == "ar" and settings.device.timezone == "Europe/London"
    assert pinhash.verify_pin("1357", settings.security.admin_pin_hash)        # the PIN survives the rewrite
    assert len(server.devices()) >= 1 and ("reprovisioned" in [a for a, _ in audit_actions(paths)])
    with pytest.raises(pc.CodeRefusedError) as info:
        run(move, paths, clock=clock, admin_pin="1357")
    assert info.value.reason == "reused"


def test_a_reprovisioning_code_on_a_new_kiosk_is_refused(server, fleet_key, paths):
    clock = FakeClock()
    with pytest.raises(pc.CodeRefusedError) as info:
        run(reprovision_code(fleet_key, clock=clock, device_id="kiosk-x", server=server), paths, clock=clock)
    assert info.value.reason == "not_provisioned"


def test_a_failure_after_registering_before_the_settings_lets_the_same_code_finish(server, fleet_key, paths):
    # a power cut (here: an unwritable kiosk.toml.new) once the server answered but before kiosk.toml
    # was written left registration.json and no settings: the firstboot unit no longer ran, and the
    # code was refused 'already_provisioned', so the kiosk could only be re-flashed as a second device
    clock = FakeClock()
    text = make(server, fleet_key, clock=clock)
    devices_before = len(server.devices())
    blocker = paths.settings_file.with_name(paths.settings_file.name + ".new")
    blocker.mkdir()
    with pytest.raises(OSError):
        run(text, paths, clock=clock)
    assert not paths.settings_file.exists()
    assert not paths.registration_file.exists()    # so the next boot provisions again
    key_before = paths.device_key.read_bytes()
    blocker.rmdir()
    outcome = run(text, paths, clock=clock)        # the next boot: the same code shown again
    assert outcome.action == "registered"
    assert paths.device_key.read_bytes() == key_before      # one device identity, registered once
    assert len(server.devices()) == devices_before + 1
    assert config.load(paths.settings_file).sync.device_id == outcome.device_id
    assert json.loads(paths.registration_file.read_text())["device_id"] == outcome.device_id
