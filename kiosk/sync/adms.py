"""Optional push of attendance to HR servers that speak the ZKTeco PUSH/ADMS HTTP protocol.

The kiosk behaves like a PUSH terminal: it handshakes (``GET /iclock/cdata?options=all``),
posts new attendance events as ATTLOG rows (``POST /iclock/cdata?table=ATTLOG``), polls for
commands (``GET /iclock/getrequest``) and posts their results (``POST /iclock/devicecmd``).

It keeps its own cursor (the last event ``seq`` the server acknowledged with ``OK``) in the
database meta table, independent of the kiosk's own sync outbox, so acknowledged rows are never
sent again and a restart resumes where it stopped. A batch's ``Stamp`` is the seq of its last
row, so a retried batch carries the same stamp, and a server that answers ``ATTLOGStamp=<n>``
at handshake is trusted for rows up to n (only if n is a seq this kiosk has).

Give the adapter its own database connection (``db.open_db(path)``) when it runs on its thread.
"""

import importlib.metadata
import logging
import random
import socket
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import requests

from kiosk.errors import ConfigError, SyncError
from kiosk.storage import db, events, people
from kiosk.sync import adms_codec as codec
from kiosk.sync.adms_commands import CommandRunner
from kiosk.sync.command_path import Limits

log = logging.getLogger(__name__)

PUSH_VERSION = "2.4.1"
CURSOR_KEY = "adms.cursor"
STATE_KEY = "adms.state"
DEFAULT_ERROR_DELAY_S = 30.0
MAX_BATCHES_PER_STEP = 50


class AdmsHttpError(SyncError):
    """An ADMS server answered with an HTTP error status."""


