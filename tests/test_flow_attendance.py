"""The attendance flow on the fake clock: every path, timeout and refusal, with no models and no sleeps."""

import dataclasses

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import DiskFullError
from kiosk.flows.attendance import AttendanceFlow
from kiosk.flows.base import declared_transitions
from kiosk.flows.ports import Person
from kiosk.models.gallery import Match

from flow_fakes import Faces, FirstChoice, RecordingPorts

TAKEN = set()
ALICE = Person("alice", "Alice Adams", has_pin=True)
BOB = Person("bob", "Bob Brown")
ENROLLED = ("alice", "bob", "carol", "dave")


def make(*, attendance=None, face=None, ui=None, clock=None, rng=None):
    clock = clock or FakeClock(start=1_700_000_000.0)  # 2023-11-14 22:13 UTC
    settings = config.build([("test", {
        "device": {"timezone": "UTC"},
        "face": {"liveness": "challenge", "challenge": "turn", **(face or {})},
        "attendance": {"status_rule": "toggle", **(attendance or {})},
        "ui": ui or {},
    })])
    ports = RecordingPorts(clock, [ALICE, BOB], pins={"alice": "135790"}, slots={3: "bob"})
    flow = AttendanceFlow(ports=ports, clock=clock, settings=settings, rng=rng or FirstChoice())
    return flow, ports, clock, Faces(ENROLLED)


@pytest.fixture(autouse=True)
def _collect():
    flows = []
    yield flows
    for flow in flows:
        TAKEN.update(flow.transitions_taken)


@pytest.fixture
def kiosk(_collect):
    def build(**kw):
        made = make(**kw)
        _collect.append(made[0])
        return made
    return build


def feed(flow, frames):
    for frame in frames:
        flow.handle("face_seen", frame=frame)


def test_idle_starts_cameras_and_dims_then_wakes_on_presence(kiosk):
    flow, ports, clock, _ = kiosk()
    assert flow.state == "idle"
    assert ports.count("start_capture", kind="face", mode="detect") == 1
    assert ports.count("start_capture", kind="finger", mode="identify") == 1
    assert ports.screen["screen"] == "attendance_idle" and ports.screen["language"] == "ar"
    clock.advance(30)
    flow.handle("presence_detected")  # someone passed: the dimming waits again
    clock.advance(45)
    flow.tick()
    assert flow.state == "idle"
    clock.advance(16)
    flow.tick()
    assert flow.state == "dimmed" and ports.calls[-1] == ("dim", {"dimmed": True})
    flow.handle("presence_detected")
    assert flow.state == "idle" and ("dim", {"dimmed": False}) in ports.calls[-4:]


def test_face_with_challenge_is_recorded_before_the_door_opens(kiosk):
    flow, ports, clock, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    assert flow.state == "watching" and ports.count("start_capture", kind="face", mode="identify") == 1
    feed(flow, faces.turn_left("alice"))
    assert flow.state == "showing_result"
    assert [r.person_id for r in ports.records] == ["alice"]
    assert ports.records[0].verify_mode == "face" and ports.records[0].status == 0
    names = ports.names()
    assert names.index("record") < names.index("open_door") < len(names)
    assert ("signal", {"kind": "ok"}) in ports.calls
    result = ports.screen
    assert result["screen"] == "result" and result["name"] == "Alice Adams" and result["time"] == "22:13"
    assert result["status_name"] == "check-in" and result["already"] is False


def test_the_challenge_is_shown_while_it_is_pending(kiosk):
    flow, ports, _, faces = kiosk()
    feed(flow, [faces.frame("alice"), faces.frame("alice"), faces.frame("alice")])
    assert ports.screen["screen"] == "face_challenge" and ports.screen["challenge"] == "turn_left"
    feed(flow, [faces.frame("alice", guidance="move_closer")])  # stepped back: the challenge stays
    assert ports.screen["screen"] == "face_challenge" and ports.screen["guidance"] == "move_closer"
    feed(flow, [faces.frame("alice", guidance="more_light")])
    assert ports.screen["screen"] == "face_guidance" and ports.screen["guidance"] == "more_light"
    assert not ports.records


SMALL_BOX = (300, 200, 330, 240)   # 30 px wide: under 0.45 face.min_face_px, too far to measure the pose
FAR_BOX = (290, 190, 350, 260)     # 60 px: still coming, but the head pose can be measured
NEAR_BOX = (284, 184, 358, 270)    # 74 px: 0.9 face.min_face_px, a turn is judged, not yet identified


def box_of(width, centre=(320, 225)):
    return (centre[0] - width / 2, centre[1] - width / 2, centre[0] + width / 2, centre[1] + width / 2)


