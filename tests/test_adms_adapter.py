"""The ADMS adapter against the hw-sim ADMS server over real HTTP on 127.0.0.1."""

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import ConfigError
from kiosk.storage import db, events, people
from kiosk.sync import adms
from kiosk.sync.adms_codec import Command
from kiosk.sync.adms_commands import CommandRunner
from kiosk_sim.adms import AdmsServer

SN = "KIOSK0001"
# 2024-05-01 05:30:00 UTC = 08:30:00 at UTC+3
START = 1714541400.0


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
    with AdmsServer(options={"TimeZone": 3, "Delay": 5, "ErrorDelay": 30}) as server:
        yield server


class Door:
    """Stands in for the app's door: records each opening it is asked for."""

    def __init__(self, *, fail=False):
        self.openings = []
        self.fail = fail

    def __call__(self, *, door, seconds):
        if self.fail:
            raise OSError("relay driver gone")
        self.openings.append((door, seconds))
        return True


def make_adapter(db_path, server, clock, **options):
    # its own connection, as the app gives it; the kiosk's zone agrees with the simulator's TimeZone=3
    options.setdefault("device_timezone", "Asia/Riyadh")
    return adms.AdmsAdapter(db.open_db(db_path), url=server.url, serial=SN, clock=clock, **options)


def record(database, clock, items):
    """Record events a minute apart: items are (person_id, status, verify_mode)."""
    out = []
    # numeric ids double as ADMS PINs here
    people.upsert_people(database, [{"person_id": person_id, "adms_pin": person_id if person_id.isdigit() else None}
                                    for person_id, _, _ in items])
    for person_id, status, mode in items:
        out += events.record_events(database, [dict(person_id=person_id, status_code=status, verify_mode=mode)],
                                    clock=clock)
        clock.advance(60)
    return out


def test_upload_rows_with_codes_and_local_time(database, db_path, server, clock):
    record(database, clock, [("1001", 0, "face"), ("1002", 1, "fingerprint"), ("1003", 2, "pin"),
                             ("1004", 3, "card"), ("1005", 4, "face"), ("1006", 5, "fingerprint")])
    with make_adapter(db_path, server, clock) as adapter:
        wait_s = adapter.run_once()
        assert wait_s == pytest.approx(5.0)  # the server's Delay
        assert adapter.cursor == 6
    rows = server.records()
    assert [(r["pin"], r["status"], r["verify"]) for r in rows] == [
        ("1001", 0, 15), ("1002", 1, 1), ("1003", 2, 0), ("1004", 3, 4), ("1005", 4, 15), ("1006", 5, 1)]
    assert [r["time"] for r in rows[:2]] == ["2024-05-01 08:30:00", "2024-05-01 08:31:00"]
    assert all(r["workcode"] == "0" for r in rows)
    assert server.stamp(SN) == 6
    assert adms.status(database)["pending"] == 0


def test_timezone_in_minutes_gives_the_same_rows(database, db_path, clock):
    record(database, clock, [("7", 0, "pin")])
    with AdmsServer(options={"TimeZone": 180}) as server, make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert server.records()[0]["time"] == "2024-05-01 08:30:00"


def test_configured_timezone_overrides_the_server(database, db_path, server, clock):
    record(database, clock, [("7", 0, "pin")])
    with make_adapter(db_path, server, clock, timezone_name="+05:30") as adapter:
        adapter.run_once()
    assert server.records()[0]["time"] == "2024-05-01 11:00:00"


def test_server_stamp_resume_skips_acknowledged_rows(database, db_path, server, clock):
    record(database, clock, [(str(i), 0, "face") for i in range(1, 6)])
    server.set_stamp(SN, 3)  # the server says it holds our rows up to seq 3
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert adapter.cursor == 5
    assert [r["pin"] for r in server.records()] == ["4", "5"]
    assert server.rows_received == 2


def test_server_stamp_beyond_our_events_is_ignored(database, db_path, server, clock):
    record(database, clock, [(str(i), 0, "face") for i in range(1, 4)])
    server.set_stamp(SN, 900000)  # another numbering (say, a real terminal's)
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    assert [r["pin"] for r in server.records()] == ["1", "2", "3"]


