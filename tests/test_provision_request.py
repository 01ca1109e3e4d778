"""Provisioning requests: the app files them, `kiosk provision apply-request` (root's side) checks and applies.

Attacks first: the spool is written by the less trusted kiosk user, so a request that is a
symlink, a FIFO, a hard link, too big or malformed is refused and removed without being
followed; a forged, expired or reused re-provisioning code is refused by the root side's own
checks. Then, end to end against the server simulator on 127.0.0.1: a good code moves the
kiosk, and a decommissioning is refused while the server is down, then uploads everything and
wipes.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import code_maker, config, pinhash, provision, provision_apply, provision_by_code
from kiosk import provision_code as pc
from kiosk import provision_request as pr
from kiosk.clock import FakeClock
from kiosk.commands.provision import REFUSED_EXIT
from kiosk.storage import db, events, people

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402


def make_paths(tmp_path):
    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state",
                            result_dir=tmp_path / "results")
    paths.boot_dir.mkdir()
    paths.kiosk_etc.mkdir(parents=True)
    paths.state_dir.mkdir()
    return paths


# --- the spool: hostile files from the kiosk user ------------------------------------------------

@pytest.fixture
def spool(tmp_path):
    paths = make_paths(tmp_path)
    paths.request_dir.mkdir()
    return paths


def refused(paths):
    result = provision_apply.apply_pending(paths, clock=FakeClock())
    assert result is not None and result["done"] is False
    assert pr.read_result(paths) == result                   # the app reads the same answer
    assert os.listdir(paths.request_dir) == []               # and the spool is empty again
    return result["error"]


def test_a_symlinked_request_is_not_followed(spool, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"id": "a1", "action": "decommission"}))
    (spool.request_dir / pr.REQUEST_NAME).symlink_to(secret)
    assert "not a regular file" in refused(spool)
    assert secret.exists()                                   # the link went, not its target


def test_a_fifo_request_is_refused_without_hanging(spool):
    os.mkfifo(spool.request_dir / pr.REQUEST_NAME)
    assert "not a regular file" in refused(spool)


def test_a_hard_linked_request_is_refused(spool, tmp_path):
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"id": "a1", "action": "decommission"}))
    os.link(other, spool.request_dir / pr.REQUEST_NAME)
    assert "hard links" in refused(spool)
    assert other.exists()


def test_an_oversized_request_is_refused(spool):
    (spool.request_dir / pr.REQUEST_NAME).write_text(json.dumps({"id": "a1", "action": "reprovision_code",
                                                                 "code": "K" * pr.MAX_REQUEST_BYTES}))
    assert "over the limit" in refused(spool)


@pytest.mark.parametrize("request_, why", [
    (b"\xff\xfe", "not JSON"),
    ([1, 2], "JSON object"),
    ({"id": "a1", "action": "decommission", "pin": "2468"}, "JSON object"),
    ({"id": "../x", "action": "decommission"}, "valid id"),
    ({"id": "a1", "action": "rm_rf"}, "unknown action"),
    ({"id": "a1", "action": "decommission", "code": "KP1..."}, "a code goes with"),
    ({"id": "a1", "action": "reprovision_code"}, "a code goes with"),
])
def test_a_malformed_request_is_refused(spool, request_, why):
    raw = request_ if isinstance(request_, bytes) else json.dumps(request_).encode()
    (spool.request_dir / pr.REQUEST_NAME).write_bytes(raw)
    assert why in refused(spool)


def test_anything_else_in_the_spool_is_removed_and_a_spool_that_is_a_link_is_not_read(spool, tmp_path):
    (spool.request_dir / "stray.txt").write_text("x")
    (spool.request_dir / "sub").mkdir()
    (spool.request_dir / "sub" / "inner").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (spool.request_dir / "link").symlink_to(outside)
    assert provision_apply.apply_pending(spool, clock=FakeClock()) is None    # no request: nothing to answer
    assert os.listdir(spool.request_dir) == [] and (outside / "keep").exists()
    spool.request_dir.rmdir()
    spool.request_dir.symlink_to(outside)
    assert "not a plain directory" in refused_without_listing(spool)
    assert (outside / "keep").exists()


def refused_without_listing(paths):
    result = provision_apply.apply_pending(paths, clock=FakeClock())
    assert result["done"] is False
    return result["error"]


def test_a_request_on_a_kiosk_not_registered_is_refused(spool):
    pr.file_request(spool, "decommission")
    assert "not registered" in refused(spool)


# --- end to end: `kiosk provision apply-request` against the server simulator --------------------

@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


@pytest.fixture
def kiosk(server, tmp_path):
    """A kiosk provisioned by a signed fleet code (admin PIN set), with 5 attendance events not uploaded."""
    fleet_key, clock = Ed25519PrivateKey.generate(), FakeClock(start=time.time())
    paths = make_paths(tmp_path)
    paths.provisioning_keys.write_text(code_maker.public_hex(fleet_key) + "\n")
    ca_pem = Path(server.ca_file).read_text()
    (paths.boot_dir / "kiosk-ca.pem").write_text(ca_pem)
    text = pc.encode({"id": pc.new_code_id(), "exp": int(clock.time()) + 600, "u": server.url,
                      "t": server.issue_enrolment_token(), "ca": pc.ca_fingerprint(ca_pem), "s": "HQ",
                      "p": pinhash.hash_pin("2468")}, fleet_key)
    device_id = provision_by_code.provision_code(text, paths=paths, clock=clock, sleep=lambda s: None,
                                                 timeout_s=5.0).device_id
    settings = config.load(paths.settings_file)
    database = db.open_db(settings.db_path)
    people.upsert_people(database, [{"person_id": "emp1"}])
    events.record_events(database, [dict(person_id="emp1", status_code=0, verify_mode="pin", score=1.0)] * 5,
                         clock=clock)
    database.close()

    class Kiosk:
        pass

    k = Kiosk()
    k.paths, k.settings, k.device_id, k.fleet_key, k.ca_pem = paths, settings, device_id, fleet_key, ca_pem

    def code(*, signer=None, expires_in_s=600, site="Branch 2"):
        return pc.encode({"id": pc.new_code_id(), "exp": int(time.time() + expires_in_s), "u": server.url,
                          "dev": device_id, "s": site, "d": "South", "z": "UTC", "l": "en",
                          "ca": pc.ca_fingerprint(ca_pem)}, signer or fleet_key)

    k.code = code
    return k


def apply_request(paths):
    """`kiosk provision apply-request` as kiosk-provision-request.service runs it (paths moved to tmp)."""
    command = [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(paths.boot_dir), "--etc-dir",
               str(paths.etc_dir), "--state-dir", str(paths.state_dir), "--timeout-s", "5", "apply-request",
               "--result-dir", str(paths.result_dir)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode in (0, REFUSED_EXIT), run.stderr[-2000:]
    assert os.listdir(paths.request_dir) == []               # the request is gone either way
    return run.returncode, run.stdout + run.stderr


def site(paths):
    return json.loads(paths.registration_file.read_text())["site"]


def test_forged_expired_and_reused_codes_are_refused_by_the_root_side_and_a_good_one_applied(kiosk):
    paths = kiosk.paths
    before = paths.settings_file.read_bytes()
    request_id = pr.file_request(paths, "reprovision_code", code=kiosk.code(signer=Ed25519PrivateKey.generate()))
    code, out = apply_request(paths)
    assert code == REFUSED_EXIT and "bad_signature" in out
    assert pr.read_result(paths, request_id)["error"].startswith("bad_signature:")
    pr.file_request(paths, "reprovision_code", code=kiosk.code(expires_in_s=-60))
    assert apply_request(paths)[0] == REFUSED_EXIT and pr.read_result(paths)["error"].startswith("expired:")
    assert paths.settings_file.read_bytes() == before and site(paths) == "HQ"

    good = kiosk.code()
    request_id = pr.file_request(paths, "reprovision_code", code=good)
    code, out = apply_request(paths)
    assert code == 0, out
    result = pr.read_result(paths, request_id)
    assert result["done"] and result["said"] == "reprovisioned" and result["site"] == "Branch 2"
    assert site(paths) == "Branch 2" and config.load(paths.settings_file).sync.device_id == kiosk.device_id
    pr.file_request(paths, "reprovision_code", code=good)      # the same code shown again
    assert apply_request(paths)[0] == REFUSED_EXIT and pr.read_result(paths)["error"].startswith("reused:")


def test_a_first_provisioning_file_is_not_applied_by_request(kiosk):
    text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
    (kiosk.paths.boot_dir / "kiosk-provision.toml").write_text(text.replace("Head office", "Elsewhere")
                                                                  .replace("PASTE-THE-ONE-TIME-TOKEN-HERE", "t0ken"))
    pr.file_request(kiosk.paths, "reprovision_file")
    assert apply_request(kiosk.paths)[0] == REFUSED_EXIT
    assert "not a re-provisioning file" in pr.read_result(kiosk.paths)["error"] and site(kiosk.paths) == "HQ"


def test_a_database_replaced_by_a_link_is_not_touched_by_root(kiosk, tmp_path):
    wal = Path(f"{kiosk.settings.db_path}-wal")
    wal.unlink(missing_ok=True)
    target = tmp_path / "root-file"
    target.write_text("root's")
    wal.symlink_to(target)
    pr.file_request(kiosk.paths, "decommission")
    assert apply_request(kiosk.paths)[0] == REFUSED_EXIT
    assert "not a plain file" in pr.read_result(kiosk.paths)["error"]
    assert target.read_text() == "root's" and kiosk.paths.registration_file.exists()


def test_decommission_is_refused_while_the_server_is_down_then_uploads_everything_and_wipes(kiosk, server):
    paths, settings = kiosk.paths, kiosk.settings
    server.set_fault("outage")
    try:
        request_id = pr.file_request(paths, "decommission")
        code, out = apply_request(paths)
    finally:
        server.clear_fault()
    assert code == REFUSED_EXIT
    error = pr.read_result(paths, request_id)["error"]
    assert "5 record(s) are not uploaded" in error and "nothing was wiped" in error
    assert Path(settings.db_path).exists() and paths.registration_file.exists()
    assert len(server.events(kiosk.device_id)) == 0
    request_id = pr.file_request(paths, "decommission")
    code, out = apply_request(paths)
    assert code == 0, out
    result = pr.read_result(paths, request_id)
    assert result["done"] and result["said"] == "decommissioned" and result["wiped"] >= 5
    assert len(server.events(kiosk.device_id)) == 5
    for path in (settings.db_path, settings.security.data_key_file, settings.security.device_key_file,
                 paths.registration_file, paths.settings_file):
        assert not Path(path).exists()
    assert paths.used_codes.exists() and paths.provisioning_keys.exists()


def test_an_answer_that_comes_after_the_page_stopped_waiting_is_shown_when_the_page_is_opened_again(kiosk, tmp_path):
    """A long upload: the page stops waiting (here at once), the helper answers later, the page shows it then."""
    from types import SimpleNamespace

    from kiosk.admin_provisioning import AdminProvisioning

    shown, later, stopped = [], [], []
    pages = SimpleNamespace(settings=kiosk.settings, sync_worker=None, poller=None, camera=None, db=None,
                            clock=FakeClock())
    page = AdminProvisioning(pages, paths=kiosk.paths, show=lambda screen, **data: shown.append(data),
                             request_restart=None, request_stop=lambda: stopped.append(True),
                             timer=lambda delay_s, action: later.append(action),
                             settings_dir=tmp_path / "not-there", request_wait_s=0.0, sleep=lambda s: None)
    result = page.decommission()
    assert result == {"waiting": True, "said": "request_waiting"} and shown[-1]["result"] == result
    assert page.page()["request_waiting"] is True and pr.is_pending(kiosk.paths)
    assert kiosk.paths.registration_file.exists()                # the app itself wiped nothing
    provision_apply.apply_pending(kiosk.paths, clock=FakeClock(start=time.time()), timeout_s=5.0)
    assert page.page()["last_request"] == "decommissioned" and not kiosk.paths.registration_file.exists()
    assert later == [page.request_stop]                          # the kiosk stops, once
    assert "last_request" not in page.page() and later == [page.request_stop]
