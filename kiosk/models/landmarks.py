"""Face mesh landmarks (MediaPipe face_landmark, 468 points): head pose and eye openness.

The model looks at a square crop around a detected face: the detector's box, centred, its
longer side scaled by 1.5 and rotated so the eyes are level (MediaPipe's own recipe), resized
to 192x192 with pixel values in [0, 1]. It returns 468 points ``(x, y, z)``; x and y are
mapped back to pixels of the original image, z is a relative depth in the same pixel scale
(smaller = nearer the camera).

Pose convention (unmirrored camera image, the way the sensor sees the person):
- ``yaw_deg`` > 0: the person turned to their own left (the nose moves toward the image's right);
- ``pitch_deg`` > 0: the person looks up (chin forward);
- ``roll_deg`` > 0: the head tilts so its left side (image right) goes down.
The pose comes from the mesh's own 3D points (cheek-to-cheek and forehead-to-chin axes), so
it needs no camera calibration; it is good to a few degrees, enough for a quality gate and a
"turn your head" challenge, not for measuring.
"""

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.errors import ModelError
from kiosk.models import assets
from kiosk.models.runtime import load_model

log = logging.getLogger(__name__)

INPUT_SIZE = 192
NUM_POINTS = 468
ROI_SCALE = 1.5
MIN_PRESENCE = 0.5
INPUT_STEP = np.float32(1.0 / 255.0)  # pixel value to the model's [0, 1]

# mesh indices (facts of the MediaPipe canonical face mesh); "right" = the person's right
RIGHT_CHEEK, LEFT_CHEEK = 234, 454
FOREHEAD, CHIN = 10, 152
NOSE_TIP = 1
# eye contour: outer corner, two upper-lid points, inner corner, two lower-lid points
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (263, 387, 385, 362, 380, 373)
# a sparse, well-spread subset used for geometry checks (contour, brows, eyes, nose, mouth)
GEOMETRY_POINTS = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
                   378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127,
                   162, 21, 54, 103, 67, 109, 70, 105, 107, 336, 334, 300, 33, 133, 263, 362,
                   1, 4, 5, 195, 168, 98, 327, 61, 291, 0, 17)
# the mesh's forehead-to-chin axis leans back a little on a frontal face; measured as the
# median over the 705 LFW deep-funneled faces (near-frontal on average) and removed
PITCH_OFFSET_DEG = -5.5


@dataclass(frozen=True)
class FaceLandmarks:
    """468 mesh points ``(468, 3)`` in image pixels (z relative), presence score and derived measures."""

    points: np.ndarray
    presence: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    right_eye_ratio: float
    left_eye_ratio: float

    @property
    def eye_ratio(self):
        """Mean eye aspect ratio of both eyes (about 0.25-0.35 open, under ~0.15 closed)."""
        return (self.right_eye_ratio + self.left_eye_ratio) / 2.0

    @property
    def interocular_px(self):
        """Distance between the eye centres in pixels (a scale for geometry checks)."""
        right = self.points[list(RIGHT_EYE), :2].mean(axis=0)
        left = self.points[list(LEFT_EYE), :2].mean(axis=0)
        return float(np.linalg.norm(left - right))


def eye_aspect_ratio(points, eye):
    """Eyelid opening over eye width from six contour points (Soukupova and Cech's ratio)."""
    p = points[list(eye), :2]
    width = np.linalg.norm(p[0] - p[3])
    if width <= 1e-6:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def head_pose(points):
    """``(yaw, pitch, roll)`` in degrees from 3D mesh points (conventions in the module docstring)."""
    p = np.asarray(points, dtype=np.float64)
    x_axis = p[LEFT_CHEEK] - p[RIGHT_CHEEK]
    x_axis /= max(np.linalg.norm(x_axis), 1e-9)
    down = p[CHIN] - p[FOREHEAD]
    y_axis = down - x_axis * float(down @ x_axis)
    y_axis /= max(np.linalg.norm(y_axis), 1e-9)
    yaw = math.degrees(math.atan2(x_axis[2], math.hypot(x_axis[0], x_axis[1])))
    pitch = math.degrees(math.atan2(-y_axis[2], math.hypot(y_axis[0], y_axis[1]))) - PITCH_OFFSET_DEG
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    return yaw, pitch, roll


def roi_transform(box, keypoints=None):
    """2x3 affine matrix taking crop pixels (192x192) to image pixels, for a face box and its eyes.

    ``box`` is ``(x0, y0, x1, y1)``; ``keypoints`` (optional) holds the detector's right eye
    then left eye first, which sets the rotation.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = max(x1 - x0, y1 - y0) * ROI_SCALE
    angle = 0.0
    if keypoints is not None and len(keypoints) >= 2:
        (rx, ry), (lx, ly) = np.asarray(keypoints, dtype=np.float64)[:2, :2]
        angle = math.atan2(ly - ry, lx - rx)
    scale = side / INPUT_SIZE
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    half = INPUT_SIZE / 2.0
    # image = centre + R(angle) * scale * (crop - half)
    return np.array([[cos, -sin, cx - cos * half + sin * half],
                     [sin, cos, cy - sin * half - cos * half]], dtype=np.float64)


class FaceLandmarker:
    """The face mesh model loaded once; ``landmarks(image_rgb, face)`` for one face per call."""

    model_id = "face_landmark"

    def __init__(self, *, threads=1, runtime=None, min_presence=MIN_PRESENCE):
        self.model = load_model(assets.path(self.model_id), threads=threads, runtime=runtime)
        if self.model.input_shape() != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise ModelError(f"face_landmark: input {self.model.input_shape()}, expected (1, 192, 192, 3)")
        self.min_presence = float(min_presence)

    def landmarks(self, image, face):
        """Mesh of one face in an RGB uint8 image, or None when the model sees no face there.

        ``face`` is a detector ``Detection`` (box and keypoints) or a plain box ``(x0, y0, x1, y1)``.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        box = getattr(face, "box", face)
        keypoints = getattr(face, "keypoints", None)
        matrix = roi_transform(box, keypoints)
        crop = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        outputs = self.model.run_filled(lambda tensor: np.multiply(crop, INPUT_STEP, out=tensor, casting="unsafe"))
        raw_points, raw_flag = (outputs[0], outputs[1]) if outputs[0].size == NUM_POINTS * 3 else (outputs[1], outputs[0])
        presence = float(1.0 / (1.0 + math.exp(-float(np.clip(raw_flag.ravel()[-1], -60, 60)))))
        if presence < self.min_presence:
            return None
        crop_points = raw_points.reshape(NUM_POINTS, 3).astype(np.float64)
        xy = crop_points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        scale = math.hypot(matrix[0, 0], matrix[1, 0])
        points = np.column_stack([xy, crop_points[:, 2] * scale]).astype(np.float32)
        yaw, pitch, roll = head_pose(points)
        return FaceLandmarks(points, presence, yaw, pitch, roll,
                             eye_aspect_ratio(points, RIGHT_EYE), eye_aspect_ratio(points, LEFT_EYE))
