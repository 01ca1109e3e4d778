"""`kiosk bench sync`: drain a backlog of attendance events to the central server simulator on loopback.

As deployed: the server in a process of its own (another machine, in a deployment; started by the
bench and stopped after), https with the simulator's pinned test CA (``--no-tls`` for plain http),
signed batches, the hash chain, per-record acknowledgements, SQLite synchronous=FULL on both ends.
``target`` in the JSON says whether the drain reached issue 13's 25,000 events/s with TLS on.
"""

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from kiosk import argtypes

log = logging.getLogger(__name__)

TARGET_EVENTS_PER_S = 25_000  # issue 13, with TLS on


def register(subparsers):
    parser = subparsers.add_parser("sync", help="sync upload: events per second to the server simulator",
                                   description=__doc__)
    parser.add_argument("--events", type=argtypes.positive_int, default=10_000, help="backlog size (default %(default)s)")
    parser.add_argument("--batch-size", type=argtypes.positive_int, default=500, help="first batch size (default %(default)s)")
    parser.add_argument("--max-batch-size", type=argtypes.positive_int, default=5000,
                        help="adaptive batch size cap (default %(default)s)")
    parser.add_argument("--no-tls", dest="tls", action="store_false",
                        help="plain http instead of https with a pinned test CA (the default, as deployed)")
    parser.add_argument("--server-in-process", dest="server_process", action="store_false",
                        help="run the simulator in the bench's own process (sharing its interpreter lock, "
                             "as before issue 13), not in a process of its own")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Register, record the backlog (timed apart), then time the worker until the outbox is drained."""
    from kiosk import config
    from kiosk.clock import SystemClock
    from kiosk.storage import db, events, people, sync_state
    from kiosk.sync import keys, registration
    from kiosk.sync.client import SyncClient
    from kiosk.sync.uploader import Uploader

    clock = SystemClock()
    settings = config.build([]).sync
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(Path(tmp) / "server", args)
        with server:
            key = keys.load_or_create_device_key(Path(tmp) / "device.key")
            reg = registration.register(server_url=server.url, token=server.token, device_key=key,
                                        ca_file=server.ca_file)
            database = db.open_db(Path(tmp) / "kiosk.db")
            modes = ("face", "fingerprint", "pin", "card")
            people.upsert_people(database, [{"person_id": str(100000 + i)} for i in range(min(args.events, 3000))])
            items = [dict(person_id=str(100000 + i % 3000), status_code=i % 6, verify_mode=modes[i % 4], score=0.8)
                     for i in range(args.events)]
            began = time.perf_counter()
            for start in range(0, len(items), 1000):
                events.record_events(database, items[start:start + 1000], clock=clock)
            create_s = time.perf_counter() - began
            with SyncClient(server_url=server.url, server_key=reg.server_signing_key, device_id=reg.device_id,
                            device_key=key, ca_file=server.ca_file or "", timeout_s=settings.request_timeout_s,
                            clock=clock) as client:
                uploader = Uploader(database, client, clock=clock, batch_size=args.batch_size,
                                    max_batch_size=args.max_batch_size, target_request_s=settings.target_request_s)
                server_cpu_began = server.cpu_seconds()
                began, cpu_began = time.perf_counter(), time.process_time()
                report = uploader.drain()
                seconds = time.perf_counter() - began
                # with the simulator in this process, its CPU time is in ours
                kiosk_cpu_s = time.process_time() - cpu_began
                server_cpu_ended = server.cpu_seconds()
                server_cpu_s = server_cpu_ended - server_cpu_began \
                    if args.server_process and None not in (server_cpu_began, server_cpu_ended) else None
            pending = sync_state.pending_stats(database)["pending"]
            database.conn.close()
        stored = server.record_count()  # from its database, the server stopped
    if pending or stored != args.events:
        raise SystemExit(f"sync bench: {pending} still pending, the server stored {stored} of {args.events}")
    cpu_s = kiosk_cpu_s + (server_cpu_s or 0.0)
    figures = {"events": args.events, "seconds": round(seconds, 3),
               "events_per_s": round(args.events / seconds, 1) if seconds else None,
               "batches": report.batches, "final_batch_size": uploader.batch_size,
               "create_seconds": round(create_s, 3), "tls": bool(args.tls),
               "cpu_seconds": round(cpu_s, 3), "events_per_cpu_s": round(args.events / cpu_s, 1) if cpu_s else None,
               "server_process": bool(args.server_process), "kiosk_cpu_seconds": round(kiosk_cpu_s, 3),
               "server_cpu_seconds": None if server_cpu_s is None else round(server_cpu_s, 3),
               "load_average_1m": round(os.getloadavg()[0], 2)}
    figures["target"] = {"events_per_s_min": TARGET_EVENTS_PER_S, "tls_required": True,
                         "met": bool(args.tls) and (figures["events_per_s"] or 0) >= TARGET_EVENTS_PER_S}
    if args.json:
        print(json.dumps(figures))
    else:
        where = "in its own process" if args.server_process else "in this process"
        print(f"{args.events} events drained in {seconds:.2f} s: {figures['events_per_s']} events/s "
              f"({report.batches} batches, final batch size {uploader.batch_size}; server simulator {where}; "
              f"{figures['events_per_cpu_s']} events per CPU second of kiosk + simulator; "
              f"creating the backlog took {create_s:.2f} s; load average {figures['load_average_1m']})")
    return 0


class _InProcessServer:
    """The simulator on a thread of this process, with the ServerProcess interface the bench uses."""

    def __init__(self, workdir, *, tls):
        from kiosk_sim.server import ServerSimulator

        self._server = ServerSimulator(db_path=Path(workdir) / "server.db", tls=tls)
        self._count = None

    def __enter__(self):
        self._server.start()
        self.url, self.ca_file = self._server.url, self._server.ca_file
        self.token = self._server.issue_enrolment_token()
        return self

    def __exit__(self, *exc):
        self._count = self._server.record_count()
        self._server.close()

    def cpu_seconds(self):
        return 0.0  # counted in this process's own CPU time

    def record_count(self):
        return self._count if self._count is not None else self._server.record_count()


def _server(workdir, args):
    if not args.server_process:
        return _InProcessServer(workdir, tls=args.tls)
    from kiosk_sim.server_process import ServerProcess

    return ServerProcess(workdir=workdir, tls=args.tls)