class AdmsAdapter:
    """A PUSH/ADMS terminal personality for the kiosk: ``run_once()`` steps it, ``start()`` runs a thread."""

    def __init__(self, database, *, url, serial, open_door=None, door_commands=False, limits=Limits(), clock,
                 timezone_name="", timeout_s=15.0, batch_rows=200, max_backoff_s=300.0,
                 error_delay_s=DEFAULT_ERROR_DELAY_S, verify=True, rng=None, firmware=None):
        if not url:
            raise ConfigError("sync.adms_url: empty; the ADMS adapter needs the server's base URL")
        if not serial or any(ch in serial for ch in "&=?# \t\r\n"):
            raise ConfigError(f"sync.adms_serial: {serial!r} is not a usable device serial number")
        try:
            codec.resolve_timezone(timezone_name, None)
        except ValueError as e:
            raise ConfigError(f"sync.adms_timezone: {e}") from None
        self._db = database
        self.url = url.rstrip("/")
        self.serial = serial
        self._clock = clock
        self._timezone_name = timezone_name
        self._timeout_s = timeout_s
        self._batch_rows = batch_rows
        self._max_backoff_s = max_backoff_s
        self._default_error_delay_s = error_delay_s
        self._error_delay_s = error_delay_s  # the server's ErrorDelay once a handshake told us
        self._rng = rng or random.Random()
        self.firmware = firmware or f"kiosk-{_version()}"
        self._session = requests.Session()
        self._session.verify = verify
        self._session.headers.update({"User-Agent": f"kiosk-adms/{_version()}"})
        self._commands = CommandRunner(open_door=open_door, info=self._info_pairs, on_check=self._request_handshake,
                                       on_log=self.upload_now, door_commands=door_commands, limits=limits,
                                       database=database)
        self.options = None          # ServerOptions once the handshake succeeded
        self.tz = timezone.utc
        self._errors = 0
        self._next_poll_at = 0.0     # monotonic
        self._last_upload_at = None  # monotonic
        self._last_trans_check = None  # wall seconds
        self._upload_requested = True
        self._more_pending = False
        self._handshake_requested = False
        self._send_info = True
        self._pending_results = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings, database, *, open_door=None, clock):
        """Build from ``settings.sync`` (adms_url, adms_serial or device_id, adms_timezone, adms_door_commands)."""
        sync = settings.sync
        # https ADMS servers are checked against the system CA store (sync.ca_file pins our own server)
        return cls(database, url=sync.adms_url, serial=sync.adms_serial or sync.device_id, open_door=open_door,
                   door_commands=sync.adms_door_commands,
                   limits=Limits(settings.gpio.door_pulse_s, settings.gpio.door_max_pulse_s),
                   clock=clock, timezone_name=sync.adms_timezone, timeout_s=sync.request_timeout_s,
                   max_backoff_s=sync.max_backoff_s)

    # ------------------------------------------------------------ the cursor

    @property
    def cursor(self):
        """Seq of the last event this server acknowledged (0: none)."""
        saved = db.get_meta(self._db, CURSOR_KEY)
        if saved and saved.get("url") == self.url and saved.get("serial") == self.serial:
            return int(saved["seq"])
        return 0

    def _set_cursor(self, seq):
        db.set_meta(self._db, CURSOR_KEY, {"url": self.url, "serial": self.serial, "seq": int(seq)})

    def _max_seq(self):
        return self._db.execute("SELECT coalesce(max(seq), 0) FROM attendance_events").fetchone()[0]

    # ------------------------------------------------------------ one step

    def run_once(self):
        """Handshake if needed, poll commands when due, upload when due; return seconds until the next step."""
        with self._lock:
            try:
                if self.options is None or self._handshake_requested:
                    self.handshake()
                self._flush_results()
                now = self._clock.monotonic()
                if now >= self._next_poll_at:
                    self.poll_commands()
                    self._next_poll_at = now + self.options.delay_s
                if self._handshake_requested:  # CHECK asked for a fresh handshake
                    self.handshake()
                if self._upload_due():
                    self.upload_pending()
            except SyncError as e:
                return self._failed(e)
            self._errors = 0
            if self._more_pending:
                return 0.0
            wait = max(0.0, self._next_poll_at - self._clock.monotonic())
            if not self.options.realtime and self._last_upload_at is not None:
                wait = min(wait, max(0.0, self._last_upload_at + self.options.trans_interval_s
                                     - self._clock.monotonic()))
            return wait

    def _failed(self, error):
        self._errors += 1
        base = self._error_delay_s
        delay = min(base * 2 ** min(self._errors - 1, 16), max(base, self._max_backoff_s))
        delay *= self._rng.uniform(0.9, 1.1)  # spread kiosks that lost the same server
        log.warning("ADMS server %s: %s (attempt %d failed, next try in %.0f s)", self.url, error,
                    self._errors, delay)
        self.options = None  # a real terminal handshakes again after an error; so do we
        self._save_state(last_error=str(error)[:200], last_error_at=self._clock.time())
        self._next_poll_at = self._clock.monotonic() + delay
        return delay

    # ------------------------------------------------------------ handshake

    def handshake(self):
        """``GET /iclock/cdata?options=all``: read the server's options and resume point."""
        text = self._get("/iclock/cdata", {"SN": self.serial, "options": "all", "pushver": PUSH_VERSION})
        options = codec.parse_options(text)
        self.tz = codec.resolve_timezone(self._timezone_name, options.utc_offset_min)
        if not self._timezone_name and options.utc_offset_min is None:
            log.warning("ADMS server sent no usable TimeZone and sync.adms_timezone is empty: rows are in UTC")
        self._honour_stamp(options.attlog_stamp)
        self.options = options
        self._error_delay_s = options.error_delay_s
        self._handshake_requested = False
        self._send_info = True
        self._next_poll_at = 0.0
        if self._last_trans_check is None:
            self._last_trans_check = self._clock.time()
        log.info("ADMS handshake with %s: Delay=%gs ErrorDelay=%gs Realtime=%d, rows in UTC%+.1fh",
                 self.url, options.delay_s, options.error_delay_s, options.realtime,
                 self.tz.utcoffset(datetime.fromtimestamp(self._clock.time(), timezone.utc)).total_seconds() / 3600)
        return options

    def _honour_stamp(self, stamp):
        cursor = self.cursor
        if stamp is None or stamp == cursor:
            return
        if stamp < cursor:
            log.info("ADMS server stamp %d is behind our cursor %d: acknowledged rows are not re-sent",
                     stamp, cursor)
            return
        newest = self._max_seq()
        if stamp > newest:
            log.warning("ADMS server stamp %d is beyond our newest event %d (another device's numbering?): "
                        "ignored", stamp, newest)
            return
        log.info("ADMS server already has events up to seq %d: resuming there", stamp)
        self._set_cursor(stamp)

    def _request_handshake(self):
        self._handshake_requested = True

    # ------------------------------------------------------------ attendance upload

    def notify(self):
        """A new event was recorded: in real-time mode, step the worker now."""
        if self.options is None or self.options.realtime:
            self._wake.set()

    def upload_now(self):
        """Upload pending rows at the next step whatever the schedule says."""
        self._upload_requested = True
        self._wake.set()

    def _upload_due(self):
        if self._upload_requested or self.options.realtime:
            return True
        now = self._clock.monotonic()
        if self._last_upload_at is None or now - self._last_upload_at >= self.options.trans_interval_s:
            return True
        return self._trans_time_crossed()

    def _trans_time_crossed(self):
        """True once for each TransTimes time of day passed since the last check (server's time zone)."""
        now_wall = self._clock.time()
        last, self._last_trans_check = self._last_trans_check, now_wall
        if not self.options.trans_times or last is None or now_wall <= last:
            return False
        start = datetime.fromtimestamp(last, self.tz)
        end = datetime.fromtimestamp(now_wall, self.tz)
        day = start.date()
        while day <= end.date():
            for hour, minute in self.options.trans_times:
                moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
                if start < moment <= end:
                    return True
            day += timedelta(days=1)
        return False

    def upload_pending(self):
        """POST every unacknowledged event as ATTLOG rows, a batch at a time; return rows acknowledged."""
        sent, more = 0, False
        for _ in range(MAX_BATCHES_PER_STEP):
            cursor = self.cursor
            records = events.events_after(self._db, cursor, limit=self._batch_rows)
            if not records:
                break
            rows, skipped = [], 0
            for record in records:
                try:
                    rows.append(codec.attlog_row(record, self.tz))
                except codec.RowError as e:
                    log.error("ADMS: skipping an event no ATTLOG row can carry: %s", e)
                    skipped += 1
            stamp = records[-1]["seq"]
            if rows:
                text = self._post("/iclock/cdata", {"SN": self.serial, "table": "ATTLOG", "Stamp": stamp},
                                  codec.attlog_body(rows))
                count = codec.parse_ok(text)
                if count is not None and count != len(rows):
                    log.warning("ADMS server answered OK: %d for %d rows (taken as processed)", count, len(rows))
            with db.transaction(self._db):  # one commit (one fsync) per batch
                self._set_cursor(stamp)
                self._save_state(last_success_at=self._clock.time(), last_error=None,
                                 skipped=self._state().get("skipped", 0) + skipped)
            sent += len(rows)
        else:  # a long backlog: the next step comes at once (commands are polled in between)
            more = bool(events.events_after(self._db, self.cursor, limit=1))
        self._more_pending = more
        self._upload_requested = more
        self._last_upload_at = self._clock.monotonic()
        if sent:
            log.info("ADMS: %d attendance rows acknowledged (cursor now %d)", sent, self.cursor)
        return sent

    # ------------------------------------------------------------ commands

    def poll_commands(self):
        """``GET /iclock/getrequest``: run the commands it returns and post their results."""
        params = {"SN": self.serial}
        if self._send_info:
            params["INFO"] = self._info_line()
        text = self._get("/iclock/getrequest", params)
        self._send_info = False
        commands = codec.parse_commands(text)
        for command in commands:
            self._pending_results.append(self._commands.run(command))
        self._flush_results()
        return commands

    def _flush_results(self):
        if not self._pending_results:
            return
        body = codec.format_results(self._pending_results)
        self._post("/iclock/devicecmd", {"SN": self.serial}, body)
        self._pending_results = []

    def _counts(self):
        def scalar(sql):
            try:
                return self._db.execute(sql).fetchone()[0]
            except Exception:  # a table this firmware version lacks: report 0, not an error
                return 0
        return dict(users=people.count_people(self._db),
                    fingers=scalar("SELECT count(*) FROM finger_templates"),
                    faces=scalar("SELECT count(DISTINCT person_id) FROM face_templates"),
                    records=events.count(self._db))

    def _info_pairs(self):
        counts = self._counts()
        return (("~DeviceName", "kiosk"), ("~SerialNumber", self.serial), ("FWVersion", self.firmware),
                ("PushVersion", PUSH_VERSION), ("UserCount", counts["users"]), ("FPCount", counts["fingers"]),
                ("FaceCount", counts["faces"]), ("TransactionCount", counts["records"]),
                ("IPAddress", self._local_ip()))

    def _info_line(self):
        counts = self._counts()
        return ",".join(str(v) for v in (self.firmware, counts["users"], counts["fingers"], counts["records"],
                                         self._local_ip()))

    def _local_ip(self):
        """The address this kiosk uses to reach the server (no packet is sent)."""
        parsed = urlparse(self.url)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((parsed.hostname, parsed.port or 80))
                return probe.getsockname()[0]
        except OSError:
            return ""

    # ------------------------------------------------------------ HTTP

    def _get(self, path, params):
        return self._request("GET", path, params, None)

    def _post(self, path, params, body):
        return self._request("POST", path, params, body.encode("utf-8"))

    def _request(self, method, path, params, body):
        headers = {"Content-Type": "text/plain; charset=utf-8"} if body is not None else None
        try:
            response = self._session.request(method, self.url + path, params=params, data=body,
                                             headers=headers, timeout=self._timeout_s)
        except requests.RequestException as e:
            raise SyncError(f"{method} {path}: {type(e).__name__}") from e
        if response.status_code >= 400:
            raise AdmsHttpError(f"{method} {path}: HTTP {response.status_code}")
        return response.content.decode("utf-8", errors="replace")

    # ------------------------------------------------------------ state for `status`

    def _state(self):
        return db.get_meta(self._db, STATE_KEY, {}) or {}

    def _save_state(self, **changes):
        db.set_meta(self._db, STATE_KEY, {**self._state(), **changes})

    def status(self):
        """Cursor, pending rows, last success and last error (see also ``status(database)``)."""
        return {**status(self._db), "connected": self.options is not None, "url": self.url,
                "serial": self.serial, "consecutive_errors": self._errors}

    # ------------------------------------------------------------ the worker thread

    def start(self):
        """Run ``run_once`` on a daemon thread until ``close()``."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._loop, name="adms", daemon=True)
        self._thread.start()
        return self

    @property
    def is_alive(self):
        """True while the worker thread runs (False before start and after close)."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self):
        while not self._stop.is_set():
            try:
                wait_s = self.run_once()
            except Exception:  # the worker must outlive any bug in one step
                log.exception("ADMS step failed unexpectedly")
                wait_s = self._default_error_delay_s
            self._wake.wait(wait_s)
            self._wake.clear()

    def close(self):
        """Stop the thread and close the HTTP session; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 5)
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _version():
    try:
        return importlib.metadata.version("kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def status(database):
    """ADMS state from the database alone (for `kiosk sync status` in another process)."""
    saved = db.get_meta(database, CURSOR_KEY) or {}
    cursor = int(saved.get("seq", 0))
    pending = database.execute("SELECT count(*) FROM attendance_events WHERE seq > ?", [cursor]).fetchone()[0]
    state = db.get_meta(database, STATE_KEY, {}) or {}
    return {"cursor": cursor, "pending": pending, "last_success_at": state.get("last_success_at"),
            "last_error": state.get("last_error"), "last_error_at": state.get("last_error_at"),
            "skipped": state.get("skipped", 0)}
