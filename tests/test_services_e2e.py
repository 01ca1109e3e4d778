"""Citizen services end to end: the flows, their real ports, the signed sync client and the server simulator.

One fake clock drives the flow, the kiosk's client and worker, and the server simulator on
127.0.0.1 (codes expire, resend delays and cooldowns pass without sleeping). For each service:
success, a wrong code, an expired code, the resend delay, the cooldown after 3 wrong codes, the
server going away after the code (the request is queued, survives a restart, is delivered when the
server returns and deleted once acknowledged), and inactivity in the middle (all wiped).
"""

import logging
import queue
import random
import time

import numpy as np
import pytest
from kiosk_sim.r30x import start_simulator
from kiosk_sim.r30x_fingers import FingerCatalog
from kiosk_sim.server import ServerSimulator

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.drivers.fingerprint_worker import SensorWorker
from kiosk.flows.services.account import AccountFlow
from kiosk.flows.services.activation import ActivationFlow
from kiosk.flows.services.fingerprints import FingerprintsFlow
from kiosk.flows.services.mobile_change import MobileChangeFlow
from kiosk.flows.services.screens import keys_of
from kiosk.host import SensorPoller
from kiosk.service_ports import ServicePorts
from kiosk.storage import db, outbox, sealbox
from kiosk.sync import keys, registration
from kiosk.sync.client import SyncClient
from kiosk.sync.worker import SyncWorker

from flow_fakes import Faces, FirstChoice
from sync_helpers import sync_settings
from sensor_enrol import sensor_template

CITIZEN = "1000000008"
OTHER = "2000000006"
PASSWORD = "Kiosk#Pass1"
INACTIVITY_S = 400.0   # longer than a code's life: the expiry is what these tests reach first
SERVICES = {"activation": ActivationFlow, "account": AccountFlow, "fingerprints": FingerprintsFlow,
            "mobile_change": MobileChangeFlow}


class Screen:
    """The touchscreen's stand-in: keeps what was shown, checked against the screen contract."""

    def __init__(self):
        self.shown = []

    def show(self, screen, **data):
        assert set(data) == keys_of(screen), screen
        self.shown.append((screen, data))

    @property
    def current(self):
        return self.shown[-1]


class Kiosk:
    """One registered kiosk on the fake clock: database, client, worker, and a flow factory."""

    def __init__(self, tmp_path, server, clock):
        self.tmp_path, self.server, self.clock = tmp_path, server, clock
        self.key_path = tmp_path / "device.key"
        key = keys.load_or_create_device_key(self.key_path)
        self.reg = registration.register(server_url=server.url, token=server.issue_enrolment_token(), device_key=key,
                                         clock=clock)
        self.db_path = tmp_path / "kiosk.db"
        self.settings = config.build([("test", {"ui": {"inactivity_timeout_s": INACTIVITY_S},
                                                "face": {"liveness": "challenge", "challenge": "turn"},
                                                "storage": {"data_dir": str(tmp_path), "min_free_mb_enrol": 0}})])
        self.faces = Faces([])
        self.screen = Screen()
        self.open()

    def open(self):
        self.database = db.open_db(self.db_path)
        self.client = SyncClient(server_url=self.server.url, server_key=self.reg.server_signing_key,
                                 device_id=self.reg.device_id, device_key=keys.load_device_key(self.key_path),
                                 timeout_s=2.0, clock=self.clock)
        # events are kept 30 days after upload; service requests must still go at once
        self.worker = SyncWorker(self.database, self.client, settings=sync_settings(retention_days=30.0), clock=self.clock,
                                 rng=random.Random(1))
        self.ports = ServicePorts(settings=self.settings, database=self.database, clock=self.clock,
                                  screen=self.screen, client=self.client,
                                  server_public_key=self.reg.server_public_key)

    def restart(self):
        self.client.close()
        self.database.conn.close()
        self.open()

    def flow(self, service):
        return SERVICES[service](ports=self.ports, clock=self.clock, settings=self.settings, rng=FirstChoice())

    def pending(self):
        return outbox.pending(self.database, kinds=["service_request"])


