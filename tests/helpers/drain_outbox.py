"""Drain a kiosk database's outbox to a server, printing each batch's acknowledgements once written.

    python drain_outbox.py DB KEY URL SERVER_SIGNING_KEY DEVICE_ID

tests/test_sync_crash.py kills this process with SIGKILL at random points. A line ``acked N``
is printed only after the batch's acknowledgements were committed (WAL, synchronous=FULL).
"""

import sys

from kiosk.clock import SystemClock
from kiosk.storage import db
from kiosk.sync import keys
from kiosk.sync.client import SyncClient
from kiosk.sync.uploader import Uploader


def main(path, key_path, url, server_key, device_id):
    database = db.open_db(path)
    clock = SystemClock()
    with SyncClient(server_url=url, server_key=server_key, device_id=device_id,
                    device_key=keys.load_or_create_device_key(key_path), timeout_s=10.0, clock=clock) as client:
        uploader = Uploader(database, client, clock=clock, batch_size=40, max_batch_size=40,
                            on_acknowledged=lambda ids: print(f"acked {len(ids)}", flush=True))
        uploader.drain()
    print("drained", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
