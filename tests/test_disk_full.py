"""Disk full, measured on a small tmpfs mounted by the test (issue 12 item 5).

Enrolment is refused first, attendance goes on while there is room for events, a truly full
disk is a DiskFullError (never a raw sqlite3 error), nothing committed is lost, sync does not
re-send its backlog every cycle while full, and space freed is usable again.
"""

import os
import sqlite3
import subprocess
import uuid

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import DiskFullError
from kiosk.storage import db, events, outbox, people, sync_state

from sync_helpers import make_device, sync_settings

FS_MB = 8


@pytest.fixture
def small_fs(tmp_path):
    """A fresh FS_MB MiB tmpfs (needs root and mount rights; skipped with the reason otherwise)."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_MB}m,mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill_until(folder, free_mib):
    """Write a filler file until about ``free_mib`` MiB stay free (0 = until the disk refuses)."""
    path = folder / f"filler-{uuid.uuid4().hex[:6]}"
    chunk = b"\0" * 65536
    with open(path, "wb") as f:
        try:
            while db.free_mb(folder) > free_mib:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    return path


def record(database, clock, n=1):
    people.upsert_people(database, [{"person_id": f"e{i}"} for i in range(n)])
    items = [dict(person_id=f"e{i}", status_code=0, verify_mode="face", score=0.9) for i in range(n)]
    return events.record_events(database, items, clock=clock)


def test_floors_then_disk_full_then_space_freed(small_fs, capsys):
    storage = config.build([("t", {"storage": {"min_free_mb_enrol": 4, "min_free_mb_attendance": 2}})]).storage
    clock = FakeClock(1_700_000_000.0)
    database = db.open_db(small_fs / "kiosk.db")
    record(database, clock, 50)

    filler1 = fill_until(small_fs, 3.0)  # below the enrolment floor, above the attendance floor
    with pytest.raises(DiskFullError, match="enrolment needs 4 MB"):
        db.ensure_room_for_enrolment(small_fs, storage)
    db.ensure_room_for_attendance(small_fs, storage)  # attendance still has room
    record(database, clock, 50)

    filler2 = fill_until(small_fs, 1.0)
    with pytest.raises(DiskFullError, match="attendance needs 2 MB"):
        db.ensure_room_for_attendance(small_fs, storage)

    # past the floors (a writer that ignores them): events go on until the disk itself runs out
    committed = events.count(database)
    extra = 0
    with pytest.raises(DiskFullError, match="disk is full") as caught:
        for _ in range(100_000):
            record(database, clock, 10)
            extra += 10
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)  # SQLITE_FULL, mapped
    committed += extra
    assert events.count(database) == committed
    assert outbox.stats(database)["pending"] == committed  # unsynced records are never deleted
    assert events.verify_chain(database) == committed

    filler1.unlink()
    filler2.unlink()
    db.reclaim_wal(database)
    record(database, clock, 20)  # space freed is space usable
    assert events.count(database) == committed + 20
    database.close()
    reopened = db.open_db(small_fs / "kiosk.db", check=True)
    assert events.verify_chain(reopened) == committed + 20
    with capsys.disabled():
        print(f"\n[disk-full] {FS_MB} MiB tmpfs: with 1 MiB left, {extra} more events committed before "
              f"DiskFullError ({committed} in all); 0 lost, chain intact; recording resumed after freeing space")


def test_sync_while_full_does_not_resend_the_backlog(small_fs, tmp_path):
    from kiosk_sim.server import ServerSimulator

    with ServerSimulator(workdir=tmp_path / "server") as server:
        device = make_device(small_fs, server, settings=sync_settings(batch_size=100, max_batch_size=100,
                                                                      min_backoff_s=1.0))
        device.record(1000)
        filler = fill_until(small_fs, 0)
        sent_before = []
        for _ in range(5):
            # each cycle: two batches stored by the server, the first's answer not recordable and the
            # second's (sent while the first's was being written) kept in memory with it
            device.worker.run_once()
            device.clock.advance(60)
            sent_before.append(server.record_count())
        status = server.stats()
        assert status["duplicate_results"] == 0, "records the server already holds were sent again"
        assert sent_before == [200, 400, 600, 800, 1000]
        assert len(device.worker.uploader.unrecorded) == 1000
        assert outbox.stats(device.database)["pending"] == 1000  # nothing marked, nothing lost

        filler.unlink()
        device.drain()
        assert server.record_count() == 1000
        assert server.stats()["duplicate_results"] == 0
        assert sync_state.pending_stats(device.database)["pending"] == 0
        assert not device.worker.uploader.unrecorded
