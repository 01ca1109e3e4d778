"""PINs: salted scrypt hashes only, bounded verification of outside hashes, a lockout that outlives a restart."""

import base64

import pytest

from kiosk import pinhash, provision_file
from kiosk.clock import FakeClock
from kiosk.errors import UnknownPersonError
from kiosk.storage import db, people, pins


@pytest.fixture
def database(tmp_path):
    database = db.open_db(tmp_path / "k.db")
    people.upsert_people(database, [{"person_id": "e1", "name": "Ann"}, {"person_id": "e2"}])
    return database


def test_hash_is_salted_and_never_holds_the_pin():
    one, two = pinhash.hash_pin("246813"), pinhash.hash_pin("246813")
    assert one != two and "246813" not in one
    assert pinhash.verify_pin("246813", one) and pinhash.verify_pin("246813", two)
    assert not pinhash.verify_pin("246812", one)


def test_provision_file_keeps_its_names():
    pin_hash = provision_file.hash_pin("4321")
    assert provision_file.check_pin("4321", pin_hash) and pinhash.verify_pin("4321", pin_hash)


@pytest.mark.parametrize("hostile", [
    "scrypt$1073741824$8$1$c2FsdA==$" + base64.b64encode(b"x" * 32).decode(),  # N = 2^30: a memory bomb
    "scrypt$16384$1000$1$c2FsdA==$" + base64.b64encode(b"x" * 32).decode(),    # r far too big
    "scrypt$16385$8$1$c2FsdA==$" + base64.b64encode(b"x" * 32).decode(),       # N not a power of two
    "scrypt$16384$8$1$c2FsdA==$" + base64.b64encode(b"x" * 4096).decode(),     # absurd digest length
    "scrypt$16384$8$1$$",
    "plain:1234",
    "",
    None,
])
def test_hostile_or_malformed_hashes_are_refused_quickly(hostile):
    assert pinhash.verify_pin("1234", hostile) is False


@pytest.mark.parametrize("typed, digits", [("١٢٣٤٥٦", "123456"), (" 2468 ", "2468")])
def test_eastern_arabic_digits_are_folded(typed, digits):
    assert pinhash.normalise_pin(typed) == digits


@pytest.mark.parametrize("bad", ["12", "12ab", "1234567890123", "", "１２３４"])
def test_bad_pins_are_refused(bad):
    with pytest.raises(ValueError):
        pinhash.normalise_pin(bad)


def test_set_verify_and_clear_a_person_pin(database):
    pins.set_pin(database, "e1", "١٢٣٤٥٦", now=1.0)
    stored = people.get_person(database, "e1")["pin_hash"]
    assert stored.startswith("scrypt$") and "123456" not in stored
    assert pins.verify_person_pin(database, "e1", "123456")
    assert not pins.verify_person_pin(database, "e1", "123457")
    assert not pins.verify_person_pin(database, "e2", "123456")  # no PIN
    assert not pins.verify_person_pin(database, "nobody", "123456")
    assert pins.has_pin(database, "e1") and not pins.has_pin(database, "e2")
    assert pins.clear_pin(database, "e1", now=2.0) is True
    assert not pins.verify_person_pin(database, "e1", "123456") and not pins.has_pin(database, "e1")


def test_inactive_person_pin_does_not_verify(database):
    pins.set_pin(database, "e1", "123456", now=1.0)
    people.upsert_person(database, {"person_id": "e1", "active": 0, "pin_hash": people.get_person(database, "e1")["pin_hash"]})
    assert not pins.verify_person_pin(database, "e1", "123456")


def test_pins_for_unknown_people_are_refused(database):
    with pytest.raises(UnknownPersonError):
        pins.set_pin(database, "ghost", "123456", now=1.0)
    with pytest.raises(UnknownPersonError):
        pins.clear_pin(database, "ghost", now=1.0)
    with pytest.raises(ValueError):
        pins.set_pin(database, "e1", "12", now=1.0)