def test_the_challenge_is_asked_while_the_person_is_still_coming(kiosk):
    flow, ports, _, faces = kiosk()
    feed(flow, [faces.frame("alice", box=SMALL_BOX, guidance="move_closer") for _ in range(2)])
    assert ports.screen["screen"] == "face_guidance" and ports.screen["guidance"] == "move_closer"
    flow, ports, _, faces = kiosk()
    feed(flow, [faces.frame("alice", box=FAR_BOX, guidance="move_closer") for _ in range(5)])
    assert ports.screen["screen"] == "face_guidance"  # standing at 60 px: not identifiable in time, not asked
    # walking in at 45 px/s (3 px a frame): asked once it will be 80 px wide within face_attempt.LEAD_S
    for width in range(60, 70, 3):
        feed(flow, [faces.frame("alice", box=box_of(width), guidance="move_closer")])
    assert ports.screen["screen"] == "face_challenge" and ports.screen["guidance"] == "move_closer"
    for frame in faces.turn_left("alice", box=NEAR_BOX, guidance="move_closer"):
        feed(flow, [frame])
    assert flow.attempt.challenge.status.passed
    assert not ports.records  # live, but not yet in the guide: nothing is matched from far away
    feed(flow, [faces.frame("alice"), faces.frame("alice")])  # arrives in the guide
    assert [r.person_id for r in ports.records] == ["alice"]


def test_a_turn_on_a_face_too_small_to_judge_counts_for_nothing(kiosk):
    """A photo tilted as a whole reads as a turned head now and then on small faces: not judged there."""
    flow, ports, _, faces = kiosk()
    for width in range(40, 64, 4):
        feed(flow, [faces.frame("alice", box=box_of(width), guidance="move_closer")])
    assert ports.screen["screen"] == "face_challenge"
    for frame in faces.turn_left("alice", box=FAR_BOX, guidance="move_closer"):
        feed(flow, [frame])
    assert flow.attempt.challenge.status.stage.value == "acting"  # neither passed nor failed
    flat = [faces.frame("alice", yaw=25.0, box=FAR_BOX, planar=True, failures=("face_the_camera",))
            for _ in range(3)]
    feed(flow, flat)
    assert flow.attempt.challenge.status.stage.value == "acting"  # not even refused as planar


def test_a_photo_raised_after_a_challenge_done_on_the_way_is_refused(kiosk):
    """The swap attack with the turn made while walking up: the photo never joins the performer."""
    flow, ports, _, faces = kiosk()
    flow.attempt.tracker.min_continuity = -2.0  # the worst case: the swap is not seen as a new face
    feed(flow, faces.turn_left("mallory", box=FAR_BOX, guidance="move_closer"))
    feed(flow, [faces.frame("mallory", guidance="move_closer")])  # alone and still coming: chained
    feed(flow, [faces.frame("alice", jitter=0.02) for _ in range(30)])  # the photo, in the guide
    assert not ports.records and ports.count("open_door") == 0


def test_a_photo_around_someone_elses_turn_is_never_accepted(kiosk):
    """The 'sandwich': the enrolled person's photo for the frontal frames, the attacker's own head for the turn."""
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice", jitter=0.02))
    feed(flow, [faces.frame("alice", jitter=0.02) for _ in range(3)])  # alice's photo: baseline and votes
    feed(flow, [faces.frame("mallory", yaw=30.0, failures=("face_the_camera",)) for _ in range(2)])  # photo down
    feed(flow, [faces.frame("alice", jitter=0.02) for _ in range(5)])  # the photo up again
    assert not ports.records and ports.count("open_door") == 0


def test_a_face_identified_before_the_turn_is_accepted_on_the_frame_that_completes_it(kiosk):
    flow, ports, _, faces = kiosk()  # agree_frames 2 of window_frames 3
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice") for _ in range(2)])  # identified; only liveness is missing
    assert not ports.records
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("face_the_camera",))])
    assert not ports.records  # one turned frame does not pass the challenge
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("face_the_camera",))])
    assert [r.person_id for r in ports.records] == ["alice"]  # the second one does: the door opens on it


def test_frames_of_the_turned_head_do_not_push_earlier_votes_out_of_the_window(kiosk):
    flow, ports, _, faces = kiosk()  # agree_frames 2 of window_frames 3
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice")])  # one vote before the turn: not yet identified
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("face_the_camera",)) for _ in range(4)])
    assert flow.attempt.challenge.status.passed and not ports.records
    feed(flow, [faces.frame("alice")])  # the first good frame after the turn decides, with the vote before
    assert [r.person_id for r in ports.records] == ["alice"]


