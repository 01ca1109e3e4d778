"""The ADMS text codec on its own: options, time zones, ATTLOG rows, commands and results."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.sync import adms_codec as codec

RIYADH = timezone(timedelta(hours=3))


def test_handshake_options_parsed_with_defaults_for_missing_keys():
    text = ("GET OPTION FROM: KIOSK0001\r\nATTLOGStamp=42\r\nOPERLOGStamp=9999\r\nErrorDelay=45\r\n"
            "Delay=7\r\nTransTimes=00:00;14:05\r\nTransInterval=2\r\nTimeZone=3\r\nRealtime=0\r\n")
    options = codec.parse_options(text)
    assert options.attlog_stamp == 42
    assert options.error_delay_s == 45.0
    assert options.delay_s == 7.0
    assert options.trans_interval_s == 120.0
    assert options.trans_times == ((0, 0), (14, 5))
    assert options.utc_offset_min == 180
    assert options.realtime is False
    assert options.raw["OPERLOGStamp"] == "9999"

    bare = codec.parse_options("ATTLOGStamp=None\n")
    assert bare.attlog_stamp is None
    assert (bare.delay_s, bare.error_delay_s, bare.realtime, bare.utc_offset_min) == (10.0, 30.0, True, None)


def test_absurd_delays_are_clamped():
    options = codec.parse_options("Delay=0\nErrorDelay=999999\n")
    assert options.delay_s == 1.0
    assert options.error_delay_s == 3600.0


@pytest.mark.parametrize("text", ["", "<html><body>Not Found</body></html>", "OK"])
def test_non_protocol_handshake_answer_is_an_error(text):
    with pytest.raises(codec.AdmsProtocolError):
        codec.parse_options(text)


@pytest.mark.parametrize("value, minutes", [
    ("3", 180), ("-5", -300), ("5.5", 330), ("0", 0), ("14", 840),      # hours
    ("180", 180), ("330", 330), ("-300", -300), ("840", 840),          # minutes (|v| > 14)
    ("900", None), ("abc", None), ("", None), (None, None), ("3.3", 198),
])
def test_timezone_hours_or_minutes(value, minutes):
    assert codec.parse_timezone(value) == minutes


def test_timezone_fraction_of_a_minute_rejected():
    assert codec.parse_timezone("3.33") is None


@given(st.integers(min_value=-14 * 4, max_value=14 * 4))
def test_quarter_hour_offsets_read_the_same_in_hours_and_minutes(quarters):
    minutes = quarters * 15
    hours_text = f"{minutes / 60:g}"
    assert codec.parse_timezone(hours_text) == minutes
    if abs(minutes) > 14:
        assert codec.parse_timezone(str(minutes)) == minutes


def test_configured_timezone_wins_over_the_server():
    assert codec.resolve_timezone("+05:30", 180).utcoffset(None) == timedelta(minutes=330)
    assert codec.resolve_timezone("UTC-4", 180).utcoffset(None) == timedelta(hours=-4)
    assert codec.resolve_timezone("", 180).utcoffset(None) == timedelta(hours=3)
    assert codec.resolve_timezone("", None) == timezone.utc
    riyadh = codec.resolve_timezone("Asia/Riyadh", None)
    assert riyadh.utcoffset(datetime(2024, 5, 1)) == timedelta(hours=3)
    with pytest.raises(ValueError):
        codec.resolve_timezone("Mars/Olympus", None)


def test_attlog_row_fields_and_local_time():
    record = dict(seq=7, person_id="1001", status=1, verify_mode="face", wall_time="2024-05-01T05:30:59.900Z")
    assert codec.attlog_row(record, RIYADH) == "1001\t2024-05-01 08:30:59\t1\t15\t0\t0\t0"
    # crossing midnight in local time changes the date
    late = dict(record, wall_time="2024-05-01T22:10:00.000Z", verify_mode="card", status=0)
    assert codec.attlog_row(late, RIYADH) == "1001\t2024-05-02 01:10:00\t0\t4\t0\t0\t0"


@pytest.mark.parametrize("mode, code", [("pin", 0), ("fingerprint", 1), ("card", 4), ("face", 15)])
def test_verify_mode_codes(mode, code):
    record = dict(seq=1, person_id="9", status=0, verify_mode=mode, wall_time="2024-01-01T00:00:00.000Z")
    assert codec.attlog_row(record, timezone.utc).split("\t")[3] == str(code)


@pytest.mark.parametrize("change", [dict(person_id="a\tb"), dict(person_id="x\ny"), dict(person_id=""),
                                    dict(status=6), dict(verify_mode="voice"), dict(wall_time="yesterday")])
def test_rows_that_cannot_be_written_are_refused(change):
    record = dict(seq=1, person_id="9", status=0, verify_mode="pin", wall_time="2024-01-01T00:00:00.000Z")
    with pytest.raises(codec.RowError):
        codec.attlog_row({**record, **change}, timezone.utc)


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
       st.integers(min_value=-14 * 60, max_value=14 * 60),
       st.sampled_from(sorted(codec.VERIFY_CODES)), st.integers(min_value=0, max_value=5),
       st.text(alphabet="0123456789ABCDEFabcdef-_", min_size=1, max_size=24))
def test_row_round_trip(moment, offset_min, mode, status, pin):
    tz = timezone(timedelta(minutes=offset_min))
    utc = moment.replace(tzinfo=timezone.utc)
    wall = utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    row = codec.attlog_row(dict(seq=1, person_id=pin, status=status, verify_mode=mode, wall_time=wall), tz)
    [parsed] = codec.parse_attlog(row + "\n")
    assert (parsed["pin"], parsed["status"], parsed["verify"]) == (pin, status, codec.VERIFY_CODES[mode])
    assert codec.parse_local_time(parsed["time"], tz) == utc.replace(microsecond=0)


@pytest.mark.parametrize("text, count", [("OK: 12", 12), ("OK:3\n", 3), ("ok", None), ("OK: 0", 0)])
def test_ok_answers(text, count):
    assert codec.parse_ok(text) == count


@pytest.mark.parametrize("text", ["", "ERROR", "<html>OK</html>", "OK: many"])
def test_non_ok_answers_raise(text):
    with pytest.raises(codec.AdmsProtocolError):
        codec.parse_ok(text)


def test_commands_parsed_from_getrequest():
    text = "C:12:INFO\r\nC:13:CONTROL DEVICE 01010105\nnoise\nC:ab7:DATA UPDATE USERINFO PIN=1\tName=A\n"
    commands = codec.parse_commands(text)
    assert [(c.id, c.name) for c in commands] == [("12", "INFO"), ("13", "CONTROL"), ("ab7", "DATA")]
    assert commands[1].argument == "DEVICE 01010105"
    assert codec.parse_commands("OK") == []


@given(st.lists(st.tuples(st.from_regex(r"[0-9]{1,6}", fullmatch=True), st.integers(-1004, 0),
                          st.sampled_from(["INFO", "AC_UNLOCK", "CONTROL", "Shell"]),
                          st.lists(st.tuples(st.from_regex(r"~?[A-Za-z]{1,12}", fullmatch=True),
                                             st.from_regex(r"[A-Za-z0-9 .,-]{0,20}", fullmatch=True)),
                                   max_size=4)),
                min_size=1, max_size=5))
def test_results_round_trip(items):
    results = [codec.Result(i, code, cmd, tuple(data)) for i, code, cmd, data in items]
    parsed = codec.parse_results(codec.format_results(results))
    assert [(r.id, r.code, r.cmd, r.data) for r in parsed] == \
           [(r.id, r.code, r.cmd, tuple((k, v.strip()) for k, v in r.data)) for r in results]


@pytest.mark.parametrize("argument, expected", [
    ("DEVICE 01010105", codec.DoorRequest(1, 5.0)),
    ("DEVICE 0101010A", codec.DoorRequest(1, 10.0)),   # hex seconds
    ("DEVICE 0102010300", codec.DoorRequest(2, 3.0)),  # door 2 (the runner refuses it)
    ("DEVICE 010101FF00", codec.RETURN_UNSUPPORTED),   # latch open
    ("DEVICE 01010100", codec.RETURN_UNSUPPORTED),     # close
    ("DEVICE 01010205", codec.RETURN_UNSUPPORTED),     # aux output
    ("DEVICE 03000000", codec.RETURN_UNSUPPORTED),     # reboot
    ("DEVICE 0101", codec.RETURN_BAD_SYNTAX),
    ("DOOR 01010105", codec.RETURN_BAD_SYNTAX),
])
def test_control_device(argument, expected):
    assert codec.parse_control_device(argument) == expected
