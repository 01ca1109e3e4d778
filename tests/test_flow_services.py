"""The citizen-service flows on the fake clock: every path, timeout, retry and the assisted path."""

import numpy as np
import pytest

from kiosk.errors import DiskFullError
from kiosk.flows.base import declared_transitions
from kiosk.flows.services.account import AccountFlow
from kiosk.flows.services.activation import ActivationFlow
from kiosk.flows.services.fingerprints import FingerprintsFlow
from kiosk.flows.services.mobile_change import MobileChangeFlow
from kiosk.flows.services.ports import CodeCheck, CodeRequest, Verification

from flow_fakes import Faces, FirstChoice
from service_fakes import GOOD_ID, SENT, make

FLOWS = (ActivationFlow, AccountFlow, FingerprintsFlow, MobileChangeFlow)
TAKEN = {cls: set() for cls in FLOWS}
T1, T2 = b"\x03" * 512, b"\x04" * 512
PASSWORD = "Kiosk#Pass1"


@pytest.fixture
def build():
    flows = []

    def _build(cls, **kw):
        kw.setdefault("face", {"liveness": "challenge", "challenge": "turn"})
        kw.setdefault("rng", FirstChoice())
        made = make(cls, **kw)
        flows.append(made[0])
        return made
    yield _build
    for flow in flows:
        TAKEN[type(flow)].update(flow.transitions_taken)


def to_code(flow):
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "entering_code"


def live_face(flow, faces, name="carol"):
    for frame in faces.turn_left(name):
        flow.handle("face_seen", frame=frame)


def fingers(flow, n):
    for i in range(n):
        flow.handle("finger_step", step="place_finger", number=1)
        flow.handle("finger_enrolled", template=bytes([i + 1]) * 512)


def photo_until_assisted(flow, faces):
    """A printed photo turned as a whole fails liveness, attempt after attempt."""
    for i in range(200):
        if flow.state != "capturing_face":
            return
        flow.handle("face_seen", frame=faces.frame("carol", yaw=25.0 * (i % 2), planar=True))


def screen(ports):
    return ports.screen["screen"]


# --- activation ---------------------------------------------------------------------------------

def test_activation_success_seals_captures_and_submits_then_wipes(build):
    flow, ports, clock = build(ActivationFlow)
    faces = Faces([])
    assert screen(ports) == "service_id"
    flow.handle("id_entered", national_id="١٠٠٠٠٠٠٠٠٨")   # Eastern Arabic digits
    assert flow.state == "entering_code" and ports.screen["code_length"] == 6
    assert ports.screen["phone_hint"] == "+9665******12" and ports.screen["resend_in_s"] == 60.0
    assert ports.asked[0] == ("request_code", dict(service="activation", national_id=GOOD_ID, phone=None,
                                                   proof=None, resend_of=None))
    flow.handle("code_entered", code="١٢٣٤٥٦")
    assert ports.asked[-1] == ("verify_code", dict(code_id="c1", code="123456"))
    assert flow.state == "consenting" and ports.screen["kinds"] == ["face", "finger"]
    flow.handle("consent_given")
    assert flow.state == "capturing_face" and ports.count("start_capture", kind="face", mode="enrol") == 1
    live_face(flow, faces)
    assert flow.state == "capturing_finger" and ports.screen["finger"] == "right_index"
    flow.handle("finger_step", step="lift_finger", number=0)
    assert ports.screen["action"] == "lift_finger"
    flow.handle("finger_step", step="bogus", number=0)
    assert ports.screen["action"] == "lift_finger"
    flow.handle("finger_enrolled", template=T1)
    assert ports.screen["finger"] == "left_index" and ports.screen["number"] == 2
    flow.handle("finger_enrolled", template=T2)
    assert flow.state == "entering_pin"
    flow.handle("pin_entered", pin="123456")
    assert ports.screen["error"] == "trivial" and flow.state == "entering_pin"
    flow.handle("pin_entered", pin="12345")
    assert ports.screen["error"] == "length"
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902469")
    assert flow.state == "entering_pin" and ports.screen["error"] == "mismatch"
    flow.handle("pin_entered", pin="٩٠٢٤٦٨")
    flow.handle("pin_entered", pin="902468")
    assert flow.state == "confirming" and "902468" not in str(ports.screen)
    flow.handle("confirmed")
    assert flow.state == "done" and screen(ports) == "service_done"
    request = ports.submitted[-1]
    assert request.national_id == GOOD_ID and request.fields == {"pin": "902468"}
    assert set(request.sealed) == {"face", "finger:right_index", "finger:left_index"}
    assert ports.open(request.sealed["finger:left_index"], flow.context("finger:left_index")) == T2
    face = np.frombuffer(ports.open(request.sealed["face"], flow.context("face")), dtype="<f4")
    assert face.size == 128 and float(np.dot(face, faces.vector("carol"))) > 0.9
    assert request.proofs == {"code": "tok-code"} and ports.screen["reference"] == request.reference
    assert flow.national_id is None and flow.sealed == {} and flow.fields == {}
    flow.handle("cancelled")
    assert flow.state == "finished"


