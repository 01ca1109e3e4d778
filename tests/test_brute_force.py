"""Brute force at the keypad: how many guesses an attacker gets, and for how long a lockout holds.

Through the real ports and storage (``DevicePorts`` over SQLite, the lockout kept in the
database), with the default settings and a fake clock: the attendance PIN of one person and the
admin PIN. Prints the figures docs/reliability.md (section 10) quotes.
"""

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.device_ports import DevicePorts, HeadlessScreen
from kiosk.pinhash import hash_pin
from kiosk.storage import db, people, pins

ADMIN_PIN, PIN = "246810", "135790"


@pytest.fixture
def ports(tmp_path):
    settings = config.build([("test", {"security": {"admin_pin_hash": hash_pin(ADMIN_PIN)}})])
    database = db.open_db(tmp_path / "kiosk.db")
    clock = FakeClock()
    people.upsert_person(database, {"person_id": "e1", "name": "E One"})
    pins.set_pin(database, "e1", PIN, now=clock.time())
    return DevicePorts(settings=settings, database=database, data_key=None, clock=clock, screen=HeadlessScreen())


def guesses_until_locked(check, limit=100):
    for n in range(1, limit + 1):
        if check(f"{n:06d}").outcome == "locked":
            return n
    return None


@pytest.mark.parametrize("who", ["attendance", "admin"])
def test_guesses_before_lockout_and_how_long_it_holds(ports, who, capsys):
    settings = ports.settings
    if who == "attendance":
        check, right = (lambda pin: ports.check_pin("e1", pin)), PIN
        allowed, cooldown = settings.attendance.pin_max_failures, settings.attendance.pin_cooldown_s
    else:
        check, right = ports.check_admin_pin, ADMIN_PIN
        allowed, cooldown = settings.security.admin_max_failures, settings.security.admin_cooldown_s
    locked_at = guesses_until_locked(check)
    assert locked_at == allowed
    assert check(right).outcome == "locked"          # even the right PIN, while locked
    ports.clock.advance(cooldown - 1)
    assert check(right).outcome == "locked"
    ports.clock.advance(1)
    assert check(right).ok                            # the cooldown is over
    with capsys.disabled():
        print(f"\n[brute force] {who} PIN: {locked_at} wrong guesses, then locked for {cooldown:.0f} s "
              f"(the right PIN refused meanwhile): at most {allowed * 86400 / cooldown:.0f} guesses a day "
              f"of 10^6 possible 6-digit PINs")


def test_typing_unknown_ids_costs_lockouts_too(ports):
    for n in range(ports.settings.attendance.pin_max_failures):
        ports.check_pin("nobody", f"{n:06d}")
    assert ports.check_pin("nobody", "000000").outcome == "locked"
