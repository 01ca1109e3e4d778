"""The provisioning page on a kiosk whose settings are read-only to it, as under kiosk.service.

Under `kiosk run --backend sim` (run_kiosk), with the page's writability check pointed at a
directory this process cannot write (the test may run as root, which writes anything, so a
path that does not exist stands in for the read-only mount). The page then files a request,
shows "waiting for the system to apply it", and shows the root side's answer, which the test
gives by running the helper's own code (provision_apply.apply_pending) once the request is
filed, as kiosk-provision-request.service would.
"""

import os
from pathlib import Path

import pytest
from test_admin_provisioning_e2e import ADMIN_PIN, open_provisioning_page, reprovision_code, show_close
from test_first_boot_e2e import WAIT_S, Blank

from kiosk import config, pinhash, provision_apply
from kiosk import provision_request as pr
from kiosk.storage import db, events, people


@pytest.fixture(scope="module")
def server():
    from test_first_boot_e2e import ServerSimulator

    with ServerSimulator(tls=True) as srv:
        yield srv


def read_only_dir(tmp_path):
    """A settings directory this process cannot write (kiosk.service: ReadOnlyPaths=/etc/kiosk)."""
    ro = tmp_path / "etc-kiosk-ro"
    ro.mkdir()
    ro.chmod(0o500)
    return ro if not os.access(ro, os.W_OK) else ro / "not-there"    # root writes a 0500 directory


@pytest.fixture
def running(tmp_path, server):
    kiosk = Blank(tmp_path, server)
    kiosk.start(kiosk.show_code(kiosk.code(p=pinhash.hash_pin(ADMIN_PIN))), admin_scan_s=20.0, admin_hold_s=0.5,
                admin_settings_dir=read_only_dir(tmp_path))
    _, done = kiosk.wait_for("provision_done")
    kiosk.device_id = done["device_id"]
    kiosk.home()
    yield kiosk
    kiosk.stop.set()
    kiosk.thread.join(WAIT_S)


def act_through_the_system(kiosk, action, *, since):
    """Confirm ``action``; once the page says it waits, run the root helper; the page's answer."""
    kiosk.kiosk.host.post("action_requested", action=action)
    at, _ = kiosk.wait_for("admin_confirm", since=since)
    kiosk.kiosk.host.post("confirmed")
    at, page = kiosk.wait_for("admin_page", since=at, where=lambda d: (d.get("result") or {}).get("waiting"))
    assert page["result"]["said"] == "request_waiting" and page["content"]["request_waiting"] is True
    assert pr.is_pending(kiosk.paths)                           # filed in the spool, not applied by the app
    provision_apply.apply_pending(kiosk.paths, clock=kiosk.clock, timeout_s=5.0)
    return kiosk.wait_for("admin_page", since=at + 1, where=lambda d: d.get("result") is not None)


def test_a_code_at_the_admin_page_is_applied_by_the_system_the_kiosk_restarts_and_it_is_not_reused(running, tmp_path):
    at, _ = open_provisioning_page(running)
    before = running.paths.settings_file.read_bytes()
    code = reprovision_code(running)
    show_close(running, code, tmp_path)
    at, page = act_through_the_system(running, "reprovision_code", since=at)
    assert page["result"]["done"] and page["result"]["said"] == "reprovisioned"
    assert (page["result"]["site"], page["result"]["door"]) == ("Branch 2", "South")
    assert running.paths.settings_file.read_bytes() != before
    assert '"site": "Branch 2"' in running.paths.registration_file.read_text()
    at, _ = running.wait_for("attendance_idle", since=at)       # started again with the new settings
    # the same code again: the app does not read root's used-code list, the root side refuses it
    at, _ = open_provisioning_page(running)
    show_close(running, code, tmp_path)
    at, page = act_through_the_system(running, "reprovision_code", since=at)
    assert page["result"]["error"].startswith("reused:")


def test_decommissioning_by_request_is_refused_while_the_server_is_down_then_done(running, server):
    settings = config.load(running.paths.settings_file)
    database = db.open_db(settings.db_path)
    people.upsert_people(database, [{"person_id": "emp1"}])
    server.set_fault("outage")
    try:
        events.record_events(database, [dict(person_id="emp1", status_code=0, verify_mode="face", score=0.9)] * 7,
                             clock=running.clock)
        database.close()
        at, _ = open_provisioning_page(running)
        at, page = act_through_the_system(running, "decommission", since=at)
    finally:
        server.clear_fault()
    assert "7 record(s) are not uploaded" in page["result"]["error"]
    assert Path(settings.security.device_key_file).exists() and running.thread.is_alive()
    at, page = act_through_the_system(running, "decommission", since=at)
    result = page["result"]
    assert result["done"] and result["said"] == "decommissioned" and result["wiped"] >= 5
    assert result["sensor_cleared"] is True                      # the app empties the sensor it holds
    assert len(server.events(running.device_id)) == 7
    for path in (settings.db_path, settings.security.data_key_file, running.paths.settings_file):
        assert not Path(path).exists()
    running.thread.join(WAIT_S)                                  # and the kiosk stops
    assert not running.thread.is_alive() and running.error is None
