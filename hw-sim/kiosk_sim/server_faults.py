"""Fault injection for the central server simulator, switchable while it runs."""

import logging
import random
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

# kind -> what it does
FAULTS = {
    "outage": "the port refuses connections (listener closed, open connections dropped) until cleared",
    "close": "each connection is closed as soon as it is accepted, before any answer",
    "error500": "answer 500 Internal Server Error without doing anything",
    "unavailable": "answer 503 Service Unavailable with Retry-After",
    "slow": "wait delay_s before handling the request (the request is then handled)",
    "reset": "handle the request, then reset the connection halfway through the answer body",
    "duplicate_ack": "batch answers list every result twice, plus stale acks for records not in the batch",
    "lost_ack": "store the batch, then drop the connection without answering",
    "skew": "the server's clock runs skew_s ahead: server_time and timestamp checks use it",
}
BATCH_ONLY = ("duplicate_ack", "lost_ack")


@dataclass
class Fault:
    """One active fault and its knobs."""

    kind: str
    times: int | None = None  # requests it still applies to; None = until cleared
    probability: float = 1.0
    delay_s: float = 1.0
    retry_after_s: int = 1
    skew_s: float = 3600.0
    skip: int = 0  # requests it lets through before it applies (e.g. 1: the second batch fails)


class FaultSwitch:
    """The fault in force (at most one), consumed request by request."""

    def __init__(self, *, seed=None):
        self._lock = threading.Lock()
        self._fault = None
        self._rng = random.Random(seed)
        self.applied = {kind: 0 for kind in FAULTS}

    def set(self, kind, **knobs):
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        with self._lock:
            self._fault = Fault(kind, **knobs)
        log.info("fault now: %s %s", kind, knobs or "")

    def clear(self):
        with self._lock:
            self._fault = None

    @property
    def current(self):
        with self._lock:
            return self._fault

    def take(self, *, is_batch):
        """The fault to apply to this request (counting it), or None."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.kind == "outage":
                return None
            if fault.kind in BATCH_ONLY and not is_batch:
                return None
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                return None
            if fault.skip > 0:
                fault.skip -= 1
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._fault = None
            self.applied[fault.kind] += 1
            return fault