def test_a_frame_matching_someone_else_before_the_turn_undoes_the_identification(kiosk):
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice") for _ in range(2)])
    threshold = flow.settings.face.match_threshold
    low = (Match("alice", threshold - 0.15),)
    feed(flow, [dataclasses.replace(faces.frame("alice", yaw=14.0), matches=low)])  # turning: a weak match
    assert flow.attempt.identified.person_id == "alice"  # says nothing against alice
    bob = (Match("bob", threshold + 0.1), Match("alice", threshold - 0.2))
    feed(flow, [dataclasses.replace(faces.frame("alice"), matches=bob)])  # a frame that is bob's
    assert flow.attempt.identified is None
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("face_the_camera",)) for _ in range(2)])
    assert flow.attempt.challenge.status.passed and not ports.records


def test_a_head_held_at_the_asked_turn_is_not_refused_before_it_faces_the_camera(kiosk):
    """Turned past the challenge's yaw yet inside the quality gate (another photo of the person, scoring low)."""
    flow, ports, _, faces = kiosk()
    flow.attempt.tracker.min_continuity = -2.0  # keep one track whatever the turned frames score
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice")])  # one vote: not identified before the turn
    # the same face turned, which the gallery scores low (as a view unlike the enrolment photos may)
    low = (Match("alice", flow.settings.face.match_threshold - 0.15),)
    held = [dataclasses.replace(faces.frame("alice", yaw=20.0), matches=low)
            for _ in range(2 * flow.attempt.unrecognised_frames)]
    assert all(f.guidance is None for f in held)
    feed(flow, held)
    assert flow.attempt.challenge.status.passed
    assert ports.count("show", screen="not_recognised") == 0 and not ports.records
    feed(flow, [faces.frame("alice") for _ in range(3)])  # faces the camera again
    assert [r.person_id for r in ports.records] == ["alice"]


def test_frames_of_a_face_out_of_position_still_count_against_the_window(kiosk):
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice")])  # one vote: not identified before the turn
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("face_the_camera",)) for _ in range(2)])
    feed(flow, [faces.frame("alice", failures=("more_light",)) for _ in range(2)])  # not a turn: an empty vote
    feed(flow, [faces.frame("alice")])
    assert not ports.records  # 1 of the last 3
    feed(flow, [faces.frame("alice")])
    assert [r.person_id for r in ports.records] == ["alice"]


def test_photo_swap_after_a_live_challenge_is_never_accepted(kiosk):
    """An unenrolled live person performs the challenge, then raises a photo of an enrolled one."""
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("mallory"))
    feed(flow, faces.turn_left("mallory"))            # live, but nobody we know
    feed(flow, [faces.frame("alice", jitter=0.02) for _ in range(30)])  # the printed photo, held still
    assert not ports.records and ports.count("open_door") == 0


def test_photo_swap_is_refused_even_when_the_tracker_misses_the_swap(kiosk):
    flow, ports, _, faces = kiosk()
    flow.attempt.tracker.min_continuity = -2.0  # the worst case: the swap is not seen as a new face
    flow.handle("face_seen", frame=faces.frame("mallory"))
    feed(flow, faces.turn_left("mallory"))
    feed(flow, [faces.frame("alice", jitter=0.02) for _ in range(30)])
    assert not ports.records and ports.count("open_door") == 0


def test_a_printed_photo_of_an_enrolled_person_fails_liveness(kiosk):
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    frames = [faces.frame("alice", jitter=0.02) for _ in range(2)]
    frames += [faces.frame("alice", yaw=25.0, planar=True, failures=("face_the_camera",), jitter=0.02)
               for _ in range(2)]
    feed(flow, frames)
    assert flow.state == "not_recognised"
    assert ports.screen["reason"] == "liveness_planar_motion"
    assert not ports.records and ports.count("open_door") == 0
    assert ("signal", {"kind": "error"}) in ports.calls


def test_unknown_face_is_not_recognised_and_fallbacks_follow(kiosk):
    flow, ports, clock, faces = kiosk(attendance={"unrecognised_frames": 4, "face_attempts_before_fallback": 2})
    flow.handle("face_seen", frame=faces.frame("mallory"))
    feed(flow, faces.turn_left("mallory") + [faces.frame("mallory") for _ in range(4)])
    assert flow.state == "not_recognised" and ports.screen["reason"] == "not_recognised"
    assert ports.screen["fallbacks"] == []
    flow.handle("retry_requested")
    assert flow.state == "watching"
    feed(flow, faces.turn_left("mallory") + [faces.frame("mallory") for _ in range(4)])
    assert flow.state == "not_recognised" and ports.screen["fallbacks"] == ["fingerprint", "pin"]
    clock.advance(31)
    flow.tick()
    assert flow.state == "idle" and not ports.records


