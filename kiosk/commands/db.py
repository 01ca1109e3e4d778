"""`kiosk db migrate | status | verify-chain`."""

from datetime import datetime

from kiosk.storage import db, events, outbox


def register(sub):
    parser = sub.add_parser("db", help="database maintenance", description=__doc__)
    parser.add_argument("--db", metavar="FILE", help="database file (default: <storage.data_dir>/kiosk.db)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=run_migrate)
    verbs.add_parser("status", help="schema version, record and outbox counts").set_defaults(func=run_status)
    verbs.add_parser("verify-chain", help="check the attendance hash chain and the last server-confirmed head; "
                     "exit 1 naming the first bad row or the disagreeing head").set_defaults(func=run_verify_chain)


def _path(args):
    if args.db:
        return args.db
    from kiosk import app

    return app.load_settings(args).db_path


def run_migrate(args):
    database = db.open_db(_path(args), migrate=False)
    applied = db.apply_migrations(database)
    for version, name in applied:
        print(f"applied {version:3d} {name}")
    print("up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def run_status(args):
    # read-only: a missing file is an error (a typo'd --db never creates a database)
    database = db.open_db(_path(args), migrate=False, create=False, check=True)
    for version, name, applied_at in db.migration_status(database):
        when = datetime.fromtimestamp(applied_at).isoformat(timespec="seconds") if applied_at else "PENDING"
        print(f"migration {version:3d} {name:<30} {when}")
    if all(applied for _, _, applied in db.migration_status(database)):
        stats = outbox.stats(database)
        print(f"attendance events: {events.count(database)}")
        print(f"outbox pending: {stats['pending']}  acknowledged (kept): {stats['acknowledged_kept']}")
    return 0


def run_verify_chain(args):
    from kiosk.errors import ChainError, StorageError
    from kiosk.storage import chain_anchor

    path = _path(args)
    database = db.open_db(path, migrate=False, create=False, check=True)
    if not any(applied for _, _, applied in db.migration_status(database)):
        raise StorageError(f"{path}: holds no kiosk schema (is it the kiosk's database? `kiosk db status` shows it)")
    ok = True
    try:
        checked = events.verify_chain(database)
        print(f"chain ok: {checked} events (each links to the one before it)")
    except ChainError as e:
        print(f"chain BROKEN: {e}")
        checked, ok = None, False
    head = chain_anchor.confirmed_head(database)
    if head is None:
        print("server-confirmed head: none yet (nothing uploaded and confirmed); the events are only "
              "checked against each other, which does not show a rewritten chain")
        return 0 if ok else 1
    when = datetime.fromtimestamp(head["confirmed_at"]).isoformat(timespec="seconds")
    try:
        chain_anchor.check(database)
    except ChainError as e:
        print(f"server-confirmed head: seq {head['seq']} hash {head['hash'][:16]}... (confirmed {when}): "
              f"DISAGREES: {e}")
        return 1
    after = f"; {checked - head['seq']} later event(s) not yet confirmed" if checked is not None else ""
    print(f"server-confirmed head: seq {head['seq']} hash {head['hash'][:16]}... (confirmed {when}) "
          f"matches the local chain{after}")
    return 0 if ok else 1
