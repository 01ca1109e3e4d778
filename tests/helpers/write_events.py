"""Child process for the crash test: write events one by one, print each id once committed."""

import sys

from kiosk.clock import SystemClock
from kiosk.storage import db, events, people


def main(path, count):
    database = db.open_db(path)
    clock = SystemClock()
    people.upsert_people(database, [{"person_id": f"emp{n}"} for n in range(50)])
    for n in range(count):
        event = events.record_event(database, person_id=f"emp{n % 50}", status_code=n % 6,
                                    verify_mode="face", score=0.9, clock=clock)
        # printed only after record_event returned, i.e. after COMMIT with synchronous=FULL
        sys.stdout.write(f"{event.seq} {event.id}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
