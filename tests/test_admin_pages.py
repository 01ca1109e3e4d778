"""The admin pages on real storage and the mock GPIO pins: what each shows, what each action does."""

import logging

import pytest

from kiosk import config
from kiosk.admin_pages import PUNCH_MODE_META, RECENT, AdminPages
from kiosk.clock import FakeClock
from kiosk.drivers.gpio import Board
from kiosk.flows.admin import AdminFlow
from kiosk.storage import db, events, people
from kiosk_sim.gpio import Panel, SimFactory

from flow_fakes import RecordingPorts


@pytest.fixture
def parts(tmp_path):
    settings = config.build([("test", {"storage": {"data_dir": str(tmp_path / "data")},
                                       "gpio": {"door_pulse_s": 0.2}})])
    database = db.open_db(settings.db_path)
    clock = FakeClock(start=1_800_000_000.0)
    people.upsert_people(database, [{"person_id": f"e{n}", "name": f"E {n}"} for n in range(3)])
    events.record_event(database, person_id="e1", status_code=0, verify_mode="pin", clock=clock)
    factory = SimFactory()
    board = Board(settings.gpio, pin_factory=factory)
    yield settings, database, clock, board, Panel(factory, settings.gpio)
    board.close()


def pages(parts, **kw):
    settings, database, clock, board, _ = parts
    return AdminPages(settings=settings, database=database, clock=clock, board=board, **kw)


def test_people_events_and_outbox_pages_read_storage(parts):
    admin = pages(parts)
    shown = admin.answer("people")
    assert [r["person_id"] for r in shown["rows"]] == ["e0", "e1", "e2"] and shown["total"] == 3
    assert [r["person_id"] for r in admin.answer("events")["rows"]] == ["e1"]
    assert admin.answer("outbox")["pending"] == 1


def test_status_runs_the_doctor_checks_that_need_no_hardware(parts):
    checks = {c["name"]: c["status"] for c in pages(parts).answer("status")["checks"]}
    assert checks["database"] == "pass" and checks["camera"] == "fail" and checks["fingerprint"] == "fail"
    assert {"disk", "keys", "provisioning", "clock"} <= set(checks)


def test_door_test_pulses_the_relay(parts):
    *_, board, panel = parts
    assert pages(parts).answer("door", action="door_test")["done"]
    assert board.door.wait_for_closed(timeout=5)
    assert len(panel.pulses("door")) == 1


def test_export_writes_csv_and_attlog_to_the_folder(parts, tmp_path):
    stick = tmp_path / "usb"
    stick.mkdir()
    assert pages(parts).answer("export", action="export", path=str(stick))["done"]
    written = sorted(p.suffix for p in stick.iterdir())
    assert ".csv" in written and any("e1" in p.read_text() for p in stick.iterdir())


def test_punch_mode_changes_the_flow_and_is_remembered(parts):
    from kiosk.flows.attendance import AttendanceFlow

    settings, database, clock, *_ = parts
    flow = AttendanceFlow(ports=RecordingPorts(clock), clock=clock, settings=settings)
    admin = pages(parts, attendance=flow)
    assert admin.answer("punch_mode")["mode"] == "toggle"
    assert admin.answer("punch_mode", action="set_punch_mode", mode="first_in_last_out")["done"]
    assert flow.rule.rule == "first_in_last_out" and db.get_meta(database, PUNCH_MODE_META) == "first_in_last_out"
    assert not admin.answer("punch_mode", action="set_punch_mode", mode="whenever")["done"]


def test_a_punch_mode_change_is_audited(parts):
    from kiosk.flows.attendance import AttendanceFlow
    from kiosk.storage import audit

    settings, database, clock, *_ = parts
    flow = AttendanceFlow(ports=RecordingPorts(clock), clock=clock, settings=settings)
    admin = pages(parts, attendance=flow)
    admin.answer("punch_mode", action="set_punch_mode", mode="first_in_last_out")
    admin.answer("punch_mode", action="set_punch_mode", mode="whenever")   # refused: not audited
    # the mode decides whether every punch is "in" or "out": who changed it, and from what, is kept
    assert [(e["actor"], e["detail"], e["at"]) for e in audit.entries(database, action="punch_mode_set")] == [
        ("admin", {"mode": "first_in_last_out", "was": "toggle"}, clock.time())]


def test_log_page_shows_recent_lines(parts):
    logging.getLogger("kiosk.test").addHandler(RECENT)
    try:
        logging.getLogger("kiosk.test").warning("sensor reconnected")
    finally:
        logging.getLogger("kiosk.test").removeHandler(RECENT)
    assert any("sensor reconnected" in line for line in pages(parts).answer("log")["lines"])


def test_sync_now_without_a_server_says_so(parts):
    assert pages(parts).answer("sync", action="sync_now") == {"page": "sync", "done": False,
                                                              "error": "not provisioned"}


def test_unknown_page_or_action_is_refused(parts):
    with pytest.raises(ValueError):
        pages(parts).answer("shell")
    with pytest.raises(ValueError):
        pages(parts).answer("door", action="rm_rf")


def test_the_admin_flow_reaches_a_page_through_the_real_pages(parts):
    settings, database, clock, board, _ = parts
    admin = pages(parts)

    class Ports(RecordingPorts):
        def admin_page(self, page, **args):
            return admin.answer(page, **args)

    ports = Ports(clock)
    flow = AdminFlow(ports=ports, clock=clock, settings=settings)
    flow.handle("pin_entered", pin=ports.admin_pin)
    flow.handle("page_requested", page="people")
    assert ports.screen["screen"] == "admin_page" and ports.screen["content"]["total"] == 3