def test_not_recognised_can_be_left(kiosk):
    flow, ports, _, faces = kiosk(attendance={"unrecognised_frames": 2})
    flow.handle("face_seen", frame=faces.frame("mallory"))
    feed(flow, faces.turn_left("mallory") + [faces.frame("mallory") for _ in range(3)])
    flow.handle("cancelled")
    assert flow.state == "idle"


def test_watching_goes_idle_when_the_face_leaves(kiosk):
    flow, ports, clock, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame(None) for _ in range(20)])
    clock.advance(5.1)
    flow.tick()
    assert flow.state == "idle"


def test_dimmed_kiosk_wakes_on_a_face(kiosk):
    flow, ports, clock, faces = kiosk()
    clock.advance(61)
    flow.tick()
    assert flow.state == "dimmed"
    flow.handle("face_seen", frame=faces.frame("alice"))
    assert flow.state == "watching" and ports.calls[-3][0] == "dim"


@pytest.mark.parametrize("start", ["idle", "dimmed", "watching", "not_recognised"])
def test_fingerprint_works_from_every_waiting_state(kiosk, start):
    flow, ports, clock, faces = kiosk(attendance={"unrecognised_frames": 2})
    reach(flow, clock, faces, start)
    flow.handle("finger_matched", slot=3, score=120)
    assert flow.state == "showing_result"
    assert ports.records[-1].person_id == "bob" and ports.records[-1].verify_mode == "fingerprint"
    assert ports.count("open_door") == 1


@pytest.mark.parametrize("start", ["idle", "dimmed", "watching", "not_recognised"])
def test_fingerprint_guidance_reaches_the_screen(kiosk, start):
    flow, ports, clock, faces = kiosk(attendance={"unrecognised_frames": 2})
    reach(flow, clock, faces, start)
    flow.handle("finger_not_matched", guidance="clean_and_dry_finger")
    assert flow.state == "not_recognised" and ports.screen["guidance"] == "clean_and_dry_finger"
    assert not ports.records


def reach(flow, clock, faces, state):
    if state == "dimmed":
        clock.advance(61)
        flow.tick()
    elif state == "watching":
        flow.handle("face_seen", frame=faces.frame("mallory"))
    elif state == "not_recognised":
        flow.handle("face_seen", frame=faces.frame("mallory"))
        feed(flow, faces.turn_left("mallory") + [faces.frame("mallory") for _ in range(3)])
    assert flow.state == state


def test_an_unknown_finger_slot_records_nothing_and_keeps_the_door_shut(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("finger_matched", slot=77, score=90)
    assert flow.state == "refused" and ports.screen["reason"] == "unknown_person"
    assert not ports.records and ports.count("open_door") == 0
    clock.advance(3)
    flow.tick()
    assert flow.state == "idle"


@pytest.mark.parametrize("start", ["idle", "dimmed", "watching", "not_recognised"])
def test_pin_fallback_records_with_verify_mode_pin(kiosk, start):
    flow, ports, clock, faces = kiosk(attendance={"unrecognised_frames": 2})
    reach(flow, clock, faces, start)
    flow.handle("pin_requested")
    assert flow.state == "entering_id" and ports.screen["screen"] == "id_keypad"
    flow.handle("id_entered", typed="nobody")
    assert flow.state == "entering_id" and ports.screen["error"] == "unknown_id"
    flow.handle("id_entered", typed="bob")  # known, but has no PIN
    assert flow.state == "entering_id"
    flow.handle("id_entered", typed="alice")
    assert flow.state == "entering_pin" and ports.screen["screen"] == "pin_keypad"
    flow.handle("pin_entered", pin="000000")
    assert flow.state == "entering_pin" and ports.screen["error"] == "wrong_pin"
    assert ports.screen["attempts_left"] == 2
    flow.handle("pin_entered", pin="135790")
    assert flow.state == "showing_result" and ports.records[-1].verify_mode == "pin"


def test_pin_lockout_refuses_and_goes_home(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="alice")
    for _ in range(3):
        flow.handle("pin_entered", pin="999999")
    assert flow.state == "refused" and ports.screen["reason"] == "pin_locked"
    flow.handle("cancelled")
    assert flow.state == "idle"
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="alice")
    flow.handle("pin_entered", pin="135790")  # right PIN, still locked
    assert flow.state == "refused" and not ports.records


@pytest.mark.parametrize("state", ["entering_id", "entering_pin"])
def test_keypads_time_out_and_cancel_home_wiping_what_was_typed(kiosk, state):
    for leave in ("timed_out", "cancelled"):
        flow, ports, clock, _ = kiosk()
        flow.handle("pin_requested")
        if state == "entering_pin":
            flow.handle("id_entered", typed="alice")
        assert flow.state == state
        if leave == "timed_out":
            clock.advance(30.5)
            flow.tick()
        else:
            flow.handle("cancelled")
        assert flow.state == "idle" and flow.pending is None


