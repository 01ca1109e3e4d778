"""Server commands of the ADMS adapter: decode ZKTeco command words, run them on the command path, answer.

Decoded: INFO, CHECK, LOG, REBOOT (a restart of the kiosk service, never of the machine),
SET OPTION DateTime=... (recorded and flagged, never applied: the clock comes from NTP), DATA
QUERY ATTLOG StartTime=..<TAB>EndTime=.. (re-send held rows of that range), AC_UNLOCK and
CONTROL DEVICE 01<door>01<seconds> (door pulse). The command path (``command_path``) checks,
bounds and runs them. ``CLEAR LOG`` / ``CLEAR DATA`` are refused (attendance records are never
deleted by a server), ``Shell`` is never executed (an HR server must not run programs on a
kiosk), and door commands are refused while ``door_commands`` is off (the default: ADMS answers
are not signed, so any server on the path could send one). Refused and unknown commands get
Return=-1 without doing anything.

Every answer is stored in the ``adms_answers`` table before it is posted, so a command id the
server sends again, also after a restart, gets the same answer and is never run twice.
"""

import json
import logging

from kiosk.errors import HardwareError, StorageError
from kiosk.storage.db import transaction
from kiosk.sync import command_path
from kiosk.sync.adms_codec import (RETURN_BAD_SYNTAX, RETURN_FAILED, RETURN_OK, RETURN_UNSUPPORTED, DoorRequest,
                                   Result, parse_control_device, parse_query_attlog, parse_set_option)

log = logging.getLogger(__name__)

DONE_KEY = "adms.commands_done"
KEEP_ANSWERS = 10_000  # older answers are dropped; a server re-sending a command that old is not expected
_CODES = {command_path.DONE: RETURN_OK, command_path.UNSUPPORTED: RETURN_UNSUPPORTED,
          command_path.EXPIRED: RETURN_UNSUPPORTED, command_path.FAILED: RETURN_FAILED}


class AnswerStore:
    """The answer given to each command id, in the ``adms_answers`` table (memory when database is None)."""

    def __init__(self, database, *, clock=None):
        self._db = database
        self._clock = clock
        self._memory = {}

    def get(self, command_id):
        if self._db is None:
            return self._memory.get(command_id)
        row = self._db.execute("SELECT cmd, return_code, data FROM adms_answers WHERE id = ?",
                               [command_id]).fetchone()
        if row is None:
            return None
        try:
            data = tuple(tuple(pair) for pair in json.loads(row[2]))
        except (ValueError, TypeError):
            data = ()
        return Result(command_id, int(row[1]), row[0], data)

    def put(self, result):
        if self._db is None:
            self._memory[result.id] = result
            return
        now = self._clock.time() if self._clock is not None else 0.0
        with transaction(self._db):
            self._db.execute("INSERT OR REPLACE INTO adms_answers (id, cmd, return_code, data, answered_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [result.id, result.cmd[:64], result.code, json.dumps([list(p) for p in result.data]),
                              now])
            self._db.execute("DELETE FROM adms_answers WHERE rowid <= (SELECT max(rowid) FROM adms_answers) - ?",
                             [KEEP_ANSWERS])


