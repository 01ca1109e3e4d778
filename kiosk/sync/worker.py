"""The background sync worker: upload, download, commands, purge; backs off while the server is away.

Give it its own database connection (``db.open_db(path)``): it runs on its own thread. Tests
drive ``run_once()`` directly with a fake clock; ``start()`` runs it on a thread for the appliance.
"""

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from kiosk.errors import RejectedError, StorageError, SyncError, UntrustedAnswerError
from kiosk.storage import outbox, sync_state
from kiosk.storage.db import get_meta, set_meta
from kiosk.sync import downloader
from kiosk.backoff import Backoff
from kiosk.sync.client import ServerUnavailableError
from kiosk.sync.command_path import Limits
from kiosk.sync.remote import CommandRunner
from kiosk.sync.uploader import Uploader

log = logging.getLogger(__name__)

STATUS_KEY = "sync.status"
DAY_S = 86400.0


@dataclass
class SyncHooks:
    """What the rest of the kiosk wants to hear from sync (sync imports no drivers or models)."""

    on_faces_changed: Callable | None = None  # (set of person ids) -> rebuild the face gallery
    on_fingers_changed: Callable | None = None  # (set of person ids) -> reconcile the sensor library
    on_settings_changed: Callable | None = None  # ({"section.key": value}) -> apply server settings
    on_clock_offset: Callable | None = None  # (offset_s) -> the device clock is this far behind the server
    commands: dict = field(default_factory=dict)  # "open_door" / "reboot" -> (args) -> detail dict
    limits: Limits = field(default_factory=Limits)  # door pulse default and maximum, from the gpio settings