def test_the_same_person_again_is_told_already_recorded(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("finger_matched", slot=3, score=100)
    clock.advance(40)
    flow.handle("cancelled")
    flow.handle("finger_matched", slot=3, score=100)
    assert len(ports.records) == 1
    assert ports.screen["already"] is True and ports.screen["time"] == "22:13"
    assert ports.count("open_door") == 2 and ports.count("signal", kind="ok") == 2
    clock.advance(61)
    flow.handle("cancelled")
    flow.handle("finger_matched", slot=3, score=100)
    assert len(ports.records) == 2 and ports.records[1].status == 1  # toggle: check-out


def test_the_guard_holds_when_the_clock_is_stepped_back_but_not_for_a_punch_dated_far_ahead(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("finger_matched", slot=3, score=100)
    clock.set_wall(clock.time() - 30)  # NTP steps a clock that ran fast back by 30 s
    clock.advance(5)
    flow.handle("cancelled")
    flow.handle("finger_matched", slot=3, score=100)
    assert len(ports.records) == 1 and ports.screen["already"] is True  # not a check-out 5 s after the check-in
    clock.set_wall(clock.time() - 86400)  # the first punch was made a day ahead of the true time
    flow.handle("cancelled")
    flow.handle("finger_matched", slot=3, score=100)
    assert len(ports.records) == 2 and ports.screen["already"] is False


def test_asked_punch_state_is_chosen_on_screen(kiosk):
    flow, ports, clock, _ = kiosk(attendance={"status_rule": "ask"})
    flow.handle("finger_matched", slot=3, score=100)
    assert flow.state == "choosing_punch" and ports.screen["suggested"] == 0
    flow.handle("punch_chosen", status=9)  # not a status code: ignored
    assert flow.state == "choosing_punch"
    flow.handle("punch_chosen", status=2)
    assert flow.state == "showing_result" and ports.records[-1].status == 2


def test_asked_punch_state_times_out_to_the_suggestion(kiosk):
    flow, ports, clock, _ = kiosk(attendance={"status_rule": "ask"})
    flow.handle("finger_matched", slot=3, score=100)
    clock.advance(5.1)
    flow.tick()
    assert flow.state == "showing_result" and ports.records[-1].status == 0


def test_asked_punch_state_can_be_cancelled(kiosk):
    flow, ports, clock, _ = kiosk(attendance={"status_rule": "ask"})
    flow.handle("finger_matched", slot=3, score=100)
    flow.handle("cancelled")
    assert flow.state == "idle" and not ports.records


def test_a_storage_failure_says_so_and_keeps_the_door_shut(kiosk):
    flow, ports, clock, _ = kiosk()
    ports.fail_record = DiskFullError("disk full", guidance="storage_full")
    flow.handle("finger_matched", slot=3, score=100)
    assert flow.state == "refused" and ports.screen["reason"] == "storage_full"
    assert ports.count("open_door") == 0 and ("signal", {"kind": "error"}) in ports.calls
    flow.handle("cancelled")
    assert flow.state == "idle"


def test_door_stays_shut_when_configured_so(kiosk):
    flow, ports, _, _ = kiosk(attendance={"open_door": False})
    flow.handle("finger_matched", slot=3, score=100)
    assert ports.records and ports.count("open_door") == 0


def test_after_the_result_the_person_served_is_not_served_again(kiosk):
    flow, ports, clock, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, faces.turn_left("alice"))
    feed(flow, [faces.frame("alice") for _ in range(10)])   # still standing there
    clock.advance(2.6)
    flow.tick()
    assert flow.state == "watching"
    feed(flow, [faces.frame("alice") for _ in range(40)])
    assert len(ports.records) == 1 and flow.state == "watching"
    feed(flow, [faces.frame(None) for _ in range(12)])     # they leave, the next one comes
    flow.handle("face_seen", frame=faces.frame("carol"))
    assert ports.screen["screen"] == "face_challenge"


def test_the_next_person_in_line_is_served_without_waiting_for_the_result_to_end(kiosk):
    flow, ports, clock, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, faces.turn_left("alice"))
    assert flow.state == "showing_result"
    captures = [data for name, data in ports.calls if name in ("start_capture", "stop_capture")
                and data.get("kind") == "face"]
    assert captures[-1] == {"kind": "face", "mode": "identify"}  # the camera still looks while the result shows
    feed(flow, [faces.frame("alice") for _ in range(3)])                      # alice still there
    feed(flow, [faces.frame("bob", guidance="move_closer") for _ in range(2)])  # bob steps up
    assert flow.state == "showing_result"                                     # not in position yet
    feed(flow, [faces.frame("bob")])
    assert flow.state == "watching"                                           # no waiting for result_s
    feed(flow, faces.turn_left("bob"))
    assert [r.person_id for r in ports.records] == ["alice", "bob"]


