"""`kiosk provision` end to end against the central server simulator (real HTTP, real TLS):
success, bad token, unreachable server, repeated runs, signed re-provisioning."""

import json
import logging
import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import config, provision, provision_file
from kiosk.clock import FakeClock
from kiosk.errors import ProvisioningError
from kiosk.storage import audit, db
from kiosk.sync import keys, protocol

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


@pytest.fixture
def paths(tmp_path):
    p = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    p.boot_dir.mkdir()
    (p.boot_dir / "cmdline.txt").write_text("console=tty1 root=PARTUUID=5e3da3da-02 rootwait quiet\n")
    return p


class Sleeper:
    """Records the waits instead of sleeping; can run something at a given wait."""

    def __init__(self, on_sleep=None):
        self.delays = []
        self.on_sleep = on_sleep

    def __call__(self, seconds):
        self.delays.append(seconds)
        if self.on_sleep:
            self.on_sleep(len(self.delays))


def write_file(paths, server, *, token, url=None, extra="", signer=""):
    (paths.boot_dir / "kiosk-ca.pem").write_text(Path(server.ca_file).read_text())
    text = f'''# test provisioning file
[server]
url = "{url or server.url}"
ca_file = "kiosk-ca.pem"
enrolment_token = "{token}"

[device]
site = "Head office"
door = "Main entrance"
timezone = "Asia/Riyadh"
language = "en"

[wifi]
ssid = "office-wifi"
psk = "correct horse battery"
country = "SA"

[admin]
pin_hash = "{provision_file.hash_pin("4321", salt=b"0123456789abcdef")}"
signing_public_key = "{signer}"
{extra}'''
    path = paths.boot_dir / provision_file.FILE_NAME
    path.write_text(text)
    return path


def run(paths, **kw):
    kw.setdefault("console", provision.Console(paths.boot_dir.parent / "tty1"))
    kw.setdefault("clock", FakeClock())
    kw.setdefault("sleep", Sleeper())
    kw.setdefault("timeout_s", 5.0)
    return provision.provision(paths=paths, **kw)


def screen(paths):
    return (paths.boot_dir.parent / "tty1").read_text()


def everything_under(*dirs):
    for d in dirs:
        for f in Path(d).rglob("*"):
            if f.is_file():
                yield f, f.read_bytes()


def audit_actions(paths):
    database = db.open_db(paths.database)
    try:
        return [e["action"] for e in audit.entries(database)]
    finally:
        database.conn.close()


def test_success_registers_writes_settings_and_erases_the_token(server, paths, caplog):
    token = server.issue_enrolment_token()
    write_file(paths, server, token=token)
    before = len(server.devices())
    with caplog.at_level(logging.DEBUG):
        outcome = run(paths)
    assert outcome.action == "registered"
    devices = server.devices()
    assert len(devices) == before + 1
    key = keys.load_device_key(paths.device_key)
    mine = [d for d in devices if d["device_id"] == outcome.device_id]
    assert mine and mine[0]["public_key"] == protocol.public_key_hex(key)
    assert stat.S_IMODE(paths.device_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.data_key.stat().st_mode) == 0o600
    # settings: valid for kiosk.config, pointing at the server, this device and its keys
    settings = config.check_file(paths.settings_file)
    assert settings.sync.device_id == outcome.device_id
    assert settings.sync.server_url == server.url
    assert Path(settings.sync.ca_file).read_text() == Path(server.ca_file).read_text()
    assert settings.ui.language == "en" and settings.device.timezone == "Asia/Riyadh"
    assert settings.security.device_key_file == str(paths.device_key)
    assert provision_file.check_pin("4321", settings.security.admin_pin_hash)
    assert settings.storage.data_dir == str(paths.state_dir)
    # time zone and Wi-Fi
    assert (paths.etc_dir / "timezone").read_text() == "Asia/Riyadh\n"
    assert os.readlink(paths.etc_dir / "localtime") == "/usr/share/zoneinfo/Asia/Riyadh"
    wifi = paths.etc_dir / "NetworkManager/system-connections/kiosk-wifi.nmconnection"
    assert "ssid=office-wifi" in wifi.read_text() and stat.S_IMODE(wifi.stat().st_mode) == 0o600
    assert "cfg80211.ieee80211_regdom=SA" in (paths.boot_dir / "cmdline.txt").read_text()
    # the token is gone from the boot partition and was never written or logged anywhere
    assert not (paths.boot_dir / provision_file.FILE_NAME).exists()
    done = (paths.boot_dir / (provision_file.FILE_NAME + ".done")).read_text()
    assert "# enrolment_token: erased" in done and "# psk: erased" in done and "Main entrance" in done
    for path, data in everything_under(paths.boot_dir, paths.etc_dir, paths.state_dir):
        assert token.encode() not in data, path
        assert b"correct horse battery" not in data or path == wifi, path
    assert not any(token in r.getMessage() for r in caplog.records)
    assert audit_actions(paths) == ["registered"]
    assert "done" in screen(paths) and outcome.device_id in screen(paths)


