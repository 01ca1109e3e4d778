"""People's PINs (salted scrypt hashes in ``people.pin_hash``) and a lockout that survives a restart.

The lockout is kept per *subject*: ``pin:<person_id>`` for a person's attendance PIN,
``admin`` for the admin PIN. After ``max_failures`` wrong PINs in a row the subject is locked for
``cooldown_s``; a right PIN resets the count. Its table (pin_lockouts) comes from migration 3.

Times are wall-clock seconds (a lockout has to outlive a reboot, which monotonic time does not).
A Pi has no battery clock, so the wall clock can step backwards at boot: a lock whose start lies
in the future is re-anchored at "now", so it still lasts its cooldown but never months.
"""

import logging
from dataclasses import dataclass

from kiosk.errors import StorageError, UnknownPersonError
from kiosk.pinhash import hash_pin, normalise_pin, verify_pin
from kiosk.storage.db import transaction

log = logging.getLogger(__name__)

ADMIN_SUBJECT = "admin"


def person_subject(person_id):
    """The lockout subject of one person's PIN."""
    return f"pin:{person_id}"


@dataclass(frozen=True)
class LockoutState:
    """Where a subject stands: failures so far and, when locked, until when."""

    subject: str
    failures: int
    locked_until: float | None
    remaining_s: float

    @property
    def locked(self):
        return self.remaining_s > 0


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one PIN attempt: ``ok``, ``wrong``, ``locked``, ``no_pin`` or ``unknown``."""

    outcome: str
    lockout: LockoutState
    attempts_left: int | None = None  # before a lockout, when ``wrong``

    @property
    def accepted(self):
        return self.outcome == "ok"

    @property
    def locked(self):
        return self.lockout.locked


# --- setting PINs --------------------------------------------------------------------------------

def set_pin(database, person_id, pin, *, now):
    """Store a salted scrypt hash of ``pin`` (4-12 digits) for a person; ValueError for a bad PIN."""
    pin_hash = hash_pin(normalise_pin(pin))
    with transaction(database):
        changed = database.execute("UPDATE people SET pin_hash = ?, updated_at = ? WHERE person_id = ?",
                                   [pin_hash, now, str(person_id)]).rowcount
        if not changed:
            raise UnknownPersonError(f"no person {person_id!r} to set a PIN for")
        record_success(database, person_subject(person_id))  # a new PIN starts with a clean count
    log.info("PIN set for person %s", person_id)


def clear_pin(database, person_id, *, now):
    """Remove a person's PIN (they can no longer clock in by PIN); True if they had one."""
    with transaction(database):
        row = database.execute("SELECT pin_hash FROM people WHERE person_id = ?", [str(person_id)]).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person {person_id!r} to clear a PIN for")
        database.execute("UPDATE people SET pin_hash = NULL, updated_at = ? WHERE person_id = ?",
                         [now, str(person_id)])
    return row[0] is not None


def has_pin(database, person_id):
    """True if the person exists, is active and has a PIN."""
    row = database.execute("SELECT pin_hash, active FROM people WHERE person_id = ?", [str(person_id)]).fetchone()
    return bool(row and row[0] and row[1])


def verify_person_pin(database, person_id, pin):
    """True if ``pin`` is the active person's PIN; False for an unknown or inactive person or no PIN.

    No lockout bookkeeping: flows use ``check_person_pin``.
    """
    row = database.execute("SELECT pin_hash, active FROM people WHERE person_id = ?", [str(person_id)]).fetchone()
    if row is None or not row[1] or not row[0]:
        return False
    try:
        pin = normalise_pin(pin)
    except ValueError:
        return False
    return verify_pin(pin, row[0])