def test_result_goes_home_when_face_is_not_a_verify_mode(kiosk):
    flow, ports, clock, faces = kiosk(attendance={"verify_modes": ["fingerprint"]})
    flow.handle("face_seen", frame=faces.frame("alice"))
    assert flow.state == "idle"  # face disabled at this door
    flow.handle("pin_requested")
    assert flow.state == "idle"
    flow.handle("finger_matched", slot=3, score=100)
    clock.advance(2.6)
    flow.tick()
    assert flow.state == "idle"
    flow.handle("finger_matched", slot=3, score=100)
    flow.handle("cancelled")
    assert flow.state == "idle"


def test_language_switches_for_one_session(kiosk):
    flow, ports, clock, faces = kiosk()
    for state in ("idle", "dimmed", "watching", "not_recognised", "entering_id", "entering_pin"):
        flow2, ports2, clock2, faces2 = kiosk(attendance={"unrecognised_frames": 2})
        if state in ("entering_id", "entering_pin"):
            flow2.handle("pin_requested")
            if state == "entering_pin":
                flow2.handle("id_entered", typed="alice")
        else:
            reach(flow2, clock2, faces2, state)
        flow2.handle("language_chosen", language="en")
        flow2.handle("language_chosen", language="xx")  # not a language: ignored
        assert flow2.language == "en"
    flow.handle("language_chosen", language="en")
    flow.handle("finger_matched", slot=3, score=100)
    assert ports.screen["language"] == "en"
    flow.handle("cancelled")
    assert flow.language == "ar"  # the next person starts in the default language


def test_stray_events_are_ignored(kiosk):
    flow, ports, _, faces = kiosk()
    assert flow.handle("punch_chosen", status=1) is False
    assert flow.handle("no_such_event") is False
    flow.handle("pin_requested")
    assert flow.handle("face_seen", frame=faces.frame("alice")) is False  # a late frame on the keypad
    assert flow.handle("face_seen") is False
    assert flow.state == "entering_id"


def test_passive_liveness_alone(kiosk):
    flow, ports, _, faces = kiosk(face={"liveness": "passive"})
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice", attack_score=0.05) for _ in range(5)])
    assert ports.records and ports.records[0].person_id == "alice"


def test_passive_liveness_refuses_an_attack_score(kiosk):
    flow, ports, _, faces = kiosk(face={"liveness": "both"})
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice", attack_score=0.9) for _ in range(3)])
    assert flow.state == "not_recognised" and ports.screen["reason"] == "liveness_failed"
    assert not ports.records


def test_liveness_off_accepts_on_agreement_alone(kiosk):
    flow, ports, _, faces = kiosk(face={"liveness": "off"})
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice") for _ in range(2)])
    assert ports.records and ports.records[0].person_id == "alice"


def test_a_bystander_in_view_neither_starts_nor_votes_but_the_tracked_face_may_turn(kiosk):
    flow, ports, _, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice", failures=("one_person_only",)) for _ in range(3)])
    assert flow.attempt.challenge is None and ports.screen["guidance"] == "one_person_only"
    feed(flow, [faces.frame("alice")])  # alone in the guide: now the challenge starts
    feed(flow, [faces.frame("alice", yaw=25.0, failures=("one_person_only", "face_the_camera"))
                for _ in range(2)])
    assert flow.attempt.challenge.stage.value == "passed"  # the tracked face's own turn counts
    feed(flow, [faces.frame("alice", failures=("one_person_only",)) for _ in range(6)])
    assert not ports.records  # no frame with someone else in view votes
    feed(flow, [faces.frame("alice") for _ in range(2)])
    assert [r.person_id for r in ports.records] == ["alice"]


def test_a_face_that_never_gets_into_position_is_refused_in_time(kiosk):
    flow, ports, clock, faces = kiosk()
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, [faces.frame("alice", guidance="one_person_only") for _ in range(12 * 15)])
    assert flow.state == "watching"
    feed(flow, [faces.frame("alice", guidance="one_person_only") for _ in range(2)])
    assert flow.state == "not_recognised" and ports.screen["reason"] == "timeout_one_person_only"
    assert not ports.records