def test_a_second_run_registers_no_second_device(server, paths):
    token = server.issue_enrolment_token()
    write_file(paths, server, token=token)
    first = run(paths)
    devices, requests = len(server.devices()), server.requests
    # nothing on the boot partition: nothing to do
    assert run(paths).action == "nothing"
    # the same file again (a run that stopped before renaming it): finished without the server
    (paths.boot_dir / provision_file.FILE_NAME).write_text(
        (paths.boot_dir / (provision_file.FILE_NAME + ".done")).read_text().replace(
            "# enrolment_token: erased", f'enrolment_token = "{token}"\n#', 1))
    again = run(paths)
    assert again.action == "resumed" and again.device_id == first.device_id
    assert server.requests == requests and len(server.devices()) == devices
    # registered by the server but the answer lost (no registration record): the same key and
    # token get the same device id back, not a second device
    paths.registration_file.unlink()
    write_file(paths, server, token=token)
    lost = run(paths)
    assert lost.action == "registered" and lost.device_id == first.device_id
    assert len(server.devices()) == devices
    assert audit_actions(paths) == ["registered", "resumed", "registered"]


def test_another_unsigned_file_on_a_registered_kiosk_is_rejected(server, paths):
    write_file(paths, server, token=server.issue_enrolment_token())
    first = run(paths)
    other = server.issue_enrolment_token()
    write_file(paths, server, token=other)
    devices = len(server.devices())
    with pytest.raises(ProvisioningError, match="already provisioned as device"):
        run(paths)
    assert len(server.devices()) == devices
    rejected = (paths.boot_dir / (provision_file.FILE_NAME + ".rejected")).read_text()
    assert other not in rejected
    assert not (paths.boot_dir / provision_file.FILE_NAME).exists()   # the kiosk keeps running
    assert config.check_file(paths.settings_file).sync.device_id == first.device_id
    assert audit_actions(paths)[0] == "provisioning_rejected"


def test_bad_token_is_refused_without_retrying(server, paths):
    write_file(paths, server, token="this-token-was-never-issued")
    sleeper = Sleeper()
    with pytest.raises(ProvisioningError) as e:
        run(paths, sleep=sleeper)
    assert "refused" in str(e.value) and "new one" in str(e.value)
    assert sleeper.delays == []
    assert not paths.settings_file.exists() and not paths.registration_file.exists()
    assert (paths.boot_dir / provision_file.FILE_NAME).exists()   # left for the technician to fix
    assert "provisioning failed" in screen(paths) and "ask for a new one" in screen(paths)


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def test_unreachable_server_is_retried_with_backoff_and_the_screen_says_why(server, paths):
    write_file(paths, server, token=server.issue_enrolment_token(), url=closed_port_url())
    sleeper = Sleeper()
    with pytest.raises(ProvisioningError, match="could not be reached after 4 attempts"):
        run(paths, sleep=sleeper, max_attempts=4, max_backoff_s=300.0)
    assert len(sleeper.delays) == 3
    # equal-jitter exponential backoff from 2 s: each wait within [ceiling/2, ceiling]
    for n, delay in enumerate(sleeper.delays):
        assert 2.0 * 2 ** n / 2 <= delay <= 2.0 * 2 ** n
    shown = screen(paths)
    assert shown.count("waiting for the server") == 3
    assert "trying again in" in shown and "Check the network cable or Wi-Fi" in shown
    assert not paths.settings_file.exists()


def test_server_that_comes_back_during_the_retries(server, paths):
    token = server.issue_enrolment_token()
    write_file(paths, server, token=token)
    server.set_fault("outage")
    try:
        sleeper = Sleeper(on_sleep=lambda n: server.clear_fault() if n == 2 else None)
        outcome = run(paths, sleep=sleeper)
    finally:
        server.clear_fault()
    assert outcome.action == "registered"
    assert len(sleeper.delays) == 2
    assert screen(paths).count("waiting for the server") == 2


def test_every_problem_in_the_file_is_named_at_once(server, paths):
    (paths.boot_dir / provision_file.FILE_NAME).write_text('''
[server]
url = "ftp://nowhere"
enrolment_token = "PASTE-THE-ONE-TIME-TOKEN-HERE"
colour = "blue"
[device]
timezone = "Mars/Olympus"
language = "fr"
[wifi]
ssid = "x"
psk = "short"
[settings.face]
match_threshold = 7
''')
    with pytest.raises(ProvisioningError) as e:
        run(paths)
    message = str(e.value)
    for key in ("server.url", "server.enrolment_token: still the example's placeholder", "server.colour",
                "device.timezone", "device.language", "wifi.psk", "wifi.country", "face.match_threshold"):
        assert key in message
    assert "8 problem(s)" in message
    assert "device.timezone" in screen(paths) and "Fix kiosk-provision.toml" in screen(paths)


