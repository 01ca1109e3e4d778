"""Which punch state (check-in, check-out, break, overtime) a recognised person gets.

The six ZKTeco status codes: 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in,
5 overtime-out. The rule is a setting (``attendance.status_rule``):

- ``time_windows``: the local time of day picks the code (``attendance.time_windows``,
  ``"HH:MM-HH:MM=code"``, first match wins); outside every window, ``toggle`` decides;
- ``toggle``: check-in unless the person's last punch today was a check-in (then check-out);
  after a break-out comes a break-in, after an overtime-in an overtime-out;
- ``first_in_last_out``: the first punch of the local day is a check-in, every later one a
  check-out (the server keeps the last);
- ``ask``: the screen offers the codes; ``toggle``'s answer is the default taken on timeout;
- ``fixed``: always ``attendance.fixed_status`` (a kiosk at the entrance only, say).
"""

import logging
from datetime import datetime, time
from zoneinfo import ZoneInfo

from kiosk.errors import ConfigError
from kiosk.timewindows import parse_window

log = logging.getLogger(__name__)

CHECK_IN, CHECK_OUT, BREAK_OUT, BREAK_IN, OVERTIME_IN, OVERTIME_OUT = range(6)
STATUS_NAMES = {CHECK_IN: "check-in", CHECK_OUT: "check-out", BREAK_OUT: "break-out", BREAK_IN: "break-in",
                OVERTIME_IN: "overtime-in", OVERTIME_OUT: "overtime-out"}
TOGGLE_NEXT = {CHECK_IN: CHECK_OUT, BREAK_OUT: BREAK_IN, OVERTIME_IN: OVERTIME_OUT}
RULES = ("time_windows", "toggle", "first_in_last_out", "ask", "fixed")


def parse_windows(texts):
    """``["06:00-11:00=0", ...]`` -> [Window]; a malformed entry is a ConfigError naming it."""
    windows = []
    for text in texts:
        try:
            windows.append(parse_window(text))
        except ValueError as e:
            raise ConfigError(f"attendance.time_windows: {e}") from None
    return windows


class PunchRule:
    """Decides the status code for a person's punch at a moment, from their punches today."""

    def __init__(self, rule, *, timezone="UTC", windows=(), fixed_status=CHECK_IN):
        if rule not in RULES:
            raise ConfigError(f"attendance.status_rule: {rule!r} is not one of {', '.join(RULES)}")
        self.rule = rule
        self.zone = ZoneInfo(timezone)
        self.windows = parse_windows(windows)
        self.fixed_status = int(fixed_status)

    @classmethod
    def from_settings(cls, settings):
        a = settings.attendance
        return cls(a.status_rule, timezone=settings.device.timezone, windows=a.time_windows,
                   fixed_status=a.fixed_status)

    @property
    def asks(self):
        """True when the person chooses on screen."""
        return self.rule == "ask"

    def day_start_s(self, wall_s):
        """Epoch seconds of the local midnight that starts the day of ``wall_s``."""
        return day_start_s(wall_s, self.zone)

    def decide(self, wall_s, punches_today):
        """The status code for a punch at ``wall_s`` given today's earlier punches (oldest first)."""
        if self.rule == "fixed":
            return self.fixed_status
        if self.rule == "first_in_last_out":
            return CHECK_OUT if punches_today else CHECK_IN
        if self.rule == "time_windows":
            moment = datetime.fromtimestamp(wall_s, self.zone).time()
            for window in self.windows:
                if window.contains(moment):
                    return window.status
        return self.toggle(punches_today)

    @staticmethod
    def toggle(punches_today):
        if not punches_today:
            return CHECK_IN
        return TOGGLE_NEXT.get(punches_today[-1].status, CHECK_IN)


def day_start_s(wall_s, zone):
    """Epoch seconds of the local midnight (in ``zone``, a ZoneInfo or a name) that starts ``wall_s``'s day."""
    zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    local = datetime.fromtimestamp(wall_s, zone)
    return datetime.combine(local.date(), time(0, 0), tzinfo=zone).timestamp()


def local_clock_text(wall_s, timezone):
    """``"08:02"`` for a wall time in the kiosk's zone (what "already recorded at" shows)."""
    return datetime.fromtimestamp(wall_s, ZoneInfo(timezone)).strftime("%H:%M")

