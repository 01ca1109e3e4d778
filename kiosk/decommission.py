"""Decommissioning: upload every pending record, then wipe the keys, templates and database.

Taking a kiosk out of service must not lose attendance that was never uploaded, and must not
leave biometric templates or keys on a card that leaves the building. So: the admin PIN first;
then sync until nothing is pending (if the server cannot take everything, nothing is wiped and
the kiosk says how many records wait); then the files are overwritten and removed and the
fingerprint sensor's library is emptied. What was wiped is returned, to be said on screen.

Kept on purpose: ``used-codes.json`` (a code used once must stay used if the card is provisioned
again) and ``provisioning-keys`` (part of the image). Overwriting a file on an SD card does not
guarantee the old blocks are gone (wear levelling): the templates in the database are sealed
with the data key, and the key is wiped, which is what makes them unreadable.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kiosk import pinhash
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)


class DecommissionRefusedError(ProvisioningError):
    """Decommissioning did not start or stopped before wiping anything; the message says why."""


@dataclass(frozen=True)
class Decommissioned:
    """What decommissioning did: records uploaded, files wiped, sensor templates deleted."""

    uploaded_cycles: int
    wiped: tuple
    sensor_cleared: bool


def decommission(*, settings, paths, pin, database, run_sync_cycle, sync_status, clear_sensor=None,
                 max_cycles=200, pin_verified=False):
    """Upload all pending records, then wipe; DecommissionRefusedError leaves everything in place.

    ``run_sync_cycle()`` runs one sync cycle (SyncWorker.run_once: returns the wait before the
    next, 0 to go on); ``sync_status()`` is kiosk.sync.worker.status of the database;
    ``clear_sensor()`` empties the fingerprint sensor's library (None: no sensor).
    ``pin_verified``: the caller already checked the admin PIN with its lockout (an admin session
    entered by PIN, kiosk/admin_provisioning.py); ``pin`` is then not asked again.
    """
    pin_hash = settings.security.admin_pin_hash
    if not pin_hash:
        raise DecommissionRefusedError("this kiosk has no admin PIN (security.admin_pin_hash): it cannot be "
                                       "decommissioned from the device; re-flash it after uploading its records")
    if not pin_verified and not pinhash.verify_pin(pin, pin_hash):
        log.warning("decommissioning refused: wrong admin PIN")
        raise DecommissionRefusedError("wrong admin PIN: nothing was uploaded or wiped")
    targets = [Path(settings.db_path), Path(f"{settings.db_path}-wal"), Path(f"{settings.db_path}-shm"),
               Path(settings.security.data_key_file), Path(settings.security.device_key_file),
               paths.registration_file, paths.ca_file, paths.settings_file]
    blocked = sorted({str(p.parent) for p in targets if p.exists() and not os.access(p.parent, os.W_OK)})
    if blocked:    # checked before anything is uploaded or wiped: never half a decommissioning
        raise DecommissionRefusedError(f"{', '.join(blocked)} cannot be changed by this process (read-only); "
                                       "nothing was uploaded or wiped: run `kiosk provision decommission` as root")
    cycles = 0
    for cycles in range(1, max_cycles + 1):
        waits_s = run_sync_cycle()
        if not sync_status().get("pending") or waits_s > 0:
            break
    status = sync_status()
    if status.get("pending"):
        reason = status.get("last_error") or (status.get("last_rejection") or {}).get("reason") or "not sent yet"
        raise DecommissionRefusedError(f"{status['pending']} record(s) are not uploaded ({reason}); nothing was "
                                       "wiped: connect the kiosk to the server and decommission again")
    database.conn.close()
    sensor_cleared = False
    if clear_sensor is not None:
        clear_sensor()
        sensor_cleared = True
    wiped = tuple(str(path) for path in targets if _wipe(path))
    log.warning("decommissioned after %d sync cycle(s) left nothing pending; wiped %s%s", cycles,
                ", ".join(wiped), "; fingerprint sensor emptied" if sensor_cleared else "")
    return Decommissioned(uploaded_cycles=cycles, wiped=wiped, sensor_cleared=sensor_cleared)


def _wipe(path):
    """Overwrite ``path`` with zeros, fsync, remove; False if it was not there."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    return True