def test_id_refused_as_typed_with_the_reason(build):
    flow, ports, _ = build(ActivationFlow)
    for typed, reason in (("100000000", "length"), ("3000000004", "first_digit"), ("1000000000", "check_digit"),
                          ("12345abcde", "not_digits"), ("", "not_digits"), (None, "not_digits")):
        flow.handle("id_entered", national_id=typed)
        assert flow.state == "entering_id" and ports.screen["error"] == reason
    assert not ports.asked


def test_wrong_code_then_right(build):
    flow, ports, _ = build(ActivationFlow)
    ports.check_answers.append(CodeCheck("wrong", attempts_left=2))
    to_code(flow)
    flow.handle("code_entered", code="111111")
    assert flow.state == "entering_code" and ports.screen["error"] == "wrong" and ports.screen["attempts_left"] == 2
    flow.handle("code_entered", code="12345")
    assert ports.screen["error"] == "format" and len(ports.asked) == 2
    flow.handle("code_entered", code="222222")
    assert flow.state == "consenting"


def test_three_wrong_codes_then_cooldown_then_a_new_code(build):
    flow, ports, clock = build(ActivationFlow)
    ports.check_answers.extend([CodeCheck("wrong", attempts_left=2), CodeCheck("wrong", attempts_left=1),
                                CodeCheck("wrong", attempts_left=0, retry_after_s=120.0)])
    to_code(flow)
    for code in ("111111", "222222", "333333"):
        flow.handle("code_entered", code=code)
    assert flow.state == "code_cooldown" and ports.screen["retry_in_s"] == 120.0
    flow.handle("resend_requested")
    assert flow.state == "code_cooldown"
    clock.advance(119.0)
    flow.tick()
    assert flow.state == "code_cooldown"
    clock.advance(1.0)
    flow.tick()
    assert flow.state == "entering_code" and ports.screen["error"] == "cooldown_over"
    flow.handle("code_entered", code="123456")
    assert ports.screen["error"] == "expired" and ports.asked[-1][0] == "verify_code" and len(ports.asked) == 4
    flow.handle("resend_requested")
    assert ports.asked[-1][1]["resend_of"] == "c1" and flow.state == "entering_code"


def test_locked_answer_uses_the_default_cooldown_when_the_server_gives_none(build):
    flow, ports, clock = build(ActivationFlow)
    ports.check_answers.append(CodeCheck("locked", retry_after_s=float("nan")))
    to_code(flow)
    flow.handle("code_entered", code="111111")
    assert flow.state == "code_cooldown" and ports.screen["retry_in_s"] == 300.0
    flow.handle("cancelled")
    assert flow.state == "finished"


def test_expired_code_refused_on_the_kiosk_and_by_the_server(build):
    flow, ports, clock = build(ActivationFlow)
    to_code(flow)
    clock.advance(25.0)
    flow.handle("code_entered", code="12")   # typing keeps the screen alive
    clock.advance(25.0)
    flow.handle("code_entered", code="12")
    clock.advance(251.0)   # past the code's 300 s
    flow.handle("code_entered", code="123456")
    assert flow.state == "entering_code" and ports.screen["error"] == "expired"
    assert ports.screen["expires_in_s"] == 0.0 and ports.screen["resend_in_s"] == 0.0
    assert [a for a, _ in ports.asked] == ["request_code"]
    flow.handle("resend_requested")
    assert flow.state == "entering_code" and ports.screen["error"] is None
    ports.check_answers.append(CodeCheck("expired"))
    flow.handle("code_entered", code="123456")
    assert flow.state == "entering_code" and ports.screen["error"] == "expired"


def test_resend_waits_for_the_delay(build):
    flow, ports, clock = build(ActivationFlow)
    to_code(flow)
    clock.advance(30.0)
    flow.handle("resend_requested")
    assert ports.screen["error"] == "resend_too_soon" and ports.screen["resend_in_s"] == 30.0
    clock.advance(29.0)
    flow.handle("resend_requested")
    assert len(ports.asked) == 1
    clock.advance(1.0)
    flow.handle("resend_requested")
    assert len(ports.asked) == 2 and ports.screen["error"] is None and ports.screen["resend_in_s"] == 60.0


def test_server_says_resend_too_soon(build):
    flow, ports, clock = build(ActivationFlow)
    to_code(flow)
    clock.advance(60.0)
    ports.code_answers.append(CodeRequest("resend_too_soon", retry_after_s=5.0))
    flow.handle("resend_requested")
    assert flow.state == "entering_code" and ports.screen["error"] == "resend_too_soon"


@pytest.mark.parametrize("outcome", ["too_many_codes", "locked", "unknown_id"])
def test_code_request_refused_says_why(build, outcome):
    flow, ports, _ = build(ActivationFlow)
    ports.code_answers.append(CodeRequest(outcome, retry_after_s=1800.0))
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "refused" and ports.screen["reason"] == outcome and ports.screen["retry_in_s"] == 1800.0
    assert ports.count("signal", kind="error") == 1
    flow.handle("cancelled")
    assert flow.state == "finished"


def test_offline_at_the_code_request_and_at_the_check(build):
    flow, ports, clock = build(ActivationFlow)
    ports.code_answers.append(CodeRequest("offline"))
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "offline" and ports.screen["at"] == "code"
    clock.advance(30.0)
    flow.tick()
    assert flow.state == "finished" and flow.national_id is None
    flow, ports, _ = build(ActivationFlow)
    to_code(flow)
    ports.check_answers.append(CodeCheck("offline"))
    flow.handle("code_entered", code="123456")
    assert flow.state == "offline" and not ports.submitted


