"""Follow one face across frames, so liveness proven by a face vouches only for that face.

A track continues while the new box overlaps the last one (intersection over union) AND the new
face embedding is close to the last frame's (cosine): a face that moves continues its track; a
face that vanishes for longer than ``max_gap_s``, jumps elsewhere, or changes identity in place
(someone raises a printed photo over their face) starts a new track. Consecutive frames of one
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

    def __init__(self, *, min_iou=0.2, min_continuity=0.4, max_gap_s=0.6):
        self.min_iou = float(min_iou)
        self.min_continuity = float(min_continuity)
        self.max_gap_s = float(max_gap_s)
        self.track = None
        self._ids = itertools.count(1)
        self.last_break = None  # why the last track ended: "gap", "moved", "changed"

    def reset(self):
        self.track = None

    def update(self, box, embedding, timestamp_s):
        """Follow the face seen at ``timestamp_s``; return ``(track, is_new)``."""
        embedding = None if embedding is None else np.asarray(embedding, dtype=np.float32)
        track = self.track
        reason = None
        if track is None:
            reason = "first"
        elif timestamp_s - track.last_seen_s > self.max_gap_s:
            reason = "gap"
        elif iou(track.box, box) < self.min_iou:
            reason = "moved"
        elif embedding is not None and track.embedding is not None and \
                float(np.dot(embedding, track.embedding)) < self.min_continuity:
            reason = "changed"
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
        """No face in this frame; return True when the track is now lost (gap too long)."""
        if self.track is not None and timestamp_s - self.track.last_seen_s > self.max_gap_s:
            log.info("face track %d lost", self.track.track_id)
            self.last_break = "gap"
            self.track = None
            return True
        return False
