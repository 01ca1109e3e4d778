"""Keep the fingerprint sensor's own template library in step with the database.

The database is the truth (templates come down from the server, sealed). The sensor holds a
copy it searches 1:N. A digest of what we last wrote to each slot is kept in the meta table, so
a routine reconcile writes only what changed instead of reading every slot back over a slow UART.
"""

import hashlib
import logging
from dataclasses import dataclass

from kiosk.storage import people
from kiosk.storage.db import get_meta, set_meta

log = logging.getLogger(__name__)

META_KEY = "sensor.library"


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconcile changed on the sensor."""

    written: tuple
    deleted: tuple
    unchanged: int


def _digest(template):
    return hashlib.sha256(bytes(template)).hexdigest()[:32]


def reconcile(sensor, database, key, *, sensor_model):
    """Write missing or changed templates to their slots and empty slots the database no longer has."""
    wanted = {slot: template for _, slot, template in people.finger_templates(database, key, sensor_model)
              if slot is not None}
    written_digests = {int(slot): digest for slot, digest in (get_meta(database, META_KEY) or {}).items()}
    present = set(sensor.slots())
    deleted = []
    for slot in sorted(present - set(wanted)):
        sensor.delete(slot)
        written_digests.pop(slot, None)
        deleted.append(slot)
    written = []
    for slot, template in sorted(wanted.items()):
        digest = _digest(template)
        if slot in present and written_digests.get(slot) == digest:
            continue
        sensor.upload_template(slot, template)
        written_digests[slot] = digest
        written.append(slot)
    set_meta(database, META_KEY, {str(slot): digest for slot, digest in written_digests.items()})
    report = ReconcileReport(tuple(written), tuple(deleted), len(wanted) - len(written))
    if written or deleted:
        log.info("sensor library reconciled: %d written, %d emptied, %d unchanged",
                 len(written), len(deleted), report.unchanged)
    return report
