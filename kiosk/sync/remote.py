"""Server-to-device commands of the sync protocol: decode, hand to the command path, report results.

Commands arrive in answers signed by the pinned server key (the client refuses any other). What
each command may ask for, and its bounds, is decided in ``command_path``; this module only turns
the protocol's command objects into ``Command``s and adds the handlers that belong to sync itself
(sync now, purge a person, rotate the device key).
"""

import logging
import os
from dataclasses import dataclass, field

from kiosk.storage import enrolment, sync_state
from kiosk.storage.db import transaction
from kiosk.sync import keys
from kiosk.sync.command_path import DONE, UNSUPPORTED, Command, CommandPath, DoneLog, Limits

log = logging.getLogger(__name__)

DONE_KEY = "sync.commands_done"


@dataclass
class CommandOutcome:
    """What polling commands did: how many ran, and what the worker must do next."""

    ran: int = 0
    sync_again: bool = False
    people_purged: set = field(default_factory=set)


class CommandRunner:
    """Runs commands from the server once each and reports their results."""

    def __init__(self, database, client, *, clock, handlers=None, key_path=None, limits=Limits()):
        self._db = database
        self._client = client
        self._clock = clock
        self._key_path = key_path
        self._outcome = CommandOutcome()
        own = {"sync_now": self._sync_now, "purge_person": self._purge_person}
        if key_path:
            own["rotate_key"] = self._rotate_key
        self.path = CommandPath(handlers={**dict(handlers or {}), **own}, done_log=DoneLog(database, DONE_KEY),
                                limits=limits, now=client.server_now, source="server")

    def poll(self):
        self._outcome = outcome = CommandOutcome()
        for item in self._client.commands():
            command = decode(item)
            if not command.id:
                log.warning("ignored a server command without an id")
                continue
            result = self.path.run(command)
            self._client.command_result(command.id, status=result.status, detail=result.detail)
            outcome.ran += 1
        return outcome

    # --- sync's own handlers ----------------------------------------------------------------------

    def _sync_now(self, args):
        self._outcome.sync_again = True
        return {}

    def _purge_person(self, args):
        with transaction(self._db):
            removed = sync_state.purge_person(self._db, args["person_id"])
            enrolment.drop_enrolment_records(self._db, [args["person_id"]])
        self._outcome.people_purged.add(args["person_id"])
        return removed

    def _rotate_key(self, args):
        return self.rotate_key()[1]

    def rotate_key(self):
        """Make a new device key, have the server accept it, then switch to it (crash-safe)."""
        if not self._key_path:
            return UNSUPPORTED, {"message": "the device key file is not known to the sync worker"}
        next_path = keys.next_key_path(self._key_path)
        new_key = keys.load_or_create_device_key(next_path)
        self._client.rotate_key(new_key)
        os.replace(next_path, self._key_path)
        self._client.device_key = new_key
        log.info("device key rotated")
        return DONE, {}

    def finish_interrupted_rotation(self):
        """A rotation that crashed half-way: announce the waiting key again and switch to it."""
        if self._key_path and keys.next_key_path(self._key_path).exists():
            log.info("finishing an interrupted key rotation")
            self.rotate_key()


def decode(item):
    """A command object of GET /v1/commands -> Command (whatever it holds: the path checks it)."""
    if not isinstance(item, dict):
        return Command(id="", kind="")
    args = item.get("args")
    return Command(id=str(item.get("id", ""))[:256], kind=str(item.get("kind", ""))[:64],
                   args=args if args is not None else {}, expires_at=item.get("expires_at"))
