"""Server-to-device commands: open door, sync now, purge a person, reboot, rotate key."""

import logging
import os
from dataclasses import dataclass, field

from kiosk.errors import KioskError, SyncError
from kiosk.storage import sync_state
from kiosk.storage.db import get_meta, set_meta
from kiosk.sync import keys

log = logging.getLogger(__name__)

DONE_KEY = "sync.commands_done"
REMEMBER_DONE = 200


@dataclass
class CommandOutcome:
    """What polling commands did: how many ran, and what the worker must do next."""

    ran: int = 0
    sync_again: bool = False
    people_purged: set = field(default_factory=set)


class CommandRunner:
    """Runs commands from the server once each and reports their results."""

    def __init__(self, database, client, *, clock, handlers=None, key_path=None):
        self._db = database
        self._client = client
        self._clock = clock
        self._handlers = dict(handlers or {})
        self._key_path = key_path

    def poll(self):
        outcome = CommandOutcome()
        for command in self._client.commands():
            command_id, kind = str(command.get("id")), command.get("kind")
            done = get_meta(self._db, DONE_KEY, {}) or {}
            if command_id in done:
                # ran before, but the result did not reach the server: report it again, do not re-run
                status, detail = done[command_id]
            else:
                status, detail = self._run(kind, command, outcome)
                done[command_id] = [status, detail]
                while len(done) > REMEMBER_DONE:
                    done.pop(next(iter(done)))
                set_meta(self._db, DONE_KEY, done)
            self._client.command_result(command_id, status=status, detail=detail)
            outcome.ran += 1
            log.info("command %s (%s): %s", kind, command_id, status)
        return outcome

    def _run(self, kind, command, outcome):
        args = command.get("args") or {}
        expires_at = command.get("expires_at")
        if expires_at is not None and self._client.server_now() > float(expires_at):
            return "expired", {}
        try:
            if kind == "sync_now":
                outcome.sync_again = True
                return "done", {}
            if kind == "purge_person":
                person_id = str(args["person_id"])
                removed = sync_state.purge_person(self._db, person_id)
                outcome.people_purged.add(person_id)
                return "done", removed
            if kind == "rotate_key":
                return self.rotate_key()
            handler = self._handlers.get(kind)
            if handler is None:
                return "unsupported", {"message": f"this kiosk has no handler for {kind}"}
            return "done", dict(handler(args) or {})
        except SyncError:
            raise  # not run to the end: not recorded, so it runs again at the next poll
        except (KioskError, KeyError, ValueError, OSError) as e:
            log.error("command %s failed: %s", kind, e)
            return "failed", {"message": str(e)}

    def rotate_key(self):
        """Make a new device key, have the server accept it, then switch to it (crash-safe)."""
        if not self._key_path:
            return "unsupported", {"message": "the device key file is not known to the sync worker"}
        next_path = keys.next_key_path(self._key_path)
        new_key = keys.load_or_create_device_key(next_path)
        self._client.rotate_key(new_key)
        os.replace(next_path, self._key_path)
        self._client.device_key = new_key
        log.info("device key rotated")
        return "done", {}

    def finish_interrupted_rotation(self):
        """A rotation that crashed half-way: announce the waiting key again and switch to it."""
        if self._key_path and keys.next_key_path(self._key_path).exists():
            log.info("finishing an interrupted key rotation")
            self.rotate_key()
