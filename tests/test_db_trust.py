"""The database is never silently replaced or trusted when broken; files are private (issue 12 items 4, 7)."""

import hashlib
import logging
import os
import stat
import subprocess
import sys

import pytest

from kiosk import cli
from kiosk.clock import FakeClock
from kiosk.errors import CorruptDatabaseError, StorageError
from kiosk.storage import db, events, people


@pytest.fixture(autouse=True)
def _no_stale_log_handler():
    # cli.main points the root handler at this test's captured stderr; drop it afterwards
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def make_db(path, n=300):
    database = db.open_db(path)
    people.upsert_people(database, [{"person_id": f"p{i}"} for i in range(n)])
    events.record_events(database, [dict(person_id=f"p{i}", status_code=0, verify_mode="pin") for i in range(n)],
                         clock=FakeClock())
    database.close()
    return path


def corrupt(path):
    """Overwrite the middle pages (attendance rows and index b-trees) with garbage, as a failing card would."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xa5" * min(4096 * 4, size - 4096 * 3))


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("verb", ["status", "verify-chain"])
def test_read_only_commands_never_create_a_database(tmp_path, verb, capsys):
    typo = tmp_path / "kiosk.dbb"
    assert cli.main(["--config", "/dev/null", "db", "--db", str(typo), verb]) == 2
    assert not typo.exists() and not list(tmp_path.iterdir())
    assert "no database there" in capsys.readouterr().err


def test_zero_byte_database_is_refused_not_replaced(tmp_path, capsys):
    path = tmp_path / "kiosk.db"
    path.touch()
    with pytest.raises(CorruptDatabaseError, match="empty"):
        db.open_db(path, check=True)
    assert cli.main(["--config", "/dev/null", "db", "--db", str(path), "verify-chain"]) == 2
    err = capsys.readouterr().err
    assert "CorruptDatabaseError" in err and "empty (0 bytes" in err and "Traceback" not in err
    assert path.stat().st_size == 0  # still the evidence, not a fresh database


def test_corrupt_database_detected_by_quick_check_and_verify_chain(tmp_path, capsys):
    path = make_db(tmp_path / "kiosk.db")
    db.open_db(path, check=True).close()  # healthy first
    corrupt(path)
    with pytest.raises(CorruptDatabaseError, match="damaged"):
        db.open_db(path, check=True)
    for verb in ("verify-chain", "status"):
        assert cli.main(["--config", "/dev/null", "db", "--db", str(path), verb]) == 2
        err = capsys.readouterr().err
        assert "damaged" in err and ".broken" in err and "Traceback" not in err


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "kiosk.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(CorruptDatabaseError):
        db.open_db(path, check=True)


def run_kiosk(tmp_path):
    env = dict(os.environ, KIOSK_STORAGE__DATA_DIR=str(tmp_path / "data"),
               KIOSK_SECURITY__DATA_KEY_FILE=str(tmp_path / "data.key"),
               KIOSK_SECURITY__DEVICE_KEY_FILE=str(tmp_path / "device.key"))
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", "/dev/null", "run", "--backend", "sim"],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("damage", ["empty", "corrupt"])
def test_kiosk_run_refuses_a_broken_database_and_says_how_to_recover(tmp_path, damage):
    path = tmp_path / "data" / "kiosk.db"
    path.parent.mkdir()
    if damage == "empty":
        path.touch()
    else:
        make_db(path)
        corrupt(path)
    before = sha(path)
    done = run_kiosk(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "CorruptDatabaseError" in done.stderr and "mv " in done.stderr and "Traceback" not in done.stderr
    assert sha(path) == before  # never started over on top of it


def test_new_database_and_its_wal_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        database = db.open_db(tmp_path / "kiosk.db")
        people.upsert_person(database, {"person_id": "p"})
        events.record_event(database, person_id="p", status_code=0, verify_mode="pin", clock=FakeClock())
        for name in ("kiosk.db", "kiosk.db-wal", "kiosk.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        database.close()
    finally:
        os.umask(old)
    assert not (tmp_path / "kiosk.db.new").exists()


def test_missing_folder_for_read_only_open_is_an_error(tmp_path):
    with pytest.raises(StorageError, match="never creates"):
        db.open_db(tmp_path / "nowhere" / "kiosk.db", create=False)
    assert not (tmp_path / "nowhere").exists()


def doctor_settings(tmp_path, **sync):
    from kiosk import config

    return config.build([("t", {"storage": {"data_dir": str(tmp_path / "data")},
                                "security": {"data_key_file": str(tmp_path / "data.key"),
                                             "device_key_file": str(tmp_path / "device.key")},
                                "sync": sync})])


def doctor_checks(settings):
    from kiosk import doctor

    report = doctor.run_checks(settings, only=["database", "keys", "provisioning"])
    return report, {c.name: c for c in report.checks}


def test_doctor_names_a_corrupt_database_and_how_to_recover(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    path = make_db(tmp_path / "data" / "kiosk.db")
    settings = doctor_settings(tmp_path)
    report, checks = doctor_checks(settings)
    assert checks["database"].status == "pass" and "integrity ok, 300 events" in checks["database"].detail
    corrupt(path)
    report, checks = doctor_checks(settings)
    assert not report.ok and checks["database"].status == "fail"
    assert "damaged" in checks["database"].detail and ".broken" in checks["database"].remedy
    toml = tmp_path / "kiosk.toml"
    toml.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    assert cli.main(["--config", str(toml), "doctor", "--only", "database"]) == 1
    assert "damaged" in capsys.readouterr().out


def test_doctor_checks_keys_and_provisioning(tmp_path):
    from kiosk.storage.seal import DataKey
    from kiosk.sync.keys import load_or_create_device_key

    (tmp_path / "data").mkdir()
    _, checks = doctor_checks(doctor_settings(tmp_path))
    assert checks["provisioning"].status == "warn" and "not provisioned" in checks["provisioning"].detail
    assert checks["keys"].status == "warn"
    assert checks["database"].status == "warn" and "no database yet" in checks["database"].detail

    provisioned = doctor_settings(tmp_path, device_id="kiosk-1", server_url="https://server.example")
    _, checks = doctor_checks(provisioned)
    assert checks["keys"].status == "fail" and "not found" in checks["keys"].detail  # provisioned, key gone
    DataKey.create(tmp_path / "data.key")
    load_or_create_device_key(tmp_path / "device.key")
    _, checks = doctor_checks(provisioned)
    assert checks["keys"].status == "pass" and checks["provisioning"].status == "pass"
    (tmp_path / "data.key").chmod(0o644)
    _, checks = doctor_checks(provisioned)
    assert checks["keys"].status == "fail" and "chmod 600" in checks["keys"].detail
    (tmp_path / "data.key").chmod(0o600)
    (tmp_path / "device.key").chmod(0o640)
    _, checks = doctor_checks(provisioned)
    assert checks["keys"].status == "fail" and "device key" in checks["keys"].detail


def test_doctor_fails_when_the_data_folder_is_read_only(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(data)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        _, checks = doctor_checks(doctor_settings(tmp_path))
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
    assert checks["database"].status == "fail" and "not writable" in checks["database"].detail
