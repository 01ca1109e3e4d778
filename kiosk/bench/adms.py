"""`kiosk bench adms`: drain a backlog of attendance events to the hw-sim ADMS server on loopback."""

import json
import logging
import tempfile
import time
from pathlib import Path

from kiosk import argtypes

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser("adms", help="ADMS push: events per second to the simulator on loopback",
                                   description=__doc__)
    parser.add_argument("--events", type=argtypes.positive_int, default=10_000, help="backlog size (default %(default)s)")
    parser.add_argument("--batch-rows", type=argtypes.positive_int, default=200, help="ATTLOG rows per POST (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Record the backlog, then time the adapter until the server acknowledged every row."""
    from kiosk.clock import SystemClock
    from kiosk.storage import db, events, people
    from kiosk.sync.adms import AdmsAdapter
    from kiosk_sim.adms import AdmsServer

    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp, AdmsServer(options={"TimeZone": 3, "Delay": 3600}) as server:
        path = Path(tmp) / "kiosk.db"
        database = db.open_db(path)
        modes = ("face", "fingerprint", "pin", "card")
        people.upsert_people(database, [{"person_id": str(100000 + i), "adms_pin": str(100000 + i)}
                                        for i in range(args.events)])
        items = [dict(person_id=str(100000 + i), status_code=i % 6, verify_mode=modes[i % 4])
                 for i in range(args.events)]
        for start in range(0, len(items), 5000):
            events.record_events(database, items[start:start + 5000], clock=clock)
        with AdmsAdapter(db.open_db(path), url=server.url, serial="BENCH0001", clock=clock,
                         device_timezone="Asia/Riyadh", batch_rows=args.batch_rows) as adapter:
            began = time.perf_counter()
            while adapter.cursor < args.events:
                adapter.run_once()
                if adapter.status()["consecutive_errors"]:
                    raise SystemExit(f"ADMS bench: upload failed: {adapter.status()['last_error']}")
            seconds = time.perf_counter() - began
        stored = len(server.records())
        database.conn.close()
    figures = {"events": args.events, "seconds": round(seconds, 3),
               "events_per_s": round(args.events / seconds, 1) if seconds else None,
               "batch_rows": args.batch_rows, "stored_by_server": stored}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.events} events pushed in {seconds:.2f} s: {figures['events_per_s']} events/s "
              f"({args.batch_rows} rows per POST; the server stored {stored})")
    return 0