def test_code_check_refused(build):
    flow, ports, _ = build(ActivationFlow)
    to_code(flow)
    ports.check_answers.append(CodeCheck("refused"))
    flow.handle("code_entered", code="123456")
    assert flow.state == "refused" and ports.screen["reason"] == "refused"


def test_consent_declined_ends_without_capture(build):
    flow, ports, _ = build(ActivationFlow)
    to_code(flow)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_declined")
    assert flow.state == "refused" and ports.screen["reason"] == "consent_declined"
    assert ports.count("start_capture") == 0


def test_face_fails_three_times_then_the_assisted_path_continues(build):
    flow, ports, _ = build(ActivationFlow)
    faces = Faces([])
    to_code(flow)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_given")
    flow.handle("face_seen", frame=faces.frame(None))
    flow.handle("face_seen", frame=object())            # not a frame: ignored
    assert ports.screen["guidance"] == "no_face"
    photo_until_assisted(flow, faces)
    assert [d.get("attempt") for n, d in ports.calls if n == "show" and d.get("guidance") == "try_again"] == [2, 3]
    assert ports.count("signal", kind="warn") == 3
    assert flow.state == "assisted" and ports.screen["kind"] == "face"
    assert ports.screen["next_step"] == "continue_assisted" and ports.screen["reason"] == "failed_repeatedly"
    flow.handle("continue_requested")
    assert flow.state == "capturing_finger"
    fingers(flow, 2)
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902468")
    flow.handle("confirmed")
    request = ports.submitted[-1]
    assert request.exceptions == ({"kind": "face", "finger": None, "reason": "failed_repeatedly"},)
    assert "face" not in request.sealed


def test_finger_guidance_then_assisted_for_one_finger(build):
    flow, ports, _ = build(ActivationFlow)
    to_code(flow)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_given")
    flow.handle("capture_impossible")
    assert flow.state == "assisted" and ports.screen["reason"] == "cannot_capture"
    flow.handle("continue_requested")
    flow.handle("finger_failed", guidance="clean_and_dry")
    assert ports.screen["guidance"] == "clean_dry_finger" and ports.screen["attempt"] == 2
    flow.handle("finger_failed", guidance="hold_still")
    assert ports.screen["guidance"] == "press_flat"
    flow.handle("finger_failed", guidance="whatever")
    assert flow.state == "assisted" and ports.screen["finger"] == "right_index"
    flow.handle("continue_requested")
    assert flow.state == "capturing_finger" and ports.screen["finger"] == "left_index"
    flow.handle("finger_enrolled", template=b"")          # not a template: asked again
    assert ports.screen["guidance"] == "try_again"
    flow.handle("capture_impossible")
    flow.handle("continue_requested")
    assert flow.state == "entering_pin"
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902468")
    flow.handle("confirmed")
    request = ports.submitted[-1]
    assert [e["finger"] for e in request.exceptions] == [None, "right_index", "left_index"]
    assert request.exceptions[1]["reason"] == "failed_repeatedly"


def test_back_one_step_everywhere_and_the_save_failure(build):
    flow, ports, _ = build(ActivationFlow)
    faces = Faces([])
    to_code(flow)
    assert ports.screen["can_back"] is True
    flow.handle("back_requested")
    assert flow.state == "entering_id"
    to_code(flow)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_given")
    flow.handle("back_requested")
    assert flow.state == "consenting"
    flow.handle("consent_given")
    live_face(flow, faces)
    flow.handle("back_requested")
    assert flow.state == "capturing_face" and "face" not in flow.sealed
    live_face(flow, faces, "carol")
    fingers(flow, 1)
    flow.handle("back_requested")
    live_face(flow, faces, "carol")
    fingers(flow, 2)
    flow.handle("back_requested")
    assert flow.state == "capturing_finger" and not [n for n in flow.sealed if n.startswith("finger")]
    fingers(flow, 2)
    flow.handle("pin_entered", pin="902468")
    flow.handle("back_requested")
    assert flow.state == "entering_pin"
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902468")
    flow.handle("back_requested")
    assert flow.state == "entering_pin"
    flow.handle("pin_entered", pin="902468")
    flow.handle("pin_entered", pin="902468")
    ports.fail_submit = DiskFullError("full")
    flow.handle("confirmed")
    assert flow.state == "confirming" and ports.screen["error"] == "not_saved" and not ports.submitted
    flow.handle("confirmed")
    assert flow.state == "done"


@pytest.mark.parametrize("state_events", [
    [], ["id"], ["id", "code"], ["id", "code", "consent"], ["id", "code", "consent", "face"],
    ["id", "code", "consent", "face", "fingers"], ["id", "code", "consent", "face", "fingers", "pin"],
    ["id", "code", "consent", "face", "fingers", "pin", "pin"]])