def test_lockout_after_max_failures_then_cooldown(database):
    clock = FakeClock()
    for n in range(4):
        state = pins.record_failure(database, "admin", max_failures=5, cooldown_s=300, now=clock.time())
        assert state.failures == n + 1 and not state.locked
    state = pins.record_failure(database, "admin", max_failures=5, cooldown_s=300, now=clock.time())
    assert state.locked and state.remaining_s == 300
    clock.advance(299)
    assert pins.lockout_state(database, "admin", now=clock.time()).locked
    clock.advance(1)
    assert not pins.lockout_state(database, "admin", now=clock.time()).locked
    # after the cooldown the count starts over: one more failure does not lock again
    state = pins.record_failure(database, "admin", max_failures=5, cooldown_s=300, now=clock.time())
    assert state.failures == 1 and not state.locked


def test_lockout_survives_a_restart(tmp_path):
    path = tmp_path / "k.db"
    clock = FakeClock()
    database = db.open_db(path)
    for _ in range(3):
        pins.record_failure(database, "pin:e1", max_failures=3, cooldown_s=60, now=clock.time())
    database.conn.close()
    reopened = db.open_db(path)
    clock.advance(10)
    state = pins.lockout_state(reopened, "pin:e1", now=clock.time())
    assert state.locked and state.remaining_s == 50


def test_success_resets_the_count(database):
    for _ in range(4):
        pins.record_failure(database, "admin", max_failures=5, cooldown_s=60, now=0.0)
    pins.record_success(database, "admin")
    assert pins.lockout_state(database, "admin", now=0.0).failures == 0


def test_clock_stepping_back_does_not_lock_for_months(database):
    clock = FakeClock(1_800_000_000.0)
    for _ in range(2):
        pins.record_failure(database, "admin", max_failures=2, cooldown_s=60, now=clock.time())
    clock.advance(-90 * 86400)  # reboot without network: the clock restarts from an old value
    state = pins.lockout_state(database, "admin", now=clock.time())
    assert state.locked and state.remaining_s == 60
    clock.advance(60)
    assert not pins.lockout_state(database, "admin", now=clock.time()).locked


def test_check_person_pin_counts_and_refuses_even_the_right_pin_while_locked(database):
    pins.set_pin(database, "e1", "135790", now=0.0)
    clock = FakeClock()
    kw = dict(max_failures=3, cooldown_s=120, now=clock.time())
    first = pins.check_person_pin(database, "e1", "000000", **kw)
    assert (first.outcome, first.attempts_left, first.accepted) == ("wrong", 2, False)
    assert pins.check_person_pin(database, "e1", "000001", **kw).attempts_left == 1
    third = pins.check_person_pin(database, "e1", "000002", **kw)
    assert not third.accepted and third.locked and third.outcome == "locked"
    right_but_locked = pins.check_person_pin(database, "e1", "135790", **kw)
    assert not right_but_locked.accepted and right_but_locked.locked
    clock.advance(120)
    ok = pins.check_person_pin(database, "e1", "135790", max_failures=3, cooldown_s=120, now=clock.time())
    assert ok.accepted and ok.lockout.failures == 0
    assert ok.outcome == "ok"
    # one person's lockout is not another's
    assert not pins.lockout_state(database, pins.person_subject("e2"), now=clock.time()).locked
    # no PIN, and people who do not exist, are refused and counted like wrong PINs
    assert pins.check_person_pin(database, "e2", "135790", max_failures=3, cooldown_s=120,
                                 now=clock.time()).outcome == "no_pin"
    ghost = pins.check_person_pin(database, "ghost", "135790", max_failures=3, cooldown_s=120, now=clock.time())
    assert ghost.outcome == "unknown" and ghost.attempts_left == 2


def test_check_admin_pin(database):
    pin_hash = pinhash.hash_pin("8642")
    kw = dict(max_failures=5, cooldown_s=300, now=0.0)
    assert pins.check_admin_pin(database, "8642", pin_hash, **kw).accepted
    assert not pins.check_admin_pin(database, "8641", pin_hash, **kw).accepted
    assert pins.check_admin_pin(database, "8642", "", **kw).outcome == "no_pin"  # none provisioned
    assert not pins.check_admin_pin(database, "not digits", pin_hash, **kw).accepted
    assert pins.lockout_state(database, pins.ADMIN_SUBJECT, now=0.0).failures == 3
