"""Optional push of attendance to HR servers that speak the ZKTeco PUSH/ADMS HTTP protocol.

The kiosk behaves like a PUSH terminal: it handshakes (``GET /iclock/cdata?options=all``),
posts new attendance events as ATTLOG rows (``POST /iclock/cdata?table=ATTLOG``), polls for
commands (``GET /iclock/getrequest``) and posts their results (``POST /iclock/devicecmd``).

It keeps its own cursor (the last event ``seq`` the server acknowledged with ``OK``) in the
database meta table, independent of the kiosk's own sync outbox, so acknowledged rows are never
sent again and a restart resumes where it stopped. A batch's ``Stamp`` is the seq of its last
row, so a retried batch carries the same stamp, and a server that answers ``ATTLOGStamp=<n>``
at handshake is trusted for rows up to n (only if n is a seq this kiosk has). A server that has
shown it keeps stamps and then answers one behind the cursor (its database was restored, or the
device was reset there) gets the rows after that stamp again (``adms_history``).

Rows carry local time in the kiosk's zone (``sync.adms_timezone``, else ``device.timezone``),
each converted with that zone's rules for its own date; the server's ``TimeZone`` is only
compared with it. The handshake is repeated at least every ``HANDSHAKE_EVERY_S``.

Give the adapter its own database connection (``db.open_db(path)``) when it runs on its thread.
"""

import importlib.metadata
import logging
import random
import socket
import threading
from datetime import datetime, timedelta
from urllib.parse import urlparse

import requests

from kiosk.errors import CommandRefusedError, ConfigError, SyncError
from kiosk.storage import db, events, people
from kiosk.sync import adms_codec as codec
from kiosk.sync import adms_history as history
from kiosk.sync.adms_commands import CommandRunner
from kiosk.sync.command_path import Limits

log = logging.getLogger(__name__)

PUSH_VERSION = "2.4.1"
CURSOR_KEY = "adms.cursor"
STATE_KEY = "adms.state"
DEFAULT_ERROR_DELAY_S = 30.0
MAX_BATCHES_PER_STEP = 50
HANDSHAKE_EVERY_S = 6 * 3600.0  # options, stamp and time zone are re-read at least this often
RESTART_AT_MOST_EVERY_S = 3600.0  # a REBOOT sooner than this after the last one is refused
TOKEN_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class AdmsHttpError(SyncError):
    """An ADMS server answered with an HTTP error status."""


