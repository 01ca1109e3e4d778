"""`kiosk sync --now | status | retry-rejected`: sync with the central server by hand, or see how it stands."""

import argparse
import json
import sys
from datetime import datetime, timezone

from kiosk.storage import db, sync_state


def register(sub):
    parser = sub.add_parser("sync", help="sync with the central server now, or show sync status",
                            description=__doc__)
    parser.add_argument("--now", action="store_true",
                        help="upload everything pending, download changes and run commands, then exit "
                             "(exit 1 if the server was unreachable or refused us)")
    _common(parser)
    parser.add_argument("--max-cycles", type=int, default=1000, metavar="N",
                        help="with --now: give up after N sync cycles (default 1000)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    status = verbs.add_parser("status", help="pending count, oldest pending, last success, last error and rejection",
                              description="Show the sync status recorded in the database.")
    _common(status, suppress=True)
    status.set_defaults(func=run_status)
    retry = verbs.add_parser("retry-rejected", help="send records the server refused again (after fixing the server)",
                             description="Make records the server refused eligible for upload again.")
    _common(retry, suppress=True)
    retry.set_defaults(func=run_retry_rejected)
    parser.set_defaults(func=run)


def _common(parser, *, suppress=False):
    # on the verbs too, so `kiosk sync status --json` works; SUPPRESS keeps a value given before the verb
    extra = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--db", metavar="FILE", help="database file (default: <storage.data_dir>/kiosk.db)",
                        **({"default": None} | extra))
    parser.add_argument("--json", action="store_true", help="print the status as JSON", **extra)


def _open(args):
    from kiosk import app

    settings = app.load_settings(args)
    return settings, db.open_db(args.db or settings.db_path)


def run(args):
    if not args.now:
        print("kiosk sync: say --now to sync, or `kiosk sync status`", file=sys.stderr)
        return 2
    from pathlib import Path

    from kiosk.clock import SystemClock
    from kiosk.storage import seal
    from kiosk.sync import service, worker

    settings, database = _open(args)
    data_key_path = Path(settings.security.data_key_file)
    data_key = seal.DataKey.load(data_key_path) if data_key_path.exists() else None
    sync_worker = service.build_worker(settings, database, clock=SystemClock(), data_key=data_key)
    try:
        for _ in range(max(1, args.max_cycles)):
            delay = sync_worker.run_once()
            if delay > 0:
                break
    finally:
        sync_worker.client.close()
    current = worker.status(database)
    _print_status(current, as_json=args.json)
    return 0 if current.get("state") == "ok" and not current.get("pending") else 1


def run_status(args):
    from kiosk.sync import worker

    _, database = _open(args)
    _print_status(worker.status(database), as_json=args.json)
    return 0


def run_retry_rejected(args):
    _, database = _open(args)
    count = sync_state.retry_rejected(database)
    print(f"{count} refused record(s) will be sent again at the next sync")
    return 0


def _when(seconds):
    if not seconds:
        return "never"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _print_status(current, *, as_json):
    if as_json:
        print(json.dumps(current, indent=2, sort_keys=True))
        return
    print(f"state:            {current.get('state')}")
    print(f"pending records:  {current.get('pending', 0)}"
          + (f" (of which {current['rejected']} refused by the server)" if current.get("rejected") else ""))
    print(f"oldest pending:   {_when(current.get('oldest_pending'))}")
    print(f"last success:     {_when(current.get('last_success_at'))}")
    print(f"last attempt:     {_when(current.get('last_attempt_at'))}")
    if current.get("last_error"):
        print(f"last error:       {_when(current.get('last_error_at'))} {current['last_error']}")
    rejection = current.get("last_rejection")
    if rejection:
        print(f"last REJECTION:   {_when(rejection.get('at'))} {rejection.get('reason')}: {rejection.get('message')}")
    for item in current.get("rejected_records", []):
        print(f"  refused record {item['record_id']}: {item['reason']}")
    if "clock_offset_s" in current:
        flag = "  <-- device clock is off" if current.get("clock_suspect") else ""
        print(f"clock offset:     {current['clock_offset_s']:+.1f} s (server minus device){flag}")
    if current.get("next_attempt_at"):
        print(f"next attempt:     {_when(current.get('next_attempt_at'))}")
