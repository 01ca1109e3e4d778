"""Event writer of the crash tests: write events one by one, print each id once committed.

    python write_events.py DB COUNT [PREFIX]

Used as a killed child process (tests/test_storage_crash.py) and inside the power-cut guest
(image-build/power-cut, tests/test_power_cut_slow.py), where PREFIX marks its console lines.
"""

import sys

from kiosk.clock import SystemClock
from kiosk.storage import db, events, people


def main(path, count, prefix=""):
    database = db.open_db(path)
    clock = SystemClock()
    people.upsert_people(database, [{"person_id": f"emp{n}"} for n in range(50)])
    for n in range(count):
        event = events.record_event(database, person_id=f"emp{n % 50}", status_code=n % 6,
                                    verify_mode="face", score=0.9, clock=clock)
        # printed only after record_event returned, i.e. after COMMIT with synchronous=FULL
        sys.stdout.write(f"{prefix}{event.seq} {event.id}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