def test_inactivity_anywhere_wipes_everything_and_goes_home(build, state_events):
    flow, ports, clock = build(ActivationFlow)
    faces = Faces([])
    steps = {"id": lambda: flow.handle("id_entered", national_id=GOOD_ID),
             "code": lambda: flow.handle("code_entered", code="123456"),
             "consent": lambda: flow.handle("consent_given"),
             "face": lambda: live_face(flow, faces),
             "fingers": lambda: fingers(flow, 2),
             "pin": lambda: flow.handle("pin_entered", pin="902468")}
    for name in state_events:
        steps[name]()
    before = flow.state
    clock.advance(29.9)
    flow.tick()
    assert flow.state == before
    clock.advance(0.2)
    flow.tick()
    assert flow.state == "finished"
    assert (flow.national_id, flow.sealed, flow.fields, flow.code, flow.first_pin, flow.proofs) == \
        (None, {}, {}, None, None, {})
    assert ports.count("stop_capture", kind="face") >= 1 and ports.count("stop_capture", kind="finger") >= 1


def test_with_liveness_off_a_good_frame_is_the_capture(build):
    flow, ports, _ = build(ActivationFlow, face={"liveness": "off"})
    faces = Faces([])
    to_code(flow)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_given")
    flow.handle("face_seen", frame=faces.frame("carol", guidance="more_light"))
    assert flow.state == "capturing_face" and ports.screen["guidance"] == "more_light"
    flow.handle("face_seen", frame=faces.frame("carol"))
    assert flow.state == "capturing_finger" and "face" in flow.sealed


def test_only_finite_embeddings_of_sane_size_are_sealed():
    from kiosk.flows.services.face_step import embedding_bytes

    assert embedding_bytes([1.0, 0.0]) == np.asarray([1.0, 0.0], dtype="<f4").tobytes()
    for bad in (None, [], [float("nan")], np.zeros(5000), "text", [[1.0], [2.0, 3.0]]):
        assert embedding_bytes(bad) is None


# --- document fingerprints ----------------------------------------------------------------------

def test_fingerprints_four_fingers_with_one_exception(build):
    flow, ports, clock = build(FingerprintsFlow)
    to_code(flow)
    flow.handle("code_entered", code="123456")
    assert ports.screen["kinds"] == ["finger"]
    flow.handle("consent_given")
    assert ports.screen["of"] == 4 and ports.screen["finger"] == "right_thumb"
    fingers(flow, 2)
    flow.handle("finger_failed", guidance="clean_and_dry")
    flow.handle("finger_failed", guidance="clean_and_dry")
    flow.handle("finger_failed", guidance="clean_and_dry")
    assert flow.state == "assisted" and ports.screen["finger"] == "left_thumb"
    flow.handle("continue_requested")
    flow.handle("finger_step", step="place_finger", number=1)
    flow.handle("finger_enrolled", template=T1)
    assert flow.state == "confirming" and "exceptions" in ports.screen["summary"]
    flow.handle("back_requested")
    assert flow.state == "capturing_finger" and ports.screen["finger"] == "right_thumb"
    fingers(flow, 3)
    flow.handle("capture_impossible")
    flow.handle("continue_requested")
    assert flow.state == "confirming"
    flow.handle("back_requested")
    flow.handle("back_requested")
    assert flow.state == "consenting"
    flow.handle("consent_given")
    fingers(flow, 4)
    ports.fail_submit = DiskFullError("full")
    flow.handle("confirmed")
    assert ports.screen["error"] == "not_saved"
    flow.handle("confirmed")
    request = ports.submitted[-1]
    assert sorted(request.sealed) == ["finger:left_index", "finger:left_thumb", "finger:right_index",
                                      "finger:right_thumb"] and request.exceptions == ()
    assert request.quality["finger:right_thumb"] == {"attempts": 1, "problems": []}


def test_fingerprints_code_paths(build):
    flow, ports, clock = build(FingerprintsFlow)
    ports.check_answers.extend([CodeCheck("wrong", attempts_left=2), CodeCheck("locked", retry_after_s=60.0),
                                CodeCheck("expired"), CodeCheck("offline")])
    to_code(flow)
    flow.handle("resend_requested")
    assert ports.screen["error"] == "resend_too_soon"
    flow.handle("code_entered", code="1")
    flow.handle("code_entered", code="111111")
    flow.handle("code_entered", code="111111")
    assert flow.state == "code_cooldown"
    clock.advance(60.0)
    flow.tick()
    flow.handle("resend_requested")
    flow.handle("code_entered", code="111111")
    assert ports.screen["error"] == "expired"
    clock.advance(10.0)
    flow.handle("resend_requested")
    ports.code_answers.append(CodeRequest("resend_too_soon"))
    clock.advance(60.0)
    flow.handle("resend_requested")
    flow.handle("back_requested")
    assert flow.state == "entering_id"
    ports.code_answers.append(CodeRequest("too_many_codes", retry_after_s=3600.0))
    flow.handle("id_entered", national_id="12")
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "refused"
    flow, ports, clock = build(FingerprintsFlow)
    ports.code_answers.append(CodeRequest("offline"))
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "offline"
    flow, ports, clock = build(FingerprintsFlow)
    to_code(flow)
    ports.check_answers.extend([CodeCheck("refused")])
    flow.handle("code_entered", code="111111")
    assert flow.state == "refused"
    flow, ports, clock = build(FingerprintsFlow)
    to_code(flow)
    ports.check_answers.extend([CodeCheck("offline")])
    flow.handle("code_entered", code="111111")
    assert flow.state == "offline"
    flow, ports, clock = build(FingerprintsFlow)
    to_code(flow)
    flow.handle("code_entered", code="111111")
    flow.handle("consent_declined")
    assert ports.screen["reason"] == "consent_declined"


