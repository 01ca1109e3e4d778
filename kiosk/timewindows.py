"""Time-of-day windows such as ``"06:00-11:00=0"``: parsed once, used by settings and punch rules."""

import re
from dataclasses import dataclass
from datetime import time

WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*=\s*([0-5])\s*$")


@dataclass(frozen=True)
class Window:
    """A window of local time (start inclusive, end exclusive; may wrap past midnight) and its code.

    ``start == end`` is the whole day (``00:00-24:00``): ``parse_window`` refuses any other window
    that starts where it ends.
    """

    start: time
    end: time
    status: int

    def contains(self, moment):
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_window(text):
    """``"HH:MM-HH:MM=code"`` -> Window; raises ValueError saying what is wrong (24:00 ends a day)."""
    match = WINDOW_RE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not 'HH:MM-HH:MM=code' (code 0-5)")
    h0, m0, h1, m1, code = (int(g) for g in match.groups())
    if h0 > 23 or h1 > 24 or m0 > 59 or m1 > 59 or (h1 == 24 and m1):
        raise ValueError(f"{text!r} has an impossible time")
    if (h0, m0) == (h1, m1):
        raise ValueError(f"{text!r} holds no time (00:00-24:00 is the whole day)")
    return Window(time(h0, m0), time(0, 0) if h1 == 24 else time(h1, m1), code)
