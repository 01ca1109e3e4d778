"""Decommissioning a kiosk provisioned on the simulators: PIN, upload everything, then wipe."""

import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import code_maker, config, decommission, pinhash, provision, provision_by_code
from kiosk import provision_code as pc
from kiosk.clock import FakeClock
from kiosk.storage import db, events, people, seal
from kiosk.sync import service, worker

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


@pytest.fixture
def kiosk(server, tmp_path):
    """A kiosk provisioned by a signed code, with 30 attendance events not uploaded yet."""
    key, clock = Ed25519PrivateKey.generate(), FakeClock()
    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    paths.boot_dir.mkdir()
    paths.kiosk_etc.mkdir(parents=True)
    paths.provisioning_keys.write_text(code_maker.public_hex(key) + "\n")
    (paths.boot_dir / "kiosk-ca.pem").write_text(Path(server.ca_file).read_text())
    text = pc.encode({"id": pc.new_code_id(), "exp": int(clock.time()) + 600, "u": server.url,
                      "t": server.issue_enrolment_token(), "ca": pc.ca_fingerprint(Path(server.ca_file).read_text()),
                      "p": pinhash.hash_pin("2468")}, key)
    outcome = provision_by_code.provision_code(text, paths=paths, clock=clock, sleep=lambda s: None, timeout_s=5.0)
    settings = config.load(paths.settings_file)
    database = db.open_db(settings.db_path)
    people.upsert_people(database, [{"person_id": "emp1"}])
    events.record_events(database, [dict(person_id="emp1", status_code=0, verify_mode="face", score=0.9)] * 30,
                         clock=clock)
    sync_worker = service.build_worker(settings, database, clock=clock,
                                       data_key=seal.DataKey.load(Path(settings.security.data_key_file)))
    yield paths, settings, database, sync_worker, outcome.device_id
    sync_worker.client.close()


def run(kiosk, *, pin, sensor=None):
    paths, settings, database, sync_worker, _ = kiosk
    return decommission.decommission(settings=settings, paths=paths, pin=pin, database=database,
                                     run_sync_cycle=sync_worker.run_once,
                                     sync_status=lambda: worker.status(database), clear_sensor=sensor)


def test_wrong_pin_changes_nothing(kiosk, server):
    paths, settings, *_ = kiosk
    with pytest.raises(decommission.DecommissionRefusedError, match="wrong admin PIN"):
        run(kiosk, pin="0000")
    assert Path(settings.db_path).exists() and paths.registration_file.exists()


def test_unreachable_server_wipes_nothing_and_says_how_many_wait(kiosk, server):
    paths, settings, database, _, device_id = kiosk
    server.set_fault("outage")
    try:
        with pytest.raises(decommission.DecommissionRefusedError, match=r"30 record\(s\) are not uploaded"):
            run(kiosk, pin="2468")
    finally:
        server.clear_fault()
    assert Path(settings.security.data_key_file).exists() and Path(settings.db_path).exists()
    assert len(server.events(device_id)) == 0


def test_everything_is_uploaded_then_keys_templates_and_database_are_wiped(kiosk, server):
    paths, settings, _, _, device_id = kiosk
    cleared = []
    result = run(kiosk, pin="2468", sensor=lambda: cleared.append(True))
    assert len(server.events(device_id)) == 30
    for path in (settings.db_path, settings.security.data_key_file, settings.security.device_key_file,
                 paths.registration_file, paths.settings_file):
        assert not Path(path).exists() and str(path) in result.wiped
    assert result.sensor_cleared and cleared == [True]
    assert paths.used_codes.exists() and paths.provisioning_keys.exists()     # a used code stays used