def test_fingerprints_lift_step_and_bad_template(build):
    flow, ports, _ = build(FingerprintsFlow)
    to_code(flow)
    flow.handle("code_entered", code="111111")
    flow.handle("consent_given")
    flow.handle("finger_step", step="lift_finger", number=0)
    flow.handle("finger_step", step="nonsense", number=0)
    flow.handle("finger_enrolled", template="not bytes")
    assert ports.screen["guidance"] == "try_again" and flow.state == "capturing_finger"


# --- open an account ----------------------------------------------------------------------------

def account_to_code(flow, ports):
    flow.handle("id_entered", national_id="2000000000")
    assert ports.screen["error"] == "check_digit"
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "entering_mobile"
    flow.handle("mobile_entered", mobile="12345")
    assert ports.screen["error"] == "invalid_mobile"
    flow.handle("mobile_entered", mobile="٠٥٥١٢٣٤٥٦٧")
    flow.handle("email_entered", email="not an email")
    assert ports.screen["error"] == "invalid_email"
    flow.handle("email_entered", email="carol@example.org")
    assert flow.state == "entering_credentials"
    flow.handle("credentials_typed", username="carol", password="", confirmation="")
    assert ports.screen["username_rules"]["min_length"] is False and ports.screen["username_rules"]["has_lower"]
    flow.handle("credentials_entered", username="CarolCole77", password="carolcole", confirmation="carolcole")
    assert flow.state == "entering_credentials" and ports.screen["error"] == "rules_not_met"
    assert ports.screen["password_rules"]["few_from_username"] is False
    flow.handle("credentials_entered", username="CarolCole77", password=PASSWORD, confirmation=PASSWORD)
    assert flow.state == "choosing_language" and ports.screen["languages"] == ["ar", "en"]
    flow.handle("language_chosen", language="fr")
    assert ports.screen["error"] == "invalid_language"
    flow.handle("language_chosen", language="en")
    assert flow.state == "entering_code"


def test_account_success(build):
    flow, ports, clock = build(AccountFlow)
    account_to_code(flow, ports)
    assert ports.asked[-1][1]["phone"] == "+966551234567"
    flow.handle("code_entered", code="123456")
    assert flow.state == "accepting_terms" and ports.screen["username"] == "CarolCole77"
    ports.fail_submit = DiskFullError("full")
    flow.handle("terms_accepted")
    assert flow.state == "accepting_terms" and ports.screen["error"] == "not_saved"
    flow.handle("terms_accepted")
    assert flow.state == "done"
    request = ports.submitted[-1]
    assert request.fields == {"mobile": "+966551234567", "email": "carol@example.org", "username": "CarolCole77",
                              "password": PASSWORD, "language": "en"} and request.sealed == {}


def test_account_back_steps_and_code_paths(build):
    flow, ports, clock = build(AccountFlow)
    account_to_code(flow, ports)
    for expected in ("choosing_language", "entering_credentials", "entering_email", "entering_mobile", "entering_id"):
        flow.handle("back_requested")
        assert flow.state == expected
    account_to_code(flow, ports)
    clock.advance(10.0)
    flow.handle("resend_requested")
    ports.code_answers.append(CodeRequest("resend_too_soon"))
    clock.advance(60.0)
    flow.handle("resend_requested")
    flow.handle("code_entered", code="12")
    ports.check_answers.extend([CodeCheck("wrong", attempts_left=2), CodeCheck("wrong", attempts_left=0),
                                CodeCheck("expired")])
    flow.handle("code_entered", code="111111")
    flow.handle("code_entered", code="111111")
    assert flow.state == "code_cooldown"
    clock.advance(300.0)
    flow.tick()
    flow.handle("resend_requested")
    flow.handle("code_entered", code="111111")
    assert ports.screen["error"] == "expired"
    for outcome, state in (("offline", "offline"), ("refused", "refused")):
        flow, ports, clock = build(AccountFlow)
        account_to_code(flow, ports)
        ports.check_answers.append(CodeCheck(outcome))
        flow.handle("code_entered", code="111111")
        assert flow.state == state
        flow, ports, clock = build(AccountFlow)
        ports.code_answers.append(CodeRequest(outcome if outcome == "offline" else "too_many_codes"))
        flow.handle("id_entered", national_id=GOOD_ID)
        flow.handle("mobile_entered", mobile="0551234567")
        flow.handle("email_entered", email="a@b.co")
        flow.handle("credentials_entered", username="CarolCole77", password=PASSWORD, confirmation=PASSWORD)
        flow.handle("language_chosen", language="ar")
        assert flow.state == state


# --- change the registered mobile ---------------------------------------------------------------

def mobile_to_face(flow, ports):
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "consenting" and ports.screen["kinds"] == ["face"]
    flow.handle("consent_given")