@pytest.fixture
def clock():
    return FakeClock(time.time())


@pytest.fixture
def server(tmp_path, clock):
    with ServerSimulator(workdir=tmp_path / "server", clock=clock) as server:
        yield server


@pytest.fixture
def kiosk(tmp_path, server, clock):
    kiosk = Kiosk(tmp_path, server, clock)
    yield kiosk
    kiosk.client.close()


def face_frames(kiosk, name="carol", embedding=None):
    frames = kiosk.faces.turn_left(name)
    if embedding is not None:
        frames = [f.__class__(**{**f.__dict__, "embedding": embedding}) for f in frames]
    return frames


def to_code(kiosk, flow, service, *, face=None):
    """From the first screen to the code screen (a code was sent)."""
    if service == "mobile_change":
        kiosk.server.enrol_citizen(CITIZEN, face=kiosk.faces.vector("carol"))
    flow.handle("id_entered", national_id=CITIZEN)
    if service == "account":
        flow.handle("mobile_entered", mobile="0551234567")
        flow.handle("email_entered", email="carol@example.org")
        flow.handle("credentials_entered", username="CarolCole77", password=PASSWORD, confirmation=PASSWORD)
        flow.handle("language_chosen", language="ar")
    if service == "mobile_change":
        flow.handle("consent_given")
        for frame in face_frames(kiosk, embedding=face):
            flow.handle("face_seen", frame=frame)
        flow.handle("mobile_entered", mobile="0559876543")
    assert flow.state == "entering_code", kiosk.screen.current


def after_code(kiosk, flow, service):
    """From the code accepted to the request submitted."""
    if service in ("activation", "fingerprints"):
        flow.handle("consent_given")
    if service == "activation":
        for frame in face_frames(kiosk):
            flow.handle("face_seen", frame=frame)
    for n in range({"activation": 2, "fingerprints": 4}.get(service, 0)):
        flow.handle("finger_enrolled", template=bytes([0x40 + n]) * 512)
    if service == "activation":
        flow.handle("pin_entered", pin="902468")
        flow.handle("pin_entered", pin="902468")
    flow.handle("terms_accepted" if service == "account" else "confirmed")
    assert flow.state == "done", kiosk.screen.current


def type_code(flow, code):
    flow.handle("code_entered", code=code)


def wrong(code):
    return f"{(int(code) + 1) % 10 ** 6:06d}"


# --- success, per service -------------------------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_success_reaches_the_server_opened_and_applied(kiosk, server, service):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    assert server.sms_messages()[-1].split(" to ")[1].startswith("+9665")
    type_code(flow, server.last_code())
    after_code(kiosk, flow, service)
    reference = kiosk.screen.current[1]["reference"]
    assert len(kiosk.pending()) == 1
    kiosk.worker.run_once()
    assert kiosk.pending() == [] and outbox.stats(kiosk.database)["acknowledged_kept"] == 0
    [done] = server.service_history(CITIZEN)
    assert done["service"] == service and done["reference"] == reference
    citizen = server.citizen(CITIZEN)
    if service == "activation":
        assert done["detail"]["captured"] == ["face", "finger:left_index", "finger:right_index"]
        assert citizen["pin_hash"] and citizen["fingers"] == 2 and citizen["activated_at"]
    elif service == "fingerprints":
        assert citizen["fingers"] == 4 and len(done["detail"]["captured"]) == 4
    elif service == "account":
        assert citizen["username"] == "CarolCole77" and citizen["phone"] == "+966551234567"
    else:
        assert citizen["phone"] == "+966559876543"


# --- codes: wrong, expired, resend delay, cooldown -------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_a_wrong_code_then_the_right_one(kiosk, server, service):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    code = server.last_code()
    type_code(flow, wrong(code))
    screen, data = kiosk.screen.current
    assert flow.state == "entering_code" and data["error"] == "wrong" and data["attempts_left"] == 2
    type_code(flow, code)
    after_code(kiosk, flow, service)


