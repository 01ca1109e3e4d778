"""The ADMS adapter against an independent ADMS server: PyPI django-fingerprint-attendance 0.1.0 (MIT).

The server runs in its own process on 127.0.0.1 (tests/interop/fpa_server.py: the package's own
/iclock views plus /control views that act as the HR administrator through its service
functions) with a temporary SQLite database, device tokens required. Marker ``interop``: not in
``make test``; ``make test-all`` installs the ``interop`` extra and runs them.
"""

import json
import logging
import select
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from kiosk.clock import FakeClock
from kiosk.storage import db, events, people
from kiosk.sync import adms

pytestmark = pytest.mark.interop

SERVER_SCRIPT = Path(__file__).parent / "interop" / "fpa_server.py"
START_TIMEOUT_S = 60.0
# 2026-03-06 12:00 UTC: two days before New York's clocks go forward (2026-03-08 02:00 EST)
START = 1772798400.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        import fingerprint_attendance  # noqa: F401
    except ImportError:
        pytest.fail("django-fingerprint-attendance is missing: `pip install -e '.[dev,interop]'` "
                    "(make test-all does it)")
    path = tmp_path_factory.mktemp("fpa") / "fpa.sqlite3"
    process = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), str(path), "--token-required"],
                               stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            pytest.fail(f"the ADMS server did not start (said {line!r})")
        yield Server(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        process.terminate()
        process.wait(timeout=30)


class Server:
    """The HR administrator's side of the independent server, through its /control views."""

    def __init__(self, url):
        self.url = url

    def control(self, what, **params):
        response = requests.get(f"{self.url}/control/{what}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def add_device(self, serial, token, *, status="active", tz="UTC"):
        self.control("register", SN=serial, status=status)
        self.control("set", SN=serial, token=token, tz=tz)

    def punches(self, serial):
        return self.control("punches", SN=serial)["punches"]

    def commands(self, serial):
        return {c["type"]: c for c in self.control("commands", SN=serial)["commands"]}

    def queue(self, serial, kind, **payload):
        return self.control("queue", SN=serial, type=kind, payload=json.dumps(payload))["id"]


class LosesAnswers(requests.adapters.HTTPAdapter):
    """A network that delivers requests but loses the first answer to an ATTLOG upload; counts rows sent."""

    def __init__(self):
        super().__init__()
        self.rows_posted = 0
        self.lose_next_ok = False

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        if request.method == "POST" and "table=ATTLOG" in request.url:
            self.rows_posted += request.body.count(b"\n")
            if self.lose_next_ok and response.status_code == 200:
                self.lose_next_ok = False
                raise requests.ConnectionError("answer lost on the way back")
        return response


def make_adapter(db_path, server, clock, serial, token, **options):
    return adms.AdmsAdapter(db.open_db(db_path), url=server.url, serial=serial, clock=clock, token=token,
                            **options)


def record(database, clock, count, *, every_s=60.0, people_count=10):
    """``count`` punches of ``people_count`` people (ADMS PINs 1001...), ``every_s`` apart."""
    people.upsert_people(database, [{"person_id": f"emp-{n}", "adms_pin": str(1001 + n)}
                                    for n in range(people_count)])
    records = []
    for i in range(count):
        item = dict(person_id=f"emp-{i % people_count}", status_code=i % 6,
                    verify_mode=("face", "fingerprint", "pin")[i % 3])
        records += [e.as_record() for e in events.record_events(database, [item], clock=clock)]
        clock.advance(every_s)
    return records


def drain(adapter, clock, *, steps=50):
    """Step the adapter (advancing the fake clock by what it asks) until nothing is pending."""
    for _ in range(steps):
        wait_s = adapter.run_once()
        if adapter.status()["pending"] == 0 and adapter.status()["consecutive_errors"] == 0:
            return
        clock.advance(max(wait_s, 0.001))
    raise AssertionError(f"still pending after {steps} steps: {adapter.status()}")


def utc_seconds(record):
    moment = datetime.fromisoformat(record["wall_time"].replace("Z", "+00:00"))
    return float(int(moment.replace(tzinfo=timezone.utc).timestamp()))


def expected(records):
    verify = {"face": 15, "fingerprint": 1, "pin": 0}
    return sorted((str(1001 + int(r["person_id"].split("-")[1])), utc_seconds(r), verify[r["verify_mode"]],
                   str(r["status"])) for r in records)


def stored(server, serial):
    return sorted((p["pin"], p["utc"], p["verify"], p["state"]) for p in server.punches(serial))


def test_all_punches_stored_and_a_lost_ok_is_not_resent(server, tmp_path):
    clock = FakeClock(start=START)
    database = db.open_db(tmp_path / "k.db")
    server.add_device("KIOSK-IOP-1", "tok-1")
    records = record(database, clock, 450)
    network = LosesAnswers()
    with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-1", "tok-1", batch_rows=100) as adapter:
        adapter._session.mount("http://", network)
        network.lose_next_ok = True
        drain(adapter, clock)
    assert stored(server, "KIOSK-IOP-1") == expected(records)
    # the batch whose OK was lost was stored; the next handshake's ATTLOGStamp said so: not sent again
    assert network.rows_posted == 450


def test_device_awaiting_approval_loses_nothing(server, tmp_path):
    clock = FakeClock(start=START)
    database = db.open_db(tmp_path / "k.db")
    server.add_device("KIOSK-IOP-2", "tok-2", status="pending_approval")
    records = record(database, clock, 30)
    with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-2", "tok-2", token_via="param") as adapter:
        wait_s = adapter.run_once()  # handshake accepted, ATTLOG refused with 403
        assert "403" in adapter.status()["last_error"] and adapter.cursor == 0
        assert server.punches("KIOSK-IOP-2") == []
        server.control("approve", SN="KIOSK-IOP-2")
        clock.advance(wait_s)
        drain(adapter, clock)
    assert stored(server, "KIOSK-IOP-2") == expected(records)


def test_server_reset_gets_the_history_again(server, tmp_path):
    clock = FakeClock(start=START)
    database = db.open_db(tmp_path / "k.db")
    server.add_device("KIOSK-IOP-3", "tok-3")
    records = record(database, clock, 120)
    with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-3", "tok-3", token_via="header",
                      token_name="X-FPA-Device-Token") as adapter:
        drain(adapter, clock)
        adapter._request_handshake()  # the server echoes our stamp: it keeps stamps
        adapter.run_once()
        assert adapter.server_keeps_stamps
        server.control("lose_punches", SN="KIOSK-IOP-3")  # restored backup: punches gone, cursor 0, CHECK queued
        assert server.punches("KIOSK-IOP-3") == []
        for _ in range(4):
            clock.advance(adapter.run_once())
        drain(adapter, clock)
    assert stored(server, "KIOSK-IOP-3") == expected(records)
    assert server.commands("KIOSK-IOP-3")["check"]["status"] == "succeeded"


def test_daylight_saving_change_keeps_the_utc_instant(server, tmp_path):
    clock = FakeClock(start=START)
    database = db.open_db(tmp_path / "k.db")
    server.add_device("KIOSK-IOP-4", "tok-4", tz="America/New_York")
    before = record(database, clock, 16, every_s=3 * 3600.0)  # 48 h across 2026-03-08 02:00 EST -> EDT
    clock.advance(1783339200.0 - clock.time())  # 2026-07-06 12:00 UTC, summer time
    summer = record(database, clock, 4, every_s=3600.0)
    with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-4", "tok-4",
                      device_timezone="America/New_York") as adapter:
        # (the server's TimeZone is its offset for the real today, not the fake clock's July: not compared here)
        drain(adapter, clock)
    assert stored(server, "KIOSK-IOP-4") == expected(before + summer)
    local = {p["utc"]: p["local"] for p in server.punches("KIOSK-IOP-4")}
    assert local[1783339200.0].endswith("08:00:00")  # EDT (UTC-4)
    assert local[START].endswith("07:00:00")         # EST (UTC-5)


