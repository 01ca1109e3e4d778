"""Shared set-up for the sync tests: a server simulator and a registered device talking to it."""

import random
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.storage import db, events, people
from kiosk.sync import keys, registration
from kiosk.sync.client import SyncClient
from kiosk.sync.worker import SyncWorker


@dataclass
class Device:
    """A registered kiosk: its database, key, client and worker."""

    path: Path
    database: object
    key: object
    key_path: Path
    device_id: str
    server_key: str
    clock: FakeClock
    client: SyncClient
    worker: SyncWorker

    def record(self, count, *, start=0):
        people.upsert_people(self.database, [{"person_id": f"emp{n}"} for n in range(97)])
        items = [dict(person_id=f"emp{(start + n) % 97}", status_code=(start + n) % 6, verify_mode="face",
                      score=0.9) for n in range(count)]
        return events.record_events(self.database, items, clock=self.clock)

    def drain(self, *, max_cycles=200):
        """Run worker cycles (advancing the fake clock by each returned delay) until one says 'wait'."""
        for _ in range(max_cycles):
            delay = self.worker.run_once()
            self.clock.advance(delay)
            if self.worker.backoff.failures == 0 and delay == self.worker.settings.interval_s:
                return
        raise AssertionError("did not settle")


def sync_settings(**overrides):
    values = {"retention_days": 0.0, "min_backoff_s": 0.5, "max_backoff_s": 5.0, "request_timeout_s": 5.0}
    values.update(overrides)
    return config.build([]).replace(sync=values).sync


def make_device(tmp_path, server, *, settings=None, hooks=None, data_key=None, name="kiosk", seed=1, **worker_kw):
    tmp_path = Path(tmp_path)
    key_path = tmp_path / f"{name}.key"
    key = keys.load_or_create_device_key(key_path)
    reg = registration.register(server_url=server.url, token=server.issue_enrolment_token(), device_key=key,
                                ca_file=server.ca_file)
    clock = FakeClock(time.time())
    path = tmp_path / f"{name}.db"
    database = db.open_db(path)
    settings = settings or sync_settings()
    client = SyncClient(server_url=server.url, server_key=reg.server_signing_key, device_id=reg.device_id,
                        device_key=key, ca_file=server.ca_file or "", timeout_s=settings.request_timeout_s, clock=clock)
    worker = SyncWorker(database, client, settings=settings, clock=clock, data_key=data_key, hooks=hooks,
                        rng=random.Random(seed), key_path=key_path, **worker_kw)
    return Device(path, database, key, key_path, reg.device_id, reg.server_signing_key, clock, client, worker)
