"""The enrolment flow on the fake clock: details, face captures, fingers, PIN, duplicates, saving, deleting."""

import numpy as np
import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import DiskFullError, StorageError
from kiosk.flows.base import declared_transitions
from kiosk.flows.enrolment import EnrolmentFlow
from kiosk.flows.ports import Person
from kiosk.models.face_frame import FaceFrame

from flow_fakes import Faces
from enrolment_fakes import T1, T2, EnrolPorts

TAKEN = set()
ALICE = Person("alice", "Alice Adams", has_pin=True)
BOB = Person("bob", "Bob Brown")


def make(*, face=None, clock=None, attendance=None):
    clock = clock or FakeClock(start=1_700_000_000.0)
    settings = config.build([("test", {"face": face or {}, "ui": {"inactivity_timeout_s": 30.0},
                                       "attendance": attendance or {}})])
    ports = EnrolPorts(clock, [ALICE, BOB])
    flow = EnrolmentFlow(ports=ports, clock=clock, settings=settings)
    return flow, ports, clock, Faces(["alice", "bob"])


@pytest.fixture
def enrol():
    flows = []

    def build(**kw):
        made = make(**kw)
        flows.append(made[0])
        return made
    yield build
    for flow in flows:
        TAKEN.update(flow.transitions_taken)


def feed(flow, frames):
    for frame in frames:
        flow.handle("face_seen", frame=frame)


def good(faces, name="carol", n=1, dt=0.35, **kw):
    return [faces.frame(name, dt=dt, **kw) for _ in range(n)]


def to_face(flow, person_id="carol", name="Carol Cole", role="employee"):
    flow.handle("enrol_requested")
    flow.handle("details_entered", person_id=person_id, name=name, role=role)


def to_fingers(flow, faces):
    to_face(flow)
    feed(flow, good(faces, n=3))


def finger(flow, template):
    flow.handle("finger_step", step="place_finger", number=1)
    flow.handle("finger_enrolled", template=template)


def to_pin(flow, faces):
    to_fingers(flow, faces)
    finger(flow, T1)
    finger(flow, T2)


# --- the whole path -----------------------------------------------------------------------------

def test_full_enrolment_saves_faces_fingers_and_pin_then_wipes(enrol):
    flow, ports, clock, faces = enrol()
    assert flow.state == "ready"
    flow.handle("enrol_requested")
    assert flow.state == "entering_details" and ports.screen["screen"] == "enrol_details"
    flow.handle("details_entered", person_id=" carol ", name="Carol Cole", role="admin")
    assert flow.state == "capturing_face"
    assert ports.count("start_capture", kind="face", mode="enrol") == 1
    feed(flow, good(faces, n=3))
    assert flow.state == "capturing_finger"
    assert ports.count("stop_capture", kind="face") == 1
    assert ports.calls[-2] == ("start_capture", {"kind": "finger", "mode": "enrol", "finger": 1, "captures": 3})
    for step, number in (("place_finger", 1), ("lift_finger", 1), ("place_finger", 2), ("captured", 3)):
        flow.handle("finger_step", step=step, number=number)
        assert ports.screen["step"] == step and ports.screen["number"] == number
    flow.handle("finger_enrolled", template=T1)
    assert flow.state == "capturing_finger" and ports.screen["finger"] == 2
    flow.handle("finger_enrolled", template=T2)
    assert flow.state == "entering_pin" and ports.screen["optional"] is True
    flow.handle("pin_entered", pin="١٣٥٧٩٠")        # Eastern Arabic digits are digits
    assert flow.state == "confirming_pin" and ports.screen["repeat"] is True
    flow.handle("pin_entered", pin="135790")
    assert flow.state == "summary"
    assert {k: ports.screen[k] for k in ("person_id", "name", "role", "faces", "fingers", "pin")} == \
        {"person_id": "carol", "name": "Carol Cole", "role": "admin", "faces": 3, "fingers": 2, "pin": True}
    flow.handle("confirmed")
    assert flow.state == "done"
    saved = ports.enrolled[-1]
    assert saved["person_id"] == "carol" and saved["role"] == "admin" and saved["pin"] == "135790"
    assert saved["fingers"] == [T1, T2] and len(saved["faces"]) == 3
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-5 for v in saved["faces"])
    assert ports.screen["screen"] == "enrol_done" and ports.screen["fingers"] == 2
    assert ("signal", {"kind": "ok"}) in ports.calls
    assert flow.vectors == [] and flow.templates == [] and flow.pin is None and flow.person_id is None
    flow.handle("dismissed")  # not an event of this chart: ignored
    flow.handle("cancelled")
    assert flow.state == "finished"
    assert not flow.handle("enrol_requested")  # a finished flow takes nothing more