def test_mobile_change_success_verified_by_face(build):
    flow, ports, clock = build(MobileChangeFlow)
    faces = Faces([])
    mobile_to_face(flow, ports)
    live_face(flow, faces)
    assert ports.asked[-1] == ("verify_face", dict(national_id=GOOD_ID, context=flow.context("face")))
    assert flow.state == "entering_mobile"
    flow.handle("mobile_entered", mobile="0501")
    assert ports.screen["error"] == "invalid_mobile"
    flow.handle("mobile_entered", mobile="+966 50 123 4567")
    assert ports.asked[-1][1]["phone"] == "+966501234567" and ports.asked[-1][1]["proof"] == "tok-face"
    flow.handle("code_entered", code="123456")
    assert flow.state == "confirming" and ports.screen["summary"]["mobile"] == "+966501234567"
    ports.fail_submit = DiskFullError("full")
    flow.handle("confirmed")
    flow.handle("confirmed")
    request = ports.submitted[-1]
    assert request.proofs == {"verified": "tok-face", "code": "tok-code"} and "face" in request.sealed


def test_mobile_change_another_face_is_refused_after_three_tries(build):
    flow, ports, clock = build(MobileChangeFlow)
    faces = Faces([])
    ports.verify_answers.extend([Verification("no_match")] * 3)
    mobile_to_face(flow, ports)
    for attempt in range(3):
        live_face(flow, faces, "mallory")
        if attempt < 2:
            assert flow.state == "verify_failed" and ports.screen["attempts_left"] == 2 - attempt
            flow.handle("retry_requested")
            flow.handle("face_seen", frame=faces.frame(None, dt=2.0))
    assert flow.state == "refused" and ports.screen["reason"] == "not_verified"
    assert not [a for a in ports.asked if a[0] == "request_code"]


@pytest.mark.parametrize("outcome,state,reason", [("offline", "offline", None), ("no_record", "refused", "unknown_id"),
                                                  ("refused", "refused", "refused")])
def test_mobile_change_verification_answers(build, outcome, state, reason):
    flow, ports, clock = build(MobileChangeFlow)
    ports.verify_answers.append(Verification(outcome))
    mobile_to_face(flow, ports)
    live_face(flow, Faces([]))
    assert flow.state == state
    if reason:
        assert ports.screen["reason"] == reason
    else:
        assert ports.screen["at"] == "verify"


def mobile_to_choice(flow, ports):
    ports.finger_sensor = True
    flow.handle("id_entered", national_id=GOOD_ID)
    assert flow.state == "consenting" and ports.screen["kinds"] == ["face", "finger"]
    flow.handle("consent_given")
    assert flow.state == "choosing_method"
    assert ports.screen == {**ports.screen, "methods": ["face", "finger"], "error": None, "attempts_left": 3}


def test_mobile_change_verified_by_a_finger_sealed_at_capture(build):
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_choice(flow, ports)
    flow.handle("method_chosen", method="iris")
    assert flow.state == "choosing_method"
    flow.handle("method_chosen", method="finger")
    assert flow.state == "checking_finger" and ports.count("start_capture", kind="finger", mode="sample") == 1
    assert ports.screen["finger"] is None and ports.screen["action"] == "place_finger"
    flow.handle("finger_sampled", sample=b"")
    assert flow.state == "checking_finger" and ports.screen["guidance"] == "try_again"
    sample = bytes(range(256)) * 2
    flow.handle("finger_sampled", sample=sample)
    assert ports.asked[-1] == ("verify_finger", dict(national_id=GOOD_ID, context=flow.context("finger")))
    assert flow.state == "entering_mobile" and flow.proofs["verified"] == "tok-finger"
    assert ports.open(flow.sealed["finger"], flow.context("finger")) == sample   # only the sealed box is kept
    flow.handle("mobile_entered", mobile="0501234567")
    assert ports.asked[-1][1]["proof"] == "tok-finger"
    flow.handle("code_entered", code="123456")
    flow.handle("confirmed")
    request = ports.submitted[-1]
    assert request.proofs == {"verified": "tok-finger", "code": "tok-code"} and set(request.sealed) == {"finger"}


def test_mobile_change_another_finger_then_another_face_share_the_attempts(build):
    flow, ports, clock = build(MobileChangeFlow)
    faces = Faces([])
    ports.verify_answers.extend([Verification("no_match")] * 3)
    mobile_to_choice(flow, ports)
    flow.handle("method_chosen", method="finger")
    flow.handle("finger_sampled", sample=b"\x01" * 512)
    assert flow.state == "verify_failed" and "finger" not in flow.sealed
    assert ports.screen["methods"] == ["face", "finger"] and ports.screen["attempts_left"] == 2
    flow.handle("method_chosen", method="face")
    live_face(flow, faces, "mallory")
    assert flow.state == "verify_failed" and ports.screen["attempts_left"] == 1
    flow.handle("method_chosen", method="sideways")
    assert flow.state == "verify_failed"
    flow.handle("method_chosen", method="finger")
    flow.handle("finger_sampled", sample=b"\x02" * 512)
    assert flow.state == "refused" and ports.screen["reason"] == "not_verified"
    assert [a[0] for a in ports.asked if a[0].startswith("verify")] == ["verify_finger", "verify_face", "verify_finger"]
    assert not [a for a in ports.asked if a[0] == "request_code"]


def test_mobile_change_finger_not_offered_without_a_sensor(build):
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    assert flow.state == "capturing_face"
    flow, ports, clock = build(MobileChangeFlow)
    ports.verify_answers.append(Verification("no_match"))
    mobile_to_face(flow, ports)
    live_face(flow, Faces([]))
    assert ports.screen["methods"] == ["face"]
    flow.handle("method_chosen", method="finger")   # a stale or forged event: no sensor, no finger
    assert flow.state == "verify_failed"


