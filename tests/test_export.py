"""Export of events to a USB stick folder: CSV and ATTLOG, a day or a range, and a hostile stick."""

import csv
import io
import os
from datetime import date, datetime, timezone

import pytest

from kiosk.clock import FakeClock
from kiosk.errors import ExportError
from kiosk.storage import db, events, export, people
from kiosk.sync.adms_codec import parse_attlog

# 2024-05-29 05:00 UTC = 08:00 in Riyadh (+03:00)
MORNING = datetime(2024, 5, 29, 5, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def database():
    database = db.open_db(":memory:")
    people.upsert_people(database, [{"person_id": "1042", "name": "عمر"}, {"person_id": "7", "name": "=HYPERLINK(\"x\")"}])
    clock = FakeClock(MORNING - 86400)  # yesterday
    events.record_event(database, person_id="1042", status_code=0, verify_mode="face", score=0.8, clock=clock)
    clock.advance(86400)
    events.record_event(database, person_id="1042", status_code=0, verify_mode="face", score=0.91, clock=clock)
    clock.advance(60)
    events.record_event(database, person_id="7", status_code=1, verify_mode="pin", clock=clock)
    clock.advance(86400)  # tomorrow
    events.record_event(database, person_id="7", status_code=0, verify_mode="fingerprint", clock=clock)
    return database


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_today_as_csv_and_attlog(database, tmp_path):
    result = export.export_events(database, tmp_path, tz="+03:00", now=MORNING + 3600, device_name="door 1")
    assert result.events == 2 and result.skipped == 0
    assert result.first_day == result.last_day == date(2024, 5, 29)
    assert result.csv_path.parent == tmp_path and "door_1" in result.csv_path.name
    rows = read_csv(result.csv_path)
    assert [(r["person_id"], r["local_time"], r["status_name"], r["verify_mode"]) for r in rows] == \
        [("1042", "2024-05-29 08:00:00", "check-in", "face"), ("7", "2024-05-29 08:01:00", "check-out", "pin")]
    assert rows[0]["name"] == "عمر"
    assert rows[1]["name"].startswith("'=")  # a spreadsheet must not run a name as a formula
    lines = parse_attlog(result.attlog_path.read_text())
    assert [(r["pin"], r["time"], r["status"], r["verify"]) for r in lines] == \
        [("1042", "2024-05-29 08:00:00", 0, 15), ("7", "2024-05-29 08:01:00", 1, 0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([result.csv_path.name, result.attlog_path.name])


def test_a_date_range(database, tmp_path):
    result = export.export_events(database, tmp_path, tz="Asia/Riyadh", first_day=date(2024, 5, 28),
                                  last_day=date(2024, 5, 30), now=MORNING)
    assert result.events == 4 and len(result.attlog_path.read_text().splitlines()) == 4
    with pytest.raises(ExportError, match="before it starts"):
        export.export_events(database, tmp_path, first_day=date(2024, 5, 30), last_day=date(2024, 5, 28), now=MORNING)


def test_an_empty_day_writes_a_header_only(database, tmp_path):
    result = export.export_events(database, tmp_path, first_day=date(2020, 1, 1), now=MORNING)
    assert result.events == 0 and read_csv(result.csv_path) == [] and result.attlog_path.read_text() == ""


def test_refuses_a_symlinked_folder(database, tmp_path):
    target = tmp_path / "kiosk-data"
    target.mkdir()
    (tmp_path / "stick").symlink_to(target)
    with pytest.raises(ExportError, match="link"):
        export.export_events(database, tmp_path / "stick", now=MORNING)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "sub").symlink_to(target)
    with pytest.raises(ExportError, match="link"):
        export.export_events(database, tmp_path / "real" / "sub" / ".", now=MORNING)
    assert list(target.iterdir()) == []


def test_refuses_a_link_higher_up_the_path(database, tmp_path):
    target = tmp_path / "elsewhere"
    (target / "usb").mkdir(parents=True)
    (tmp_path / "media").symlink_to(target)
    with pytest.raises(ExportError, match="link"):
        export.export_events(database, tmp_path / "media" / "usb", now=MORNING)
    assert list((target / "usb").iterdir()) == []


def test_refuses_files_missing_folders_and_relative_paths(database, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export.export_events(database, tmp_path / "file", now=MORNING)
    with pytest.raises(ExportError, match="no such folder"):
        export.export_events(database, tmp_path / "unplugged", now=MORNING)
    with pytest.raises(ExportError, match="absolute"):
        export.export_events(database, "relative/stick", now=MORNING)


def test_a_planted_link_at_the_file_name_is_replaced_not_written_through(database, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    first = export.export_events(database, stick, now=MORNING)
    first.csv_path.unlink()
    first.csv_path.symlink_to(victim)  # the same name the next export (same second) will use
    again = export.export_events(database, stick, now=MORNING)
    assert victim.read_text() == "precious"
    assert not again.csv_path.is_symlink() and read_csv(again.csv_path)


def test_size_is_bounded_and_nothing_half_written_stays(database, tmp_path):
    with pytest.raises(ExportError, match="would pass"):
        export.export_events(database, tmp_path, first_day=date(2024, 5, 28), last_day=date(2024, 5, 30),
                             now=MORNING, max_bytes=200)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_stick_is_a_clear_error(database, tmp_path):
    stick = tmp_path / "ro"
    stick.mkdir()
    stick.chmod(0o555)
    try:
        with pytest.raises(ExportError, match="cannot create"):
            export.export_events(database, stick, now=MORNING)
    finally:
        stick.chmod(0o755)