def test_another_enrolment_can_follow_the_first(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_skipped")
    flow.handle("confirmed")
    assert flow.state == "done"
    flow.handle("enrol_requested")
    assert flow.state == "entering_details" and flow.outcome is None


# --- details --------------------------------------------------------------------------------------

@pytest.mark.parametrize("person_id, name, role, error", [
    ("alice", "Alice Again", "employee", "already_enrolled"),
    ("", "Nobody", "employee", "invalid_id"),
    (None, "Nobody", "employee", "invalid_id"),
    ("x" * 65, "Long Id", "employee", "invalid_id"),
    ("a\nb", "Control", "employee", "invalid_id"),
    ("dan", "  ", "employee", "invalid_name"),
    ("dan", "n" * 201, "employee", "invalid_name"),
    ("dan", "Dan", "root", "invalid_role"),
])
def test_bad_or_taken_details_are_refused_with_a_reason(enrol, person_id, name, role, error):
    flow, ports, _, _ = enrol()
    flow.handle("enrol_requested")
    flow.handle("details_entered", person_id=person_id, name=name, role=role)
    assert flow.state == "entering_details" and ports.screen["error"] == error


# --- the face ---------------------------------------------------------------------------------------

def test_only_good_frames_spaced_apart_count_and_guidance_is_shown(enrol):
    flow, ports, _, faces = enrol()
    to_face(flow)
    feed(flow, good(faces, guidance="move_closer"))
    assert ports.screen["guidance"] == "move_closer" and ports.screen["captured"] == 0
    feed(flow, good(faces, n=10, dt=0.05))  # 0.5 s of good frames at 20 fps: two captures, not ten
    assert ports.screen["captured"] == 2 and flow.state == "capturing_face"
    flow.handle("face_seen", frame=faces.frame(None))
    assert ports.screen["guidance"] == "no_face"
    flow.handle("face_seen", frame=None)
    feed(flow, good(faces))
    assert flow.state == "capturing_finger"


def test_the_number_of_captures_follows_the_setting(enrol):
    flow, ports, _, faces = enrol(face={"enrol_captures": 5})
    to_face(flow)
    feed(flow, good(faces, n=4))
    assert flow.state == "capturing_face" and ports.screen["needed"] == 5
    feed(flow, good(faces))
    assert flow.state == "capturing_finger" and len(flow.vectors) == 5


def test_another_face_in_view_starts_the_captures_over(enrol):
    """Captures from two people never mix: a face that changes in place restarts them."""
    flow, ports, _, faces = enrol()
    to_face(flow)
    feed(flow, good(faces, n=2))
    feed(flow, good(faces, name="mallory"))
    assert ports.screen["captured"] == 1
    feed(flow, good(faces, name="mallory", n=2))
    assert flow.state == "capturing_finger"
    assert all(float(np.dot(v, faces.vector("mallory"))) > 0.9 for v in flow.vectors)


def test_a_capture_unlike_the_first_restarts_even_when_the_tracker_misses_it(enrol):
    flow, ports, _, faces = enrol()
    flow.tracker.min_continuity = -2.0
    to_face(flow)
    flow.tracker.min_continuity = -2.0  # entering the face step reset the tracker, not its limits
    feed(flow, good(faces, n=2))
    feed(flow, good(faces, name="mallory"))
    assert ports.screen["guidance"] == "one_person_only" and ports.screen["captured"] == 0


def test_frames_without_a_usable_embedding_ask_to_hold_still(enrol):
    flow, ports, _, _ = enrol()
    to_face(flow)
    box = (220, 120, 420, 360)
    flow.handle("face_seen", frame=FaceFrame(1.0, box=box, embedding=None))
    assert ports.screen["guidance"] == "hold_still"
    flow.handle("face_seen", frame=FaceFrame(1.5, box=box, embedding=np.array([np.nan, 1.0])))
    assert ports.screen["guidance"] == "hold_still"
    flow.handle("face_seen", frame=FaceFrame(2.0, box=box, embedding=np.zeros(4)))
    assert ports.screen["guidance"] == "hold_still" and flow.vectors == []
    flow.handle("face_seen", frame=FaceFrame(2.5, box=box, embedding="not numbers"))
    flow.handle("face_seen", frame=FaceFrame(3.0, box=box, embedding=np.ones(5000)))
    assert ports.screen["guidance"] == "hold_still" and flow.vectors == []


def test_hostile_frames_never_crash_the_flow(enrol):
    flow, ports, _, faces = enrol()
    to_face(flow)
    feed(flow, good(faces))
    assert ports.screen["captured"] == 1
    box, t = (220, 120, 420, 360), faces.t
    for frame in (FaceFrame(t + 0.1, box=box, embedding=np.ones(7)),   # another size than the first
                  FaceFrame(t + 0.2, box=(1, 2, 3), embedding=None),  # not a box
                  FaceFrame(t + 0.3, box=(0, 0, float("inf"), 1)),
                  FaceFrame(t + 0.4, box="abcd"),
                  "not a frame"):
        flow.handle("face_seen", frame=frame)
        assert flow.state == "capturing_face"
    assert len(flow.vectors) == 1


def test_a_face_enrolled_under_another_id_is_refused_and_shown(enrol):
    flow, ports, _, faces = enrol()
    ports.face_dupes[3] = "alice"
    to_face(flow)
    feed(flow, good(faces, n=3))
    assert flow.state == "face_refused"
    assert ports.screen["screen"] == "enrol_duplicate" and ports.screen["other_id"] == "alice"
    assert ports.screen["kind"] == "face" and flow.vectors == []
    assert ("signal", {"kind": "error"}) in ports.calls
    assert not flow.handle("face_skipped")  # a duplicate cannot be stepped around
    flow.handle("retry_requested")
    assert flow.state == "capturing_face" and ports.count("start_capture", kind="face", mode="enrol") == 2
    flow.handle("cancelled")
    assert flow.state == "finished" and not ports.enrolled


def test_face_may_be_skipped_and_back_goes_to_the_details(enrol):
    flow, ports, _, faces = enrol()
    to_face(flow)
    feed(flow, good(faces))
    flow.handle("back_requested")
    assert flow.state == "entering_details" and flow.vectors == [] and flow.person_id is None
    to_face(flow)
    feed(flow, good(faces))
    flow.handle("face_skipped")
    assert flow.state == "capturing_finger" and flow.vectors == []


# --- the fingers ------------------------------------------------------------------------------------

def test_a_failed_finger_shows_guidance_and_can_be_retried(enrol):
    flow, ports, _, faces = enrol()
    to_fingers(flow, faces)
    flow.handle("finger_failed", guidance="finger_wet")
    assert flow.state == "finger_retry" and ports.screen["guidance"] == "finger_wet"
    assert ports.count("stop_capture", kind="finger") == 1
    flow.handle("retry_requested")
    assert flow.state == "capturing_finger" and ports.screen["finger"] == 1
    assert ports.count("start_capture", kind="finger", mode="enrol", finger=1) == 2
    flow.handle("finger_failed", guidance=b"\x00garbage")
    assert ports.screen["guidance"] == "try_again"


@pytest.mark.parametrize("template", [b"", "text", None, bytes(4097)])
def test_a_template_that_is_not_one_is_refused(enrol, template):
    flow, ports, _, faces = enrol()
    to_fingers(flow, faces)
    flow.handle("finger_enrolled", template=template)
    assert flow.state == "finger_retry" and ports.screen["guidance"] == "bad_template"
    assert flow.templates == []


def test_unknown_finger_steps_are_ignored(enrol):
    flow, ports, _, faces = enrol()
    to_fingers(flow, faces)
    before = len(ports.calls)
    flow.handle("finger_step", step="<script>", number=1)
    flow.handle("finger_step", step="place_finger", number="1" * 10000)
    flow.handle("finger_step", step="place_finger", number=-1)
    assert len(ports.calls) == before


def test_a_finger_enrolled_under_another_id_is_refused(enrol):
    flow, ports, _, faces = enrol()
    ports.finger_dupes[T2] = "bob"
    to_fingers(flow, faces)
    finger(flow, T1)
    finger(flow, T2)
    assert flow.state == "finger_refused" and ports.screen["other_id"] == "bob"
    assert ports.screen["finger"] == 2 and flow.templates == [T1]
    assert not flow.handle("fingers_skipped")
    flow.handle("retry_requested")
    assert flow.state == "capturing_finger" and ports.screen["finger"] == 2 and flow.templates == [T1]
    finger(flow, T1 + b"x")
    assert flow.state == "entering_pin" and flow.templates == [T1, T1 + b"x"]


def test_fingers_may_be_skipped_and_back_goes_to_the_face(enrol):
    flow, ports, _, faces = enrol()
    to_fingers(flow, faces)
    finger(flow, T1)
    flow.handle("back_requested")
    assert flow.state == "capturing_face" and flow.templates == [] and flow.vectors == []
    feed(flow, good(faces, n=3))
    flow.handle("fingers_skipped")
    assert flow.state == "entering_pin" and flow.templates == []
    flow.handle("back_requested")
    assert flow.state == "capturing_finger" and ports.screen["finger"] == 1


def test_fingers_may_be_skipped_after_a_failure(enrol):
    flow, _, _, faces = enrol()
    to_fingers(flow, faces)
    finger(flow, T1)
    flow.handle("finger_failed", guidance="finger_moved")
    flow.handle("fingers_skipped")
    assert flow.state == "entering_pin" and flow.templates == [T1]


# --- the voice print (where the door takes voice prints) -----------------------------------------

VOICE_DOOR = {"verify_modes": ["face", "fingerprint", "pin", "voice"]}
VOICE = np.full(192, 0.5, dtype=np.float32)


def test_without_voice_at_this_door_no_voice_print_is_asked_for(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    assert flow.state == "entering_pin" and ports.count("start_capture", kind="voice") == 0


@pytest.mark.parametrize("attendance", [VOICE_DOOR, {"voice_second_factor": True}])
def test_a_voice_print_follows_the_fingers_and_is_saved(enrol, attendance):
    flow, ports, _, faces = enrol(attendance=attendance)
    to_pin(flow, faces)
    assert flow.state == "capturing_voice"
    assert ports.calls[-1] == ("start_capture", {"kind": "voice", "mode": "enrol"})
    flow.handle("voice_enrolled", template=VOICE * 3, model_id="campplus-fp16-v1")
    assert flow.state == "entering_pin" and ports.count("stop_capture", kind="voice") == 1
    flow.handle("pin_skipped")
    assert ports.screen["screen"] == "enrol_summary" and ports.screen["voice"] is True
    flow.handle("confirmed")
    model_id, vector = ports.enrolled[-1]["voice"]
    assert model_id == "campplus-fp16-v1" and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert ports.screen["screen"] == "enrol_done" and ports.screen["voice"] is True
    assert flow.voice is None  # wiped after saving


def test_a_voice_print_alone_is_enough_proof(enrol):
    flow, ports, _, _ = enrol(attendance=VOICE_DOOR)
    to_face(flow)
    flow.handle("face_skipped")
    flow.handle("fingers_skipped")
    assert flow.state == "capturing_voice"
    flow.handle("voice_enrolled", template=VOICE, model_id="campplus-fp16-v1")
    flow.handle("pin_skipped")
    assert flow.state == "summary"
    flow.handle("confirmed")
    assert flow.state == "done" and ports.enrolled[-1]["faces"] == [] and ports.enrolled[-1]["voice"] is not None


def test_a_failed_voice_print_shows_guidance_can_be_retried_or_skipped(enrol):
    flow, ports, _, faces = enrol(attendance=VOICE_DOOR)
    to_fingers(flow, faces)
    flow.handle("finger_failed", guidance="finger_dirty")
    flow.handle("fingers_skipped")
    assert flow.state == "capturing_voice"
    flow.handle("voice_failed", guidance="too_noisy")
    assert flow.state == "voice_retry" and ports.screen == {"screen": "enrol_voice_retry", "guidance": "too_noisy"}
    flow.handle("retry_requested")
    assert flow.state == "capturing_voice" and ports.count("start_capture", kind="voice", mode="enrol") == 2
    flow.handle("voice_skipped")
    assert flow.state == "entering_pin" and flow.voice is None
    flow.handle("back_requested")
    assert flow.state == "capturing_voice"
    flow.handle("voice_failed", guidance="microphone")
    flow.handle("voice_skipped")
    assert flow.state == "entering_pin"


@pytest.mark.parametrize("template,model_id", [
    (np.full(192, np.nan, np.float32), "campplus-fp16-v1"), (np.zeros(192, np.float32), "campplus-fp16-v1"),
    ("not a vector", "campplus-fp16-v1"), (np.ones(5000, np.float32), "campplus-fp16-v1"), (VOICE, None),
    (VOICE, "m" * 65)])
def test_a_voice_print_that_is_not_one_is_refused(enrol, template, model_id):
    flow, ports, _, faces = enrol(attendance=VOICE_DOOR)
    to_pin(flow, faces)
    flow.handle("voice_enrolled", template=template, model_id=model_id)
    assert flow.state == "voice_retry" and flow.voice is None and ports.screen["screen"] == "enrol_voice_retry"


def test_back_from_the_voice_print_goes_to_the_fingers(enrol):
    flow, _, _, faces = enrol(attendance=VOICE_DOOR)
    to_pin(flow, faces)
    flow.handle("back_requested")
    assert flow.state == "capturing_finger" and flow.templates == []


@pytest.mark.parametrize("where", ["capturing_voice", "voice_retry"])
def test_the_voice_steps_time_out_or_cancel_and_wipe(enrol, where):
    for leave in ("timed_out", "cancelled"):
        flow, ports, clock, faces = enrol(attendance=VOICE_DOOR)
        to_pin(flow, faces)
        if where == "voice_retry":
            flow.handle("voice_failed", guidance="clipped")
        if leave == "timed_out":
            clock.advance(31)
            flow.tick()
            if where == "capturing_voice":  # three readings take longer than the inactivity timeout
                assert flow.state == "capturing_voice"
                clock.advance(6 * (5.0 + 5.0))
                flow.tick()
        else:
            flow.handle("cancelled")
        assert flow.state == "finished" and flow.voice is None and ports.calls[-1] == ("stop_capture", {"kind": "voice"})


# --- the PIN -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "", None, "1" * 5000])
def test_a_pin_must_be_six_digits(enrol, pin):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_entered", pin=pin)
    assert flow.state == "entering_pin" and ports.screen["error"] == "pin_six_digits"


def test_a_pin_typed_differently_the_second_time_starts_again(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_entered", pin="135790")
    flow.handle("pin_entered", pin="135791")
    assert flow.state == "entering_pin" and ports.screen["error"] == "pins_differ" and flow.first_pin is None
    flow.handle("pin_entered", pin="246800")
    flow.handle("back_requested")
    assert flow.state == "entering_pin" and ports.screen["error"] is None and flow.first_pin is None


def test_without_face_or_finger_a_pin_is_required(enrol):
    flow, ports, _, faces = enrol()
    to_face(flow)
    flow.handle("face_skipped")
    flow.handle("fingers_skipped")
    assert ports.screen["optional"] is False
    flow.handle("pin_skipped")
    assert flow.state == "entering_pin" and ports.screen["error"] == "face_finger_or_pin_needed"
    flow.handle("pin_entered", pin="135790")
    flow.handle("pin_entered", pin="135790")
    flow.handle("confirmed")
    assert flow.state == "done" and ports.enrolled[-1]["faces"] == [] and ports.enrolled[-1]["fingers"] == []
    assert ports.enrolled[-1]["pin"] == "135790"


def test_confirm_is_refused_without_any_proof(enrol):
    """The guard on saving holds even if the chart were reached another way."""
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_skipped")
    flow.vectors, flow.templates = [], []
    assert not flow.handle("confirmed")
    assert flow.state == "summary" and not ports.enrolled


def test_summary_back_goes_to_the_pin_and_forgets_it(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_entered", pin="135790")
    flow.handle("pin_entered", pin="135790")
    assert flow.pin == "135790"
    flow.handle("back_requested")
    assert flow.state == "entering_pin" and flow.pin is None
    flow.handle("pin_skipped")
    flow.handle("confirmed")
    assert ports.enrolled[-1]["pin"] is None


# --- saving -------------------------------------------------------------------------------------------

def test_a_failed_save_keeps_the_captures_for_a_retry(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_skipped")
    ports.fail_enrol = DiskFullError("disk full")
    ports.fail_enrol.guidance = "storage_full"
    flow.handle("confirmed")
    assert flow.state == "failed" and ports.screen["reason"] == "storage_full" and ports.screen["retry"] is True
    assert len(flow.vectors) == 3 and flow.templates == [T1, T2]
    ports.fail_enrol = None
    flow.handle("retry_requested")
    assert flow.state == "done" and ports.enrolled[-1]["fingers"] == [T1, T2]


def test_a_failed_save_can_be_abandoned_and_wipes(enrol):
    flow, ports, _, faces = enrol()
    to_pin(flow, faces)
    flow.handle("pin_skipped")
    ports.fail_enrol = StorageError("sensor full")
    flow.handle("confirmed")
    assert ports.screen["reason"] == "not_saved"
    flow.handle("cancelled")
    assert flow.state == "finished" and flow.vectors == [] and flow.templates == []


# --- inactivity -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4])
def test_inactivity_anywhere_finishes_and_wipes(enrol, steps):
    flow, ports, clock, faces = enrol()
    if steps >= 1:
        to_face(flow)
        feed(flow, good(faces, n=2))
    if steps >= 2:
        feed(flow, good(faces))
    if steps >= 3:
        finger(flow, T1)
    if steps >= 4:
        flow.handle("pin_entered", pin="135790")
    held = flow.state
    clock.advance(29)
    flow.tick()
    assert flow.state == held
    clock.advance(2)
    flow.tick()
    assert flow.state == "finished"
    assert flow.vectors == [] and flow.templates == [] and flow.first_pin is None and flow.person_id is None
    assert ports.calls[-3:] == [("stop_capture", {"kind": "face"}), ("stop_capture", {"kind": "finger"}),
                                 ("stop_capture", {"kind": "voice"})]


def test_activity_keeps_the_step_open(enrol):
    flow, _, clock, faces = enrol()
    to_face(flow)
    for _ in range(3):
        clock.advance(20)
        feed(flow, good(faces, guidance="more_light"))
        flow.tick()
    assert flow.state == "capturing_face"
    flow.handle("face_skipped")
    for _ in range(3):
        clock.advance(20)
        flow.handle("finger_step", step="place_finger", number=1)
        flow.tick()
    assert flow.state == "capturing_finger"


@pytest.mark.parametrize("where", ["face_refused", "finger_retry", "finger_refused", "confirming_pin",
                                   "summary", "failed", "done", "confirming_delete", "ready",
                                   "entering_details", "capturing_face", "capturing_finger",
                                   "entering_pin"])
def test_every_waiting_state_times_out_or_cancels(enrol, where):
    for leave in ("timed_out", "cancelled"):
        flow, ports, clock, faces = enrol()
        _reach(flow, ports, faces, where)
        assert flow.state == where
        if leave == "timed_out":
            clock.advance(31)
            flow.tick()
        else:
            flow.handle("cancelled")
        assert flow.state == "finished"


def _reach(flow, ports, faces, where):
    if where == "ready":
        return
    if where == "entering_details":
        flow.handle("enrol_requested")
    elif where == "confirming_delete":
        flow.handle("person_delete_requested", person_id="bob")
    elif where == "capturing_face":
        to_face(flow)
    elif where == "capturing_finger":
        to_fingers(flow, faces)
    elif where == "entering_pin":
        to_pin(flow, faces)
    elif where == "face_refused":
        ports.face_dupes[3] = "alice"
        to_fingers(flow, faces)
    elif where == "finger_retry":
        to_fingers(flow, faces)
        flow.handle("finger_failed", guidance="finger_dirty")
    elif where == "finger_refused":
        ports.finger_dupes[T1] = "bob"
        to_fingers(flow, faces)
        finger(flow, T1)
    else:
        to_pin(flow, faces)
        flow.handle("pin_entered", pin="135790")
        if where in ("summary", "failed", "done"):
            flow.handle("pin_entered", pin="135790")
        if where == "failed":
            ports.fail_enrol = StorageError("no")
        if where in ("failed", "done"):
            flow.handle("confirmed")


# --- deleting --------------------------------------------------------------------------------------------

def test_delete_asks_for_confirmation_then_deletes(enrol):
    flow, ports, _, _ = enrol()
    flow.handle("person_delete_requested", person_id="bob")
    assert flow.state == "confirming_delete"
    assert ports.screen["screen"] == "delete_confirm" and ports.screen["name"] == "Bob Brown"
    assert not ports.deleted
    flow.handle("confirmed")
    assert flow.state == "done" and ports.deleted == ["bob"]
    assert ports.screen["action"] == "deleted" and ports.screen["person_id"] == "bob"


def test_a_person_deactivated_centrally_can_still_be_deleted_at_the_kiosk(tmp_path):
    # on the real ports: they cannot clock in, but the People page lists them and their templates are here
    from kiosk.device_ports import DevicePorts, HeadlessScreen
    from kiosk.storage import db, outbox, people
    from kiosk.storage.seal import DataKey

    clock = FakeClock(start=1_700_000_000.0)
    settings = config.build([("test", {"ui": {"inactivity_timeout_s": 30.0}})])
    database, key = db.open_db(":memory:"), DataKey.create(tmp_path / "data.key")
    people.upsert_person(database, {"person_id": "dan", "name": "Dan Dark", "active": 0})
    people.add_face_template(database, key, "dan", "sface_int8", np.ones(8, np.float32))
    ports = DevicePorts(settings=settings, database=database, data_key=key, clock=clock, screen=HeadlessScreen())
    assert ports.person("dan") is None  # no clock-in for them
    flow = EnrolmentFlow(ports=ports, clock=clock, settings=settings)
    flow.handle("person_delete_requested", person_id="dan")
    assert flow.state == "confirming_delete" and ports.screen.current[1]["name"] == "Dan Dark"
    flow.handle("confirmed")
    assert flow.state == "done" and people.get_person(database, "dan") is None
    assert database.execute("SELECT count(*) FROM face_templates").fetchone()[0] == 0
    assert [r.kind for r in outbox.pending(database)] == ["person_deleted"]


def test_deleting_someone_unknown_is_an_error_without_retry(enrol):
    flow, ports, _, _ = enrol()
    flow.handle("person_delete_requested", person_id="zed")
    assert flow.state == "failed" and ports.screen["reason"] == "unknown_person"
    assert not flow.handle("retry_requested") and flow.state == "failed"


def test_a_failed_delete_can_be_retried(enrol):
    flow, ports, _, _ = enrol()
    flow.handle("person_delete_requested", person_id="bob")
    ports.fail_delete = StorageError("locked")
    flow.handle("confirmed")
    assert flow.state == "failed" and ports.screen["reason"] == "not_deleted" and ports.screen["retry"] is True
    ports.fail_delete = None
    flow.handle("retry_requested")
    assert flow.state == "done" and ports.deleted == ["bob"]


def test_nothing_captured_reaches_the_log(enrol, caplog):
    flow, ports, _, faces = enrol()
    ports.finger_dupes[T2] = "bob"
    caplog.set_level("DEBUG")
    to_pin(flow, faces)
    flow.handle("retry_requested")
    finger(flow, T1 + b"y")
    flow.handle("pin_entered", pin="135790")
    flow.handle("pin_entered", pin="135790")
    flow.handle("confirmed")
    assert flow.state == "done"
    text = caplog.text
    assert "135790" not in text and repr(T1[:8]) not in text and "carol" in text


def test_zz_every_declared_transition_was_taken():
    missing = declared_transitions(EnrolmentFlow) - TAKEN
    assert not missing, f"transitions never exercised: {sorted(missing)}"
