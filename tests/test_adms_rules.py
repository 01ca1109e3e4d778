"""What HR servers expect of the ADMS adapter (issue 17), against the hw-sim ADMS server on 127.0.0.1:
rows in the kiosk's IANA zone across daylight saving, ADMS PINs, same-second punches, history
re-sent on a stamp rewind and on DATA QUERY ATTLOG, commands answered once (also after a
restart), device tokens sent and never logged."""

import logging
from datetime import datetime

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import ConfigError, StorageError
from kiosk.storage import db, enrolment, events, people, sync_state
from kiosk.sync import adms
from kiosk.sync.adms_codec import parse_local_time
from kiosk_sim.adms import AdmsServer

SN = "KIOSK-RULES"
NEW_YORK = "America/New_York"
# 2026-03-07 12:00 UTC = 07:00 EST; New York moves to EDT on 2026-03-08 at 02:00 local
START = 1772884800.0


@pytest.fixture
def clock():
    return FakeClock(start=START)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "kiosk.db"


@pytest.fixture
def database(db_path):
    database = db.open_db(db_path)
    yield database
    database.conn.close()


@pytest.fixture
def server():
    with AdmsServer(options={"TimeZone": -5, "Delay": 5, "ErrorDelay": 30}) as server:
        yield server


def make_adapter(db_path, server, clock, **options):
    options.setdefault("device_timezone", NEW_YORK)
    return adms.AdmsAdapter(db.open_db(db_path), url=server.url, serial=SN, clock=clock, **options)


def punch(database, clock, person_id, *, after_s=0.0):
    clock.advance(after_s)
    return events.record_events(database, [dict(person_id=person_id, status_code=0, verify_mode="face")],
                                clock=clock)[0]


def employees(database, count=3):
    people.upsert_people(database, [{"person_id": f"p{n}", "adms_pin": str(500 + n)} for n in range(count)])


def test_rows_follow_daylight_saving_by_their_own_date(database, db_path, server, clock):
    employees(database)
    made = [punch(database, clock, "p0", after_s=6 * 3600.0 if i else 0.0) for i in range(8)]  # 42 h across
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    rows = server.records()
    zone = adapter.tz
    assert [parse_local_time(r["time"], zone).timestamp() for r in rows] == [
        float(int(datetime.fromisoformat(e.wall_time.replace("Z", "+00:00")).timestamp())) for e in made]
    assert rows[0]["time"] == "2026-03-07 07:00:00"   # EST, UTC-5
    assert rows[-1]["time"] == "2026-03-09 02:00:00"  # 42 h later, in EDT (UTC-4); a fixed UTC-5 would say 01:00


def test_the_server_offset_is_checked_not_obeyed_and_the_handshake_repeats(database, db_path, clock, caplog):
    employees(database)
    punch(database, clock, "p0")
    with AdmsServer(options={"TimeZone": 3, "Delay": 3600}) as server, make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert server.records()[0]["time"] == "2026-03-07 07:00:00"  # New York, whatever the server says
        assert adapter.status()["timezone_mismatch"] == {"server_min": 180, "ours_min": -300}
        assert "TimeZone is UTC+3h" in caplog.text
        handshakes = len(server.handshakes)
        for _ in range(30):  # a day of steps an hour apart
            clock.advance(adapter.run_once())
        assert len(server.handshakes) >= handshakes + 4  # at least every HANDSHAKE_EVERY_S
        # 30 h later New York is on summer time (UTC-4): a server still saying -5 disagrees now
        server.options["TimeZone"] = "-5"
        adapter._request_handshake()
        adapter.run_once()
        assert adapter.status()["timezone_mismatch"] == {"server_min": -300, "ours_min": -240}
        server.options["TimeZone"] = "-4"
        adapter._request_handshake()
        adapter.run_once()
        assert adapter.status()["timezone_mismatch"] is None