def test_signed_reprovisioning_changes_settings_and_refuses_replays_and_forgeries(server, paths):
    admin = Ed25519PrivateKey.generate()
    signer = protocol.public_key_hex(admin)
    write_file(paths, server, token=server.issue_enrolment_token(), signer=signer)
    first = run(paths)
    devices = len(server.devices())

    def reprovision_file(sequence, door, key):
        path = write_file(paths, server, token="", signer=signer,
                          extra=f'\n[reprovision]\ndevice_id = "{first.device_id}"\nsequence = {sequence}\n'
                                '\n[settings.attendance]\nstatus_rule = "first_in_last_out"\n')
        path.write_text(path.read_text().replace("Main entrance", door))
        provision_file.signature_path(path).write_text(provision_file.sign(path.read_bytes(), key))
        return path

    reprovision_file(1, "Side door", admin)
    assert run(paths).action == "reprovisioned"
    settings = config.check_file(paths.settings_file)
    assert settings.attendance.status_rule == "first_in_last_out"
    assert settings.sync.device_id == first.device_id
    assert json.loads(paths.registration_file.read_text())["door"] == "Side door"
    # the same (validly signed) file again: a replay
    reprovision_file(1, "Back door", admin)
    with pytest.raises(ProvisioningError, match="not newer"):
        run(paths)
    # signed by someone else
    reprovision_file(2, "Back door", Ed25519PrivateKey.generate())
    with pytest.raises(ProvisioningError, match="signature does not match"):
        run(paths)
    # changed after signing
    path = reprovision_file(3, "Back door", admin)
    path.write_text(path.read_text().replace("Back door", "Vault"))
    with pytest.raises(ProvisioningError, match="signature does not match"):
        run(paths)
    assert json.loads(paths.registration_file.read_text())["door"] == "Side door"
    assert len(server.devices()) == devices
    assert audit_actions(paths)[:4] == ["provisioning_rejected"] * 3 + ["reprovisioned"]


def test_time_zone_localtime_is_refused_before_anything_is_registered(server, paths):
    # Debian's /usr/share/zoneinfo/localtime points at /etc/localtime: linking /etc/localtime to it
    # made a loop, after which kiosk.toml never loaded again (registered, settings unwritable, every boot)
    path = write_file(paths, server, token=server.issue_enrolment_token())
    path.write_text(path.read_text().replace('timezone = "Asia/Riyadh"', 'timezone = "localtime"'))
    with pytest.raises(ProvisioningError) as e:
        run(paths)
    assert "device.timezone" in str(e.value)
    assert not paths.registration_file.exists()
    assert not (paths.etc_dir / "localtime").is_symlink()
    with pytest.raises(config.ConfigError):
        config.build([("test", {"device": {"timezone": "localtime"}})])


def test_a_signed_reprovisioning_file_without_a_pin_hash_keeps_the_admin_pin(server, paths):
    # as a re-provisioning code does: a file that only moves the kiosk to another door must not leave it
    # without an admin PIN (no admin menu by PIN, no decommission, every later re-provisioning code refused)
    admin = Ed25519PrivateKey.generate()
    signer = protocol.public_key_hex(admin)
    write_file(paths, server, token=server.issue_enrolment_token(), signer=signer)
    first = run(paths)
    pin_hash = config.check_file(paths.settings_file).security.admin_pin_hash
    assert provision_file.check_pin("4321", pin_hash)
    path = write_file(paths, server, token="", signer=signer,
                      extra=f'\n[reprovision]\ndevice_id = "{first.device_id}"\nsequence = 1\n')
    text = path.read_text()
    text = text.replace("Main entrance", "Side door").replace(text[text.index("pin_hash ="):].split("\n")[0], "")
    path.write_text(text)
    assert "pin_hash" not in text
    provision_file.signature_path(path).write_text(provision_file.sign(path.read_bytes(), admin))
    assert run(paths).action == "reprovisioned"
    settings = config.check_file(paths.settings_file)
    assert json.loads(paths.registration_file.read_text())["door"] == "Side door"
    assert settings.security.admin_pin_hash == pin_hash


def test_a_failure_while_reprovisioning_before_the_settings_lets_the_next_boot_apply_it(server, paths):
    # a power cut (here: an unwritable kiosk.toml.new) after registration.json took the new sequence but
    # before kiosk.toml was written: the next boot refused the same file as 'not newer' and set it aside,
    # leaving the record on the new server and sequence while the settings stayed the old ones
    admin = Ed25519PrivateKey.generate()
    signer = protocol.public_key_hex(admin)
    write_file(paths, server, token=server.issue_enrolment_token(), signer=signer)
    first = run(paths)
    path = write_file(paths, server, token="", signer=signer,
                      extra=f'\n[reprovision]\ndevice_id = "{first.device_id}"\nsequence = 1\n'
                            '\n[settings.attendance]\nstatus_rule = "first_in_last_out"\n')
    provision_file.signature_path(path).write_text(provision_file.sign(path.read_bytes(), admin))
    blocker = paths.settings_file.with_name(paths.settings_file.name + ".new")
    blocker.mkdir()
    with pytest.raises(OSError):
        run(paths)
    blocker.rmdir()
    assert run(paths).action == "reprovisioned"      # the next boot: the file is still there
    assert config.check_file(paths.settings_file).attendance.status_rule == "first_in_last_out"
    assert json.loads(paths.registration_file.read_text())["sequence"] == 1
