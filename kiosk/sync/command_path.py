"""The one path every server command takes: validate, bound, run at most once, and say what happened.

Two protocols bring commands: the kiosk's own sync protocol (``remote.py``, answers signed by the
pinned server key) and ZKTeco PUSH/ADMS (``adms_commands.py``, unsigned, so its door commands are
off unless ``sync.adms_door_commands`` is on). Each adapter only decodes its wire format into a
``Command``; this module checks the kind and every argument (numbers must be finite and within
bounds: a door pulse is at most ``gpio.door_max_pulse_s``), refuses what it does not know, runs
the handler the kiosk registered for that kind, and remembers finished command ids so that a
command sent again is answered again but never run twice.
"""

import logging
from dataclasses import dataclass, field

from kiosk.errors import KioskError, SyncError
from kiosk.storage.db import get_meta, set_meta
from kiosk.sync.protocol import finite_number

log = logging.getLogger(__name__)

DONE, FAILED, UNSUPPORTED, EXPIRED = "done", "failed", "unsupported", "expired"
INVALID = "invalid_argument"  # the detail "reason" of a FAILED result refused before it ran
REMEMBER_DONE = 256
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 128


@dataclass(frozen=True)
class Limits:
    """Bounds for actuator arguments (from the gpio settings)."""

    door_pulse_s: float = 3.0
    door_max_pulse_s: float = 10.0


@dataclass(frozen=True)
class Command:
    """A decoded command: id, kind, arguments, and when it stops being valid (server seconds)."""

    id: str
    kind: str
    args: dict = field(default_factory=dict)
    expires_at: object = None


@dataclass(frozen=True)
class Result:
    """What running a command came to: done, failed, unsupported or expired, with details."""

    status: str
    detail: dict = field(default_factory=dict)

    @property
    def reason(self):
        return self.detail.get("reason", "")


class InvalidCommand(ValueError):
    """A command's arguments are missing, of the wrong type, not finite or out of bounds."""


def _door_args(args, limits):
    seconds = args.get("seconds")
    seconds = limits.door_pulse_s if seconds is None else finite_number(seconds, "seconds")
    if not 0 < seconds <= limits.door_max_pulse_s:
        raise InvalidCommand(f"seconds must be in (0, {limits.door_max_pulse_s:g}] (gpio.door_max_pulse_s), "
                             f"not {seconds:g}")
    door = args.get("door", 1)
    if isinstance(door, bool) or not isinstance(door, int) or door != 1:
        raise InvalidCommand(f"door must be 1 (this kiosk has one door), not {door!r}")
    return {"seconds": seconds, "door": 1}


def _person_args(args, limits):
    person_id = args.get("person_id")
    if not isinstance(person_id, str) or not 0 < len(person_id) <= MAX_TEXT_CHARS:
        raise InvalidCommand(f"person_id must be text of 1-{MAX_TEXT_CHARS} characters")
    return {"person_id": person_id}


def _no_args(args, limits):
    return {}


def _time_text_args(args, limits):
    value = args.get("value")
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_CHARS:
        raise InvalidCommand(f"value must be text of 1-{MAX_TEXT_CHARS} characters")
    return {"value": value}


def _span_args(args, limits):
    start_s = finite_number(args.get("start_s"), "start_s")
    end_s = finite_number(args.get("end_s"), "end_s")
    if end_s < start_s:
        raise InvalidCommand("end_s must not be before start_s")
    return {"start_s": start_s, "end_s": end_s}


# kind -> (allowed argument names, checker returning the clean arguments)
KINDS = {
    "open_door": ({"seconds", "door"}, _door_args),
    "sync_now": (set(), _no_args),
    "purge_person": ({"person_id"}, _person_args),
    "reboot": (set(), _no_args),
    "rotate_key": (set(), _no_args),
    "info": (set(), _no_args),    # ADMS: report device information
    "check": (set(), _no_args),   # ADMS: read the server's options again
    "upload": (set(), _no_args),  # ADMS LOG: upload attendance now
    "set_time": ({"value"}, _time_text_args),  # ADMS SET OPTION DateTime: recorded, never applied
    "query_attlog": ({"start_s", "end_s"}, _span_args),  # ADMS DATA QUERY ATTLOG: re-send a range
}


