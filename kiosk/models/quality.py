"""The face quality gate used before enrolment and matching, with guidance for the screen.

A frame passes when it holds exactly one face (people far behind do not count), big enough,
inside the on-screen guide, facing the camera (yaw, pitch, roll), sharp, well and evenly lit,
with the eyes open. Every failure maps to a guidance code that the UI turns into a sentence;
``QualityReport.failures`` lists them all, most important first, so the screen can show the
first and a log can keep the rest.

Measures are taken on the face box only (not the room): brightness is its mean grey level,
contrast its grey standard deviation, sharpness the variance of the Laplacian after resizing
the face to ``SHARPNESS_SIZE`` pixels wide, so the figure does not depend on the distance.
"""

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)

# guidance codes, in priority order: the first failure is what the screen shows
NO_FACE = "no_face"
ONE_PERSON_ONLY = "one_person_only"
MOVE_CLOSER = "move_closer"
MOVE_BACK = "move_back"
CENTER_FACE = "center_face"
FACE_THE_CAMERA = "face_the_camera"
MORE_LIGHT = "more_light"
TOO_BRIGHT = "too_bright"
HOLD_STILL = "hold_still"
OPEN_EYES = "open_eyes"
GUIDANCE_ORDER = (NO_FACE, ONE_PERSON_ONLY, MOVE_CLOSER, MOVE_BACK, CENTER_FACE, FACE_THE_CAMERA,
                  MORE_LIGHT, TOO_BRIGHT, HOLD_STILL, OPEN_EYES)

SHARPNESS_SIZE = 112
# a face narrower than this share of min_face_px is someone far behind: not counted
BYSTANDER_FRACTION = 0.5


@dataclass(frozen=True)
class QualityLimits:
    """Thresholds of the gate (see ``FaceSettings`` for the documented defaults)."""

    min_face_px: int = 80
    max_face_fraction: float = 0.9       # of the guide's height: closer than this is "move back"
    guide_width_fraction: float = 0.6    # the guide: a centred rectangle, these shares of the frame
    guide_height_fraction: float = 0.85
    max_yaw_deg: float = 25.0
    max_pitch_deg: float = 25.0
    max_roll_deg: float = 20.0
    min_sharpness: float = 12.0
    min_brightness: float = 50.0
    max_brightness: float = 215.0
    min_contrast: float = 18.0
    min_eye_ratio: float = 0.16

    @classmethod
    def from_settings(cls, face):
        """Limits from a ``FaceSettings`` section (fields it lacks keep the defaults here)."""
        values = {name: getattr(face, name) for name in cls.__dataclass_fields__ if hasattr(face, name)}
        return cls(**values)


@dataclass(frozen=True)
class QualityReport:
    """Result of one frame: failures (guidance codes, priority order), measures, the chosen face."""

    failures: tuple
    measures: dict = field(default_factory=dict)
    face: object = None
    landmarks: object = None

    @property
    def ok(self):
        return not self.failures

    @property
    def guidance(self):
        """The one guidance code the screen should show now, or None when the frame is good."""
        return self.failures[0] if self.failures else None


def guide_box(width, height, limits):
    """The on-screen guide as ``(x0, y0, x1, y1)`` pixels of a ``width`` x ``height`` frame."""
    gw, gh = width * limits.guide_width_fraction, height * limits.guide_height_fraction
    x0, y0 = (width - gw) / 2.0, (height - gh) / 2.0
    return (x0, y0, x0 + gw, y0 + gh)


