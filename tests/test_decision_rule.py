"""The attendance decision rule: threshold, margin, K-of-N agreement, liveness; every path."""

import pytest

from kiosk import config
from kiosk.models.decision import Decision, DecisionRule, Liveness, Reason
from kiosk.models.gallery import Match


def rule(**overrides):
    values = dict(threshold=0.4, margin=0.05, agree_frames=2, window_frames=3)
    values.update(overrides)
    return DecisionRule(**values)


def frame(best="alice", score=0.7, second="bob", second_score=0.2):
    return [Match(best, score), Match(second, second_score)]


def test_accepts_after_k_of_n_agreeing_frames_with_liveness():
    r = rule()
    first = r.add_frame(frame(), liveness=Liveness.PASSED)
    assert first == Decision(False, Reason.NOT_AGREED, "alice", 0.7, pytest.approx(0.5), 1)
    second = r.add_frame(frame(score=0.65), liveness=Liveness.PASSED)
    assert second.accepted and second.reason is Reason.ACCEPTED
    assert second.person_id == "alice" and second.agreeing_frames == 2


def test_below_threshold_and_ambiguous_frames_do_not_vote():
    r = rule()
    assert r.add_frame(frame(score=0.39), liveness=True).reason is Reason.NO_MATCH
    assert r.add_frame(frame(score=0.5, second_score=0.47), liveness=True).reason is Reason.AMBIGUOUS
    assert r.add_frame(frame(), liveness=True).reason is Reason.NOT_AGREED
    assert r.add_frame(frame(), liveness=True).accepted


def test_agreement_must_be_within_the_window_and_same_identity():
    r = rule(agree_frames=2, window_frames=3)
    r.add_frame(frame("alice"), liveness=True)
    r.add_frame(frame("carol"), liveness=True)
    r.add_frame([], liveness=True)
    # alice's vote has left the 3-frame window: one more alice frame is not enough
    decision = r.add_frame(frame("alice"), liveness=True)
    assert decision.reason is Reason.NOT_AGREED and decision.agreeing_frames == 1
    assert r.add_frame(frame("alice"), liveness=True).accepted


def test_second_template_of_the_same_person_is_not_the_runner_up():
    r = rule(agree_frames=1, window_frames=1)
    decision = r.add_frame([Match("alice", 0.7), Match("alice", 0.69), Match("bob", 0.3)], liveness=True)
    assert decision.accepted and decision.margin == pytest.approx(0.4)


def test_lone_identity_margin_is_measured_against_minus_one():
    decision = rule(agree_frames=1, window_frames=1).add_frame([Match("alice", 0.5)], liveness=True)
    assert decision.accepted and decision.margin == pytest.approx(1.5)


def test_liveness_pending_failed_off():
    r = rule(agree_frames=1, window_frames=1)
    assert r.add_frame(frame()).reason is Reason.LIVENESS_PENDING
    assert r.add_frame(frame(), liveness=Liveness.FAILED).reason is Reason.LIVENESS_FAILED
    assert r.add_frame(frame(), liveness=False).reason is Reason.LIVENESS_FAILED
    assert r.add_frame(frame(), liveness=Liveness.OFF).accepted


def test_no_face_and_reset():
    r = rule()
    assert r.add_frame(None).reason is Reason.NO_FACE
    r.add_frame(frame(), liveness=True)
    r.reset()
    assert r.add_frame(frame(), liveness=True).reason is Reason.NOT_AGREED


def test_from_settings_and_bad_window():
    face = config.build([]).face
    r = DecisionRule.from_settings(face)
    assert (r.threshold, r.margin, r.agree_frames, r.window_frames) == (
        face.match_threshold, face.match_margin, face.agree_frames, face.window_frames)
    with pytest.raises(ValueError):
        rule(agree_frames=4, window_frames=3)