def test_mobile_change_finger_capture_failures_then_assisted_and_back(build):
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_choice(flow, ports)
    flow.handle("method_chosen", method="finger")
    flow.handle("finger_failed", guidance="clean_and_dry")
    assert flow.state == "checking_finger" and ports.screen["guidance"] == "clean_dry_finger"
    assert ports.screen["attempt"] == 2 and ports.count("start_capture", kind="finger", mode="sample") == 2
    flow.handle("finger_failed", guidance="whatever")
    assert ports.screen["guidance"] == "try_again" and ports.screen["attempt"] == 3
    flow.handle("finger_failed", guidance="hold_still")
    assert flow.state == "assisted" and ports.screen["kind"] == "finger"
    assert ports.screen["reason"] == "failed_repeatedly" and ports.count("stop_capture", kind="finger") >= 1
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_choice(flow, ports)
    flow.handle("method_chosen", method="finger")
    flow.handle("capture_impossible")
    assert flow.state == "assisted" and ports.screen["reason"] == "cannot_capture"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_choice(flow, ports)
    flow.handle("back_requested")
    assert flow.state == "consenting"
    flow.handle("consent_given")
    flow.handle("method_chosen", method="face")
    assert flow.state == "capturing_face"
    flow.handle("back_requested")
    flow.handle("consent_given")
    flow.handle("method_chosen", method="finger")
    flow.handle("back_requested")
    assert flow.state == "consenting"
    flow.handle("consent_given")
    flow.handle("method_chosen", method="finger")
    flow.handle("finger_sampled", sample=b"\x03" * 512)
    assert flow.state == "entering_mobile"
    flow.handle("back_requested")   # back from the new mobile: the choice again, not the face
    assert flow.state == "choosing_method" and "finger" not in flow.sealed


def test_mobile_change_assisted_path_and_back_steps(build):
    flow, ports, clock = build(MobileChangeFlow)
    faces = Faces([])
    flow.handle("id_entered", national_id="1")
    mobile_to_face(flow, ports)
    flow.handle("back_requested")
    assert flow.state == "consenting"
    flow.handle("consent_declined")
    assert ports.screen["reason"] == "consent_declined"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    flow.handle("capture_impossible")
    assert flow.state == "assisted" and ports.screen["next_step"] == "visit_service_centre"
    flow.handle("continue_requested")
    assert flow.state == "finished"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    photo_until_assisted(flow, faces)
    assert flow.state == "assisted"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    live_face(flow, faces)
    flow.handle("back_requested")
    assert flow.state == "capturing_face"
    live_face(flow, faces)
    flow.handle("mobile_entered", mobile="0501234567")
    flow.handle("back_requested")
    assert flow.state == "entering_mobile"
    flow.handle("mobile_entered", mobile="0501234567")
    flow.handle("code_entered", code="123456")
    flow.handle("back_requested")
    assert flow.state == "entering_mobile"
    ports.code_answers.append(CodeRequest("too_many_codes"))
    flow.handle("mobile_entered", mobile="0501234567")
    assert flow.state == "refused"


def test_mobile_change_code_paths(build):
    flow, ports, clock = build(MobileChangeFlow)
    faces = Faces([])
    mobile_to_face(flow, ports)
    live_face(flow, faces)
    flow.handle("mobile_entered", mobile="0501234567")
    flow.handle("code_entered", code="1")
    clock.advance(10.0)
    flow.handle("resend_requested")
    clock.advance(60.0)
    ports.code_answers.append(CodeRequest("resend_too_soon"))
    flow.handle("resend_requested")
    ports.check_answers.extend([CodeCheck("wrong", attempts_left=1), CodeCheck("wrong", attempts_left=0),
                                CodeCheck("expired"), CodeCheck("offline")])
    flow.handle("code_entered", code="111111")
    flow.handle("code_entered", code="111111")
    clock.advance(300.0)
    flow.tick()
    flow.handle("resend_requested")
    flow.handle("code_entered", code="111111")
    flow.handle("resend_requested")
    flow.handle("code_entered", code="111111")
    assert flow.state == "offline"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    live_face(flow, faces)
    ports.code_answers.append(CodeRequest("offline"))
    flow.handle("mobile_entered", mobile="0501234567")
    assert flow.state == "offline"
    flow, ports, clock = build(MobileChangeFlow)
    mobile_to_face(flow, ports)
    live_face(flow, faces)
    flow.handle("mobile_entered", mobile="0501234567")
    ports.check_answers.append(CodeCheck("refused"))
    flow.handle("code_entered", code="111111")
    assert flow.state == "refused"