@pytest.mark.parametrize("service", SERVICES)
def test_an_expired_code_is_refused_and_a_new_one_works(kiosk, server, service, clock):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    old = server.last_code()
    clock.advance(301.0)
    flow.tick()
    type_code(flow, old)
    assert flow.state == "entering_code" and kiosk.screen.current[1]["error"] == "expired"
    # the server refuses it too, whatever a kiosk would do
    assert kiosk.ports.verify_code(flow.code.code_id, old).outcome == "expired"
    flow.handle("resend_requested")
    assert server.last_code() is not None and len(server.sms_messages()) == 2
    type_code(flow, server.last_code())
    after_code(kiosk, flow, service)


@pytest.mark.parametrize("service", SERVICES)
def test_resend_waits_for_the_delay_on_the_kiosk_and_the_server(kiosk, server, service, clock):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    clock.advance(30.0)
    flow.handle("resend_requested")
    assert kiosk.screen.current[1]["error"] == "resend_too_soon" and len(server.sms_messages()) == 1
    refused = kiosk.ports.request_code(service="activation", national_id=CITIZEN)
    assert refused.outcome == "resend_too_soon" and 29.0 <= refused.retry_after_s <= 30.0
    clock.advance(30.0)
    flow.handle("resend_requested")
    assert len(server.sms_messages()) == 2 and kiosk.screen.current[1]["error"] is None
    type_code(flow, server.last_code())
    after_code(kiosk, flow, service)


@pytest.mark.parametrize("service", SERVICES)
def test_three_wrong_codes_lock_the_id_then_the_cooldown_ends(kiosk, server, service, clock):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    code = server.last_code()
    for _ in range(3):
        type_code(flow, wrong(code))
    screen, data = kiosk.screen.current
    assert flow.state == "code_cooldown" and screen == "service_code_cooldown" and data["retry_in_s"] == 300.0
    type_code(flow, code)   # the right code, too late: the ID is locked on the server
    assert kiosk.ports.verify_code(flow.code.code_id, code).outcome == "locked"
    assert kiosk.ports.request_code(service="activation", national_id=CITIZEN).outcome == "locked"
    clock.advance(300.0)
    flow.tick()
    assert flow.state == "entering_code" and kiosk.screen.current[1]["error"] == "cooldown_over"
    flow.handle("resend_requested")
    type_code(flow, server.last_code())
    after_code(kiosk, flow, service)


# --- the server away after the code; a restart; inactivity ------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_server_offline_mid_flow_the_request_is_queued_survives_a_restart_then_delivered(kiosk, server, service):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    type_code(flow, server.last_code())
    server.set_fault("outage")
    after_code(kiosk, flow, service)
    assert kiosk.screen.current[1]["queued"] is True
    kiosk.worker.run_once()
    assert len(kiosk.pending()) == 1 and server.service_history() == []
    kiosk.restart()
    assert len(kiosk.pending()) == 1
    server.clear_fault()
    kiosk.worker.run_once()
    assert kiosk.pending() == [] and [h["service"] for h in server.service_history(CITIZEN)] == [service]


@pytest.mark.parametrize("service", SERVICES)
def test_server_offline_when_the_code_is_asked_says_so_and_sends_nothing(kiosk, server, service):
    flow = kiosk.flow(service)
    if service == "mobile_change":
        server.enrol_citizen(CITIZEN, face=kiosk.faces.vector("carol"))
    server.set_fault("outage")
    flow.handle("id_entered", national_id=CITIZEN)
    if service == "account":
        flow.handle("mobile_entered", mobile="0551234567")
        flow.handle("email_entered", email="carol@example.org")
        flow.handle("credentials_entered", username="CarolCole77", password=PASSWORD, confirmation=PASSWORD)
        flow.handle("language_chosen", language="ar")
    if service == "mobile_change":
        flow.handle("consent_given")
        for frame in face_frames(kiosk):
            flow.handle("face_seen", frame=frame)
    screen, data = kiosk.screen.current
    assert flow.state == "offline" and screen == "service_offline"
    assert data["at"] == ("verify" if service == "mobile_change" else "code")
    assert kiosk.pending() == [] and server.sms_messages() == []