def test_what_a_flow_remembers_is_bounded(kiosk):
    """A kiosk runs for months: the diagnostic trail of transitions must not grow without end."""
    from kiosk.flows.base import TRANSITIONS_KEPT

    flow, ports, clock, _ = kiosk(attendance={"repeat_guard_s": 0.0})
    for _ in range(TRANSITIONS_KEPT):
        flow.handle("finger_matched", slot=3, score=100)
        flow.handle("cancelled")
    assert len(flow.transitions_taken) == TRANSITIONS_KEPT
    # and a full trail does not change what handle() answers: taken, or ignored
    assert flow.handle("finger_matched", slot=3, score=100) is True
    assert flow.handle("finger_matched", slot=3, score=100) is False  # the result is showing


def test_claim_and_verify_records_like_a_1_to_n_match(kiosk):
    """Outside the working set: number typed, finger verified 1:1 on the sensor, same record path."""
    flow, ports, clock, _ = kiosk()
    ports.fingers_off_sensor.add("alice")
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="nobody")
    assert flow.state == "entering_id" and ports.screen["error"] == "unknown_id"
    flow.handle("finger_claimed", typed="alice")
    assert flow.state == "verifying_finger"
    assert ports.count("start_capture", kind="finger", mode="verify", person_id="alice") == 1
    assert ports.screen["screen"] == "finger_verify" and ports.screen["name"] is None  # a typed number reveals nobody
    flow.handle("finger_not_matched", guidance="clean_and_dry")  # a poor capture: guidance, try again
    assert flow.state == "verifying_finger" and ports.screen["guidance"] == "clean_and_dry"
    flow.handle("finger_matched", slot=3, score=100)  # a stray 1:N answer is not a verification
    assert flow.state == "verifying_finger" and not ports.records
    flow.handle("finger_verified", score=88)
    assert flow.state == "showing_result"
    assert ports.records[-1].person_id == "alice" and ports.records[-1].verify_mode == "fingerprint"
    names = ports.names()
    assert names.index("record") < names.index("open_door")


def test_another_persons_finger_under_a_claim_is_refused(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="bob")
    for _ in range(2):
        flow.handle("finger_not_matched", guidance="not_recognised")
        assert flow.state == "verifying_finger"
    flow.handle("finger_not_matched", guidance="not_recognised")
    assert flow.state == "refused" and ports.screen["reason"] == "finger_not_verified"
    assert not ports.records and ports.count("open_door") == 0


def test_claim_screen_goes_home_on_cancel_or_inactivity(kiosk):
    flow, ports, clock, _ = kiosk()
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="bob")
    flow.handle("cancelled")
    assert flow.state == "idle" and flow.pending is None
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="bob")
    clock.advance(31)
    flow.tick()
    assert flow.state == "idle"


def finger_capture(ports):
    """The finger capture as the flow last left it: its mode and person, or None when stopped."""
    for name, data in reversed(ports.calls):
        if data.get("kind") == "finger" and name in ("start_capture", "stop_capture"):
            return (data.get("mode"), data.get("person_id")) if name == "start_capture" else None
    return None


def test_after_a_verified_claim_the_sensor_identifies_everyone_again(kiosk):
    """The claimed person's templates must not stay on the sensor while the next person walks up:
    the result screen goes on to watching (face enabled), not home, and a finger placed there
    would be verified against the last person's templates and refused."""
    flow, ports, clock, _ = kiosk()
    ports.fingers_off_sensor.add("alice")
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="alice")
    assert finger_capture(ports) == ("verify", "alice")
    flow.handle("finger_verified", score=88)
    assert flow.state == "showing_result"
    assert finger_capture(ports) == ("identify", None)
    clock.advance(flow.settings.attendance.result_s + 0.1)
    flow.tick()
    assert flow.state == "watching" and finger_capture(ports) == ("identify", None)
    flow.handle("finger_matched", slot=3, score=100)  # the next person: bob's finger
    assert [r.person_id for r in ports.records] == ["alice", "bob"]


def test_two_factor_door_confirms_the_face_with_the_same_persons_finger(kiosk):
    flow, ports, clock, faces = kiosk(attendance={"face_then_finger": True})
    ports.fingers_off_sensor.add("alice")
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, faces.turn_left("alice"))
    assert flow.state == "verifying_finger" and not ports.records
    assert ports.screen["name"] == "Alice Adams"  # the face named them already
    assert ports.count("start_capture", kind="finger", mode="verify", person_id="alice") == 1
    flow.handle("finger_verified", score=70)
    assert flow.state == "showing_result" and ports.records[-1].person_id == "alice"


def test_two_factor_door_refuses_a_face_with_no_finger_on_record(kiosk):
    flow, ports, clock, faces = kiosk(attendance={"face_then_finger": True})
    flow.handle("face_seen", frame=faces.frame("alice"))
    feed(flow, faces.turn_left("alice"))
    assert flow.state == "refused" and ports.screen["reason"] == "finger_not_verified"
    assert not ports.records and ports.count("open_door") == 0


