"""Attendance events exist only for people in the database; a person's latest events for the punch rules."""

import pytest

from kiosk.clock import FakeClock
from kiosk.errors import StorageError, UnknownPersonError
from kiosk.storage import db, events, outbox, people


@pytest.fixture
def database():
    database = db.open_db(":memory:")
    people.upsert_people(database, [{"person_id": "e1"}, {"person_id": "e2"}])
    return database


@pytest.mark.parametrize("person_id", [None, "ghost", "None", "", True, 3.5])
def test_no_event_for_a_person_who_does_not_exist(database, person_id):
    with pytest.raises(StorageError) as caught:
        events.record_event(database, person_id=person_id, status_code=0, verify_mode="face", clock=FakeClock())
    assert isinstance(caught.value, UnknownPersonError) or person_id == ""
    assert events.count(database) == 0 and outbox.stats(database)["pending"] == 0


def test_unknown_person_error_is_a_lookup_error():
    assert issubclass(UnknownPersonError, StorageError) and issubclass(UnknownPersonError, LookupError)


def test_one_unknown_person_refuses_the_whole_batch(database):
    items = [dict(person_id="e1", status_code=0, verify_mode="face"),
             dict(person_id="ghost", status_code=0, verify_mode="face")]
    with pytest.raises(UnknownPersonError, match="ghost"):
        events.record_events(database, items, clock=FakeClock())
    assert events.count(database) == 0


def test_a_deleted_person_gets_no_new_event(database):
    events.record_event(database, person_id="e2", status_code=0, verify_mode="pin", clock=FakeClock())
    people.delete_person(database, "e2")
    with pytest.raises(UnknownPersonError):
        events.record_event(database, person_id="e2", status_code=1, verify_mode="pin", clock=FakeClock())
    assert events.count(database) == 1  # the old event stays


def test_last_event_and_events_since(database):
    clock = FakeClock(1_717_000_000.0)
    assert events.last_event_for(database, "e1") is None
    first = events.record_event(database, person_id="e1", status_code=0, verify_mode="face", clock=clock)
    clock.advance(60)
    events.record_event(database, person_id="e2", status_code=0, verify_mode="face", clock=clock)
    clock.advance(3600.5)
    later = events.record_event(database, person_id="e1", status_code=2, verify_mode="fingerprint", clock=clock)

    last = events.last_event_for(database, "e1")
    assert (last.id, last.seq, last.status, last.verify_mode) == (later.id, 3, 2, "fingerprint")
    assert last.wall_s == pytest.approx(1_717_003_660.5) and last.wall_time == later.wall_time

    assert [p.id for p in events.events_of_person_since(database, "e1", 1_717_000_000.0)] == [first.id, later.id]
    assert [p.id for p in events.events_of_person_since(database, "e1", 1_717_000_000.001)] == [later.id]
    assert events.events_of_person_since(database, "e1", clock.time() + 1) == []
    assert [p.status for p in events.events_of_person_since(database, "e2", 0.0)] == [0]