@pytest.mark.parametrize("service", SERVICES)
def test_inactivity_mid_flow_wipes_everything(kiosk, server, service, clock):
    flow = kiosk.flow(service)
    to_code(kiosk, flow, service)
    type_code(flow, server.last_code())
    if service in ("activation", "fingerprints"):
        flow.handle("consent_given")
        flow.handle("finger_enrolled", template=b"\x41" * 512) if service == "fingerprints" else \
            [flow.handle("face_seen", frame=f) for f in face_frames(kiosk)]
        assert flow.sealed
    clock.advance(INACTIVITY_S)
    flow.tick()
    assert flow.state == "finished"
    assert (flow.national_id, flow.sealed, flow.fields, flow.proofs, flow.code) == (None, {}, {}, {}, None)
    assert kiosk.pending() == []


# --- limits the server enforces ------------------------------------------------------------------------

def test_the_server_refuses_the_n_plus_1th_code_and_the_kiosk_says_so(tmp_path, clock):
    with ServerSimulator(workdir=tmp_path / "server", clock=clock,
                         service_limits={"codes_per_id_per_hour": 3}) as server:
        kiosk = Kiosk(tmp_path, server, clock)
        flow = kiosk.flow("activation")
        flow.handle("id_entered", national_id=CITIZEN)
        for _ in range(2):
            clock.advance(60.0)
            flow.handle("resend_requested")
        assert len(server.sms_messages()) == 3
        clock.advance(60.0)
        flow.handle("resend_requested")
        screen, data = kiosk.screen.current
        assert flow.state == "refused" and data["reason"] == "too_many_codes"
        assert 3300.0 < data["retry_in_s"] <= 3480.0 and len(server.sms_messages()) == 3
        # a burst (150 requests at once, spaced past the resend delay or not) never gets more than N codes
        for _ in range(150):
            kiosk.ports.request_code(service="activation", national_id=CITIZEN)
        assert len(server.sms_messages()) == 3
        clock.advance(3600.0)
        assert kiosk.ports.request_code(service="activation", national_id=CITIZEN).outcome == "sent"
        kiosk.client.close()


def test_the_server_limits_codes_per_device(tmp_path, clock):
    with ServerSimulator(workdir=tmp_path / "server", clock=clock,
                         service_limits={"codes_per_device_per_hour": 2}) as server:
        kiosk = Kiosk(tmp_path, server, clock)
        answers = [kiosk.ports.request_code(service="activation", national_id=n).outcome
                   for n in (CITIZEN, OTHER, "1000000016")]
        assert answers == ["sent", "sent", "too_many_codes"]
        kiosk.client.close()


def test_mobile_change_code_needs_the_servers_face_token(kiosk, server):
    answer = kiosk.ports.request_code(service="mobile_change", national_id=CITIZEN, phone="0559876543",
                                      proof="forged")
    assert answer.outcome == "not_verified" and server.sms_messages() == []


# --- mobile change: a real comparison on the server ----------------------------------------------------