class SyncWorker:
    """Keeps the device and the central server in step."""

    def __init__(self, database, client, *, settings, clock, data_key=None, hooks=None, rng=None, key_path=None,
                 face_model="", finger_sensor="", on_acknowledged=None, batch_id_factory=None):
        self._db = database
        self.client = client
        self.settings = settings
        self._clock = clock
        self._data_key = data_key
        self.hooks = hooks or SyncHooks()
        self.face_model = face_model
        self.finger_sensor = finger_sensor
        self.uploader = Uploader(database, client, clock=clock, batch_size=settings.batch_size,
                                 max_batch_size=settings.max_batch_size, target_request_s=settings.target_request_s,
                                 on_acknowledged=on_acknowledged, batch_id_factory=batch_id_factory)
        self.backoff = Backoff(base_s=settings.min_backoff_s, cap_s=settings.max_backoff_s, rng=rng)
        self.commands = CommandRunner(database, client, clock=clock, handlers=self.hooks.commands, key_path=key_path,
                                      limits=self.hooks.limits)
        self._rotation_checked = False
        self._warned_offset = 0.0
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.cycles = 0

    # --- one cycle -------------------------------------------------------------------------------

    def run_once(self):
        """One sync cycle; returns how many seconds to wait before the next (0 = more to do now)."""
        self.cycles += 1
        now = self._clock.time()
        status = load_status(self._db)
        status["last_attempt_at"] = now
        delay = self.settings.interval_s
        try:
            if self.backoff.failures:
                self.client.health()  # cheap probe: is the server back?
            if not self._rotation_checked:
                self.commands.finish_interrupted_rotation()
                self._rotation_checked = True
            report = self.uploader.drain(max_batches=self.settings.max_batches_per_cycle)
            summary, more_changes = downloader.pull(
                self._db, self.client, data_key=self._data_key, clock=self._clock, face_model=self.face_model,
                finger_sensor=self.finger_sensor, page_size=self.settings.delta_page_size)
            self._call_hooks(summary)
            outcome = self.commands.poll()
            if outcome.people_purged:
                self._call_hooks(sync_state.ChangeSummary(faces=set(outcome.people_purged),
                                                          fingers=set(outcome.people_purged)))
            self.backoff.success()
            status.update(state="ok", last_success_at=self._clock.time(), consecutive_failures=0,
                          uploaded_total=status.get("uploaded_total", 0) + report.stored)
            if report.sent:
                log.info("uploaded %d record(s) in %d batch(es): %d stored, %d duplicate, %d rejected",
                         report.sent, report.batches, report.stored, report.duplicate, report.rejected)
            if not report.drained or more_changes or outcome.sync_again:
                delay = 0.0
        except ServerUnavailableError as e:
            delay = self._failed(status, "offline", e, retry_after_s=e.retry_after_s)
            log.warning("sync: server unavailable (%s); next try in %.1f s", e, delay)
        except UntrustedAnswerError as e:
            delay = self._failed(status, "untrusted", e)
            log.error("sync: an answer was not signed by the pinned server key, so nothing in it was used "
                      "(%s); is something impersonating the server? next try in %.0f s", e, delay)
        except RejectedError as e:
            delay = self._failed(status, "rejected", e)
            status["last_rejection"] = {"reason": getattr(e, "reason", "rejected"), "message": getattr(e, "detail", str(e)),
                                        "http_status": getattr(e, "http_status", None), "at": now}
            log.error("sync: the server REJECTED our upload: %s: %s. Records are kept on the device and will be "
                      "sent again; next try in %.0f s", getattr(e, "reason", "?"), getattr(e, "detail", e), delay)
        except (SyncError, StorageError) as e:
            delay = self._failed(status, "error", e)
            log.error("sync failed: %s; next try in %.1f s", e, delay)
        finally:
            self._finish(status, now, delay)
        return delay

    def _failed(self, status, state, error, *, retry_after_s=None):
        status.update(state=state, last_error=str(error), last_error_at=self._clock.time(),
                      consecutive_failures=status.get("consecutive_failures", 0) + 1)
        return self.backoff.failure(retry_after_s=retry_after_s)

    def _finish(self, status, now, delay):
        try:
            purged = outbox.purge_acknowledged(self._db, older_than_s=self.settings.retention_days * DAY_S,
                                               now=self._clock.time())
        except StorageError as e:  # a full disk: the cycle's own error is what counts; try again next cycle
            log.warning("could not purge acknowledged records: %s", e)
            purged = 0
        if purged:
            log.debug("purged %d acknowledged record(s) past retention", purged)
        offset = self.client.clock_offset_s
        status["clock_offset_s"] = round(offset, 3)
        status["clock_suspect"] = abs(offset) > self.settings.clock_skew_warn_s
        if status["clock_suspect"] and abs(offset - self._warned_offset) > self.settings.clock_skew_warn_s:
            # once per change, not every cycle
            self._warned_offset = offset
            log.warning("device clock is %+.1f s off the server's", -offset)
            if self.hooks.on_clock_offset is not None:
                self._safe(self.hooks.on_clock_offset, offset)
        status.update(sync_state.pending_stats(self._db))
        status["batch_size"] = self.uploader.batch_size
        status["next_attempt_at"] = self._clock.time() + delay
        save_status(self._db, status)

    def _call_hooks(self, summary):
        if summary.faces and self.hooks.on_faces_changed is not None:
            self._safe(self.hooks.on_faces_changed, set(summary.faces))
        if summary.fingers and self.hooks.on_fingers_changed is not None:
            self._safe(self.hooks.on_fingers_changed, set(summary.fingers))
        if summary.settings and self.hooks.on_settings_changed is not None:
            self._safe(self.hooks.on_settings_changed, dict(summary.settings))

    @staticmethod
    def _safe(hook, *args):
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - a failing hook must not stop sync; the data is committed
            log.exception("sync hook %s failed", getattr(hook, "__name__", hook))

    # --- thread ----------------------------------------------------------------------------------

    def start(self):
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sync-worker", daemon=True)
        self._thread.start()
        return self

    @property
    def is_alive(self):
        """True while the worker thread runs (False before start and after stop)."""
        return self._thread is not None and self._thread.is_alive()

    def sync_now(self):
        """Wake the worker now (network came up, operator asked, server command)."""
        self._wake.set()

    def stop(self, *, timeout_s=10.0):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _loop(self):
        while not self._stop.is_set():
            try:
                delay = self.run_once()
            except Exception:  # noqa: BLE001 - the worker thread must survive anything
                log.exception("sync cycle crashed")
                delay = self.backoff.failure()
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()


def load_status(database):
    return dict(get_meta(database, STATUS_KEY, {}) or {})


def save_status(database, status):
    try:
        set_meta(database, STATUS_KEY, status)
    except Exception as e:  # noqa: BLE001 - status is advisory; never let it stop a sync
        log.warning("could not save sync status: %s", e)


def status(database):
    """The last recorded status plus live outbox figures (for `kiosk sync status`)."""
    current = load_status(database)
    current.update(sync_state.pending_stats(database))
    current.setdefault("state", "never")
    current["rejected_records"] = sync_state.rejected_records(database, limit=10)
    return current
