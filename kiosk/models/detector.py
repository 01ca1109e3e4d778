"""BlazeFace face detection: anchors, box and keypoint decoding, weighted non-maximum suppression.

Two variants of the same model family (Apache-2.0, from MediaPipe): ``blazeface_short`` for a
face within about 1 m of the camera (128x128 input, 896 anchors) and ``blazeface_full`` for an
entrance at 1-2 m (192x192 input, 2,304 anchors). ``blazeface_short_then_full`` runs the short
model and, only on a frame where it finds no face that it is sure of (``CONFIDENT_SCORE``) and
that is well inside its range (``SHORT_RANGE_FRACTION``), the full one: a face at the guide costs
the short model alone, and a person still a few metres away (in a 640x480 frame, a face of about
40 px, which the short model misses below about 70 px) is found as soon as they come into view.
Near the edge of its range the short model boxes a face 10-30% larger than it is (and than the
full model does), sometimes with a high score, and on such a box the face mesh can read a
frontal head as turned by 20-28 degrees, or a turned one as frontal (seen in the attendance
bench); from about 100 px in a 640x480 frame its boxes agree with the full model's.
Images are RGB uint8 arrays ``(H, W, 3)``; all coordinates returned are pixels of that image.

Keypoint order (the person's right/left): right eye, left eye, nose tip, mouth centre,
right ear tragion, left ear tragion. On an unmirrored camera image the person's right eye is
the one on the image's left.
"""

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.errors import ModelError
from kiosk.models import assets
from kiosk.models.runtime import load_model

log = logging.getLogger(__name__)

RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH_CENTRE, RIGHT_EAR, LEFT_EAR = range(6)
NUM_KEYPOINTS = 6
INPUT_STEP = np.float32(1.0 / 127.5)  # pixel value to the model's [-1, 1] (then minus 1)


@dataclass(frozen=True)
class DetectorSpec:
    """What differs between the BlazeFace variants (values from MediaPipe's graph options)."""

    model_file: str
    input_size: int
    strides: tuple
    interpolated_anchor: bool  # a second anchor per layer at the interpolated scale
    min_score: float


SPECS = {
    "blazeface_short": DetectorSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 0.5),
    "blazeface_full": DetectorSpec("face_detection_full_range.tflite", 192, (4,), False, 0.6),
}


@dataclass(frozen=True)
class Detection:
    """One face: box ``(x0, y0, x1, y1)``, six keypoints ``(6, 2)``, score in [0, 1]; pixels."""

    box: tuple
    keypoints: np.ndarray
    score: float

    @property
    def width(self):
        return self.box[2] - self.box[0]

    @property
    def height(self):
        return self.box[3] - self.box[1]

    @property
    def centre(self):
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


def generate_anchors(input_size, strides, *, interpolated_anchor):
    """Anchor centres ``(N, 2)`` in [0, 1], in the order the model emits its rows.

    Consecutive layers with the same stride share one feature map; each layer adds one anchor
    per cell (two with ``interpolated_anchor``). BlazeFace uses fixed-size anchors, so only
    the centres matter.
    """
    per_layer = 2 if interpolated_anchor else 1
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        group = 0
        while layer < len(strides) and strides[layer] == stride:
            group += 1
            layer += 1
        cells = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, group * per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes, raw_scores, anchors, input_size):
    """Turn raw model rows into ``(boxes (N,4) x0y0x1y1, keypoints (N,6,2), scores (N,))`` in [0, 1]."""
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(len(anchors), -1)
    raw_scores = np.asarray(raw_scores, dtype=np.float32).reshape(len(anchors))
    scale = float(input_size)
    cx = raw_boxes[:, 0] / scale + anchors[:, 0]
    cy = raw_boxes[:, 1] / scale + anchors[:, 1]
    w = raw_boxes[:, 2] / scale
    h = raw_boxes[:, 3] / scale
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    points = raw_boxes[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) / scale
    points = points + anchors[:, None, :]
    scores = (1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))).astype(np.float32)
    return boxes, points, scores


def iou(box, boxes):
    """Intersection over union of one box ``(4,)`` with each of ``boxes (N, 4)``."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes, points, scores, *, iou_threshold=0.3):
    """Merge overlapping detections: each cluster becomes the score-weighted mean of its members.

    Returns a list of ``(box (4,), points (K, 2), score)`` with the cluster's best score, best first.
    """
    remaining = np.argsort(-scores, kind="stable")
    merged = []
    while remaining.size:
        overlap = iou(boxes[remaining[0]], boxes[remaining])
        overlap[0] = 1.0  # the leader always belongs to its own cluster, even a degenerate box
        members = remaining[overlap > iou_threshold]
        weights = scores[members]
        total = float(weights.sum())
        box = (boxes[members] * weights[:, None]).sum(axis=0) / total
        pts = (points[members] * weights[:, None, None]).sum(axis=0) / total
        merged.append((box, pts, float(scores[remaining[0]])))
        remaining = remaining[overlap <= iou_threshold]
    return merged


def _fit(image, size):
    """The image resized to fit a ``size`` square, aspect kept, and where it goes: ``(resized, scale, pad_x, pad_y)``."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return resized, scale, (size - new_w) // 2, (size - new_h) // 2


def _fill_letterboxed(tensor, resized, pad_x, pad_y):
    """Write the letterboxed frame into the input tensor as the model wants it: ``x / 127.5 - 1``, padding -1."""
    tensor.fill(-1.0)  # a zero pixel
    inside = tensor[pad_y:pad_y + resized.shape[0], pad_x:pad_x + resized.shape[1]]
    np.multiply(resized, INPUT_STEP, out=inside, casting="unsafe")
    inside -= 1.0