def check(command, limits):
    """The command's clean arguments; InvalidCommand says what is wrong with them."""
    allowed, checker = KINDS[command.kind]
    if not isinstance(command.args, dict):
        raise InvalidCommand("args must be an object")
    unknown = sorted(set(command.args) - allowed)
    if unknown:
        raise InvalidCommand(f"unknown argument(s) {', '.join(map(str, unknown))[:MAX_TEXT_CHARS]}")
    try:
        return checker(command.args, limits)
    except ValueError as e:
        raise InvalidCommand(str(e)) from None


class DoneLog:
    """Finished command ids and their results, kept in the database (so a restart does not forget
    them) under ``key``, or in memory when ``database`` is None."""

    def __init__(self, database, key):
        self._db = database
        self._key = key
        self._memory = {}

    def _load(self):
        return self._memory if self._db is None else (get_meta(self._db, self._key, {}) or {})

    def get(self, command_id):
        found = self._load().get(command_id)
        return Result(found[0], dict(found[1])) if found else None

    def put(self, command_id, result):
        done = self._load()
        done[command_id] = [result.status, result.detail]
        while len(done) > REMEMBER_DONE:
            done.pop(next(iter(done)))
        if self._db is not None:
            set_meta(self._db, self._key, done)


class CommandPath:
    """Validate, bound and dispatch commands to ``handlers`` ({kind: (args) -> detail dict})."""

    def __init__(self, *, handlers, done_log, limits=Limits(), now=None, source="server"):
        self._handlers = dict(handlers)
        self._done = done_log
        self.limits = limits
        self._now = now
        self.source = source

    def run(self, command):
        """Run ``command`` unless it ran before; return its Result.

        A SyncError from a handler propagates and nothing is recorded: the command runs again
        at the next poll (its effect did not reach the server).
        """
        earlier = self._done.get(command.id)
        if earlier is not None:
            log.info("%s command %s was already run; answering its earlier result again", self.source,
                     command.id[:MAX_ID_CHARS])
            return earlier
        result = self._execute(command)
        self._done.put(command.id, result)
        log.info("%s command %s (%s): %s%s", self.source, command.kind[:32], command.id[:MAX_ID_CHARS],
                 result.status, f" ({result.detail.get('message')})" if result.status != DONE and
                 result.detail.get("message") else "")
        return result

    def _execute(self, command):
        if not isinstance(command.id, str) or not 0 < len(command.id) <= MAX_ID_CHARS:
            return Result(FAILED, {"reason": INVALID, "message": f"command id must be 1-{MAX_ID_CHARS} characters"})
        if command.kind not in KINDS or command.kind not in self._handlers:
            return Result(UNSUPPORTED, {"message": f"this kiosk does not run {str(command.kind)[:32]!r} commands "
                                                   f"from the {self.source}"})
        if command.expires_at is not None:
            try:
                expires_at = finite_number(command.expires_at, "expires_at")
            except ValueError as e:
                return Result(FAILED, {"reason": INVALID, "message": str(e)})
            if self._now is not None and self._now() > expires_at:
                return Result(EXPIRED, {})
        try:
            args = check(command, self.limits)
        except InvalidCommand as e:
            log.warning("%s command %s refused: %s", self.source, command.kind, e)
            return Result(FAILED, {"reason": INVALID, "message": str(e)})
        try:
            return Result(DONE, dict(self._handlers[command.kind](args) or {}))
        except SyncError:
            raise
        except KioskError as e:
            log.error("%s command %s failed: %s", self.source, command.kind, e)
            return Result(FAILED, {"message": str(e)})
        except Exception as e:  # noqa: BLE001 - a failing handler must not stop the commands after it
            log.exception("%s command %s: its handler failed", self.source, command.kind)
            return Result(FAILED, {"message": f"{type(e).__name__}: {e}"})
