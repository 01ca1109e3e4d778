"""Attacks on the citizen services, written first: forged and replayed proofs, moved captures, junk, impostors."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.flows.services.ports import ServiceRequest
from kiosk.service_ports import ServicePorts
from kiosk.storage import sealbox
from kiosk.sync.client import SyncClient
from kiosk.sync.protocol import public_key_hex

from test_services_e2e import CITIZEN, Kiosk, clock, server  # noqa: F401 (fixtures)


@pytest.fixture
def kiosk(tmp_path, server, clock):  # noqa: F811
    kiosk = Kiosk(tmp_path, server, clock)
    yield kiosk
    kiosk.client.close()


def code_token(kiosk, server, service="fingerprints", national_id=CITIZEN, phone=None):
    sent = kiosk.ports.request_code(service=service, national_id=national_id, phone=phone)
    return kiosk.ports.verify_code(sent.code_id, server.last_code()).token


def fingers(kiosk, reference, service="fingerprints"):
    return {"finger:right_index": kiosk.ports.seal(b"\x11" * 512,
                                                   context=f"service:{service}:{reference}:finger:right_index")}


def submit(kiosk, **kw):
    request = ServiceRequest(**{"service": "fingerprints", "reference": "1111-2222-3333", "national_id": CITIZEN,
                                **kw})
    kiosk.ports.submit(request)
    kiosk.worker.run_once()


def refusals(server):
    with server.store.lock:
        return [r["reason"] for r in server.store.refused()]


def test_a_forged_code_proof_is_rejected_and_nothing_applied(kiosk, server):
    submit(kiosk, sealed=fingers(kiosk, "1111-2222-3333"), proofs={"code": "forged"})
    assert server.service_history() == [] and "one-time code proof" in refusals(server)[0]


def test_a_code_proof_spends_once(kiosk, server, clock):
    token = code_token(kiosk, server)
    submit(kiosk, sealed=fingers(kiosk, "1111-2222-3333"), proofs={"code": token})
    submit(kiosk, reference="4444-5555-6666", sealed=fingers(kiosk, "4444-5555-6666"), proofs={"code": token})
    assert [h["reference"] for h in server.service_history(CITIZEN)] == ["1111-2222-3333"]
    assert "one-time code proof" in refusals(server)[-1]


def test_a_proof_for_another_id_or_service_is_rejected(kiosk, server, clock):
    token = code_token(kiosk, server, service="activation")
    submit(kiosk, sealed=fingers(kiosk, "1111-2222-3333"), proofs={"code": token})
    clock.advance(61.0)
    other = code_token(kiosk, server, national_id="2000000006")
    submit(kiosk, sealed=fingers(kiosk, "1111-2222-3333"), proofs={"code": other})
    assert server.service_history() == [] and len(refusals(server)) == 2


def test_a_capture_moved_from_another_request_does_not_open(kiosk, server):
    token = code_token(kiosk, server)
    submit(kiosk, sealed=fingers(kiosk, "9999-9999-9999"), proofs={"code": token})
    assert server.service_history() == [] and "does not open" in refusals(server)[0]


def test_account_rules_are_checked_by_the_server_too(kiosk, server):
    token = code_token(kiosk, server, service="account", phone="0551234567")
    submit(kiosk, service="account", fields={"username": "short", "password": "x"}, proofs={"code": token})
    assert server.service_history() == [] and "rules" in refusals(server)[0]


def test_a_face_sealed_for_another_context_is_refused(kiosk, server):
    server.enrol_citizen(CITIZEN, face=[1.0, 0.0, 0.0])
    box = sealbox.seal_to(kiosk.reg.server_public_key, b"\x00\x00\x80\x3f" + b"\x00" * 8,
                          context="service:mobile_change:A:face")
    assert kiosk.ports.verify_face(national_id=CITIZEN, sealed=box,
                                   context="service:mobile_change:B:face").outcome == "refused"
    assert kiosk.ports.verify_face(national_id=CITIZEN, sealed=box,
                                   context="service:mobile_change:A:face").outcome == "match"
    assert kiosk.ports.verify_face(national_id=CITIZEN, sealed={"v": 1}, context="x").outcome == "refused"


@pytest.mark.parametrize("body", [
    {"service": "activation", "national_id": "1000000000"},
    {"service": "nothing", "national_id": CITIZEN},
    {"service": "account", "national_id": CITIZEN, "phone": "not a phone"},
    {"service": "activation"},
])
def test_junk_code_requests_send_no_sms(kiosk, server, body):
    answer = kiosk.client.request_service_code(body)
    assert answer["sent"] is False and answer["reason"] == "refused" and server.sms_messages() == []


def test_junk_code_checks_are_refused(kiosk, server):
    assert kiosk.ports.verify_code("no-such-code", "123456").outcome == "refused"
    assert kiosk.client.verify_service_code(None, None)["verified"] is False


def test_answers_not_signed_by_the_pinned_key_are_offline_for_the_flow(kiosk, server, clock):
    impostor_key = public_key_hex(Ed25519PrivateKey.generate())
    client = SyncClient(server_url=server.url, server_key=impostor_key, device_id=kiosk.reg.device_id,
                        device_key=kiosk.client.device_key, clock=clock)
    ports = ServicePorts(settings=kiosk.settings, database=kiosk.database, clock=clock, screen=kiosk.screen,
                         client=client, server_public_key=kiosk.reg.server_public_key)
    assert ports.request_code(service="activation", national_id=CITIZEN).outcome == "offline"
    assert ports.verify_code("x", "123456").outcome == "offline"
    client.close()


def test_numbers_from_the_server_are_bounded(kiosk, server):
    from kiosk.service_ports import _count, _seconds

    assert _seconds(float("nan")) is None and _seconds(1e12) == 86400.0 and _seconds(-5) == 0.0
    assert _seconds(True) is None and _count(10 ** 9) == 0 and _count(3) == 3


def test_a_finger_is_offered_only_with_a_sensor_that_answers(kiosk):
    from kiosk.host import SensorPoller

    poller = SensorPoller(None, lambda event, **data: None)   # never started: only its health is read
    ports = ServicePorts(settings=kiosk.settings, database=kiosk.database, clock=kiosk.clock, screen=kiosk.screen,
                         client=kiosk.client, server_public_key=kiosk.reg.server_public_key, poller=poller)
    assert ports.can_capture("face") and ports.can_capture("finger") and not kiosk.ports.can_capture("finger")
    poller.healthy = False   # what the poller sets after the sensor stopped answering
    assert not ports.can_capture("finger")
