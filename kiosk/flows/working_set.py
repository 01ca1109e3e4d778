"""Which fingerprint templates the sensor holds when the database holds more than it can: the working set.

An R503 keeps 200 templates, an R307 about 1,000; an office entrance may serve thousands. The
sensor's own 1:N search stays the fast path for the people in the working set; everyone else
clocks in by claim and verify (employee number or face, then a 1:1 match on the sensor), after
which they are in the working set too.

The rule, in order, until the working set is full (counted in templates, a person's fingers
together):
  1. admins, always (they must be able to reach the admin screens by finger);
  2. people by their most recent punch on this kiosk, newest first;
  3. among people never seen here, by how many punches they have (none yet: in person-id order).
Its size is ``fingerprint.working_set_size``, or, when that is 0, the capacity the sensor reports
at start minus ``fingerprint.enrol_reserve_slots``.

``WriteBudget`` bounds the UART writes that keeping the set current may make per minute: a
reconcile that runs out leaves the rest for the next one.
"""

import logging

log = logging.getLogger(__name__)


def working_set_size(settings, capacity):
    """The number of templates to keep on the sensor, from the settings and the capacity it reported."""
    if settings.working_set_size:
        return min(settings.working_set_size, capacity)
    return max(1, capacity - settings.enrol_reserve_slots)


def ranked_people(database):
    """Every person with a fingerprint template, in working-set order (see the module docstring)."""
    rows = database.query(
        "SELECT p.person_id, p.role, MAX(e.seq) AS last_seq, COUNT(e.seq) AS punches "
        "FROM people p JOIN (SELECT DISTINCT person_id FROM finger_templates) f ON f.person_id = p.person_id "
        "LEFT JOIN attendance_events e ON e.person_id = p.person_id "
        "WHERE COALESCE(p.active, 1) = 1 GROUP BY p.person_id")
    ranked = sorted(rows, key=lambda r: (r["role"] != "admin", r["last_seq"] is None, -(r["last_seq"] or 0),
                                         -r["punches"], r["person_id"]))
    return [row["person_id"] for row in ranked]


def choose(templates, ranking, size):
    """The templates to keep: ``[(person_id, home_slot, template)]`` of whole people in rank order, at most ``size``."""
    by_person = {}
    for person_id, home, template in templates:
        by_person.setdefault(person_id, []).append((person_id, home, template))
    chosen = []
    for person_id in ranking:
        theirs = by_person.get(person_id, [])
        if len(chosen) + len(theirs) > size:
            continue  # a person is in whole or not at all; someone with fewer fingers may still fit
        chosen += theirs
    return chosen


class WriteBudget:
    """At most ``per_minute`` sensor writes in any minute (a token bucket on the injected clock)."""

    def __init__(self, per_minute, *, clock):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = int(per_minute)
        self.clock = clock
        self._tokens = float(per_minute)
        self._at = clock.monotonic()
        self.spent = 0

    def take(self):
        """True (and one write spent) when a write is allowed now."""
        now = self.clock.monotonic()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._at) * self.per_minute / 60.0)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self.spent += 1
        return True
