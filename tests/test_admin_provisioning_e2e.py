"""The provisioning page from the admin menu, end to end under `kiosk run --backend sim` (run_kiosk).

A kiosk provisioned by a signed code at first boot; the admin enters with the admin PIN, opens
the provisioning page, and shows a code to the camera (the simulator's ``code_close`` scenario,
played once the kiosk runs). Attacks first: a forged re-provisioning code is refused with its
reason and changes nothing. Then a signed one moves the kiosk to another site and the kiosk
starts again with it; and decommissioning refuses while the server is down (saying how many
records wait), then uploads everything, wipes keys, templates and database, and stops.
"""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_first_boot_e2e import Blank, WAIT_S

from kiosk import config, pinhash
from kiosk import provision_code as pc
from kiosk.storage import db, events, people

ADMIN_PIN = "2468"


@pytest.fixture(scope="module")
def server():
    from test_first_boot_e2e import ServerSimulator

    with ServerSimulator(tls=True) as srv:
        yield srv


@pytest.fixture
def running(tmp_path, server):
    """A kiosk provisioned by a signed code carrying the admin PIN hash, at its home screen."""
    kiosk = Blank(tmp_path, server)
    kiosk.start(kiosk.show_code(kiosk.code(p=pinhash.hash_pin(ADMIN_PIN))), admin_scan_s=20.0, admin_hold_s=0.5)
    _, done = kiosk.wait_for("provision_done")
    kiosk.device_id = done["device_id"]
    kiosk.home_at, _ = kiosk.home()
    yield kiosk
    kiosk.stop.set()
    kiosk.thread.join(WAIT_S)


def open_provisioning_page(kiosk, *, pin=ADMIN_PIN):
    post = kiosk.kiosk.host.post
    since = len(kiosk.shown)
    post("admin_requested")
    at, _ = kiosk.wait_for("admin_locked", since=since)
    post("pin_entered", pin=pin)
    at, _ = kiosk.wait_for("admin_menu", since=at)
    post("page_requested", page="provisioning")
    return kiosk.wait_for("admin_page", since=at, where=lambda d: d["page"] == "provisioning")


def run_action(kiosk, action, *, since):
    kiosk.kiosk.host.post("action_requested", action=action)
    at, _ = kiosk.wait_for("admin_confirm", since=since)
    kiosk.kiosk.host.post("confirmed")
    return kiosk.wait_for("admin_page", since=at, where=lambda d: d.get("result") is not None)


def show_close(kiosk, text, tmp_path):
    path = tmp_path / "second-code.txt"
    path.write_text(text)
    kiosk.sims.player.play(f"code_close:code_file={path}")


def reprovision_code(kiosk, *, signer=None):
    return pc.encode({"id": pc.new_code_id(), "exp": int(kiosk.clock.time()) + 600, "u": kiosk.server.url,
                      "dev": kiosk.device_id, "s": "Branch 2", "d": "South", "z": "UTC", "l": "en",
                      "ca": pc.ca_fingerprint(kiosk.ca_pem)}, signer or kiosk.fleet_key)


def test_a_forged_reprovisioning_code_is_refused_at_the_admin_page(running, tmp_path):
    at, page = open_provisioning_page(running)
    assert page["content"]["device_id"] == running.device_id and page["content"]["site"] == "HQ"
    assert page["actions"] == ["reprovision_code", "reprovision_file", "decommission"]
    show_close(running, reprovision_code(running, signer=Ed25519PrivateKey.generate()), tmp_path)
    _, page = run_action(running, "reprovision_code", since=at)
    assert page["result"]["error"].startswith("bad_signature:")
    assert any(name == "provision_refused" and data["reason"] == "bad_signature"
               for name, data in running.shown[at:])
    assert config.load(running.paths.settings_file).sync.device_id == running.device_id
    assert '"site": "HQ"' in running.paths.registration_file.read_text()


def test_a_signed_code_from_the_admin_page_moves_the_kiosk_and_it_restarts(running, tmp_path, server):
    devices = len(server.devices())
    at, _ = open_provisioning_page(running)
    show_close(running, reprovision_code(running), tmp_path)
    at, page = run_action(running, "reprovision_code", since=at)
    assert page["result"]["done"] and (page["result"]["site"], page["result"]["door"]) == ("Branch 2", "South")
    first = running.kiosk
    running.wait_for("attendance_idle", since=at)            # the kiosk started again ...
    assert running.kiosk is not first                        # ... as a new kiosk, with the new settings
    assert running.kiosk.ports.pages.settings.sync.device_id == running.device_id
    assert '"site": "Branch 2"' in running.paths.registration_file.read_text()
    assert len(server.devices()) == devices                  # moved, not registered twice