def test_dropped_ok_is_not_resent(database, db_path, server, clock):
    record(database, clock, [(str(i), 0, "fingerprint") for i in range(1, 11)])
    server.inject("drop_ok")
    with make_adapter(db_path, server, clock) as adapter:
        wait_s = adapter.run_once()
        assert 27.0 <= wait_s <= 33.0  # ErrorDelay 30 s, +-10 % jitter
        assert adapter.cursor == 0     # no OK seen: nothing counts as acknowledged
        assert len(server.records()) == 10  # ... but the server did store them
        assert adms.status(database)["last_error"]
        clock.advance(wait_s)
        adapter.run_once()             # re-handshake: ATTLOGStamp=10 says they arrived
        assert adapter.cursor == 10
    assert server.rows_received == 10 and server.duplicates == 0
    assert len(server.records()) == 10
    assert server.handshakes == [SN, SN]


def test_dropped_ok_with_server_forgetting_the_stamp_is_deduplicated(database, db_path, server, clock):
    record(database, clock, [(str(i), 0, "card") for i in range(1, 4)])
    server.inject("drop_ok")
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        server.set_stamp(SN, None)     # a server that keeps no stamps: same stamp, same rows again
        adapter.run_once()
        assert adapter.cursor == 3
    assert server.rows_received == 6 and server.duplicates == 3
    assert len(server.records()) == 3  # (PIN, time) de-duplication holds because rows are stable


def test_errors_back_off_then_everything_arrives_once(database, db_path, server, clock):
    record(database, clock, [(str(i), i % 6, "face") for i in range(1, 8)])
    server.inject("http500", count=2, endpoint="attlog")
    server.inject("outage", count=1, endpoint="handshake")
    waits = []
    with make_adapter(db_path, server, clock, batch_rows=3) as adapter:
        for _ in range(6):
            waits.append(adapter.run_once())
            clock.advance(waits[-1])
            if adapter.cursor == 7:
                break
        assert adapter.cursor == 7
        assert adapter.status()["consecutive_errors"] == 0
    # 500 on the first post, then the re-handshake hits the outage, then another 500: backoff doubles
    assert 27 <= waits[0] <= 33 and 54 <= waits[1] <= 66 and 108 <= waits[2] <= 132
    assert [r["pin"] for r in server.records()] == [str(i) for i in range(1, 8)]
    assert server.duplicates == 0


def test_backoff_is_capped(database, db_path, server, clock):
    server.down = True
    with make_adapter(db_path, server, clock, max_backoff_s=100.0) as adapter:
        waits = [adapter.run_once() for _ in range(6)]
    assert max(waits) <= 110.0 and waits[-1] >= 90.0


def test_restarted_adapter_resumes_from_its_cursor(database, db_path, server, clock):
    record(database, clock, [("1", 0, "face"), ("2", 0, "face"), ("3", 0, "face")])
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    record(database, clock, [("1", 1, "face"), ("2", 1, "pin")])
    server.set_stamp(SN, None)  # prove the cursor does it, not the server's stamp
    with make_adapter(db_path, server, clock) as restarted:
        assert restarted.cursor == 3
        restarted.run_once()
        assert restarted.cursor == 5
    assert server.rows_received == 5
    assert [(r["pin"], r["status"]) for r in server.records()][3:] == [("1", 1), ("2", 1)]


def test_a_new_server_url_gets_the_history(database, db_path, server, clock):
    record(database, clock, [("1", 0, "face"), ("2", 0, "face")])
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    with AdmsServer() as other, make_adapter(db_path, other, clock) as adapter:
        assert adapter.cursor == 0
        adapter.run_once()
        assert len(other.records()) == 2