@pytest.mark.parametrize("zone, utc_moment, offset_h", [
    # 01:30 EST, half an hour before New York moves to EDT (its UTC wall time, 06:30, read as New York time is EDT)
    (NEW_YORK, "2026-03-08T06:30:00+00:00", -5),
    (NEW_YORK, "2026-03-08T07:30:00+00:00", -4),   # 03:30 EDT
    # 02:30 AEST, just after Sydney left summer time (16:30 read as Sydney time is still AEDT)
    ("Australia/Sydney", "2026-04-04T16:30:00+00:00", 10),
    ("Australia/Lord_Howe", "2026-04-04T15:30:00+00:00", 10.5),  # its 30-minute step back, at 02:00
])
def test_the_server_offset_is_compared_with_ours_at_this_instant_near_a_dst_change(database, db_path, zone,
                                                                                    utc_moment, offset_h, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.sync.adms")
    clock = FakeClock(start=datetime.fromisoformat(utc_moment).timestamp())
    with AdmsServer(options={"TimeZone": offset_h, "Delay": 3600}) as server, \
            make_adapter(db_path, server, clock, device_timezone=zone) as adapter:
        adapter.run_once()
        assert adapter.status()["timezone_mismatch"] is None
    assert f"rows in UTC{offset_h:+.1f}h" in caplog.text


def test_a_half_hour_disagreement_is_logged_with_its_half_hours(database, db_path, caplog):
    clock = FakeClock(start=datetime.fromisoformat("2026-06-01T00:00:00+00:00").timestamp())  # Lord Howe +10:30
    with AdmsServer(options={"TimeZone": 9.5, "Delay": 3600}) as server, \
            make_adapter(db_path, server, clock, device_timezone="Australia/Lord_Howe") as adapter:
        adapter.run_once()
        assert adapter.status()["timezone_mismatch"] == {"server_min": 570, "ours_min": 630}
    assert "TimeZone is UTC+9.5h but rows are written in Australia/Lord_Howe (UTC+10.5h now)" in caplog.text


def test_a_person_without_an_adms_pin_is_reported_not_sent(database, db_path, server, clock, caplog):
    employees(database, 1)
    people.upsert_people(database, [{"person_id": "no-number"}])
    punch(database, clock, "no-number")
    punch(database, clock, "p0", after_s=5)
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert adapter.status()["no_adms_pin"] == 1 and adapter.status()["pending"] == 0
    assert [r["pin"] for r in server.records()] == ["500"]
    assert "no-number" in caplog.text


def test_two_punches_in_one_second_are_never_both_sent(database, db_path, server, clock):
    employees(database, 2)
    punch(database, clock, "p0")
    punch(database, clock, "p0", after_s=0.4)  # same second
    punch(database, clock, "p1", after_s=0.1)  # another person, same second: sent
    with make_adapter(db_path, server, clock, batch_rows=1) as adapter:  # each in its own batch
        adapter.run_once()
        assert adapter.status()["same_second"] == 1
    assert [r["pin"] for r in server.records()] == ["500", "501"] and server.rows_received == 2


def test_adms_pin_must_be_up_to_nine_digits_and_is_kept_when_not_given(database):
    for bad in ("1234567890", "12a", "-5", True):
        with pytest.raises(StorageError):
            people.upsert_person(database, {"person_id": "x", "adms_pin": bad})
    people.upsert_person(database, {"person_id": "x", "adms_pin": "٤٢"})  # typed in Eastern Arabic digits
    people.upsert_person(database, {"person_id": "x", "name": "renamed"})
    assert people.get_person(database, "x")["adms_pin"] == "42"
    with pytest.raises(StorageError, match="another person"):
        people.upsert_person(database, {"person_id": "y", "adms_pin": "42"})


def test_people_sync_and_enrolment_carry_the_adms_pin(database):
    sync_state.apply_changes(database, None, [
        {"type": "person", "person": {"person_id": "a", "adms_pin": "77"}},
        {"type": "person", "person": {"person_id": "b", "adms_pin": "not-a-number"}}], now=1.0)
    assert people.get_person(database, "a")["adms_pin"] == "77"
    assert people.get_person(database, "b") is not None and people.get_person(database, "b")["adms_pin"] is None
    with pytest.raises(StorageError, match="adms_pin"):
        enrolment.enrol_person(database, b"k" * 32, person_id="c", name="C", pin="123456", server_key=b"",
                               now=1.0, adms_pin="1234567890")


def test_a_server_stamp_behind_the_cursor_brings_the_history_again(database, db_path, server, clock):
    employees(database)
    for n in range(6):
        punch(database, clock, f"p{n % 3}", after_s=60)
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert adapter.cursor == 6 and not adapter.server_keeps_stamps
        adapter._request_handshake()
        adapter.run_once()                     # the server echoes 6: it keeps stamps
        assert adapter.server_keeps_stamps
        server.set_stamp(SN, 2)               # it restored a backup holding rows up to 2
        adapter._request_handshake()
        adapter.run_once()
        assert adapter.cursor == 6
    assert server.rows_received == 6 + 4


def test_a_server_that_never_keeps_stamps_is_not_flooded(database, db_path, clock):
    employees(database)
    for n in range(3):
        punch(database, clock, f"p{n}", after_s=60)
    with AdmsServer(options={"Delay": 5}) as server, make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        for _ in range(3):
            server.set_stamp(SN, 0)  # always 0, whatever it stored
            adapter._request_handshake()
            adapter.run_once()
        assert server.rows_received == 3


def test_data_query_attlog_resends_that_range_only(database, db_path, server, clock):
    employees(database)
    for n in range(6):
        punch(database, clock, f"p{n % 3}", after_s=3600)  # 13:00 .. 18:00 UTC = 08:00 .. 13:00 EST
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        query = server.enqueue(SN, "DATA QUERY ATTLOG StartTime=2026-03-07 09:00:00\tEndTime=2026-03-07 11:00:00")
        bad = server.enqueue(SN, "DATA QUERY ATTLOG StartTime=yesterday")
        clock.advance(adapter.run_once())
        adapter.run_once()
    assert server.results[query]["code"] == 0 and server.results[query]["data"] == {"Count": "3"}
    assert server.results[bad]["code"] == -1002
    assert server.rows_received == 6 + 3
    assert server.stamp(SN) == 6  # the re-sent batch carried the cursor: the resume point did not go back


# west of UTC, 9999-12-31 23:59:59 local is in the year 10000 UTC; east of it, 0001-01-01 00:00:00 is in the year 0
@pytest.mark.parametrize("zone", [NEW_YORK, "Asia/Riyadh"])
def test_data_query_attlog_for_all_time_resends_everything_in_any_zone(database, db_path, server, clock, zone):
    employees(database)
    for n in range(3):
        punch(database, clock, f"p{n}", after_s=3600)
    with make_adapter(db_path, server, clock, device_timezone=zone) as adapter:
        adapter.run_once()
        query = server.enqueue(SN, "DATA QUERY ATTLOG StartTime=0001-01-01 00:00:00\tEndTime=9999-12-31 23:59:59")
        clock.advance(adapter.run_once())
        adapter.run_once()
    assert server.results[query]["code"] == 0 and server.results[query]["data"] == {"Count": "3"}
    assert server.rows_received == 3 + 3


def test_commands_answered_once_also_after_a_restart(database, db_path, server, clock):
    employees(database)
    punch(database, clock, "p0")
    restarts = []
    texts = ["CLEAR LOG", "SET OPTION DateTime=2026-03-07 10:00:00", "REBOOT", "Shell id", "DATA UPDATE USERINFO PIN=1",
             "SET OPTION Delay=1"]
    ids = [server.enqueue(SN, text) for text in texts]
    with make_adapter(db_path, server, clock, request_restart=lambda: restarts.append(1)) as adapter:
        adapter.run_once()
        first = {i: server.results[i]["code"] for i in ids}
        assert adapter.status()["clock_set_request"]["value"] == "2026-03-07 10:00:00"
    assert [first[i] for i in ids] == [-1, 0, 0, -1, -1, -1]
    assert restarts == [1] and events.count(database) == 1
    server.results.clear()
    for command_id, text in zip(ids, texts):  # the server sends them all again after our restart
        server._queue.setdefault(SN, []).append((command_id, text))
    with make_adapter(db_path, server, clock, request_restart=lambda: restarts.append(2)) as adapter:
        clock.advance(5)
        adapter._next_poll_at = 0.0
        adapter.run_once()
    assert {i: server.results[i]["code"] for i in ids} == first
    assert restarts == [1]  # not restarted again


def test_reboot_without_a_restart_hook_or_too_soon_is_refused(database, db_path, server, clock):
    unsupported = server.enqueue(SN, "REBOOT")
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    assert server.results[unsupported]["code"] == -1
    restarts = []
    first, second = server.enqueue(SN, "REBOOT"), server.enqueue(SN, "REBOOT")
    with make_adapter(db_path, server, clock, request_restart=lambda: restarts.append(1)) as adapter:
        adapter.run_once()
    assert (server.results[first]["code"], server.results[second]["code"]) == (0, -2) and restarts == [1]


def test_reboot_is_obeyed_only_when_the_setting_allows_it(database, server, clock):
    """ADMS commands are not signed: by default no server on the path can restart the kiosk."""
    settings = config.build([]).replace(sync={"adms_url": server.url, "adms_serial": SN},
                                        device={"timezone": NEW_YORK})
    restarts = []
    refused = server.enqueue(SN, "REBOOT")
    with adms.AdmsAdapter.from_settings(settings, database, clock=clock,
                                        request_restart=lambda: restarts.append(1)) as adapter:
        adapter.run_once()
    assert server.results[refused]["code"] == -1 and restarts == []
    obeyed = server.enqueue(SN, "REBOOT")
    with adms.AdmsAdapter.from_settings(settings.replace(sync={"adms_reboot_command": True}), database, clock=clock,
                                        request_restart=lambda: restarts.append(1)) as adapter:
        adapter.run_once()
    assert server.results[obeyed]["code"] == 0 and restarts == [1]


@pytest.mark.parametrize("via, name, param", [("pushcommkey", "token", "pushcommkey"), ("param", "key", "key")])
def test_the_device_token_is_sent_and_never_logged(database, db_path, server, clock, caplog, via, name, param):
    employees(database)
    punch(database, clock, "p0")
    caplog.set_level(logging.DEBUG)
    with make_adapter(db_path, server, clock, token="s3cret&tok", token_via=via, token_name=name) as adapter:
        adapter.run_once()
    assert server.requests and all(params.get(param) == "s3cret&tok" for _, _, params in server.requests)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("kiosk_sim")]  # not the server's log
    assert any("/iclock/cdata" in m for m in ours)  # the HTTP library did log its request lines
    assert not any("s3cret" in m for m in ours)


def test_bad_token_settings_are_refused(db_path, server, clock):
    for options in ({"token_via": "cookie"}, {"token_name": "a b"}, {"token": "x\ny"}):
        with pytest.raises(ConfigError, match="adms_token"):
            make_adapter(db_path, server, clock, **options)


def test_history_reaches_back_to_the_first_event(database, db_path, server, clock):
    employees(database)
    first = punch(database, clock, "p0")
    punch(database, clock, "p1", after_s=400 * 86400.0)  # more than a year later
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert adapter.resend_range(0.0, clock.time()) == 2
    assert server.rows_received == 4
    assert [r["time"] for r in server.records()][0] == "2026-03-07 07:00:00" and first.seq == 1
