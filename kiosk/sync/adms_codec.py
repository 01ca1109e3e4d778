"""Text codec of the ZKTeco PUSH/ADMS HTTP protocol: options, ATTLOG rows, commands, results.

Written from the public protocol description (see docs/adms.md). Everything here is pure:
no sockets, no database, no clock, so it is tested on its own.

Time zone: the server's ``TimeZone`` option is read as **hours east of UTC** (``3``, ``-5``,
``5.5``). Some firmware and servers send it in **minutes** (``180``, ``330``); no real offset
exceeds 14 hours, so a magnitude above 14 is read as minutes (up to 840 = 14 h). Anything else
is rejected (``None``) rather than guessed, because a wrong unit shifts every punch by hours.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.errors import SyncError

log = logging.getLogger(__name__)

# our verify-mode strings -> ADMS VerifyMode codes
# ZKTeco has no voice code: a voice second factor is sent as the first proof's code; an event
# proved by voice alone has no ATTLOG code and is skipped (and counted) by the ADMS pusher
VERIFY_CODES = {"pin": 0, "fingerprint": 1, "card": 4, "face": 15, "face+voice": 15, "fingerprint+voice": 1}
STATUS_CODES = range(0, 6)  # 0 check-in .. 5 overtime-out, sent unchanged

# devicecmd Return codes
RETURN_OK = 0
RETURN_UNSUPPORTED = -1
RETURN_FAILED = -2
RETURN_BAD_SYNTAX = -1002

MAX_OFFSET_H = 14
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
LATEST_TIME_S = 253402300799.0  # 9999-12-31 23:59:59 UTC: a query with no EndTime
EARLIEST_TIME_S = -62135596800.0  # 0001-01-01 00:00:00 UTC
_OK_RE = re.compile(r"^\s*OK\s*(?::\s*(-?\d+))?\s*$", re.IGNORECASE)
_COMMAND_RE = re.compile(r"^C:([^:\s]+):(.*)$")
_HHMM_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


class AdmsProtocolError(SyncError):
    """An ADMS server answered with text that does not follow the PUSH protocol."""


class RowError(ValueError):
    """One attendance event cannot be written as an ATTLOG row."""


@dataclass(frozen=True)
class ServerOptions:
    """The handshake answer, with defaults for what the server left out."""

    attlog_stamp: int | None = None
    error_delay_s: float = 30.0
    delay_s: float = 10.0
    trans_interval_s: float = 60.0
    trans_times: tuple = ()           # ((hour, minute), ...) local to the server's time zone
    realtime: bool = True
    utc_offset_min: int | None = None  # None: the server did not say (or said nonsense)
    raw: dict = field(default_factory=dict, compare=False)


# ---------------------------------------------------------------- handshake

def parse_options(text):
    """Parse the ``Key=Value`` handshake answer into ServerOptions; raise on non-protocol text."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    raw = {}
    for line in lines:
        if line.upper().startswith("GET OPTION FROM"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or " " in key.strip():
            continue
        raw[key.strip()] = value.strip()
    if not raw:
        raise AdmsProtocolError(f"handshake answer has no Key=Value options: {text[:80]!r}")
    lowered = {k.lower(): v for k, v in raw.items()}
    realtime = lowered.get("realtime")
    return ServerOptions(
        attlog_stamp=parse_stamp(lowered.get("attlogstamp")),
        error_delay_s=_seconds(lowered.get("errordelay"), 30.0, low=1.0, high=3600.0),
        delay_s=_seconds(lowered.get("delay"), 10.0, low=1.0, high=3600.0),
        trans_interval_s=60.0 * _seconds(lowered.get("transinterval"), 1.0, low=0.0, high=1440.0),
        trans_times=parse_trans_times(lowered.get("transtimes", "")),
        realtime=True if realtime is None else realtime.strip() not in ("0", ""),
        utc_offset_min=parse_timezone(lowered.get("timezone")),
        raw=raw,
    )


def parse_stamp(value):
    """A stamp option as an int; None for absent, ``None``, empty or non-numeric values."""
    if value is None:
        return None
    value = value.strip()
    if not value or value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        log.warning("ignoring non-numeric stamp %r", value[:20])
        return None


def parse_timezone(value):
    """The TimeZone option as minutes east of UTC (hours if |v| <= 14, else minutes); None if unusable."""
    if value is None or not str(value).strip():
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        log.warning("ignoring TimeZone=%r: not a number", str(value)[:20])
        return None
    if abs(number) <= MAX_OFFSET_H:
        minutes = number * 60.0
    elif abs(number) <= MAX_OFFSET_H * 60:
        minutes = number
    else:
        log.warning("ignoring TimeZone=%r: beyond +-14 hours in either unit", value)
        return None
    if minutes != int(minutes):
        log.warning("ignoring TimeZone=%r: not a whole number of minutes", value)
        return None
    return int(minutes)


def parse_trans_times(value):
    """``00:00;14:05`` -> ((0, 0), (14, 5)); malformed entries are skipped."""
    times = []
    for part in re.split(r"[;,\s]+", value or ""):
        match = _HHMM_RE.match(part)
        if match:
            hour, minute = int(match[1]), int(match[2])
            if hour < 24 and minute < 60:
                times.append((hour, minute))
    return tuple(sorted(set(times)))


def _seconds(value, default, *, low, high):
    if value is None or not str(value).strip():
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return min(max(number, low), high)


def format_options(serial, options):
    """The server side of the handshake (used by the simulator): header line then Key=Value lines."""
    lines = [f"GET OPTION FROM: {serial}"]
    lines += [f"{key}={value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- time zone

def resolve_timezone(configured, server_offset_min):
    """The tzinfo rows are written in: ``configured`` ('+03:00', 'Asia/Riyadh') wins, else the server's.

    Raise ValueError for a configured value that is neither an offset nor a known zone name.
    With neither, rows are in UTC (and the caller should say so in the log).
    """
    configured = (configured or "").strip()
    if configured:
        offset = _parse_offset(configured)
        if offset is not None:
            return timezone(timedelta(minutes=offset))
        try:
            return ZoneInfo(configured)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{configured!r} is neither a UTC offset like +03:00 nor a time zone name") from None
    if server_offset_min is not None:
        return timezone(timedelta(minutes=server_offset_min))
    return timezone.utc


def _parse_offset(text):
    match = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", text, re.IGNORECASE)
    if not match:
        return None
    minutes = int(match[2]) * 60 + int(match[3] or 0)
    if minutes > MAX_OFFSET_H * 60:
        return None
    return -minutes if match[1] == "-" else minutes


def local_time_text(wall_time_iso, tz):
    """Our ISO 8601 UTC wall time ('2024-05-01T06:30:00.123Z') as 'YYYY-MM-DD HH:MM:SS' in ``tz``."""
    text = wall_time_iso.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # truncate, never round: a punch at 08:59:59.9 is not 09:00:00
    return moment.astimezone(tz).strftime(TIME_FORMAT)


def parse_local_time(text, tz):
    """'YYYY-MM-DD HH:MM:SS' in ``tz`` -> aware UTC datetime (for checks and the simulator)."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=tz).astimezone(timezone.utc)


# ---------------------------------------------------------------- ATTLOG

def attlog_row(record, tz, *, pin=None):
    """One event record (as from kiosk.storage.events) as an ATTLOG line (no newline).

    ``PIN<TAB>YYYY-MM-DD HH:MM:SS<TAB>Status<TAB>Verify<TAB>WorkCode<TAB>0<TAB>0``. ``pin``: the
    user id to send (the person's ADMS PIN); None sends the event's ``person_id``. The time is
    converted with ``tz``'s rules for the event's own instant, so a zone with daylight saving
    gives each row the offset in force on its date.
    """
    pin = str(record["person_id"] if pin is None else pin)
    if not pin or any(ch in pin for ch in "\t\r\n") or not pin.isprintable():
        raise RowError(f"event seq {record.get('seq')}: user id has characters an ATTLOG row cannot carry")
    status = record["status"]
    if status not in STATUS_CODES:
        raise RowError(f"event seq {record.get('seq')}: status {status!r} is not 0..5")
    try:
        verify = VERIFY_CODES[record["verify_mode"]]
    except KeyError:
        raise RowError(f"event seq {record.get('seq')}: verify mode {record['verify_mode']!r} "
                       f"has no ADMS code (known: {', '.join(VERIFY_CODES)})") from None
    try:
        when = local_time_text(record["wall_time"], tz)
    except ValueError:
        raise RowError(f"event seq {record.get('seq')}: unreadable wall time") from None
    return "\t".join((pin, when, str(status), str(verify), "0", "0", "0"))


def attlog_body(rows):
    """Lines joined with LF, with a final LF."""
    return "".join(row + "\n" for row in rows)


def parse_attlog(body):
    """Server side: ATTLOG text -> [dict(pin, time, status, verify, workcode)]; malformed lines skipped."""
    rows = []
    for line in body.replace("\r", "").split("\n"):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        try:
            datetime.strptime(fields[1].strip(), TIME_FORMAT)
            rows.append(dict(pin=fields[0].strip(), time=fields[1].strip(), status=int(fields[2]),
                             verify=int(fields[3]), workcode=fields[4].strip() if len(fields) > 4 else "0"))
        except ValueError:
            continue
    return rows


def parse_ok(text):
    """'OK: 12' -> 12, 'OK' -> None; anything else raises AdmsProtocolError."""
    match = _OK_RE.match(text.strip().split("\n", 1)[0]) if text.strip() else None
    if not match:
        raise AdmsProtocolError(f"expected 'OK: <n>', got {text[:80]!r}")
    return int(match[1]) if match[1] is not None else None


# ---------------------------------------------------------------- command arguments

def parse_device_time(text, tz):
    """A time a server sends: 'YYYY-MM-DD HH:MM:SS' (also 'T' or '/' separated) or ZKTeco's packed
    integer, local to ``tz`` -> UTC seconds; ValueError when it is neither."""
    text = str(text).strip()
    if text.isdigit() and len(text) != 14:
        value = int(text)
        second, value = value % 60, value // 60
        minute, value = value % 60, value // 60
        hour, value = value % 24, value // 24
        day, value = value % 31 + 1, value // 31
        month, year = value % 12 + 1, value // 12 + 2000
        moment = datetime(year, month, day, hour, minute, second)
    else:
        for fmt in (TIME_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S",
                    "%Y-%m-%d"):
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError("not a date and time")
    return moment.replace(tzinfo=tz).timestamp()


def _key_values(text):
    """'A=1\tB=x y' or 'A=1 B=2' -> {'a': '1', 'b': 'x y'} (keys lower-cased)."""
    parts = text.split("\t") if "\t" in text else re.split(r"\s+(?=[A-Za-z~]\w*=)", text.strip())
    pairs = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[key.strip().lower()] = value.strip()
    return pairs


def parse_query_attlog(argument, tz):
    """``QUERY ATTLOG StartTime=..<TAB>EndTime=..`` (a DATA command's argument) -> (start_s, end_s),
    or a Return code: RETURN_UNSUPPORTED for another table, RETURN_BAD_SYNTAX for bad times."""
    words = argument.split(None, 2)
    if len(words) < 2 or words[0].upper() != "QUERY":
        return RETURN_UNSUPPORTED
    if words[1].upper() != "ATTLOG":
        return RETURN_UNSUPPORTED
    pairs = _key_values(words[2] if len(words) > 2 else "")
    try:
        start_s = parse_device_time(pairs["starttime"], tz)
        end_s = parse_device_time(pairs["endtime"], tz) if pairs.get("endtime") else LATEST_TIME_S
    except (KeyError, ValueError, OverflowError):
        return RETURN_BAD_SYNTAX
    if end_s < start_s:
        return RETURN_BAD_SYNTAX
    # "all of time" in a zone off UTC reaches the year 0 or 10000 in UTC, where no event is and
    # no date can be written
    return max(start_s, EARLIEST_TIME_S), min(end_s, LATEST_TIME_S)


def parse_set_option(argument):
    """``OPTION Key=Value`` (a SET command's argument) -> (key, value), or RETURN_BAD_SYNTAX."""
    words = argument.split(None, 1)
    if len(words) != 2 or words[0].upper() != "OPTION" or "=" not in words[1]:
        return RETURN_BAD_SYNTAX
    key, _, value = words[1].partition("=")
    if not key.strip():
        return RETURN_BAD_SYNTAX
    return key.strip(), value.strip()


# ---------------------------------------------------------------- commands

@dataclass(frozen=True)
class Command:
    """One server command from getrequest: ``C:<id>:<text>``."""

    id: str
    text: str

    @property
    def name(self):
        """The command word as the result's CMD field carries it ('INFO', 'CONTROL', 'Shell')."""
        return self.text.split(None, 1)[0] if self.text.strip() else ""

    @property
    def argument(self):
        parts = self.text.split(None, 1)
        return parts[1].strip() if len(parts) > 1 else ""


def parse_commands(text):
    """The getrequest answer -> [Command]; 'OK' (nothing to do) and stray lines give none."""
    commands = []
    for line in text.replace("\r", "").split("\n"):
        match = _COMMAND_RE.match(line.strip())
        if match:
            commands.append(Command(match[1], match[2].strip()))
    return commands


def format_command(command_id, text):
    return f"C:{command_id}:{text}"


@dataclass(frozen=True)
class Result:
    """A command result as posted to /iclock/devicecmd, with optional ``Key=Value`` data lines."""

    id: str
    code: int
    cmd: str
    data: tuple = ()  # ((key, value), ...)


def format_results(results):
    """``ID=..&Return=..&CMD=..`` per result, each followed by its data lines."""
    lines = []
    for result in results:
        lines.append(f"ID={result.id}&Return={result.code}&CMD={result.cmd}")
        lines += [f"{key}={_clean(value)}" for key, value in result.data]
    return "\n".join(lines) + "\n"


def parse_results(body):
    """Server side: devicecmd body -> [Result]; data lines attach to the result line before them."""
    results = []
    for line in body.replace("\r", "").split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("ID="):
            fields = dict(parse_qsl(line, keep_blank_values=True))
            try:
                code = int(fields.get("Return", ""))
            except ValueError:
                code = RETURN_BAD_SYNTAX
            results.append(Result(fields.get("ID", ""), code, fields.get("CMD", ""), ()))
        elif results and "=" in line:
            key, _, value = line.partition("=")
            last = results[-1]
            results[-1] = Result(last.id, last.code, last.cmd, last.data + ((key.strip(), value.strip()),))
    return results


def _clean(value):
    return str(value).replace("\n", " ").replace("\r", " ").strip()


@dataclass(frozen=True)
class DoorRequest:
    """What a door command asks for: which door and for how long (None = the kiosk's default pulse)."""

    door: int = 1
    seconds: float | None = None


def parse_control_device(argument):
    """``DEVICE 01010105`` (CONTROL DEVICE AABBCCDD[EE], hex bytes) -> DoorRequest, or a Return code.

    AA=01 output; BB door number; CC=01 door lock (02 aux output); DD seconds (hex), where 00
    (close) and FF (stay open) are refused: the kiosk only pulses its door.
    """
    parts = argument.split(None, 1)
    if len(parts) != 2 or parts[0].upper() != "DEVICE":
        return RETURN_BAD_SYNTAX
    code = parts[1].strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{8}([0-9A-Fa-f]{2})?", code):
        return RETURN_BAD_SYNTAX
    action, door, output, seconds = (int(code[i:i + 2], 16) for i in range(0, 8, 2))
    if action != 1 or output != 1 or seconds in (0, 0xFF):
        return RETURN_UNSUPPORTED  # alarm cancel, reboot, aux outputs, latch open/closed
    return DoorRequest(door=door, seconds=float(seconds))
