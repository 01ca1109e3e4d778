"""One attempt to recognise the face in front of the kiosk, frame by frame, liveness bound to it.

``FaceAttempt.update(frame)`` takes what the face engine saw in one frame (``kiosk.models.face_frame.FaceFrame``) and
says what the screen should do now (``Outcome``): ask for a better position (quality
guidance), show the liveness challenge, accept someone, or refuse.

Binding liveness to one face (an attack found by outside probes: a live, unenrolled person
performs the challenge, then raises a printed photo of an enrolled person):

1. the face is tracked (``FaceTracker``: box overlap and embedding continuity); when the track
   ends or changes, the whole attempt starts over: new challenge, no votes, no liveness;
2. votes for an identity come only from frames of the current track that pass the quality gate;
   frames of the head turned away (``TURN_FAILURES``) are left out of the K-of-N window;
3. the face that is recognised must be the face that performed the challenge: the accepting
   frame's embedding must be close (``same_face_min``, cosine) to an embedding of the face seen
   while the challenge was being performed, up to and including the frame that completed it,
   or to a later one chained to those (see 4). Two frames of one face are far closer than two
   people, so a photo of someone else raised after the challenge fails this even if the tracker
   missed the swap.
4. the challenge is asked while the person is still coming to the guide, so that they turn
   during their last steps and the door opens on arrival instead of a gesture later: as soon
   as the tracked face, at its measured approach speed, will be ``face.min_face_px`` wide by
   the time a person has read the prompt and starts to turn (``LEAD_S``), or at once when it
   already is (never below ``CHALLENGE_MIN_FRACTION`` of that width). A turn or blink is
   judged only on faces at least ``JUDGE_MIN_FRACTION`` of it wide: on smaller ones the face
   mesh now and then reads a photo tilted as a whole as a head turned by 18-27 degrees, even
   on two frames in a row (and a turn must show on two frames in a row: ``ActiveChallenge``).
   A face seen far away embeds less faithfully than the same face in the guide, so after the
   challenge the performer's embeddings are extended frame by frame: a
   frame of one face alone on screen (nobody else in view) joins them only if it is close to
   one already there. A photo raised over the face is someone else's and never joins; a
   second face in view (the sheet coming up) stops the chain for that frame.
5. a face already identified before it turned (K of N good frames of the performer agreeing,
   only liveness missing; undone only by a later frame that matches someone else) is
   accepted on the frame that completes the turn: the identity came from the frames before the
   turn and the tracker has compared the turned face with them
   (``FaceTracker.min_turned_continuity``), which is all that a frontal frame after the turn
   would add (any attacker who got that far can face the camera again), while waiting for it
   costs the person the time to hold the turn and come back.
"""

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from kiosk.models.decision import DecisionRule, Liveness, Reason
from kiosk.models.liveness import ActiveChallenge, choose_challenge
from kiosk.models.quality import CENTER_FACE, FACE_THE_CAMERA, MOVE_BACK, MOVE_CLOSER
from kiosk.flows.tracking import FaceTracker

log = logging.getLogger(__name__)

# quality failures that a head turn causes on purpose: they must not stop the challenge
TURN_FAILURES = (FACE_THE_CAMERA,)
# what a face coming to the guide is told: its challenge may already start (point 4 above)
APPROACH_GUIDANCE = (MOVE_CLOSER, MOVE_BACK, CENTER_FACE)
# the smallest face for which the challenge may be asked (36 px at the default 80)
CHALLENGE_MIN_FRACTION = 0.45
# how long after a prompt appears a person starts to turn: a visual reaction and reading the
# arrow (0.3-0.5 s is usual; the bench's simulated people take 0.4 s). The prompt is timed so that
# the turn starts about when the face becomes identifiable: a turn that ends before then is judged
# (if the face is big enough) but the door must wait for the head to face the camera again
LEAD_S = 0.4
# box widths of the last frames, to measure how fast a face comes closer
APPROACH_FRAMES = 4
# the smallest face on which a turn (or a blink) is judged: smaller, the face mesh reads a photo
# tilted as a whole as a head turned 18-27 degrees now and then, even on two frames in a row
# (docs/benchmarks.md, Liveness, "walking-up sizes")
JUDGE_MIN_FRACTION = 0.9
# frames of one face that may join the performer's embeddings after the challenge: alone on screen
CHAIN_GUIDANCE = (None,) + APPROACH_GUIDANCE


@dataclass(frozen=True)
class Outcome:
    """What one frame means for the screen."""

    kind: str                      # no_face | spent | guidance | challenge | checking | accepted | refused
    track_id: int = None
    guidance: str = None
    challenge: str = None          # turn_left | turn_right | blink
    stage: str = None              # the challenge's stage
    person_id: str = None
    score: float = None
    reason: str = None             # why refused, or the decision's reason
    details: dict = field(default_factory=dict)