def face_measures(image, box):
    """``(brightness, contrast, sharpness)`` of the face box of an RGB image."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    # the inner face (eyes to mouth) without hair and background at the box edges
    inset_x, inset_y = (x1 - x0) * 0.12, (y1 - y0) * 0.08
    x0, x1 = int(max(0, x0 + inset_x)), int(min(width, x1 - inset_x))
    y0, y1 = int(max(0, y0 + inset_y)), int(min(height, y1 - inset_y))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0, 0.0, 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    brightness, contrast = float(grey.mean()), float(grey.std())
    new_h = max(4, int(round(SHARPNESS_SIZE * (y1 - y0) / (x1 - x0))))
    interpolation = cv2.INTER_AREA if (x1 - x0) > SHARPNESS_SIZE else cv2.INTER_LINEAR
    small = cv2.resize(grey, (SHARPNESS_SIZE, new_h), interpolation=interpolation)
    sharpness = float(cv2.Laplacian(small, cv2.CV_64F).var())
    return brightness, contrast, sharpness


def _inside(box, guide, *, slack):
    x0, y0, x1, y1 = box
    gx0, gy0, gx1, gy1 = guide
    return x0 >= gx0 - slack and y0 >= gy0 - slack and x1 <= gx1 + slack and y1 <= gy1 + slack


def assess(image, faces, landmarks=None, *, limits=QualityLimits(), chosen=None):
    """Check one RGB frame given its detected faces and the chosen face's landmarks.

    ``faces`` are detector ``Detection``s; ``chosen`` is the face to judge (default: the one
    nearest the frame centre); ``landmarks`` is its ``FaceLandmarks`` (None when the mesh
    model found no face there, which fails as ``face_the_camera``).
    """
    height, width = image.shape[:2]
    counted = [f for f in faces if f.width >= limits.min_face_px * BYSTANDER_FRACTION]
    if not faces:
        return QualityReport((NO_FACE,), {"faces": 0})
    if chosen is None:
        cx, cy = width / 2.0, height / 2.0
        chosen = min(faces, key=lambda f: (f.centre[0] - cx) ** 2 + (f.centre[1] - cy) ** 2)
    failures = set()
    guide = guide_box(width, height, limits)
    size = max(chosen.width, chosen.height)
    brightness, contrast, sharpness = face_measures(image, chosen.box)
    measures = {"faces": len(counted), "face_px": round(float(chosen.width), 1),
                "brightness": round(brightness, 1), "contrast": round(contrast, 1),
                "sharpness": round(sharpness, 1)}
    if len(counted) > 1:
        failures.add(ONE_PERSON_ONLY)
    if chosen.width < limits.min_face_px:
        failures.add(MOVE_CLOSER)
    elif size > limits.max_face_fraction * (guide[3] - guide[1]):
        failures.add(MOVE_BACK)
    if not _inside(chosen.box, guide, slack=0.1 * size):
        failures.add(CENTER_FACE)
    if landmarks is None:
        failures.add(FACE_THE_CAMERA)
    else:
        measures.update(yaw_deg=round(landmarks.yaw_deg, 1), pitch_deg=round(landmarks.pitch_deg, 1),
                        roll_deg=round(landmarks.roll_deg, 1), eye_ratio=round(landmarks.eye_ratio, 3))
        if (abs(landmarks.yaw_deg) > limits.max_yaw_deg or abs(landmarks.pitch_deg) > limits.max_pitch_deg
                or abs(landmarks.roll_deg) > limits.max_roll_deg):
            failures.add(FACE_THE_CAMERA)
        elif landmarks.eye_ratio < limits.min_eye_ratio:
            failures.add(OPEN_EYES)  # a turned face foreshortens the eyes: judge eyes only when frontal
    if brightness < limits.min_brightness:
        failures.add(MORE_LIGHT)
    elif brightness > limits.max_brightness:
        failures.add(TOO_BRIGHT)
    elif contrast < limits.min_contrast:
        failures.add(MORE_LIGHT)  # flat, murky light (backlight, fog): more light on the face helps
    if sharpness < limits.min_sharpness and MORE_LIGHT not in failures:
        failures.add(HOLD_STILL)  # a dark face is never sharp: ask for light first
    ordered = tuple(code for code in GUIDANCE_ORDER if code in failures)
    return QualityReport(ordered, measures, chosen, landmarks)


class QualityGate:
    """Detector + landmarks + limits: ``check(image_rgb)`` gives a ``QualityReport`` for a frame."""

    def __init__(self, detector, landmarker, *, limits=QualityLimits()):
        self.detector = detector
        self.landmarker = landmarker
        self.limits = limits

    def check(self, image):
        faces = self.detector.detect(image)
        if not faces:
            return assess(image, faces, limits=self.limits)
        height, width = image.shape[:2]
        cx, cy = width / 2.0, height / 2.0
        chosen = min(faces, key=lambda f: (f.centre[0] - cx) ** 2 + (f.centre[1] - cy) ** 2)
        landmarks = self.landmarker.landmarks(image, chosen)
        return assess(image, faces, landmarks, limits=self.limits, chosen=chosen)
