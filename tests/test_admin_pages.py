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


def _mounts(tmp_path, *lines):
    table = tmp_path / "mounts"
    table.write_text("".join(line + "\n" for line in lines))
    return table


def test_the_export_page_offers_each_mounted_stick_and_writes_csv_and_attlog_there(parts, tmp_path):
    media = tmp_path / "media"
    stick, other = media / "kiosk usb", media / "KINGSTON"
    stick.mkdir(parents=True)
    other.mkdir()
    table = _mounts(tmp_path, "/dev/root / ext4 rw 0 0", "proc /proc proc rw 0 0",
                    f"/dev/sda1 {str(stick).replace(' ', chr(92) + '040')} vfat rw,nosuid 0 0",  # as the kernel escapes a space
                    f"/dev/sdb1 {other} exfat rw 0 0", f"tmpfs {media}/not-a-stick tmpfs rw 0 0",
                    f"/dev/mmcblk0p1 {tmp_path}/boot vfat rw 0 0")
    admin = pages(parts, stick_roots=(str(media),), mounts=str(table))
    assert admin.answer("export") == {"page": "export", "sticks": [str(other), str(stick)]}
    done = admin.answer("export", action="export", path=str(stick))
    assert done["done"] and done["events"] == 1
    written = sorted(p.name for p in stick.iterdir())
    assert done["files"] == ", ".join(written) and {p.suffix for p in stick.iterdir()} == {".csv", ".dat"}
    assert any("e1" in p.read_text() for p in stick.iterdir())
    _, database, *_ = parts
    assert [r["action"] for r in database.query("SELECT action FROM audit ORDER BY rowid")][-1] == "events_exported"


def test_an_export_goes_only_to_a_mounted_stick_and_says_why_it_failed(parts, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "usb").symlink_to(tmp_path)  # a link where the stick should be: the writer refuses it
    table = _mounts(tmp_path, f"/dev/sda1 {media}/usb vfat rw 0 0")
    admin = pages(parts, stick_roots=(str(media),), mounts=str(table))
    # a folder that is no mounted stick, even one the kiosk could write: refused, nothing written
    assert admin.answer("export", action="export", path=str(tmp_path)) == {"page": "export", "done": False,
                                                                            "error": "no_stick"}
    failed = admin.answer("export", action="export", path=str(media / "usb"))
    assert failed["done"] is False and failed["error"] == "export_failed" and "not a folder" in failed["reason"]
    assert not list(tmp_path.glob("attendance-*"))
    assert pages(parts, stick_roots=(str(media),), mounts=str(tmp_path / "gone")).answer("export")["sticks"] == []


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
