"""Exponential backoff for every retry loop (camera reconnection, sync, registration), and Retry-After."""

import logging
import math
import random
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

RETRY_AFTER_CEILING_S = 3600.0


class Backoff:
    """Delays that grow by ``factor`` after each failure up to ``cap_s``, reset by a success.

    With ``jitter`` (the default) each delay is drawn between half the ceiling and the ceiling
    ("equal jitter"), so many devices retrying after one outage do not hammer the server in
    step; without it the delays are exact (a local device such as a camera has no crowd).
    """

    def __init__(self, *, base_s=1.0, cap_s=300.0, factor=2.0, jitter=True, rng=None):
        self.base_s = float(base_s)
        self.cap_s = float(cap_s)
        self.factor = float(factor)
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def failure(self, *, retry_after_s=None):
        """Count a failure; return how long to wait before the next attempt."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * self.factor ** min(self.failures - 1, 60))
        # equal jitter: never less than half the ceiling, so retries do not bunch at zero
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2) if self.jitter else ceiling
        if retry_after_s is not None and math.isfinite(retry_after_s):
            # the server knows best, but a silly Retry-After must not park the device for days
            delay = max(delay, min(float(retry_after_s), max(self.cap_s, RETRY_AFTER_CEILING_S)))
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
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)