@pytest.fixture(scope="module")
def real_embeddings(lfw):
    """Embeddings by the kiosk's face pipeline: two different photos of one person, one of another."""
    import cv2

    from kiosk.models.pipeline import FacePipeline

    pipeline = FacePipeline.from_settings(config.build([]).face, threads=1)
    people = sorted(p for p in lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 2)[:2]

    def embed(path):
        faces = pipeline.process(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        assert len(faces) == 1, path
        return faces[0].embedding

    first, second = (sorted(p.glob("*.jpg")) for p in people)
    return {"enrolled": embed(first[0]), "same_person": embed(first[1]), "other_person": embed(second[0])}


def test_mobile_change_with_the_right_persons_face_succeeds(kiosk, server, real_embeddings):
    server.enrol_citizen(CITIZEN, face=real_embeddings["enrolled"])
    flow = kiosk.flow("mobile_change")
    flow.handle("id_entered", national_id=CITIZEN)
    flow.handle("consent_given")
    for frame in face_frames(kiosk, embedding=real_embeddings["same_person"]):
        flow.handle("face_seen", frame=frame)
    assert flow.state == "entering_mobile"
    flow.handle("mobile_entered", mobile="0559876543")
    type_code(flow, server.last_code())
    flow.handle("confirmed")
    kiosk.worker.run_once()
    assert server.citizen(CITIZEN)["phone"] == "+966559876543"


def test_mobile_change_with_another_persons_face_is_refused(kiosk, server, real_embeddings):
    server.enrol_citizen(CITIZEN, face=real_embeddings["enrolled"])
    flow = kiosk.flow("mobile_change")
    flow.handle("id_entered", national_id=CITIZEN)
    flow.handle("consent_given")
    for attempt in range(3):
        for frame in face_frames(kiosk, "mallory", embedding=real_embeddings["other_person"]):
            flow.handle("face_seen", frame=frame)
        if attempt < 2:
            assert flow.state == "verify_failed"
            flow.handle("retry_requested")
            flow.handle("face_seen", frame=kiosk.faces.frame(None, dt=2.0))
    screen, data = kiosk.screen.current
    assert flow.state == "refused" and data["reason"] == "not_verified"
    assert server.sms_messages() == [] and kiosk.pending() == []
    # three wrong faces lock the ID like three wrong codes
    assert kiosk.ports.request_code(service="activation", national_id=CITIZEN).outcome == "locked"


# --- mobile change by a finger: the sensor simulator, the real driver, bozorth3 on the server -------------

CITIZEN_FINGER = "FVC2002_DB1_B/104"
OTHER_FINGER = "FVC2002_DB1_B/108"


@pytest.fixture
def sensor_rig(datasets, kiosk):
    """The sensor simulator behind the real driver and the poller; the kiosk's ports with that poller."""
    sim = start_simulator(speed=0, capacity=10, fingers_dir=datasets / "fingers")
    sensor = FingerprintSensor(port=sim.port, timeout_s=2.0)
    sensor.open()
    worker = SensorWorker(sensor)
    posted = queue.Queue()
    poller = SensorPoller(worker, lambda event, **data: posted.put((event, data)), capture_timeout_s=0.5,
                          retry_s=0.1).start()
    ports = ServicePorts(settings=kiosk.settings, database=kiosk.database, clock=kiosk.clock, screen=kiosk.screen,
                         client=kiosk.client, server_public_key=kiosk.reg.server_public_key, poller=poller)
    yield sim, sensor, ports, posted
    poller.close()
    worker.close()
    sim.close()


def finger_on_the_glass(flow, sim, posted, identity, impression):
    """Choose the finger, put one on the sensor, hand the poller's answer to the flow."""
    flow.handle("method_chosen", method="finger")
    assert flow.state == "checking_finger"
    sim.place_finger(identity, impression)
    event, data = posted.get(timeout=30)   # a bound on a thread's answer, not a wait for time to pass
    assert event == "finger_sampled", (event, data)
    sim.lift_finger()
    flow.handle(event, **data)
    return data["sample"]


def test_mobile_change_with_the_right_persons_other_finger_impression_succeeds(kiosk, server, sensor_rig, caplog):
    caplog.set_level(logging.INFO)
    sim, sensor, ports, posted = sensor_rig
    server.enrol_citizen(CITIZEN, fingers=[sensor_template(sim, sensor, CITIZEN_FINGER)])
    flow = MobileChangeFlow(ports=ports, clock=kiosk.clock, settings=kiosk.settings, rng=FirstChoice())
    flow.handle("id_entered", national_id=CITIZEN)
    flow.handle("consent_given")
    assert flow.state == "choosing_method" and kiosk.screen.current[1]["methods"] == ["face", "finger"]
    sample = finger_on_the_glass(flow, sim, posted, CITIZEN_FINGER, 5)
    assert flow.state == "entering_mobile", kiosk.screen.current
    flow.handle("mobile_entered", mobile="0559876543")
    type_code(flow, server.last_code())
    flow.handle("confirmed")
    assert sample not in kiosk.db_path.read_bytes()   # sealed at capture: never on disk in clear
    kiosk.worker.run_once()
    assert server.citizen(CITIZEN)["phone"] == "+966559876543"
    assert "verified for mobile change" in caplog.text and sample.hex()[:32] not in caplog.text


def test_mobile_change_with_another_finger_is_refused_then_locked(kiosk, server, sensor_rig, datasets):
    sim, sensor, ports, posted = sensor_rig
    catalog = FingerCatalog(datasets / "fingers")
    server.enrol_citizen(CITIZEN, fingers=[catalog.image(CITIZEN_FINGER, 1), catalog.image(CITIZEN_FINGER, 2)])
    flow = MobileChangeFlow(ports=ports, clock=kiosk.clock, settings=kiosk.settings, rng=FirstChoice())
    flow.handle("id_entered", national_id=CITIZEN)
    flow.handle("consent_given")
    for attempt in range(3):
        finger_on_the_glass(flow, sim, posted, OTHER_FINGER, 1 + attempt)
        if attempt < 2:
            assert flow.state == "verify_failed" and kiosk.screen.current[1]["attempts_left"] == 2 - attempt
    screen, data = kiosk.screen.current
    assert flow.state == "refused" and data["reason"] == "not_verified"
    assert server.sms_messages() == [] and kiosk.pending() == []
    # three wrong fingers lock the ID like three wrong codes or faces: even the right finger is refused now
    assert kiosk.ports.request_code(service="activation", national_id=CITIZEN).outcome == "locked"
    flow = MobileChangeFlow(ports=ports, clock=kiosk.clock, settings=kiosk.settings, rng=FirstChoice())
    flow.handle("id_entered", national_id=CITIZEN)
    flow.handle("consent_given")
    finger_on_the_glass(flow, sim, posted, CITIZEN_FINGER, 3)
    assert flow.state == "refused" and kiosk.screen.current[1]["reason"] == "refused"


def test_a_finger_with_nothing_enrolled_or_sealed_for_another_context_is_not_compared(kiosk, server):
    sample = b"FMR\0 20\0" + bytes(504)
    box = sealbox.seal_to(kiosk.reg.server_public_key, sample, context="service:mobile_change:A:finger")
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed=box,
                                     context="service:mobile_change:A:finger").outcome == "no_record"
    server.enrol_citizen(CITIZEN, fingers=[sample])
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed=box,
                                     context="service:mobile_change:B:finger").outcome == "refused"
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed=box,
                                     context="service:mobile_change:A:face").outcome == "refused"
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed={"v": 1}, context="x").outcome == "refused"
    huge = sealbox.seal_to(kiosk.reg.server_public_key, bytes(5000), context="service:mobile_change:A:finger")
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed=huge,
                                     context="service:mobile_change:A:finger").outcome == "refused"
    # a record with no minutiae scores 0: no match (and it counts as a wrong guess)
    assert kiosk.ports.verify_finger(national_id=CITIZEN, sealed=box,
                                     context="service:mobile_change:A:finger").outcome == "no_match"


