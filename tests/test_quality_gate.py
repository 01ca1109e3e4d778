"""The quality gate on real LFW photos: good frames pass, each defect gets its guidance code."""

import cv2
import numpy as np
import pytest

from kiosk import config
from kiosk.models import quality
from kiosk.models.detector import FaceDetector
from kiosk.models.landmarks import FaceLandmarker
from kiosk.models.quality import QualityGate, QualityLimits, guide_box


@pytest.fixture(scope="module")
def gate():
    return QualityGate(FaceDetector(), FaceLandmarker(), limits=QualityLimits.from_settings(config.build([]).face))


def photo(datasets, name, number):
    path = datasets / "faces" / "lfw" / name / f"{name}_{number:04d}.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def on_canvas(image, size=(480, 640), at=None):
    canvas = np.full(size + (3,), 120, np.uint8)
    h, w = image.shape[:2]
    y, x = at if at is not None else ((size[0] - h) // 2, (size[1] - w) // 2)
    canvas[y:y + h, x:x + w] = image
    return canvas


@pytest.mark.parametrize("name, number", [("Richard_Myers", 5), ("Hillary_Clinton", 1), ("Michael_Schumacher", 1)])
def test_good_frontal_photos_pass(gate, datasets, name, number):
    report = gate.check(photo(datasets, name, number))
    assert report.ok, report
    assert report.guidance is None and report.measures["faces"] == 1


def test_no_face(gate):
    report = gate.check(np.full((480, 640, 3), 128, np.uint8))
    assert report.failures == (quality.NO_FACE,)


def test_dark_photo_asks_for_light(gate, datasets):
    dark = (photo(datasets, "Richard_Myers", 5).astype(np.float32) * 0.25).astype(np.uint8)
    report = gate.check(dark)
    assert report.guidance == quality.MORE_LIGHT
    assert quality.HOLD_STILL not in report.failures  # light first: a dark face is never sharp


def test_overexposed_photo(gate, datasets):
    bright = np.clip(photo(datasets, "Richard_Myers", 5).astype(np.float32) * 0.5 + 170, 0, 255).astype(np.uint8)
    assert quality.TOO_BRIGHT in gate.check(bright).failures


def test_off_centre_face(gate, datasets):
    frame = on_canvas(photo(datasets, "Richard_Myers", 5), at=(0, 0))
    report = gate.check(frame)
    assert report.guidance == quality.CENTER_FACE
    x0, y0, x1, y1 = guide_box(640, 480, gate.limits)
    assert not (x0 <= report.face.box[0] and report.face.box[2] <= x1)


def test_small_face_asks_to_move_closer(gate, datasets):
    small = cv2.resize(photo(datasets, "Richard_Myers", 5), (170, 170), interpolation=cv2.INTER_AREA)
    report = gate.check(on_canvas(small, size=(240, 320)))
    assert report.guidance == quality.MOVE_CLOSER
    assert report.measures["face_px"] < gate.limits.min_face_px


def test_two_faces_composited(gate, datasets):
    frame = np.hstack([photo(datasets, "Richard_Myers", 5), photo(datasets, "Hillary_Clinton", 1)])
    report = gate.check(on_canvas(frame))
    assert report.guidance == quality.ONE_PERSON_ONLY
    assert report.measures["faces"] == 2


def test_blurred_face_asks_to_hold_still(gate, datasets):
    blurred = cv2.GaussianBlur(photo(datasets, "Richard_Myers", 5), (0, 0), 2.5)
    report = gate.check(blurred)
    assert quality.HOLD_STILL in report.failures
    assert report.measures["sharpness"] < gate.limits.min_sharpness


def test_turned_head_asks_to_face_the_camera(gate, datasets):
    report = gate.check(photo(datasets, "Richard_Myers", 3))  # head turned about 40 degrees
    assert quality.FACE_THE_CAMERA in report.failures
    assert abs(report.measures["yaw_deg"]) > gate.limits.max_yaw_deg


def test_eyes_below_the_open_limit(datasets):
    image = photo(datasets, "Richard_Myers", 5)
    detector, landmarker = FaceDetector(), FaceLandmarker()
    face = detector.detect_centre(image)
    mesh = landmarker.landmarks(image, face)
    strict = QualityLimits(min_eye_ratio=mesh.eye_ratio + 0.01)
    assert quality.assess(image, [face], mesh, limits=strict).failures == (quality.OPEN_EYES,)
    assert quality.assess(image, [face], mesh, limits=QualityLimits()).ok


def test_failures_come_in_priority_order(gate, datasets):
    dark_pair = (np.hstack([photo(datasets, "Richard_Myers", 5), photo(datasets, "Hillary_Clinton", 1)])
                 .astype(np.float32) * 0.25).astype(np.uint8)
    failures = gate.check(dark_pair).failures
    assert failures[0] == quality.ONE_PERSON_ONLY and quality.MORE_LIGHT in failures
    assert list(failures) == sorted(failures, key=quality.GUIDANCE_ORDER.index)