def test_commands_are_answered_once_and_not_run_again(server, tmp_path, caplog):
    clock = FakeClock(start=START)
    database = db.open_db(tmp_path / "k.db")
    server.add_device("KIOSK-IOP-5", "tok-secret-5")
    records = record(database, clock, 24, every_s=3600.0)
    restarts = []
    caplog.set_level(logging.DEBUG)
    options = dict(request_restart=lambda: restarts.append(clock.time()))
    with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-5", "tok-secret-5", **options) as adapter:
        drain(adapter, clock)
        for kind in ("info", "check", "upload_logs", "set_time", "reboot", "clear_logs"):
            server.queue("KIOSK-IOP-5", kind)
        server.queue("KIOSK-IOP-5", "query_attlog", start="2026-03-06 12:00:00", end="2026-03-06 23:59:59")
        server.queue("KIOSK-IOP-5", "raw", command="Shell rm -rf /")
        clock.advance(adapter.run_once())
    # after a restart (a new adapter on the same database) the server's retries get the same answers
    for _ in range(3):
        with make_adapter(tmp_path / "k.db", server, clock, "KIOSK-IOP-5", "tok-secret-5", **options) as adapter:
            clock.advance(adapter.run_once())
    done = server.commands("KIOSK-IOP-5")
    for kind in ("info", "check", "upload_logs", "set_time", "reboot", "query_attlog"):
        assert (done[kind]["status"], done[kind]["attempts"], done[kind]["return_code"]) == ("succeeded", 1, 0), kind
    # refused: Return=-1; this server retries negative answers COMMAND_MAX_RETRIES times, each
    # answered from the stored answer, then gives up
    for kind in ("clear_logs", "raw"):
        assert (done[kind]["status"], done[kind]["attempts"], done[kind]["return_code"]) == ("failed", 3, -1), kind
    assert events.count(database) == 24  # CLEAR LOG deleted nothing
    assert len(restarts) == 1            # REBOOT restarted the service once, not once per restart
    assert "FWVersion" in done["info"]["response"]
    assert "Count=" in done["query_attlog"]["response"]
    assert adapter.status()["clock_set_request"]["value"]
    assert stored(server, "KIOSK-IOP-5") == expected(records)
    assert "tok-secret-5" not in caplog.text