def check_person_pin(database, person_id, pin, *, max_failures, cooldown_s, now):
    """One attendance PIN attempt with the lockout: not even tried while locked; counted when it fails.

    An unknown or inactive person (``unknown``) or one without a PIN (``no_pin``) also counts as a
    failure, so typing ids at random costs the same lockouts as guessing PINs.
    """
    row = database.execute("SELECT pin_hash, active FROM people WHERE person_id = ?", [str(person_id)]).fetchone()
    if row is None or not row[1]:
        refusal = "unknown"
    elif not row[0]:
        refusal = "no_pin"
    else:
        refusal = "wrong"
    return _attempt(database, person_subject(person_id), lambda: verify_person_pin(database, person_id, pin),
                    refusal, max_failures=max_failures, cooldown_s=cooldown_s, now=now)


def check_admin_pin(database, pin, pin_hash, *, max_failures, cooldown_s, now):
    """One admin PIN attempt against the provisioned hash, with the ``admin`` lockout."""
    def right():
        try:
            return bool(pin_hash) and verify_pin(normalise_pin(pin), pin_hash)
        except ValueError:
            return False
    return _attempt(database, ADMIN_SUBJECT, right, "wrong" if pin_hash else "no_pin",
                    max_failures=max_failures, cooldown_s=cooldown_s, now=now)


def _attempt(database, subject, is_right, refusal, *, max_failures, cooldown_s, now):
    state = lockout_state(database, subject, now=now)
    if state.locked:
        return PinCheck("locked", state)
    if is_right():
        record_success(database, subject)
        return PinCheck("ok", lockout_state(database, subject, now=now))
    state = record_failure(database, subject, max_failures=max_failures, cooldown_s=cooldown_s, now=now)
    if state.locked:
        return PinCheck("locked", state, 0)
    return PinCheck(refusal, state, max_failures - state.failures)


# --- the lockout ---------------------------------------------------------------------------------

def lockout_state(database, subject, *, now):
    """The subject's failures and lock at ``now`` (re-anchoring a lock the clock jumped back over)."""
    with transaction(database):
        row = database.execute("SELECT failures, locked_at, locked_until FROM pin_lockouts WHERE subject = ?",
                               [subject]).fetchone()
        if row is None:
            return LockoutState(subject, 0, None, 0.0)
        failures, locked_at, locked_until = row
        if locked_until is not None and locked_at is not None and locked_at > now:
            # the wall clock went backwards past the start of the lock: keep its length, not its end
            locked_until, locked_at = now + (locked_until - locked_at), now
            database.execute("UPDATE pin_lockouts SET locked_at = ?, locked_until = ?, updated_at = ? "
                             "WHERE subject = ?", [locked_at, locked_until, now, subject])
            log.warning("clock stepped back during a PIN lockout of %s; lock re-anchored", subject)
    remaining = max(0.0, locked_until - now) if locked_until is not None else 0.0
    return LockoutState(subject, failures, locked_until if remaining else None, remaining)


def record_failure(database, subject, *, max_failures, cooldown_s, now):
    """Count one wrong PIN; the ``max_failures``-th in a row locks the subject for ``cooldown_s``."""
    if max_failures < 1 or cooldown_s < 0:
        raise StorageError("max_failures must be >= 1 and cooldown_s >= 0")
    with transaction(database):
        state = lockout_state(database, subject, now=now)
        if state.locked:
            return state
        # a lock that has run out starts a fresh count
        row = database.execute("SELECT locked_until FROM pin_lockouts WHERE subject = ?", [subject]).fetchone()
        failures = 1 if (row and row[0] is not None) else state.failures + 1
        locked_at = locked_until = None
        if failures >= max_failures:
            locked_at, locked_until = now, now + cooldown_s
            log.warning("%s locked for %.0f s after %d wrong PINs", subject, cooldown_s, failures)
        database.execute(
            "INSERT INTO pin_lockouts (subject, failures, locked_at, locked_until, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures, locked_at = excluded.locked_at, "
            "locked_until = excluded.locked_until, updated_at = excluded.updated_at",
            [subject, failures, locked_at, locked_until, now])
    return lockout_state(database, subject, now=now)


def record_success(database, subject):
    """A right PIN: forget the subject's failures."""
    with transaction(database):
        database.execute("DELETE FROM pin_lockouts WHERE subject = ?", [subject])