ACTIONS = {
    "id": lambda f, p, faces: f.handle("id_entered", national_id=GOOD_ID),
    "code": lambda f, p, faces: f.handle("code_entered", code="123456"),
    "locked": lambda f, p, faces: (p.check_answers.append(CodeCheck("locked", retry_after_s=60.0)),
                                   f.handle("code_entered", code="123456")),
    "offline": lambda f, p, faces: p.code_answers.append(CodeRequest("offline")),
    "refuse": lambda f, p, faces: p.code_answers.append(CodeRequest("too_many_codes")),
    "no_match": lambda f, p, faces: p.verify_answers.append(Verification("no_match")),
    "consent": lambda f, p, faces: f.handle("consent_given"),
    "face": lambda f, p, faces: live_face(f, faces),
    "impossible": lambda f, p, faces: f.handle("capture_impossible"),
    "sensor": lambda f, p, faces: setattr(p, "finger_sensor", True),
    "by_finger": lambda f, p, faces: f.handle("method_chosen", method="finger"),
    "fingers2": lambda f, p, faces: fingers(f, 2),
    "fingers4": lambda f, p, faces: fingers(f, 4),
    "pin": lambda f, p, faces: f.handle("pin_entered", pin="902468"),
    "confirm": lambda f, p, faces: f.handle("confirmed"),
    "mobile": lambda f, p, faces: f.handle("mobile_entered", mobile="0501234567"),
    "email": lambda f, p, faces: f.handle("email_entered", email="a@b.co"),
    "credentials": lambda f, p, faces: f.handle("credentials_entered", username="CarolCole77", password=PASSWORD,
                                                confirmation=PASSWORD),
    "language": lambda f, p, faces: f.handle("language_chosen", language="ar"),
    "terms": lambda f, p, faces: f.handle("terms_accepted"),
}
ROUTES = {
    ActivationFlow: {
        "entering_id": [], "entering_code": ["id"], "code_cooldown": ["id", "locked"], "consenting": ["id", "code"],
        "capturing_face": ["id", "code", "consent"], "assisted": ["id", "code", "consent", "impossible"],
        "capturing_finger": ["id", "code", "consent", "face"],
        "entering_pin": ["id", "code", "consent", "face", "fingers2"],
        "confirming_pin": ["id", "code", "consent", "face", "fingers2", "pin"],
        "confirming": ["id", "code", "consent", "face", "fingers2", "pin", "pin"],
        "done": ["id", "code", "consent", "face", "fingers2", "pin", "pin", "confirm"],
        "offline": ["offline", "id"], "refused": ["refuse", "id"]},
    FingerprintsFlow: {
        "entering_id": [], "entering_code": ["id"], "code_cooldown": ["id", "locked"], "consenting": ["id", "code"],
        "capturing_finger": ["id", "code", "consent"], "assisted": ["id", "code", "consent", "impossible"],
        "confirming": ["id", "code", "consent", "fingers4"], "done": ["id", "code", "consent", "fingers4", "confirm"],
        "offline": ["offline", "id"], "refused": ["refuse", "id"]},
    AccountFlow: {
        "entering_id": [], "entering_mobile": ["id"], "entering_email": ["id", "mobile"],
        "entering_credentials": ["id", "mobile", "email"], "choosing_language": ["id", "mobile", "email", "credentials"],
        "entering_code": ["id", "mobile", "email", "credentials", "language"],
        "code_cooldown": ["id", "mobile", "email", "credentials", "language", "locked"],
        "accepting_terms": ["id", "mobile", "email", "credentials", "language", "code"],
        "done": ["id", "mobile", "email", "credentials", "language", "code", "terms"],
        "offline": ["offline", "id", "mobile", "email", "credentials", "language"],
        "refused": ["refuse", "id", "mobile", "email", "credentials", "language"]},
    MobileChangeFlow: {
        "entering_id": [], "consenting": ["id"], "capturing_face": ["id", "consent"],
        "choosing_method": ["sensor", "id", "consent"], "checking_finger": ["sensor", "id", "consent", "by_finger"],
        "assisted": ["id", "consent", "impossible"], "verify_failed": ["no_match", "id", "consent", "face"],
        "entering_mobile": ["id", "consent", "face"], "entering_code": ["id", "consent", "face", "mobile"],
        "code_cooldown": ["id", "consent", "face", "mobile", "locked"],
        "confirming": ["id", "consent", "face", "mobile", "code"],
        "done": ["id", "consent", "face", "mobile", "code", "confirm"],
        "offline": ["offline", "id", "consent", "face", "mobile"],
        "refused": ["refuse", "id", "consent", "face", "mobile"]},
}
EXITS = [(cls, state, event) for cls, routes in ROUTES.items() for state in routes
         for event in ("cancelled", "timed_out")]


@pytest.mark.parametrize("cls,state,event", EXITS, ids=[f"{c.__name__}-{s}-{e}" for c, s, e in EXITS])
def test_every_waiting_state_goes_home_on_cancel_or_inactivity_and_wipes(build, cls, state, event):
    flow, ports, clock = build(cls)
    faces = Faces([])
    for action in ROUTES[cls][state]:
        ACTIONS[action](flow, ports, faces)
    assert flow.state == state
    if event == "timed_out":
        clock.advance(flow.remaining_s() - 0.01)
        flow.tick()
        assert flow.state == state
        clock.advance(0.02)
        flow.tick()
    else:
        flow.handle("cancelled")
    if state == "code_cooldown" and event == "timed_out":
        assert flow.state == "entering_code"   # the cooldown's end, not inactivity
        return
    assert flow.state == "finished"
    assert (flow.national_id, flow.sealed, flow.fields, flow.code, flow.first_pin, flow.proofs, flow.exceptions) == \
        (None, {}, {}, None, None, {}, [])


def test_zz_every_declared_transition_was_taken():
    """Runs last in this module: every transition of every service chart was exercised above."""
    for cls in FLOWS:
        missing = declared_transitions(cls) - TAKEN[cls]
        assert not missing, f"{cls.__name__}: {sorted(missing)}"