def nearest_centre(detections, width, height):
    """The detection whose box centre is nearest the image centre (where the on-screen guide is), or None."""
    if not detections:
        return None
    cx, cy = width / 2.0, height / 2.0
    return min(detections, key=lambda d: (d.centre[0] - cx) ** 2 + (d.centre[1] - cy) ** 2)


CASCADES = {"blazeface_short_then_full": ("blazeface_short", "blazeface_full")}
# a cascade stage's answer is taken without asking the next one when its best face scores this
# much and is at least this share of the image's longer side wide (measured on walk-ups in the
# camera simulator: the short model's finds under about 100 px of 640 are boxed too large)
CONFIDENT_SCORE = 0.8
SHORT_RANGE_FRACTION = 0.2
DETECTORS = tuple(SPECS) + tuple(CASCADES)


def make_detector(model_id="blazeface_short", **options):
    """A ``FaceDetector`` or, for a cascade id, a ``CascadeDetector`` (options: see ``FaceDetector``)."""
    if model_id not in DETECTORS:
        raise ModelError(f"unknown detector {model_id!r}; known: {', '.join(DETECTORS)}")
    if model_id in CASCADES:
        return CascadeDetector(CASCADES[model_id], model_id=model_id, **options)
    return FaceDetector(model_id, **options)


class _TakesCentreFace:
    """What both detectors share: the face the kiosk takes among those ``detect`` finds."""

    def detect_centre(self, image):
        """The face the kiosk would take: nearest the image centre, or None when there is none."""
        return nearest_centre(self.detect(image), image.shape[1], image.shape[0])


class CascadeDetector(_TakesCentreFace):
    """BlazeFace variants tried in order on each frame until one is sure of a face it found."""

    def __init__(self, model_ids, *, model_id, confident_score=CONFIDENT_SCORE, min_fraction=SHORT_RANGE_FRACTION,
                 **options):
        self.model_id = model_id
        self.confident_score = float(confident_score)
        self.min_fraction = float(min_fraction)
        self.stages = tuple(FaceDetector(stage, **options) for stage in model_ids)

    def _sure(self, face, image):
        return face.score >= self.confident_score and face.width >= self.min_fraction * max(image.shape[:2])

    def detect(self, image):
        """The faces of the first stage whose best face is sure and wide enough (see the module).

        When no stage is: the last stage's faces, or if it found none, the first faces any stage
        found (best score first, pixels of ``image``).
        """
        unsure = []
        for number, stage in enumerate(self.stages):
            faces = stage.detect(image)
            last = number == len(self.stages) - 1
            if faces and (last or self._sure(faces[0], image)):
                return faces
            unsure = unsure or faces
        return unsure

    def detect_near(self, image):
        """The first stage alone: a cheap look (an idle kiosk between full looks)."""
        return self.stages[0].detect(image)


class FaceDetector(_TakesCentreFace):
    """A BlazeFace variant loaded once; ``detect(image_rgb)`` returns faces best first."""

    def __init__(self, model_id="blazeface_short", *, threads=1, runtime=None, min_score=None,
                 iou_threshold=0.3):
        if model_id not in SPECS:
            raise ModelError(f"unknown detector {model_id!r}; known: {', '.join(SPECS)}")
        self.model_id = model_id
        self.spec = SPECS[model_id]
        self.min_score = self.spec.min_score if min_score is None else float(min_score)
        self.iou_threshold = float(iou_threshold)
        # a little below the exact logit, so float rounding never drops a row the sigmoid keeps
        score = min(max(self.min_score, 1e-6), 1 - 1e-6)
        self._min_logit = float(np.log(score / (1.0 - score))) - 1e-3
        self.model = load_model(assets.path(self.spec.model_file), threads=threads, runtime=runtime)
        self.anchors = generate_anchors(self.spec.input_size, self.spec.strides,
                                        interpolated_anchor=self.spec.interpolated_anchor)
        expected = (1, self.spec.input_size, self.spec.input_size, 3)
        if self.model.input_shape() != expected:
            raise ModelError(f"{self.spec.model_file}: input {self.model.input_shape()}, expected {expected}")

    def detect(self, image):
        """All faces in an RGB uint8 image, best score first (pixels of ``image``)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        size = self.spec.input_size
        resized, scale, pad_x, pad_y = _fit(image, size)
        outputs = self.model.run_filled(lambda tensor: _fill_letterboxed(tensor, resized, pad_x, pad_y))
        raw_boxes, raw_scores = (outputs[0], outputs[1]) if outputs[0].shape[-1] == 16 else (outputs[1], outputs[0])
        raw_boxes = raw_boxes.reshape(len(self.anchors), -1)
        raw_scores = raw_scores.reshape(len(self.anchors))
        # decode only the rows that can pass: sigmoid(x) >= min_score  <=>  x >= logit(min_score)
        keep = np.flatnonzero(raw_scores >= self._min_logit)
        if not keep.size:
            return []
        boxes, points, scores = decode(raw_boxes[keep], raw_scores[keep], self.anchors[keep], size)
        keep = scores >= self.min_score  # the exact test, on the few rows left
        if not keep.any():
            return []
        faces = []
        for box, pts, score in weighted_nms(boxes[keep], points[keep], scores[keep],
                                            iou_threshold=self.iou_threshold):
            box_px = (box * size - [pad_x, pad_y, pad_x, pad_y]) / scale
            pts_px = (pts * size - [pad_x, pad_y]) / scale
            faces.append(Detection(tuple(float(v) for v in box_px), pts_px.astype(np.float32), score))
        return faces

    def detect_near(self, image):
        """The same as ``detect`` (one model: nothing cheaper to do)."""
        return self.detect(image)