class CommandRunner:
    """Run ADMS server commands at most once each and build their results.

    ``open_door(door=1, seconds)`` is the app's door callback; it returns False (or raises) when
    the door could not be opened. It is used only with ``door_commands=True``.
    ``info()`` returns the ``(key, value)`` pairs of the INFO answer.
    ``on_check()`` and ``on_log()`` ask the adapter to re-handshake / upload now.
    ``on_query(start_s, end_s)`` re-sends held rows of that range and returns how many.
    ``on_set_time(value)`` records a server's clock setting (not applied).
    ``on_reboot()`` schedules a restart of the kiosk service; None = REBOOT is unsupported.
    ``tz``: the zone the server's times are read in.
    ``database``: where answers are kept (None: in memory only).
    """

    def __init__(self, *, open_door=None, info, on_check, on_log, on_query=None, on_set_time=None,
                 on_reboot=None, tz=None, door_commands=False, limits=command_path.Limits(), database=None,
                 clock=None):
        self._open_door = open_door
        self._tz = tz
        handlers = {"info": lambda args: {"pairs": list(info())},
                    "check": lambda args: on_check(),
                    "upload": lambda args: on_log()}
        if on_query is not None:
            handlers["query_attlog"] = lambda args: {"pairs": [("Count", on_query(args["start_s"], args["end_s"]))]}
        if on_set_time is not None:
            handlers["set_time"] = lambda args: on_set_time(args["value"])
        if on_reboot is not None:
            handlers["reboot"] = lambda args: on_reboot()
        if door_commands and open_door is not None:
            handlers["open_door"] = self._door
        elif open_door is not None:
            log.info("ADMS door commands are off (sync.adms_door_commands = false): they are answered -1")
        self.answers = AnswerStore(database, clock=clock)
        # the answers table is the durable record of what ran; the path's own log only needs memory
        self.path = command_path.CommandPath(handlers=handlers, done_log=command_path.DoneLog(None, DONE_KEY),
                                             limits=limits, source="ADMS server")

    def run(self, command):
        """Execute one codec Command (unless already answered) and return its codec Result."""
        earlier = self.answers.get(command.id)
        if earlier is not None:
            log.info("ADMS command %s was answered before (Return=%d): same answer again", command.id[:64],
                     earlier.code)
            return earlier
        result = self._answer(command)
        try:
            self.answers.put(result)
        except StorageError as e:  # the answer still goes out; a re-sent command would be decoded again
            log.error("ADMS command %s: its answer could not be stored: %s", command.id[:64], e)
        return result

    def _answer(self, command):
        decoded = decode(command, self._tz)
        if isinstance(decoded, int):
            return Result(command.id, decoded, command.name)
        outcome = self.path.run(decoded)
        if outcome.reason == command_path.INVALID:
            code = RETURN_BAD_SYNTAX
        else:
            code = _CODES.get(outcome.status, RETURN_FAILED)
        pairs = tuple(tuple(pair) for pair in outcome.detail.get("pairs", ())) if code == RETURN_OK else ()
        return Result(command.id, code, command.name, pairs)

    def _door(self, args):
        if self._open_door(door=args["door"], seconds=args["seconds"]) is False:
            raise HardwareError("the door refused to open")
        log.info("door opened by an ADMS server command")
        return {"opened_s": args["seconds"]}


def decode(command, tz=None):
    """A codec Command -> command_path.Command, or an ADMS return code when it is refused or malformed."""
    upper = command.name.upper()
    if upper == "SHELL":
        # never executed, and its text is not logged (it may carry secrets)
        log.warning("refused Shell command id %s: kiosks never run shell commands from a server", command.id)
        return RETURN_UNSUPPORTED
    if upper == "CLEAR":
        log.warning("refused %s command id %s: attendance records are never deleted by a server",
                    command.text[:32], command.id)
        return RETURN_UNSUPPORTED
    if upper in ("INFO", "CHECK", "REBOOT"):
        return command_path.Command(command.id, upper.lower())
    if upper == "LOG":
        return command_path.Command(command.id, "upload")
    if upper == "SET":
        option = parse_set_option(command.argument)
        if isinstance(option, int):
            return option
        if option[0].lower() != "datetime":
            return command_path.Command(command.id, "adms:SET OPTION")
        return command_path.Command(command.id, "set_time", {"value": option[1][:64]})
    if upper == "DATA":
        if tz is None:
            return RETURN_UNSUPPORTED
        span = parse_query_attlog(command.argument, tz)
        if isinstance(span, int):
            return span
        return command_path.Command(command.id, "query_attlog", {"start_s": span[0], "end_s": span[1]})
    if upper in ("AC_UNLOCK", "CONTROL"):
        request = DoorRequest() if upper == "AC_UNLOCK" else parse_control_device(command.argument)
        if isinstance(request, int):
            return request
        args = {"door": request.door}
        if request.seconds is not None:
            args["seconds"] = request.seconds
        return command_path.Command(command.id, "open_door", args)
    return command_path.Command(command.id, "adms:" + upper[:32])
