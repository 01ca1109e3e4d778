"""Server commands of the ADMS adapter: decode ZKTeco command words, run them on the command path, answer.

Decoded: INFO, CHECK, LOG, AC_UNLOCK and CONTROL DEVICE 01<door>01<seconds> (door pulse). The
command path (``command_path``) checks, bounds and runs them; everything else, and any door
command while ``door_commands`` is off (the default: ADMS answers are not signed, so any server
on the path could send one), is answered Return=-1 without doing anything. ``Shell`` in
particular is never executed: an HR server must not be able to run programs on a kiosk.
"""

import logging

from kiosk.errors import HardwareError
from kiosk.sync import command_path
from kiosk.sync.adms_codec import (RETURN_BAD_SYNTAX, RETURN_FAILED, RETURN_OK, RETURN_UNSUPPORTED, DoorRequest,
                                   Result, parse_control_device)

log = logging.getLogger(__name__)

DONE_KEY = "adms.commands_done"
_CODES = {command_path.DONE: RETURN_OK, command_path.UNSUPPORTED: RETURN_UNSUPPORTED,
          command_path.EXPIRED: RETURN_UNSUPPORTED, command_path.FAILED: RETURN_FAILED}


class CommandRunner:
    """Run ADMS server commands at most once each and build their results.

    ``open_door(door=1, seconds)`` is the app's door callback; it returns False (or raises) when
    the door could not be opened. It is used only with ``door_commands=True``.
    ``info()`` returns the ``(key, value)`` pairs of the INFO answer.
    ``on_check()`` and ``on_log()`` ask the adapter to re-handshake / upload now.
    ``database``: where finished command ids are remembered (None: in memory only).
    """

    def __init__(self, *, open_door=None, info, on_check, on_log, door_commands=False,
                 limits=command_path.Limits(), database=None):
        self._open_door = open_door
        handlers = {"info": lambda args: {"pairs": list(info())},
                    "check": lambda args: on_check(),
                    "upload": lambda args: on_log()}
        if door_commands and open_door is not None:
            handlers["open_door"] = self._door
        elif open_door is not None:
            log.info("ADMS door commands are off (sync.adms_door_commands = false): they are answered -1")
        self.path = command_path.CommandPath(handlers=handlers, done_log=command_path.DoneLog(database, DONE_KEY),
                                             limits=limits, source="ADMS server")

    def run(self, command):
        """Execute one codec Command (unless already done) and return its codec Result."""
        decoded = decode(command)
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


def decode(command):
    """A codec Command -> command_path.Command, or an ADMS return code when its text is malformed."""
    upper = command.name.upper()
    if upper == "SHELL":
        # never executed, and its text is not logged (it may carry secrets)
        log.warning("refused Shell command id %s: kiosks never run shell commands from a server", command.id)
        return RETURN_UNSUPPORTED
    if upper in ("INFO", "CHECK"):
        return command_path.Command(command.id, upper.lower())
    if upper == "LOG":
        return command_path.Command(command.id, "upload")
    if upper in ("AC_UNLOCK", "CONTROL"):
        request = DoorRequest() if upper == "AC_UNLOCK" else parse_control_device(command.argument)
        if isinstance(request, int):
            return request
        args = {"door": request.door}
        if request.seconds is not None:
            args["seconds"] = request.seconds
        return command_path.Command(command.id, "open_door", args)
    return command_path.Command(command.id, "adms:" + upper[:32])
