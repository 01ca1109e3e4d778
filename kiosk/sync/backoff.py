"""Exponential backoff with jitter that honours a server's Retry-After."""

import logging
import random
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)


class Backoff:
    """Delays that double after each failure up to ``cap_s``, jittered, reset by a success."""

    def __init__(self, *, base_s=1.0, cap_s=300.0, rng=None):
        self.base_s = float(base_s)
        self.cap_s = float(cap_s)
        self.failures = 0
        self._rng = rng or random.Random()

    def failure(self, *, retry_after_s=None):
        """Count a failure; return how long to wait before the next attempt."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures - 1, 30))
        # "equal jitter": never less than half the ceiling, so retries do not bunch at zero
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if retry_after_s is not None:
            # the server knows best, but a silly Retry-After must not park the device for days
            delay = max(delay, min(float(retry_after_s), max(self.cap_s, 3600.0)))
        return delay

    def success(self):
        self.failures = 0


def parse_retry_after(value, *, now):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/invalid."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)