def test_commands_info_door_unknown_and_shell(database, db_path, server, clock, tmp_path):
    record(database, clock, [("1", 0, "face"), ("2", 0, "pin")])
    marker = tmp_path / "pwned"
    ids = {name: server.enqueue(SN, text) for name, text in [
        ("info", "INFO"), ("unlock", "AC_UNLOCK"), ("control", "CONTROL DEVICE 01010105"),
        ("door2", "CONTROL DEVICE 01020105"), ("shell", f"Shell touch {marker}"),
        ("reboot", "REBOOT"), ("clear", "CLEAR LOG"), ("delete", "DATA DELETE USERINFO PIN=1")]}
    door = Door()
    with make_adapter(db_path, server, clock, open_door=door, door_commands=True) as adapter:
        adapter.run_once()
    results = server.results
    assert results[ids["info"]]["code"] == 0
    info = results[ids["info"]]["data"]
    assert info["TransactionCount"] == "2" and info["UserCount"] == "2"  # events only for people who exist
    assert info["~SerialNumber"] == SN and info["FWVersion"].startswith("kiosk")
    assert (results[ids["unlock"]]["code"], results[ids["unlock"]]["cmd"]) == (0, "AC_UNLOCK")
    assert results[ids["control"]]["code"] == 0
    assert door.openings == [(1, 3.0), (1, 5.0)]  # AC_UNLOCK: gpio.door_pulse_s; door 2 refused, not opened
    assert results[ids["door2"]]["code"] == -1002
    assert (results[ids["shell"]]["code"], results[ids["shell"]]["cmd"]) == (-1, "Shell")
    assert not marker.exists()
    assert all(results[ids[name]]["code"] == -1 for name in ("reboot", "clear", "delete"))
    assert len(events.events_after(database, 0)) == 2  # CLEAR LOG deleted nothing


def test_heartbeat_carries_info_once_per_handshake(database, db_path, server, clock):
    record(database, clock, [("1", 0, "face")])
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        clock.advance(5)
        adapter.run_once()
    (sn, first), (_, second) = server.heartbeats
    assert sn == SN and second is None
    firmware, users, fingers, records, ip = first.split(",")
    assert firmware.startswith("kiosk") and (users, fingers, records, ip) == ("1", "0", "1", "127.0.0.1")


def test_door_failures_and_missing_door(database, db_path, server, clock):
    failing = server.enqueue(SN, "AC_UNLOCK")
    with make_adapter(db_path, server, clock, open_door=Door(fail=True), door_commands=True) as adapter:
        adapter.run_once()
    assert server.results[failing]["code"] == -2
    absent = server.enqueue(SN, "AC_UNLOCK")
    with make_adapter(db_path, server, clock) as adapter:  # no door callback
        adapter.run_once()
    assert server.results[absent]["code"] == -1


def test_results_are_retried_without_opening_the_door_twice(database, db_path, server, clock):
    unlock = server.enqueue(SN, "AC_UNLOCK")
    server.inject("http500", endpoint="devicecmd")
    door = Door()
    with make_adapter(db_path, server, clock, open_door=door, door_commands=True) as adapter:
        first_wait = adapter.run_once()
        assert unlock not in server.results
        clock.advance(first_wait)
        adapter.run_once()
    assert server.results[unlock]["code"] == 0
    assert door.openings == [(1, 3.0)]


def test_check_command_handshakes_again(database, db_path, server, clock):
    check = server.enqueue(SN, "CHECK")
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
    assert server.results[check]["code"] == 0
    assert server.handshakes == [SN, SN]


def test_not_realtime_waits_for_trans_interval_or_log_command(database, db_path, clock):
    options = {"Realtime": 0, "TransInterval": 2, "Delay": 10, "TransTimes": "", "TimeZone": 3}
    with AdmsServer(options=options) as server, make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()                       # first step always uploads (nothing yet)
        record(database, clock, [("1", 0, "face")])  # advances the clock 60 s
        adapter.run_once()
        assert server.records() == []            # 60 s < TransInterval 120 s
        clock.advance(60)
        adapter.run_once()
        assert len(server.records()) == 1
        record(database, clock, [("2", 0, "face")])
        server.enqueue(SN, "LOG")                # the server asks for the logs now
        adapter.run_once()
        assert len(server.records()) == 2


def test_trans_times_trigger_an_upload(database, db_path, clock):
    # START is 08:30 local (UTC+3); an upload time at 08:35 with a long TransInterval
    options = {"Realtime": 0, "TransInterval": 600, "Delay": 60, "TransTimes": "08:35", "TimeZone": 3}
    with AdmsServer(options=options) as server, make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        record(database, clock, [("1", 0, "face")])  # now 08:31
        adapter.run_once()
        assert server.records() == []
        clock.advance(4 * 60)                        # 08:35
        adapter.run_once()
        assert len(server.records()) == 1