class FaceAttempt:
    """Tracker + liveness + K-of-N decision for the face in front of the kiosk."""

    def __init__(self, face_settings, *, rng=None, tracker=None, unrecognised_frames=12, same_face_min=0.6,
                 attempt_s=12.0):
        self.settings = face_settings
        self.mode = face_settings.liveness        # off | passive | challenge | both
        self.rng = rng
        self.tracker = tracker or FaceTracker()
        self.rule = DecisionRule.from_settings(face_settings)
        self.unrecognised_frames = int(unrecognised_frames)
        self.same_face_min = float(same_face_min)
        self.attempt_s = float(attempt_s)
        self.spent_track = None
        self.fresh_track = None  # a face that appeared while a result was on screen
        self._new_attempt(None)

    @property
    def uses_challenge(self):
        return self.mode in ("challenge", "both")

    @property
    def uses_passive(self):
        return self.mode in ("passive", "both")

    def _new_attempt(self, started_s):
        self.rule.reset()
        self.challenge = None
        self.started_s = started_s
        self.performer = deque(maxlen=8)  # embeddings of the face while it performed the challenge
        self.passed_seen = False
        self.identified = None  # K-of-N met by frames of the performer, only liveness missing
        self.widths = deque(maxlen=APPROACH_FRAMES)  # (timestamp_s, box width) of the track's last frames
        self.good_frames_after_pass = 0
        self.passive_votes = []
        self.finished = None

    def reset(self):
        """Forget the face entirely (the person left, or the flow went home)."""
        self.tracker.reset()
        self.spent_track = None
        self.fresh_track = None
        self._new_attempt(None)

    def restart(self, *, spend=False):
        """Start a new attempt; with ``spend`` the face just served is ignored until it leaves."""
        track = self.tracker.track
        if spend and track is not None:
            self.spent_track = track.track_id
        self._new_attempt(None)

    # --- liveness -------------------------------------------------------------------------------

    def _challenge_status(self, frame):
        if self.challenge is None:
            if not self._can_start_challenge(frame):
                return None
            kind = choose_challenge(self.rng, allowed=self.settings.challenge)
            self.challenge = ActiveChallenge.from_settings(self.settings, kind, started_s=frame.timestamp_s)
        # the landmarks are the tracked face's own: someone else in view (a bystander) neither
        # performs nor spoils its challenge, and frames with them in view never vote (not good)
        width = frame.box[2] - frame.box[0]
        return self.challenge.update(frame.landmarks, frame.timestamp_s,
                                     judged=width >= JUDGE_MIN_FRACTION * self.settings.min_face_px)

    def _can_start_challenge(self, frame):
        if frame.landmarks is None:
            return False
        if frame.guidance is None:
            return True
        width = frame.box[2] - frame.box[0]
        if frame.guidance not in APPROACH_GUIDANCE or width < CHALLENGE_MIN_FRACTION * self.settings.min_face_px:
            return False
        return width + self._approach_px_per_s() * LEAD_S >= self.settings.min_face_px

    def _approach_px_per_s(self):
        """How fast the tracked face has been growing over the last frames (0 when it has not)."""
        if len(self.widths) < 2:
            return 0.0
        (t0, w0), (t1, w1) = self.widths[0], self.widths[-1]
        return max(0.0, (w1 - w0) / (t1 - t0)) if t1 > t0 else 0.0

    def _passive_state(self, frame):
        if frame.attack_score is not None and frame.guidance is None:
            self.passive_votes.append(frame.attack_score >= self.settings.passive_threshold)
        attacks = sum(self.passive_votes)
        if attacks >= 2:
            return Liveness.FAILED
        return Liveness.PASSED if len(self.passive_votes) - attacks >= 3 else Liveness.PENDING

    def _liveness(self, frame):
        states = []
        status = None
        if self.uses_challenge:
            status = self._challenge_status(frame)
            states.append(Liveness.PENDING if status is None else Liveness.PASSED if status.passed else
                          Liveness.FAILED if status.finished else Liveness.PENDING)
        if self.uses_passive:
            states.append(self._passive_state(frame))
        if not states:
            return Liveness.OFF, None
        if Liveness.FAILED in states:
            return Liveness.FAILED, status
        if all(s is Liveness.PASSED for s in states):
            return Liveness.PASSED, status
        return Liveness.PENDING, status

    def follow(self, frame):
        """Keep the tracker up to date without deciding anything (while a result is on screen).

        Returns True when this frame shows someone new, in position: the next person in line.
        """
        if frame.box is None:
            self.tracker.missed(frame.timestamp_s)
            return False
        track, is_new = self.tracker.update(frame.box, frame.embedding, frame.timestamp_s,
                                            reliable=FACE_THE_CAMERA not in frame.failures)
        if is_new:
            self.fresh_track = track.track_id
        return (self.fresh_track == track.track_id and track.track_id != self.spent_track
                and frame.guidance is None)

    # --- one frame ------------------------------------------------------------------------------

    def update(self, frame):
        """Advance with one ``FaceFrame``; return the ``Outcome`` for the screen."""
        if self.finished is not None:
            return self.finished
        if frame.box is None:
            if self.tracker.missed(frame.timestamp_s):
                self._new_attempt(None)
            return Outcome("no_face", guidance=frame.guidance)
        reliable = FACE_THE_CAMERA not in frame.failures
        track, is_new = self.tracker.update(frame.box, frame.embedding, frame.timestamp_s, reliable=reliable)
        if track.track_id == self.spent_track:
            return Outcome("spent", track.track_id)  # still the person just served: wait for them to go
        if is_new or self.started_s is None:
            self._new_attempt(frame.timestamp_s)
        self.widths.append((frame.timestamp_s, frame.box[2] - frame.box[0]))
        liveness, status = self._liveness(frame)
        if frame.timestamp_s - self.started_s > self.attempt_s:
            # never in position, never live, never matched: say so rather than wait for ever
            reason = f"timeout_{frame.guidance}" if frame.guidance else "timeout"
            return self._finish(Outcome("refused", track.track_id, reason=reason))
        good = frame.guidance is None
        # a face turned away (the turn the challenge asks for) says nothing about who it is: it
        # neither votes nor pushes this track's votes out of the K-of-N window, so the first good
        # frame after the turn can decide instead of waiting for the window to refill
        turned_away = not good and frame.guidance in TURN_FAILURES
        decision = None if turned_away else self.rule.add_frame(frame.matches if good else (), liveness=liveness)
        challenge = dict(challenge=status.kind.value, stage=status.stage.value) if status else {}
        if liveness is Liveness.FAILED:
            reason = "liveness_failed" if status is None else f"liveness_{status.reason or 'failed'}"
            return self._finish(Outcome("refused", track.track_id, reason=reason, **challenge))
        if decision is not None and self._contradicts(decision):
            self.identified = None
        if liveness is Liveness.PENDING:
            if frame.embedding is not None and reliable and (status is not None or not self.uses_challenge):
                self.performer.append(frame.embedding)
                if decision is not None and decision.reason is Reason.LIVENESS_PENDING:
                    self.identified = decision
            if status is None or (not good and frame.guidance not in TURN_FAILURES + APPROACH_GUIDANCE):
                return Outcome("guidance", track.track_id, guidance=frame.guidance, **challenge)
            return Outcome("challenge", track.track_id, guidance=frame.guidance, **challenge)
        # liveness passed (or off): only the face that performed the challenge may be accepted;
        # the frame that completed the challenge is part of the performance
        if not self.passed_seen:
            self.passed_seen = True
            if frame.embedding is not None:
                self.performer.append(frame.embedding)
        elif reliable and frame.guidance in CHAIN_GUIDANCE and self._performed_by(frame.embedding):
            self.performer.append(frame.embedding)
        if self.identified is not None:
            # identified by frames of this face before it turned: the door opens on the turn
            # instead of after the person has faced the camera again (see point 5 above)
            return self._accept(track, self.identified, challenge, identified_before=True)
        if not good:
            return Outcome("guidance", track.track_id, guidance=frame.guidance, **challenge)
        if self.challenge is None or not self.challenge.turned_at(frame.landmarks):
            # a head still held at the asked turn is part of the performance: its frames may
            # accept, but a person told to turn is not refused before they could face the camera
            self.good_frames_after_pass += 1
        bound = liveness is Liveness.OFF or self._performed_by(frame.embedding)
        if decision.accepted and bound:
            return self._accept(track, decision, challenge)
        if decision.accepted and not bound:
            log.warning("face track %d: the matching face is not the one that performed the challenge; "
                        "not accepted", track.track_id)
        if self.good_frames_after_pass >= self.unrecognised_frames:
            return self._finish(Outcome("refused", track.track_id, reason="not_recognised", **challenge))
        return Outcome("checking", track.track_id, reason=decision.reason.value, **challenge)

    def _contradicts(self, decision):
        """True when a frame's decision speaks for someone other than the identified person.

        A frame that matches nobody well (the head turning, blur) says nothing against an
        identification made by earlier frames of the same track; one that matches someone else
        above the threshold does.
        """
        return (self.identified is not None and decision.person_id not in (None, self.identified.person_id)
                and decision.score is not None and decision.score >= self.rule.threshold)

    def _accept(self, track, decision, challenge, *, identified_before=False):
        details = {"margin": decision.margin, "agreeing_frames": decision.agreeing_frames,
                   "identified_before_liveness": identified_before}
        return self._finish(Outcome("accepted", track.track_id, person_id=decision.person_id, score=decision.score,
                                    reason="accepted", details=details, **challenge))

    def performed_by(self, embedding):
        """True when ``embedding`` is of the face that performed the liveness challenge."""
        return self._performed_by(embedding)

    def _performed_by(self, embedding):
        if embedding is None or not self.performer:
            return False
        vector = np.asarray(embedding, dtype=np.float32)
        return max(float(np.dot(vector, other)) for other in self.performer) >= self.same_face_min

    def _finish(self, outcome):
        self.finished = outcome
        return outcome
