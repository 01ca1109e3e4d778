"""Server commands of the ADMS adapter: what each does on a kiosk, and what it answers.

Supported: INFO, CHECK, LOG, AC_UNLOCK and CONTROL DEVICE 01<door>01<seconds> (door pulse).
Everything else is answered Return=-1 without doing anything. ``Shell`` in particular is never
executed: an HR server must not be able to run programs on a kiosk.
"""

import logging
from collections import OrderedDict

from kiosk.sync.adms_codec import (RETURN_FAILED, RETURN_OK, RETURN_UNSUPPORTED, DoorRequest, Result,
                                   parse_control_device)

log = logging.getLogger(__name__)

REMEMBERED_IDS = 256


class CommandRunner:
    """Run server commands at most once each and build their results.

    ``open_door(door=1, seconds=None)`` is the app's door callback (None: door commands are
    unsupported); it returns False (or raises) when the door could not be opened.
    ``info()`` returns the ``(key, value)`` pairs of the INFO answer.
    ``on_check()`` and ``on_log()`` ask the adapter to re-handshake / upload now.
    """

    def __init__(self, *, open_door=None, info, on_check, on_log):
        self._open_door = open_door
        self._info = info
        self._on_check = on_check
        self._on_log = on_log
        self._done = OrderedDict()  # command id -> Result, so a re-sent command is not re-run

    def run(self, command):
        """Execute one Command (unless already done) and return its Result."""
        if command.id in self._done:
            log.info("command id %s was already executed; answering its earlier result again", command.id)
            return self._done[command.id]
        result = self._execute(command)
        self._done[command.id] = result
        while len(self._done) > REMEMBERED_IDS:
            self._done.popitem(last=False)
        return result

    def _execute(self, command):
        name = command.name
        upper = name.upper()
        if upper == "SHELL":
            # never executed, and its text is not logged (it may carry secrets)
            log.warning("refused Shell command id %s: kiosks never run shell commands from a server", command.id)
            return Result(command.id, RETURN_UNSUPPORTED, name)
        if upper == "INFO":
            return Result(command.id, RETURN_OK, name, tuple(self._info()))
        if upper == "CHECK":
            self._on_check()
            return Result(command.id, RETURN_OK, name)
        if upper == "LOG":
            self._on_log()
            return Result(command.id, RETURN_OK, name)
        if upper == "AC_UNLOCK":
            return Result(command.id, self._door(DoorRequest(), command), name)
        if upper == "CONTROL":
            request = parse_control_device(command.argument)
            code = request if isinstance(request, int) else self._door(request, command)
            return Result(command.id, code, name)
        log.info("unsupported command %r (id %s) answered -1", upper[:32], command.id)
        return Result(command.id, RETURN_UNSUPPORTED, name)

    def _door(self, request, command):
        if self._open_door is None:
            log.warning("door command id %s: no door on this kiosk (answered -1)", command.id)
            return RETURN_UNSUPPORTED
        if request.door != 1:
            log.warning("door command id %s asks for door %d; this kiosk has door 1 only", command.id, request.door)
            return RETURN_UNSUPPORTED
        try:
            opened = self._open_door(door=request.door, seconds=request.seconds)
        except Exception:
            log.exception("door command id %s: the door callback failed", command.id)
            return RETURN_FAILED
        if opened is False:
            log.warning("door command id %s: the door refused to open", command.id)
            return RETURN_FAILED
        log.info("door opened by server command id %s", command.id)
        return RETURN_OK