def test_worker_thread_pushes_on_notify(database, db_path, server, clock):
    door = Door()
    with make_adapter(db_path, server, clock, open_door=door, door_commands=True) as adapter:
        adapter.start()
        record(database, clock, [("1", 0, "face"), ("2", 1, "face")])
        adapter.notify()
        assert server.wait_for_records(2, timeout_s=10)
        command = server.enqueue(SN, "AC_UNLOCK")
        # the poll is due after Delay on the fake clock; move it and wake the worker
        clock.advance(5)
        adapter.notify()
        assert server.wait_for_result(command, timeout_s=10)["code"] == 0
    assert door.openings == [(1, 3.0)]


def test_unparseable_rows_are_skipped_not_blocking(database, db_path, server, clock):
    record(database, clock, [("1", 0, "face")])
    # a row written by an older firmware with a verify mode ATTLOG has no code for
    database.execute("UPDATE attendance_events SET verify_mode = 'iris' WHERE seq = 1")
    record(database, clock, [("2", 0, "face")])
    with make_adapter(db_path, server, clock) as adapter:
        adapter.run_once()
        assert adapter.cursor == 2
    assert [r["pin"] for r in server.records()] == ["2"]
    assert adms.status(database)["skipped"] == 1


def test_from_settings_and_bad_settings(database, clock):
    settings = config.build([]).replace(sync={"adms_url": "http://127.0.0.1:9", "device_id": "DEV-7",
                                              "adms_timezone": "Asia/Riyadh"})
    with adms.AdmsAdapter.from_settings(settings, database, clock=clock) as adapter:
        assert adapter.serial == "DEV-7"
    with pytest.raises(ConfigError, match="adms_timezone"):
        adms.AdmsAdapter.from_settings(settings.replace(sync={"adms_timezone": "Nowhere/Land"}), database,
                                       clock=clock)
    with pytest.raises(ConfigError, match="adms_serial"):
        adms.AdmsAdapter.from_settings(settings.replace(sync={"device_id": "", "adms_serial": ""}), database,
                                       clock=clock)
    with pytest.raises(ConfigError, match="adms_url"):
        adms.AdmsAdapter.from_settings(settings.replace(sync={"adms_url": ""}), database, clock=clock)


def test_long_backlog_is_drained_step_after_step(database, db_path, server, clock):
    people.upsert_people(database, [{"person_id": str(i), "adms_pin": str(i)} for i in range(1, 121)])
    events.record_events(database, [dict(person_id=str(i), status_code=0, verify_mode="face")
                                    for i in range(1, 121)], clock=clock)
    with make_adapter(db_path, server, clock, batch_rows=2) as adapter:
        assert adapter.run_once() == 0.0  # 50 batches per step, more to come: step again at once
        assert adapter.cursor == 100
        assert adapter.run_once() == pytest.approx(5.0)
        assert adapter.cursor == 120
    assert len(server.records()) == 120 and server.duplicates == 0


def test_server_error_delay_is_used_after_a_handshake(database, db_path, clock):
    record(database, clock, [("1", 0, "face")])
    with AdmsServer(options={"ErrorDelay": 7}) as server, make_adapter(db_path, server, clock) as adapter:
        server.inject("http500", count=2, endpoint="attlog")
        first = adapter.run_once()
        clock.advance(first)
        second = adapter.run_once()
    assert 6.3 <= first <= 7.7 and 12.6 <= second <= 15.4


def test_a_command_id_seen_again_is_answered_not_rerun():
    door = Door()
    runner = CommandRunner(open_door=door, info=lambda: (), on_check=lambda: None, on_log=lambda: None,
                           door_commands=True)
    first = runner.run(Command("41", "AC_UNLOCK"))
    again = runner.run(Command("41", "AC_UNLOCK"))
    assert first == again and first.code == 0
    assert door.openings == [(1, 3.0)]
    assert runner.run(Command("42", "CONTROL DEVICE 0101010A")).code == 0
    assert door.openings == [(1, 3.0), (1, 10.0)]
