"""Follow one face across frames, so liveness proven by a face vouches only for that face.

A track continues while the new box overlaps the last one (intersection over union) AND the new
face embedding is close to the last frame's (cosine): a face that moves continues its track; a
face that is missing from the analysed frames for longer than ``max_gap_s``, that has not been
looked at for ``max_unseen_s`` (the camera was idle), that jumps elsewhere, or that changes
identity in place (someone raises a printed photo over their face) starts a new track. A face
turned well away (its embedding unreliable) is held to a looser test: its embedding
must still be at least ``min_turned_continuity`` (cosine) from the last reliable one (its box is
followed as any other, so a person who walks on while holding the turn keeps the track), so a
different face shown only while turned (an enrolled person's photo for the frontal frames,
the attacker's own head for the turn) ends the track. Measured on faces/lfw with the kiosk's
pipeline (frontal |yaw| < 8 against turned |yaw| > 25 degrees): the same person in different
photos 0.367 at the lowest (195 pairs; consecutive frames of one face are closer still),
different people 0.304 at the 99th percentile and 0.438 at the highest (7,110 pairs). A slow
machine that analyses fewer frames does not end a track by itself: only frames that were
analysed and showed no face count as the face being gone. Consecutive frames of one
face at 15 fps are far closer in embedding than two different people, even while the head turns
(see docs/benchmarks.md "Tracking" for the measured distributions).
"""

import itertools
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def iou(a, b):
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _near(a, b):
    """True when box ``b``'s centre lies within half of box ``a``'s width of ``a``'s centre (walking up)."""
    ax, ay = (a[0] + a[2]) / 2.0, (a[1] + a[3]) / 2.0
    bx, by = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
    return ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 < 0.5 * (a[2] - a[0])


@dataclass
class Track:
    """One followed face: its id, last box, last embedding and when it was last seen."""

    track_id: int
    box: tuple
    embedding: np.ndarray
    last_seen_s: float
    frames: int = 1


class FaceTracker:
    """Assigns a track id to the face of each frame; ``update`` says whether the track is new."""

    def __init__(self, *, min_iou=0.2, min_continuity=0.4, min_turned_continuity=0.3, max_gap_s=0.6,
                 max_unseen_s=3.0):
        self.min_iou = float(min_iou)
        self.min_continuity = float(min_continuity)
        self.min_turned_continuity = float(min_turned_continuity)
        self.max_gap_s = float(max_gap_s)
        self.max_unseen_s = float(max_unseen_s)
        self.track = None
        self._missing_since_s = None
        self._ids = itertools.count(1)
        self.last_break = None  # why the last track ended: "gap", "moved", "changed"

    def reset(self):
        self.track = None
        self._missing_since_s = None

    def update(self, box, embedding, timestamp_s, *, reliable=True):
        """Follow the face seen at ``timestamp_s``; return ``(track, is_new)``.

        ``reliable=False`` for a face turned well away from the camera: its embedding says less
        about who it is, so it is compared only against ``min_turned_continuity`` and not kept
        (the next frontal frame is compared with the last frontal one, which is what a photo
        raised during a head turn must pass). Its box is compared and kept like any other.
        """
        seen = None if embedding is None else np.asarray(embedding, dtype=np.float32)
        embedding = seen if reliable else None
        track = self.track
        reason = None
        if track is None:
            reason = "first"
        elif (self._missing_since_s is not None and timestamp_s - self._missing_since_s > self.max_gap_s) \
                or timestamp_s - track.last_seen_s > self.max_unseen_s:
            reason = "gap"
        elif iou(track.box, box) < self.min_iou and not _near(track.box, box):
            reason = "moved"
        elif not reliable:
            # a turned head: its embedding is compared loosely, and not kept
            if seen is not None and track.embedding is not None and \
                    float(np.dot(seen, track.embedding)) < self.min_turned_continuity:
                reason = "changed"
        elif embedding is not None and track.embedding is not None and \
                float(np.dot(embedding, track.embedding)) < self.min_continuity:
            reason = "changed"
        self._missing_since_s = None
        if reason is not None:
            if track is not None:
                self.last_break = reason
                log.info("face track %d ended (%s)", track.track_id, reason)
            self.track = Track(next(self._ids), tuple(box), embedding, float(timestamp_s))
            return self.track, True
        track.box = tuple(box)
        if embedding is not None:
            track.embedding = embedding
        track.last_seen_s = float(timestamp_s)
        track.frames += 1
        return track, False

    def missed(self, timestamp_s):
        """No face in this analysed frame; return True when the track is now lost (gone too long)."""
        if self.track is None:
            return False
        if self._missing_since_s is None:
            self._missing_since_s = float(timestamp_s)
        if timestamp_s - self._missing_since_s > self.max_gap_s or \
                timestamp_s - self.track.last_seen_s > self.max_unseen_s:
            log.info("face track %d lost", self.track.track_id)
            self.last_break = "gap"
            self.track = None
            self._missing_since_s = None
            return True
        return False
