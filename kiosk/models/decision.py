"""The attendance decision rule: when a stream of face matches is enough to record someone.

Accept a person only when all of these hold:
1. the best identity's score reaches ``match_threshold``;
2. it leads the second-best identity (another person) by at least ``match_margin``;
3. the same identity won (1 and 2) in at least ``agree_frames`` of the last ``window_frames``
   frames, the current one included;
4. liveness passed for this attempt.

``DecisionRule`` is a small pure class: feed it one ``add_frame(matches)`` per analysed frame
(the gallery's top-k for the face in the guide, or nothing when no usable face was seen) and
the attempt's liveness state; it returns a ``Decision`` saying accept or not, and why.
"""

import logging
from collections import deque
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class Liveness(Enum):
    """Where the attempt's liveness check stands."""

    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    OFF = "off"  # liveness disabled by configuration: counts as passed


class Reason(str, Enum):
    """Why a frame's decision came out the way it did (stable strings for logs and the UI)."""

    ACCEPTED = "accepted"
    NO_FACE = "no_face"                  # no usable face in this frame
    NO_MATCH = "below_threshold"         # best score under the threshold
    AMBIGUOUS = "ambiguous"              # second-best identity too close
    NOT_AGREED = "not_agreed"            # not yet K of the last N frames for one identity
    LIVENESS_PENDING = "liveness_pending"
    LIVENESS_FAILED = "liveness_failed"


@dataclass(frozen=True)
class Decision:
    """The verdict after one frame: accepted or not, the reason, and the candidate if any."""

    accepted: bool
    reason: Reason
    person_id: str = None
    score: float = None
    margin: float = None
    agreeing_frames: int = 0


class DecisionRule:
    """K-of-N agreement over per-frame 1:N results, with threshold, margin and liveness."""

    def __init__(self, *, threshold, margin, agree_frames, window_frames):
        if not 1 <= agree_frames <= window_frames:
            raise ValueError(f"need 1 <= agree_frames ({agree_frames}) <= window_frames ({window_frames})")
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.agree_frames = int(agree_frames)
        self.window_frames = int(window_frames)
        self._votes = deque(maxlen=self.window_frames)

    @classmethod
    def from_settings(cls, face):
        """Build from a ``FaceSettings`` section."""
        return cls(threshold=face.match_threshold, margin=face.match_margin,
                   agree_frames=face.agree_frames, window_frames=face.window_frames)

    def reset(self):
        """Forget past frames (a new person stepped up, or the attempt ended)."""
        self._votes.clear()

    def add_frame(self, matches, *, liveness=Liveness.PENDING):
        """Record one frame's ranked matches (``[Match]`` best first, or empty) and decide.

        ``liveness`` is a ``Liveness`` state (True/False are taken as passed/failed).

        ``matches`` are objects with ``person_id`` and ``score`` (``Gallery.search`` output,
        k >= 2 so the margin can be judged; a lone identity's margin is measured against -1).
        """
        if isinstance(liveness, bool):
            liveness = Liveness.PASSED if liveness else Liveness.FAILED
        matches = list(matches or [])
        if not matches:
            self._votes.append(None)
            return Decision(False, Reason.NO_FACE)
        best = matches[0]
        second = next((m.score for m in matches[1:] if m.person_id != best.person_id), -1.0)
        lead = float(best.score) - float(second)
        if best.score < self.threshold:
            self._votes.append(None)
            return Decision(False, Reason.NO_MATCH, best.person_id, float(best.score), lead)
        if lead < self.margin:
            self._votes.append(None)
            return Decision(False, Reason.AMBIGUOUS, best.person_id, float(best.score), lead)
        self._votes.append(best.person_id)
        agreeing = sum(1 for vote in self._votes if vote == best.person_id)
        candidate = dict(person_id=best.person_id, score=float(best.score), margin=lead, agreeing_frames=agreeing)
        if agreeing < self.agree_frames:
            return Decision(False, Reason.NOT_AGREED, **candidate)
        if liveness is Liveness.FAILED:
            return Decision(False, Reason.LIVENESS_FAILED, **candidate)
        if liveness not in (Liveness.PASSED, Liveness.OFF):
            return Decision(False, Reason.LIVENESS_PENDING, **candidate)
        return Decision(True, Reason.ACCEPTED, **candidate)
