"""Inside the power-cut guest after a boot: what the events database holds, and is it sound.

    python3 guest_check.py DB PREFIX

Prints PREFIX lines: ``stored SEQ UUID`` for every event, then ``check integrity=... chain=...
events=N`` (integrity: PRAGMA integrity_check; chain: kiosk.storage.events.verify_chain). A
database that does not exist yet (first boot) is reported as ``check none``.
"""

import os
import sys

from kiosk.errors import KioskError
from kiosk.storage import db, events


def main(path, prefix):
    if not os.path.exists(path):
        print(f"{prefix}check none", flush=True)
        return
    database = db.open_db(path)
    integrity = ",".join(row[0] for row in database.execute("PRAGMA integrity_check").fetchall())
    for row in database.query("SELECT seq, uuid FROM attendance_events ORDER BY seq"):
        sys.stdout.write(f"{prefix}stored {row['seq']} {row['uuid']}\n")
    try:
        chain = f"ok:{events.verify_chain(database)}"
    except KioskError as e:
        chain = "broken:" + str(e).replace(" ", "_")
    print(f"{prefix}check integrity={integrity.replace(' ', '_')} chain={chain} events={events.count(database)}",
          flush=True)
    database.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