CAROL = Person("carol", "Carol Cruz", has_voice=True)


def voice_kiosk(kiosk, **attendance):
    flow, ports, clock, faces = kiosk(attendance={"verify_modes": ["face", "fingerprint", "pin", "voice"], **attendance})
    ports.people["carol"] = CAROL
    return flow, ports, clock, faces


def test_voice_alone_after_the_id_number(kiosk):
    flow, ports, clock, _ = voice_kiosk(kiosk)
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="carol")
    assert flow.state == "speaking"
    assert ports.count("start_capture", kind="voice", person_id="carol", language="ar") == 1
    flow.handle("voice_matched", score=0.81)
    assert flow.state == "showing_result" and ports.count("open_door") == 1
    assert [(r.person_id, r.verify_mode) for r in ports.records] == [("carol", "voice")]
    assert ports.count("record", person_id="carol", score=0.81) == 1


def test_voice_off_keeps_the_id_number_for_the_pin(kiosk):
    flow, ports, clock, _ = kiosk()
    ports.people["carol"] = CAROL
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="carol")  # a voice print, but voice is not a mode of this door
    assert flow.state == "entering_id" and ports.screen["error"] == "unknown_id"
    flow.handle("id_entered", typed="alice")
    assert flow.state == "entering_pin"


def test_another_voice_is_refused_and_nothing_recorded(kiosk):
    flow, ports, clock, _ = voice_kiosk(kiosk)
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="carol")
    flow.handle("voice_refused", score=0.12, reason="voice_not_matched")
    assert flow.state == "refused" and ports.screen["reason"] == "voice_not_matched"
    assert not ports.records and ports.count("open_door") == 0 and ports.count("stop_capture", kind="voice") == 1


def test_unusable_recordings_retry_then_refuse(kiosk):
    flow, ports, clock, _ = voice_kiosk(kiosk, voice_attempts=2)
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="carol")
    flow.handle("voice_unusable", guidance="too_noisy")
    assert flow.state == "speaking" and ports.count("start_capture", kind="voice") == 2
    flow.handle("voice_unusable", guidance="clipped")
    assert flow.state == "refused" and ports.screen["reason"] == "clipped" and not ports.records


def test_voice_as_second_factor_after_a_finger(kiosk):
    flow, ports, clock, _ = voice_kiosk(kiosk, voice_second_factor=True)
    ports.slots[5] = "carol"
    flow.handle("finger_matched", slot=5, score=120)
    assert flow.state == "speaking" and not ports.records and ports.count("open_door") == 0
    flow.handle("voice_matched", score=0.7)
    assert flow.state == "showing_result"
    assert [(r.person_id, r.verify_mode) for r in ports.records] == [("carol", "fingerprint+voice")]
    assert ports.count("record", person_id="carol", score=120) == 1  # the finger's score is kept


def test_second_factor_screen_times_out_and_cancels_home(kiosk):
    flow, ports, clock, _ = voice_kiosk(kiosk, voice_second_factor=True)
    flow.handle("finger_matched", slot=3, score=100)  # bob: the voice worker will refuse (no print)
    assert flow.state == "speaking"
    clock.advance(flow.settings.ui.inactivity_timeout_s + 0.1)
    flow.tick()
    assert flow.state == "idle" and not ports.records
    flow.handle("finger_matched", slot=3, score=100)
    flow.handle("cancelled")
    assert flow.state == "idle"


def voice_capture_running(ports):
    """True when the flow's last word to the voice worker was a start (an attempt it still wants)."""
    voice = [name for name, data in ports.calls if data.get("kind") == "voice"]
    return bool(voice) and voice[-1] == "start_capture"


@pytest.mark.parametrize("leave", ["cancelled", "timed_out"])
def test_leaving_the_voice_screen_stops_the_recording(kiosk, leave):
    """A person who walks away from the voice step: the attempt is dropped, so its phrase and meter
    do not come back over the home screen and its late answer cannot pass the next person's voice step."""
    flow, ports, clock, _ = voice_kiosk(kiosk)
    flow.handle("pin_requested")
    flow.handle("id_entered", typed="carol")
    assert flow.state == "speaking" and voice_capture_running(ports)
    if leave == "cancelled":
        flow.handle("cancelled")
    else:
        clock.advance(flow.settings.ui.inactivity_timeout_s + 0.1)
        flow.tick()
    assert flow.state == "idle" and not voice_capture_running(ports)


def test_zz_every_declared_transition_was_taken():
    missing = declared_transitions(AttendanceFlow) - TAKEN
    assert not missing, f"transitions never exercised: {sorted(missing)}"
