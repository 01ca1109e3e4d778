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

When the database holds more templates than the sensor keeps, only the working set is written
(``kiosk.flows.working_set``: the rule, its size, the write budget). A template keeps the slot it
already has on the sensor; a new one goes to its home slot (the slot the database names) when that
is within the working set and free, else to the lowest free slot. Slot numbers on the sensor are
then looked up through the sensor_slots table, which names the person each written slot is for.
"""

import logging
from dataclasses import dataclass

from kiosk.clock import SystemClock
from kiosk.flows import working_set
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
    deferred: int = 0     # writes and deletes left for a later reconcile (the write budget ran out)


def _assign(chosen, ours, present, size):
    """{slot: (person_id, template)} for the chosen templates, slots below ``size``."""
    wanted, placed = {}, set()
    at = {mine.digest: slot for slot, mine in ours.items() if slot in present and slot < size}
    for index, (person_id, _, template) in enumerate(chosen):
        slot = at.pop(template_digest(template), None)
        if slot is not None:  # already on the sensor: leave it where it is
            wanted[slot] = (person_id, template)
            placed.add(index)
    free = (slot for slot in range(size) if slot not in present or (slot in ours and slot not in wanted))
    for index, (person_id, home, template) in enumerate(chosen):
        if index in placed:
            continue
        if home is not None and 0 <= home < size and home not in wanted:
            wanted[home] = (person_id, template)
            continue
        for slot in free:
            if slot not in wanted:
                wanted[slot] = (person_id, template)
                break
    return wanted


def reconcile(sensor, database, key, *, sensor_model, clock=None, size=None, budget=None):
    """Write missing or changed templates; empty only slots we wrote that the database no longer wants.

    ``size`` (default: the sensor's capacity) bounds the working set; ``budget`` (a
    ``working_set.WriteBudget``) bounds the writes and deletes this call may make.
    """
    now = (clock or SystemClock()).time()
    size = sensor.capacity if size is None else min(size, sensor.capacity)
    templates = people.finger_templates(database, key, sensor_model)
    if len(templates) <= size and all(home is not None and home < size for _, home, _ in templates):
        chosen = templates  # everyone fits at the slot the database names (the usual small office)
    else:
        chosen = working_set.choose(templates, working_set.ranked_people(database), size)
    ours = sensor_slots.written_slots(database)
    present = set(sensor.slots())
    wanted = _assign(chosen, ours, present, size)
    spend = budget.take if budget is not None else (lambda: True)
    deferred = 0

    deleted, unknown = [], []
    for slot in sorted(present - set(wanted)):
        if slot in ours:
            if not spend():
                deferred += 1
                continue
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
        if not spend():
            deferred += 1
            continue
        sensor.upload_template(slot, template)
        sensor_slots.record_written(database, slot, sensor_model=sensor_model, person_id=person_id,
                                    digest=digest, now=now)
        written.append(slot)

    report = ReconcileReport(tuple(written), tuple(deleted), unchanged + len(adopted), tuple(unknown),
                             tuple(blocked), tuple(adopted), deferred)
    if written or deleted or adopted:
        log.info("sensor library reconciled: %d written, %d emptied, %d unchanged, %d adopted, %d deferred",
                 len(written), len(deleted), unchanged, len(adopted), deferred)
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
    # one command per run of neighbouring slots: a slot at a time, a full 1,000-slot module
    # takes about a minute, holding the flows' thread past the watchdog
    for start, count in _runs(cleared):
        sensor.delete(start, count=count)
    if cleared:
        log.warning("admin cleared %d template(s) the database did not know from the sensor (slots %s)",
                    len(cleared), _slot_list(cleared))
    return tuple(cleared)


def _runs(slots):
    """[(first slot, how many)] for each run of consecutive numbers in sorted ``slots``."""
    runs = []
    for slot in slots:
        if runs and runs[-1][0] + runs[-1][1] == slot:
            runs[-1][1] += 1
        else:
            runs.append([slot, 1])
    return [tuple(run) for run in runs]


def _slot_list(slots, limit=10):
    shown = ", ".join(str(s) for s in sorted(slots)[:limit])
    return shown + (f" and {len(slots) - limit} more" if len(slots) > limit else "")
