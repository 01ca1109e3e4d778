"""Fault campaign: 20,000 events while the server cycles through every fault; nothing lost, nothing twice."""

import threading
import uuid

from kiosk_sim.server import ServerSimulator
from kiosk_sim.server_faults import FAULTS
from sync_helpers import make_device, sync_settings

from kiosk.storage import db, events, outbox, people
from kiosk.storage.chain import verify_records

EVENTS = 20_000
CHUNK = 25
ACTIVATION_EVERY = 1000
PASSES = 3  # times through the whole fault schedule
SCHEDULE = [
    ("outage", {}),
    ("close", {"times": 3}),
    ("error500", {"times": 3}),
    ("unavailable", {"times": 2, "retry_after_s": 3}),
    ("slow", {"times": 2, "delay_s": 0.35}),
    ("reset", {"times": 3}),
    ("duplicate_ack", {"times": 3}),
    ("lost_ack", {"times": 3}),
    ("skew", {"times": 6, "skew_s": 1800.0}),
]


def produce(path, clock, quota, produced, failures):
    """Write the events (and a few activation packets) from their own connection, as the kiosk would.

    Each chunk waits for ``quota``, so events keep arriving while every fault is in force.
    """
    try:
        database = db.open_db(path)
        modes = ("face", "fingerprint", "pin", "card")
        people.upsert_people(database, [{"person_id": f"emp{n}"} for n in range(500)])
        for start in range(0, EVENTS, CHUNK):
            quota.acquire()
            items = [dict(person_id=f"emp{n % 500}", status_code=n % 6, verify_mode=modes[n % 4], score=0.75)
                     for n in range(start, start + CHUNK)]
            produced.extend(e.id for e in events.record_events(database, items, clock=clock))
            if start % ACTIVATION_EVERY == 0:
                record_id = str(uuid.uuid4())
                outbox.enqueue(database, "activation", record_id, {"sealed": "AAAA", "n": start}, now=clock.time())
                produced.append(record_id)
        database.conn.close()
    except Exception as e:  # noqa: BLE001 - reported by the test
        failures.append(e)


def test_fault_campaign_every_event_exactly_once_and_nothing_deleted_before_ack(tmp_path):
    with ServerSimulator(db_path=tmp_path / "server.db", fault_seed=5) as server:
        acked = set()
        settings = sync_settings(request_timeout_s=0.25, batch_size=500, max_batch_size=2000, min_backoff_s=0.5,
                                 max_backoff_s=4.0, max_batches_per_cycle=4, retention_days=0.0)
        device = make_device(tmp_path, server, settings=settings, on_acknowledged=acked.update)
        deletions, early = [], []

        def note_deleted(record_id, acked_at):
            deletions.append(record_id)
            if acked_at is None or record_id not in acked:
                early.append(record_id)

        # every delete from the outbox, by whoever, is checked against the acknowledgements received so far
        device.database.conn.create_function("note_deleted", 2, note_deleted)
        device.database.execute("CREATE TEMP TRIGGER outbox_deleted AFTER DELETE ON outbox "
                                "BEGIN SELECT note_deleted(OLD.record_id, OLD.acked_at); END")
        produced, failures = [], []
        quota = threading.Semaphore(0)
        producer = threading.Thread(target=produce, args=(device.path, device.clock, quota, produced, failures))
        producer.start()
        outages = 0
        rounds = PASSES * len(SCHEDULE)
        chunks = EVENTS // CHUNK
        try:
            for round_no in range(rounds):
                kind, knobs = SCHEDULE[round_no % len(SCHEDULE)]
                share = chunks * (round_no + 1) // rounds - chunks * round_no // rounds
                for _ in range(share):
                    quota.release()
                server.set_fault(kind, **knobs)
                outages += kind == "outage"
                for _ in range(3):
                    device.clock.advance(device.worker.run_once())
                server.clear_fault()
                for _ in range(2):
                    device.clock.advance(device.worker.run_once())
        finally:
            for _ in range(chunks):
                quota.release()  # never leave the producer waiting, whatever happened
            producer.join()
            server.clear_fault()
        assert not failures, failures
        for _ in range(200):
            device.clock.advance(device.worker.run_once())
            if device.database.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0:
                break

        # every fault type was exercised
        applied = dict(server.faults.applied, outage=outages)
        assert set(applied) == set(FAULTS)
        assert all(count > 0 for count in applied.values()), applied
        # lost and cut answers made the device send stored records again: answered as duplicates
        assert server.stats()["duplicate_results"] > 0
        # the server holds every record exactly once, and the chain it holds is whole
        stored = server.events()
        assert len(stored) == EVENTS
        assert [e["seq"] for e in stored] == list(range(1, EVENTS + 1))
        assert verify_records(stored) == (True, None, "")
        all_ids = [r["id"] for r in server.records()]
        assert len(all_ids) == len(set(all_ids)) == len(produced)
        assert set(all_ids) == set(produced)
        # the outbox is empty, and nothing left it before its acknowledgement
        assert device.database.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert early == []
        assert sorted(deletions) == sorted(produced)
        assert events.verify_chain(device.database) == EVENTS
