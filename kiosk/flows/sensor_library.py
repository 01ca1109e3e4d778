"""Keep the fingerprint sensor's own template library in step with the database, without ever wiping it.

The database is the truth for what *it* wrote (templates come down from the server or from
enrolment at the kiosk, sealed). The sensor holds a copy it searches 1:N. Each slot we write is
recorded in the sensor_slots table with a digest of the template, so a routine reconcile writes
only what changed instead of reading every slot back over a slow UART.

Safety rule: reconciliation removes only slots the database knows it wrote. A new, empty or
lost database therefore cannot empty a full sensor: templates the database does not know are
reported (``ReconcileReport.unknown``, a WARNING in the log, and `kiosk doctor`) and left alone
until an admin clears them with ``clear_unknown_slots``. A slot the database wants but that holds
an unknown template is adopted when its content is exactly ours, and otherwise left alone too
(``blocked``) rather than overwritten.
"""

import logging
from dataclasses import dataclass

from kiosk.clock import SystemClock
from kiosk.storage import people, sensor_slots
from kiosk.storage.sensor_slots import template_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconcile changed on the sensor, and what it found there that is not ours."""

    written: tuple
    deleted: tuple
    unchanged: int
    unknown: tuple = ()   # occupied slots this database never wrote: left alone
    blocked: tuple = ()   # slots the database wants, occupied by a template that is not ours
    adopted: tuple = ()   # occupied slots found holding exactly the template the database wants


def reconcile(sensor, database, key, *, sensor_model, clock=None):
    """Write missing or changed templates; empty only slots we wrote that the database no longer wants."""
    now = (clock or SystemClock()).time()
    wanted = {slot: (person_id, template)
              for person_id, slot, template in people.finger_templates(database, key, sensor_model)
              if slot is not None}
    ours = sensor_slots.written_slots(database)
    present = set(sensor.slots())

    deleted, unknown = [], []
    for slot in sorted(present - set(wanted)):
        if slot in ours:
            sensor.delete(slot)
            deleted.append(slot)
        else:
            unknown.append(slot)
    # slots we wrote that are gone from the sensor (emptied behind our back) or that we just emptied
    sensor_slots.forget_slots(database, deleted + [s for s in ours if s not in present and s not in wanted])

    written, blocked, adopted, unchanged = [], [], [], 0
    for slot, (person_id, template) in sorted(wanted.items()):
        digest = template_digest(template)
        mine = ours.get(slot)
        if slot in present and mine is None:
            # occupied by a template we never wrote: take it only if it is byte for byte ours
            if template_digest(sensor.download_template(slot)) == digest:
                sensor_slots.record_written(database, slot, sensor_model=sensor_model, person_id=person_id,
                                            digest=digest, now=now)
                adopted.append(slot)
            else:
                blocked.append(slot)
            continue
        if slot in present and mine.digest == digest:
            unchanged += 1
            continue
        sensor.upload_template(slot, template)
        sensor_slots.record_written(database, slot, sensor_model=sensor_model, person_id=person_id,
                                    digest=digest, now=now)
        written.append(slot)

    report = ReconcileReport(tuple(written), tuple(deleted), unchanged + len(adopted), tuple(unknown),
                             tuple(blocked), tuple(adopted))
    if written or deleted or adopted:
        log.info("sensor library reconciled: %d written, %d emptied, %d unchanged, %d adopted",
                 len(written), len(deleted), unchanged, len(adopted))
    if unknown or blocked:
        log.warning("the fingerprint sensor holds %d template(s) this database did not write (slots %s); "
                    "left alone%s. An admin can clear them (clear_unknown_slots)",
                    len(unknown) + len(blocked), _slot_list(unknown + blocked),
                    f"; {len(blocked)} wanted slot(s) stay unwritten until then" if blocked else "")
    return report


def unknown_slots(sensor, database):
    """Occupied sensor slots this database did not write (sorted)."""
    ours = sensor_slots.written_slots(database)
    return [slot for slot in sensor.slots() if slot not in ours]


def clear_unknown_slots(sensor, database):
    """The explicit admin action: empty every occupied slot this database did not write; returns them."""
    cleared = unknown_slots(sensor, database)
    for slot in cleared:
        sensor.delete(slot)
    if cleared:
        log.warning("admin cleared %d template(s) the database did not know from the sensor (slots %s)",
                    len(cleared), _slot_list(cleared))
    return tuple(cleared)


def _slot_list(slots, limit=10):
    shown = ", ".join(str(s) for s in sorted(slots)[:limit])
    return shown + (f" and {len(slots) - limit} more" if len(slots) > limit else "")
