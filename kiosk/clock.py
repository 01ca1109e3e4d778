"""Clocks: the system clock, and a fake one tests advance by hand.

A Pi has no battery clock, so every record says whether the wall clock was synchronized when
it was made. The kernel knows: adjtimex() returns TIME_ERROR while the clock is unsynchronized
(the NTP client clears it once it has disciplined the clock).
"""

import ctypes
import ctypes.util
import functools
import logging
import threading
import time

log = logging.getLogger(__name__)

TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only `modes` is written (0 = read only), the rest is padding
    # large enough for every libc layout.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 256)]


@functools.lru_cache(maxsize=1)
def _libc():
    # find_library runs `ldconfig -p` (a process) on every call: look libc up once per process,
    # not once per attendance event
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def forget_libc():
    """Drop the cached libc handle (tests; the next check looks it up again)."""
    _libc.cache_clear()


def kernel_clock_synchronized():
    """True if the kernel says the clock is NTP-synchronized; None if it cannot tell."""
    try:
        state = _libc().adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


class SystemClock:
    """The real clocks: wall time, monotonic time, and synchronization state."""

    def time(self):
        return time.time()

    def monotonic(self):
        return time.monotonic()

    def is_synchronized(self):
        return bool(kernel_clock_synchronized())

    def sleep(self, seconds):
        time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; `sleep` advances it instead of waiting."""

    def __init__(self, start=1_700_000_000.0, *, synchronized=True):
        self._wall = float(start)
        self._mono = 1000.0
        self._lock = threading.Lock()
        self.synchronized = synchronized

    def time(self):
        with self._lock:
            return self._wall

    def monotonic(self):
        with self._lock:
            return self._mono

    def is_synchronized(self):
        return self.synchronized

    def advance(self, seconds):
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def sleep(self, seconds):
        self.advance(seconds)

    def set_wall(self, wall):
        """Jump the wall clock (as an NTP step would) without moving monotonic time."""
        with self._lock:
            self._wall = float(wall)