# --- biometrics never rest in clear ---------------------------------------------------------------------

def test_captured_bytes_never_reach_the_database_files_or_the_logs(kiosk, server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    vector = kiosk.faces.vector("carol")
    templates = [bytes(random.Random(n).randrange(256) for _ in range(512)) for n in range(2)]
    flow = kiosk.flow("activation")
    flow.handle("id_entered", national_id=CITIZEN)
    type_code(flow, server.last_code())
    flow.handle("consent_given")
    frames = face_frames(kiosk, embedding=vector)
    for frame in frames:
        flow.handle("face_seen", frame=frame)
    for template in templates:
        flow.handle("finger_enrolled", template=template)
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902468")
    flow.handle("confirmed")
    server.set_fault("outage")
    kiosk.worker.run_once()          # queued, not delivered
    kiosk.database.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    needles = [vector.astype("<f4").tobytes()[:64], templates[0][:64], templates[1][:64]]
    import base64

    needles += [base64.b64encode(n).decode().encode()[:40] for n in needles] + [n.hex().encode()[:64] for n in needles]
    needles += [b"902468"]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and ".db" in p.name or p.suffix == ".log"]
    assert any(p.name.startswith("kiosk.db") for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"captured bytes found in {path.name}"
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    for needle in needles:
        assert needle not in logged
    assert len(kiosk.pending()) == 1
