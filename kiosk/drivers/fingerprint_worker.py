"""Run blocking fingerprint-sensor calls on one worker thread, with futures and cancellation.

The sensor is a serial device: one conversation at a time. ``SensorWorker`` owns the only
thread that talks to it; callers (flows, the UI through signals) get ``Future`` objects.
Calls that wait for a finger receive a cancel event, so ``cancel(future)`` (or
``cancel_all()``) ends a capture within one poll interval with ``CancelledError``.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from kiosk.errors import CancelledError

log = logging.getLogger(__name__)

# sensor methods that wait for a person and take a ``cancel`` event
WAITING_METHODS = ("wait_for_finger", "wait_for_lift", "capture", "identify", "verify", "verify_any", "enroll")


class SensorWorker:
    """One thread in front of a FingerprintSensor; a context manager; ``close()`` is idempotent."""

    def __init__(self, sensor, *, close_sensor=True):
        self.sensor = sensor
        self._close_sensor = close_sensor
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        self._events = {}  # future -> cancel event, while queued or running
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, method, *args, **kwargs):
        """Run ``sensor.<method>(*args, **kwargs)`` on the worker thread; returns a Future."""
        if self._closed:
            raise RuntimeError("the sensor worker is closed")
        function = getattr(self.sensor, method)
        event = threading.Event()
        if method in WAITING_METHODS:
            kwargs.setdefault("cancel", event)

        def run():
            if event.is_set():
                raise CancelledError(f"{method} cancelled before it started")
            return function(*args, **kwargs)

        future = self._executor.submit(run)
        with self._lock:
            self._events[future] = event
        future.add_done_callback(self._forget)
        return future

    def run(self, function):
        """Run ``function(sensor)`` on the worker thread (for multi-step jobs); returns a Future."""
        if self._closed:
            raise RuntimeError("the sensor worker is closed")
        return self._executor.submit(function, self.sensor)

    def _forget(self, future):
        with self._lock:
            self._events.pop(future, None)

    def cancel(self, future):
        """Ask one call to stop: a queued call never runs, a waiting one ends; both raise CancelledError."""
        with self._lock:
            event = self._events.get(future)
        if event is not None:
            event.set()

    def cancel_all(self):
        with self._lock:
            pending = list(self._events)
        for future in pending:
            self.cancel(future)

    # shorthands for the common calls
    def probe(self):
        return self.submit("probe")

    def capture(self, **kwargs):
        return self.submit("capture", **kwargs)

    def identify(self, **kwargs):
        return self.submit("identify", **kwargs)

    def enroll(self, **kwargs):
        return self.submit("enroll", **kwargs)

    def close(self):
        if self._closed:
            return
        self._closed = True
        self.cancel_all()
        self._executor.shutdown(wait=True)
        if self._close_sensor:
            self.sensor.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
