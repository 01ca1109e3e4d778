"""Punch-state rules: time windows (also across midnight and daylight saving), toggle, first-in/last-out, fixed."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.errors import ConfigError
from kiosk.flows.ports import Punch
from kiosk.flows.punch import PunchRule, local_clock_text, parse_windows


def at(text, zone="Asia/Riyadh"):
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_time_windows_pick_by_local_time_and_fall_back_to_toggle():
    rule = PunchRule("time_windows", timezone="Asia/Riyadh",
                     windows=["06:00-11:00=0", "12:00-13:00=2", "22:00-02:00=4"])
    assert rule.decide(at("2026-11-28 07:30"), []) == 0
    assert rule.decide(at("2026-11-28 12:10"), []) == 2
    assert rule.decide(at("2026-11-28 23:10"), []) == 4
    assert rule.decide(at("2026-11-29 01:59"), []) == 4      # the window wraps past midnight
    assert rule.decide(at("2026-11-28 15:00"), []) == 0      # no window: toggle, first punch
    assert rule.decide(at("2026-11-28 15:00"), [Punch(0, 0)]) == 1


def test_windows_follow_daylight_saving():
    rule = PunchRule("time_windows", timezone="America/New_York", windows=["08:00-09:00=0"])
    assert rule.decide(at("2026-07-01 08:30", "America/New_York"), []) == 0
    assert rule.decide(at("2026-12-01 08:30", "America/New_York"), []) == 0
    assert rule.decide(at("2026-12-01 09:30", "America/New_York"), [Punch(0, 0)]) == 1


def test_toggle_pairs_each_state_with_its_partner():
    rule = PunchRule("toggle")
    assert rule.decide(0, []) == 0
    assert [rule.decide(0, [Punch(s, 0)]) for s in range(6)] == [1, 0, 3, 0, 5, 0]


def test_first_in_last_out_and_fixed():
    assert PunchRule("first_in_last_out").decide(0, []) == 0
    assert PunchRule("first_in_last_out").decide(0, [Punch(0, 0), Punch(1, 0)]) == 1
    assert PunchRule("fixed", fixed_status=4).decide(0, [Punch(4, 0)]) == 4
    assert PunchRule("ask").asks and not PunchRule("toggle").asks


def test_day_starts_at_local_midnight():
    rule = PunchRule("toggle", timezone="Asia/Riyadh")
    assert rule.day_start_s(at("2026-11-28 00:30")) == at("2026-11-28 00:00")
    assert local_clock_text(at("2026-11-28 08:02"), "Asia/Riyadh") == "08:02"


def test_a_window_to_24_00_reaches_midnight_and_00_00_to_24_00_is_the_whole_day():
    evening = PunchRule("time_windows", windows=["18:00-24:00=5"], timezone="Asia/Riyadh")
    assert evening.decide(at("2026-11-28 23:59"), [Punch(0, 0)]) == 5
    assert evening.decide(at("2026-11-28 17:59"), [Punch(0, 0)]) == 1     # outside: toggle
    whole_day = PunchRule("time_windows", windows=["00:00-24:00=4"], timezone="Asia/Riyadh")
    for moment in ("2026-11-28 00:00", "2026-11-28 08:00", "2026-11-28 23:59"):
        assert whole_day.decide(at(moment), [Punch(0, 0)]) == 4, moment


@pytest.mark.parametrize("empty", ["08:00-08:00=0", "00:00-00:00=1", "24:00-24:00=1"])
def test_a_window_of_no_time_is_refused_rather_than_never_matching(empty):
    with pytest.raises(ConfigError, match="time_windows"):
        parse_windows([empty])


@pytest.mark.parametrize("bad", ["8-9=0", "08:00-09:00=6", "25:00-26:00=1", "08:61-09:00=1", "08:00-24:30=1", ""])
def test_malformed_windows_name_the_entry(bad):
    with pytest.raises(ConfigError, match="time_windows"):
        parse_windows([bad])


def test_unknown_rule_is_refused():
    with pytest.raises(ConfigError, match="status_rule"):
        PunchRule("sometimes")
