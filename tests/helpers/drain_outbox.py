"""Drain a kiosk database's outbox to a server, printing each batch's acknowledgements once written.

    python drain_outbox.py DB KEY URL SERVER_SIGNING_KEY DEVICE_ID HOLD_AFTER

tests/test_sync_crash.py kills this process with SIGKILL at random points. A line ``acked N``
is printed only after the batch's acknowledgements were committed (WAL, synchronous=FULL); a line
``answered N`` as soon as the server's answer to a batch of N records arrived (on the uploader's
sender thread, before anything of it is committed).
After HOLD_AFTER batches it waits for standard input (which the test never writes), so the
kill always lands before the outbox is drained however fast this machine is.
"""

import sys

from kiosk.clock import SystemClock
from kiosk.storage import db
from kiosk.sync import keys
from kiosk.sync.client import SyncClient
from kiosk.sync.uploader import Uploader


def main(path, key_path, url, server_key, device_id, hold_after):
    database = db.open_db(path)
    clock = SystemClock()
    batches = 0

    def acknowledged(ids):
        nonlocal batches
        batches += 1
        print(f"acked {len(ids)}", flush=True)
        if batches >= int(hold_after):
            sys.stdin.readline()

    with SyncClient(server_url=url, server_key=server_key, device_id=device_id,
                    device_key=keys.load_or_create_device_key(key_path), timeout_s=10.0, clock=clock) as client:
        upload = client.upload_batch

        def upload_and_say(body):
            answer = upload(body)
            print(f"answered {len(answer.get('results', []))}", flush=True)
            return answer

        client.upload_batch = upload_and_say
        uploader = Uploader(database, client, clock=clock, batch_size=40, max_batch_size=40,
                            on_acknowledged=acknowledged)
        uploader.drain()
    print("drained", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:7])