class AdmsAdapter:
    """A PUSH/ADMS terminal personality for the kiosk: ``run_once()`` steps it, ``start()`` runs a thread."""

    def __init__(self, database, *, url, serial, open_door=None, door_commands=False, limits=Limits(), clock,
                 timezone_name="", device_timezone="UTC", timeout_s=15.0, batch_rows=200, max_backoff_s=300.0,
                 error_delay_s=DEFAULT_ERROR_DELAY_S, verify=True, rng=None, firmware=None, token="",
                 token_via="pushcommkey", token_name="token", request_restart=None):
        if not url:
            raise ConfigError("sync.adms_url: empty; the ADMS adapter needs the server's base URL")
        if not serial or any(ch in serial for ch in "&=?# \t\r\n"):
            raise ConfigError(f"sync.adms_serial: {serial!r} is not a usable device serial number")
        try:
            self.tz = codec.resolve_timezone(timezone_name or device_timezone or "UTC", None)
        except ValueError as e:
            raise ConfigError(f"sync.adms_timezone / device.timezone: {e}") from None
        if token_via not in ("pushcommkey", "param", "header"):
            raise ConfigError(f"sync.adms_token_via: {token_via!r} is not pushcommkey, param or header")
        if not token_name or len(token_name) > 64 or not set(token_name) <= TOKEN_NAME_CHARS:
            raise ConfigError("sync.adms_token_name: 1-64 letters, digits, '-' or '_'")
        if any(ch in token for ch in "\r\n\0"):
            raise ConfigError("sync.adms_token: contains a line break or NUL")
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
        self._token_params = {}
        if token and token_via == "header":
            self._session.headers[token_name] = token
        elif token:
            self._token_params = {"pushcommkey" if token_via == "pushcommkey" else token_name: token}
        self._redactor = history.SecretRedactor([token]).install() if token else None
        self._request_restart = request_restart
        self._restart_due = False
        self._commands = CommandRunner(open_door=open_door, info=self._info_pairs, on_check=self._request_handshake,
                                       on_log=self.upload_now, on_query=self.resend_range,
                                       on_set_time=self._record_set_time,
                                       on_reboot=self._reboot if request_restart is not None else None, tz=self.tz,
                                       door_commands=door_commands, limits=limits, database=database, clock=clock)
        self.options = None          # ServerOptions once the handshake succeeded
        self._handshake_at = None    # monotonic time of the last handshake
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
    def from_settings(cls, settings, database, *, open_door=None, clock, request_restart=None):
        """Build from ``settings.sync`` (adms_*) and ``settings.device.timezone``.

        ``request_restart()``: how a REBOOT command restarts the kiosk service (None, or
        ``sync.adms_reboot_command`` off: REBOOT is answered -1; ADMS commands are not signed, so
        by default no server on the path can restart the kiosk).
        """
        sync = settings.sync
        if not sync.adms_reboot_command:
            request_restart = None
        # https ADMS servers are checked against the system CA store (sync.ca_file pins our own server)
        return cls(database, url=sync.adms_url, serial=sync.adms_serial or sync.device_id, open_door=open_door,
                   door_commands=sync.adms_door_commands,
                   limits=Limits(settings.gpio.door_pulse_s, settings.gpio.door_max_pulse_s),
                   clock=clock, timezone_name=sync.adms_timezone, device_timezone=settings.device.timezone,
                   timeout_s=sync.request_timeout_s, max_backoff_s=sync.max_backoff_s, token=sync.adms_token,
                   token_via=sync.adms_token_via, token_name=sync.adms_token_name, request_restart=request_restart)

    # ------------------------------------------------------------ the cursor

    @property
    def database(self):
        """The adapter's own database connection."""
        return self._db

    def _saved_cursor(self):
        saved = db.get_meta(self._db, CURSOR_KEY)
        if saved and saved.get("url") == self.url and saved.get("serial") == self.serial:
            return saved
        return {}

    @property
    def cursor(self):
        """Seq of the last event this server acknowledged (0: none)."""
        return int(self._saved_cursor().get("seq", 0))

    @property
    def server_keeps_stamps(self):
        """True once this server answered a stamp of ours at a handshake (so a lower one means a reset)."""
        return bool(self._saved_cursor().get("server_keeps_stamps"))

    def set_cursor(self, seq, *, server_keeps_stamps=None):
        """Move the cursor (and remember whether this server keeps our stamps)."""
        keeps = self.server_keeps_stamps if server_keeps_stamps is None else server_keeps_stamps
        db.set_meta(self._db, CURSOR_KEY, {"url": self.url, "serial": self.serial, "seq": int(seq),
                                           "server_keeps_stamps": bool(keeps)})

    def newest_seq(self):
        """Seq of the newest event held (0: none)."""
        return self._db.execute("SELECT coalesce(max(seq), 0) FROM attendance_events").fetchone()[0]

    # ------------------------------------------------------------ one step

    def run_once(self):
        """Handshake if needed, poll commands when due, upload when due; return seconds until the next step."""
        with self._lock:
            try:
                if self.options is None or self._handshake_requested or self._handshake_stale():
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
            if self._restart_due and not self._pending_results:
                # REBOOT was answered and its answer posted: now restart the service
                self._restart_due = False
                log.warning("ADMS server asked for a restart: restarting the kiosk service")
                self._request_restart()
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
        self._check_server_offset(options.utc_offset_min)
        history.honour_stamp(self, options.attlog_stamp)
        self.options = options
        self._error_delay_s = options.error_delay_s
        self._handshake_requested = False
        self._handshake_at = self._clock.monotonic()
        self._send_info = True
        self._next_poll_at = 0.0
        if self._last_trans_check is None:
            self._last_trans_check = self._clock.time()
        log.info("ADMS handshake with %s: Delay=%gs ErrorDelay=%gs Realtime=%d, rows in UTC%+.1fh",
                 self.url, options.delay_s, options.error_delay_s, options.realtime, self._offset_now_min() / 60)
        return options

    def _offset_now_min(self):
        """Our zone's offset from UTC at this instant, in minutes."""
        # tz.utcoffset(dt) reads dt's fields as local time: a UTC datetime would give the offset
        # of the wrong hour, wrong for hours around a daylight-saving change
        return int(datetime.fromtimestamp(self._clock.time(), self.tz).utcoffset().total_seconds() // 60)

    def _handshake_stale(self):
        return self._handshake_at is not None and \
            self._clock.monotonic() - self._handshake_at >= HANDSHAKE_EVERY_S

    def _check_server_offset(self, server_offset_min):
        """Compare the server's TimeZone with our zone's offset now; log and record a disagreement."""
        ours_min = self._offset_now_min()
        mismatch = server_offset_min is not None and server_offset_min != ours_min
        if mismatch:
            log.warning("ADMS server TimeZone is UTC%+gh but rows are written in %s (UTC%+gh now): "
                        "set the device's zone in the HR system, or sync.adms_timezone here, so they agree",
                        server_offset_min / 60, self.tz, ours_min / 60)
        recorded = {"server_min": server_offset_min, "ours_min": ours_min} if mismatch else None
        if recorded != self._state().get("timezone_mismatch"):
            self._save_state(timezone_mismatch=recorded)

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
            batch = history.build_rows(self._db, records, self.tz)
            stamp = records[-1]["seq"]
            if batch.rows:
                self.post_attlog(batch.rows, stamp)
            with db.transaction(self._db):  # one commit (one fsync) per batch
                self.set_cursor(stamp)
                state = self._state()
                self._save_state(last_success_at=self._clock.time(), last_error=None,
                                 skipped=state.get("skipped", 0) + batch.skipped,
                                 no_adms_pin=state.get("no_adms_pin", 0) + len(batch.no_pin),
                                 same_second=state.get("same_second", 0) + batch.same_second)
            if batch.no_pin:
                history.report_no_pin(batch.no_pin)
            sent += len(batch.rows)
        else:  # a long backlog: the next step comes at once (commands are polled in between)
            more = bool(events.events_after(self._db, self.cursor, limit=1))
        self._more_pending = more
        self._upload_requested = more
        self._last_upload_at = self._clock.monotonic()
        if sent:
            log.info("ADMS: %d attendance rows acknowledged (cursor now %d)", sent, self.cursor)
        return sent

    def post_attlog(self, rows, stamp):
        """POST ATTLOG ``rows`` with ``Stamp=stamp``; raise unless the server answered OK."""
        text = self._post("/iclock/cdata", {"SN": self.serial, "table": "ATTLOG", "Stamp": stamp},
                          codec.attlog_body(rows))
        count = codec.parse_ok(text)
        if count is not None and count != len(rows):
            log.warning("ADMS server answered OK: %d for %d rows (taken as processed)", count, len(rows))

    def resend_range(self, start_s, end_s):
        """DATA QUERY ATTLOG: re-send held, already acknowledged rows made in [start_s, end_s]; return the count."""
        return history.resend_range(self, start_s, end_s)

    def _record_set_time(self, value):
        """SET OPTION DateTime: recorded and flagged, never applied (the kiosk's clock comes from NTP)."""
        log.warning("ADMS server asked to set the clock to %r: not applied (the kiosk keeps NTP time)", value[:32])
        self._save_state(clock_set_request={"value": value[:64], "at": self._clock.time()})
        return {}

    def _reboot(self):
        """REBOOT: restart the kiosk service once the answer is posted (never the machine), at most hourly."""
        last = self._state().get("last_restart_at")
        now = self._clock.time()
        if last is not None and 0 <= now - last < RESTART_AT_MOST_EVERY_S:
            raise CommandRefusedError(f"restarted {now - last:.0f} s ago; at most one restart per "
                              f"{RESTART_AT_MOST_EVERY_S:.0f} s")
        self._save_state(last_restart_at=now)
        self._restart_due = True
        return {}

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
        params = {**params, **self._token_params}
        try:
            response = self._session.request(method, self.url + path, params=params, data=body,
                                             headers=headers, timeout=self._timeout_s)
        except requests.RequestException as e:
            raise SyncError(f"{method} {path}: {type(e).__name__}") from e
        if response.status_code == 403:
            # servers answer 403 to a device not yet approved (or a wrong key): nothing is lost, the
            # rows stay pending and are sent once the server accepts them
            raise AdmsHttpError(f"{method} {path}: HTTP 403 (device not approved on the server yet, "
                                f"or the device key/token is wrong)")
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
        if self._redactor is not None:
            self._redactor.remove()

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
            "skipped": state.get("skipped", 0), "no_adms_pin": state.get("no_adms_pin", 0),
            "same_second": state.get("same_second", 0), "timezone_mismatch": state.get("timezone_mismatch"),
            "clock_set_request": state.get("clock_set_request")}