def test_a_signed_file_from_the_admin_page_moves_the_kiosk_and_a_forged_one_does_not(tmp_path, server):
    from conftest import ROOT
    from kiosk import code_maker, provision_file

    admin_key = Ed25519PrivateKey.generate()         # may sign re-provisioning files ("rk" in the first code)
    kiosk = Blank(tmp_path, server)
    kiosk.start(kiosk.show_code(kiosk.code(p=pinhash.hash_pin(ADMIN_PIN), rk=code_maker.public_hex(admin_key))),
                admin_hold_s=0.5)
    try:
        _, done = kiosk.wait_for("provision_done")
        kiosk.home()
        text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
        text = text.replace("https://kiosk-server.example.org", server.url).replace("PASTE-THE-ONE-TIME-TOKEN-HERE", "")
        text = text.replace("Head office", "Branch 3") + (f'\n[reprovision]\ndevice_id = "{done["device_id"]}"\n'
                                                          'sequence = 1\n')
        path = kiosk.paths.boot_dir / provision_file.FILE_NAME

        def put(signer):
            path.write_text(text)
            provision_file.signature_path(path).write_text(provision_file.sign(path.read_bytes(), signer))

        put(Ed25519PrivateKey.generate())            # a stranger's signature
        at, _ = open_provisioning_page(kiosk)
        at, page = run_action(kiosk, "reprovision_file", since=at)
        assert "signature does not match" in page["result"]["error"]
        assert '"site": "HQ"' in kiosk.paths.registration_file.read_text()
        put(admin_key)
        at, page = run_action(kiosk, "reprovision_file", since=at)
        assert page["result"]["done"] and page["result"]["site"] == "Branch 3"
        kiosk.wait_for("attendance_idle", since=at)      # started again with the new settings
        assert '"site": "Branch 3"' in kiosk.paths.registration_file.read_text()
    finally:
        kiosk.stop.set()
        kiosk.thread.join(WAIT_S)


def test_decommissioning_waits_for_the_server_then_uploads_everything_and_wipes(running, tmp_path, server):
    settings = config.load(running.paths.settings_file)
    database = db.open_db(settings.db_path)
    people.upsert_people(database, [{"person_id": "emp1"}])
    server.set_fault("outage")
    try:
        events.record_events(database, [dict(person_id="emp1", status_code=0, verify_mode="face", score=0.9)] * 12,
                             clock=running.clock)
        database.close()
        at, _ = open_provisioning_page(running)
        at, page = run_action(running, "decommission", since=at)
        error = page["result"]["error"]
        assert "12 record(s) are not uploaded" in error and "nothing was wiped" in error
        assert Path(settings.security.device_key_file).exists() and Path(settings.db_path).exists()
    finally:
        server.clear_fault()
    _, page = run_action(running, "decommission", since=at)
    assert page["result"]["done"] and page["result"]["said"] == "decommissioned" and page["result"]["wiped"] >= 5
    assert len(server.events(running.device_id)) == 12
    for path in (settings.db_path, settings.security.data_key_file, settings.security.device_key_file,
                 running.paths.registration_file, running.paths.settings_file):
        assert not Path(path).exists()
    running.thread.join(WAIT_S)                              # and the kiosk stops
    assert not running.thread.is_alive() and running.error is None


def test_kiosk_provision_decommission_command(tmp_path, server):
    """The same from the command line (kiosk.service stopped): refused while the server is down, then done."""
    import subprocess
    import sys

    from conftest import ROOT
    from kiosk import provision_by_code

    kiosk = Blank(tmp_path, server)
    kiosk.paths.state_dir.mkdir()
    provision_by_code.provision_code(kiosk.code(p=pinhash.hash_pin(ADMIN_PIN)), paths=kiosk.paths, clock=kiosk.clock,
                                     sleep=lambda s: None, timeout_s=5.0)
    settings = config.load(kiosk.paths.settings_file)
    database = db.open_db(settings.db_path)
    people.upsert_people(database, [{"person_id": "emp1"}])
    events.record_events(database, [dict(person_id="emp1", status_code=0, verify_mode="pin", score=1.0)] * 5,
                         clock=kiosk.clock)
    database.close()
    command = [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(kiosk.paths.boot_dir), "--etc-dir",
               str(kiosk.paths.etc_dir), "--state-dir", str(kiosk.paths.state_dir), "decommission",
               "--admin-pin-stdin", "--no-sensor"]

    def run(pin):
        return subprocess.run(command, input=pin + "\n", capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert "wrong admin PIN" in run("0000").stderr
    server.set_fault("outage")
    try:
        refused = run(ADMIN_PIN)
    finally:
        server.clear_fault()
    assert refused.returncode == 1 and "5 record(s) are not uploaded" in refused.stderr
    assert kiosk.paths.registration_file.exists()
    done = run(ADMIN_PIN)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "decommissioned" in done.stdout and not kiosk.paths.registration_file.exists()
    device_id = settings.sync.device_id
    assert len(server.events(device_id)) == 5
    assert not Path(settings.db_path).exists() and not Path(settings.security.device_key_file).exists()


