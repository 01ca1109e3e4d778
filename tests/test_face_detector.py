"""BlazeFace decoding: anchors, box/keypoint decoding and weighted NMS on synthetic data; real detections."""

import numpy as np
import pytest

from kiosk.models import detector as det


def test_anchor_counts_match_the_models():
    short = det.SPECS["blazeface_short"]
    full = det.SPECS["blazeface_full"]
    assert len(det.generate_anchors(short.input_size, short.strides, interpolated_anchor=True)) == 896
    assert len(det.generate_anchors(full.input_size, full.strides, interpolated_anchor=False)) == 2304


def test_anchor_order_is_row_major_with_repeats_per_cell():
    anchors = det.generate_anchors(128, (8, 16, 16, 16), interpolated_anchor=True)
    # stride 8: 16x16 cells, 2 anchors each; first two share the first cell's centre
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])  # next cell along x
    np.testing.assert_allclose(anchors[32], [0.5 / 16, 1.5 / 16])  # next row
    # stride 16 (three layers): 8x8 cells, 6 anchors each, starting after 512 rows
    np.testing.assert_allclose(anchors[512:518], np.tile([[0.5 / 8, 0.5 / 8]], (6, 1)))
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_decode_offsets_are_relative_to_anchor_and_scaled_by_input_size():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], dtype=np.float32)
    raw = np.zeros((2, 16), dtype=np.float32)
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]   # centre shift (0.1, -0.05), size (0.25, 0.5) at 128
    raw[0, 4:6] = [-12.8, 0.0]              # first keypoint 0.1 left of the anchor
    scores = np.array([0.0, 100.0], dtype=np.float32)
    boxes, points, probs = det.decode(raw, scores, anchors, 128)
    np.testing.assert_allclose(boxes[0], [0.35 - 0.125, 0.45 - 0.25, 0.35 + 0.125, 0.45 + 0.25], atol=1e-6)
    np.testing.assert_allclose(points[0, 0], [0.15, 0.5], atol=1e-6)
    np.testing.assert_allclose(points[1], np.tile([[0.75, 0.75]], (6, 1)), atol=1e-6)
    np.testing.assert_allclose(probs, [0.5, 1.0], atol=1e-6)


def test_decode_does_not_overflow_on_extreme_logits():
    anchors = np.zeros((3, 2), dtype=np.float32)
    with np.errstate(over="raise"):
        _, _, probs = det.decode(np.zeros((3, 16)), np.array([-1e4, 0.0, 1e4]), anchors, 128)
    np.testing.assert_allclose(probs, [0.0, 0.5, 1.0], atol=1e-6)


def test_iou():
    box = np.array([0.0, 0.0, 2.0, 2.0])
    others = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(det.iou(box, others), [1.0, 1 / 7, 0.0, 0.0])


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0],
                      [0.1, 0.0, 1.1, 1.0],    # overlaps the first (IoU ~0.82)
                      [3.0, 3.0, 4.0, 4.0]])   # far away
    points = np.stack([np.full((6, 2), 0.0), np.full((6, 2), 1.0), np.full((6, 2), 5.0)])
    scores = np.array([0.9, 0.6, 0.7])
    merged = det.weighted_nms(boxes, points, scores, iou_threshold=0.3)
    assert [round(m[2], 3) for m in merged] == [0.9, 0.7]
    box, pts, _ = merged[0]
    np.testing.assert_allclose(box, [0.04, 0.0, 1.04, 1.0])           # (0.9*0 + 0.6*0.1) / 1.5
    np.testing.assert_allclose(pts, np.full((6, 2), 0.4))             # (0.9*0 + 0.6*1) / 1.5
    np.testing.assert_allclose(merged[1][0], boxes[2])


def test_weighted_nms_keeps_a_degenerate_leader():
    merged = det.weighted_nms(np.zeros((1, 4)), np.zeros((1, 6, 2)), np.array([0.8]))
    assert len(merged) == 1


def test_nearest_centre_picks_the_face_in_the_guide():
    kp = np.zeros((6, 2), dtype=np.float32)
    big_corner = det.Detection((0.0, 0.0, 60.0, 60.0), kp, 0.99)
    small_centre = det.Detection((40.0, 40.0, 60.0, 60.0), kp, 0.6)
    assert det.nearest_centre([big_corner, small_centre], 100, 100) is small_centre
    assert det.nearest_centre([], 100, 100) is None


def _rgb(path):
    import cv2

    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.fixture(scope="module")
def short_detector():
    return det.FaceDetector("blazeface_short", threads=1)


def test_detects_real_faces_and_maps_letterbox_back_to_pixels(datasets, short_detector):
    image = _rgb(sorted((datasets / "faces" / "lfw150").glob("*/*.jpg"))[0])
    face = short_detector.detect_centre(image)
    assert face is not None and face.score > 0.5
    # the eyes lie above the mouth, the right eye on the image's left
    assert face.keypoints[det.RIGHT_EYE, 0] < face.keypoints[det.LEFT_EYE, 0]
    assert face.keypoints[det.RIGHT_EYE, 1] < face.keypoints[det.MOUTH_CENTRE, 1]
    # the same photo pasted into a wider, taller canvas: letterboxing must map back exactly
    canvas = np.zeros((image.shape[0] + 60, image.shape[1] + 150, 3), dtype=np.uint8)
    canvas[40:40 + image.shape[0], 100:100 + image.shape[1]] = image
    moved = short_detector.detect_centre(canvas)
    assert moved is not None
    np.testing.assert_allclose(np.array(moved.box) - [100, 40, 100, 40], face.box, atol=6.0)


def test_full_range_detector_finds_a_small_face(datasets):
    import cv2

    image = _rgb(sorted((datasets / "faces" / "lfw").glob("*/*.jpg"))[0])
    small = cv2.resize(image, (100, 100), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
    canvas[190:290, 270:370] = small
    faces = det.FaceDetector("blazeface_full", threads=1).detect(canvas)
    assert faces and 260 <= faces[0].centre[0] <= 380 and 180 <= faces[0].centre[1] <= 300


def test_no_face_in_a_flat_image(short_detector):
    assert short_detector.detect(np.full((240, 320, 3), 128, dtype=np.uint8)) == []


def test_rejects_a_grey_array(short_detector):
    with pytest.raises(ValueError):
        short_detector.detect(np.zeros((10, 10), dtype=np.uint8))


def test_the_cascade_finds_a_far_face_the_short_model_misses_and_answers_a_near_one_alone(datasets, short_detector):
    import cv2

    cascade = det.make_detector("blazeface_short_then_full", threads=1)
    image = _rgb(sorted((datasets / "faces" / "lfw").glob("*/*.jpg"))[0])
    far = np.full((480, 640, 3), 90, dtype=np.uint8)
    far[200:300, 420:520] = cv2.resize(image, (100, 100), interpolation=cv2.INTER_AREA)  # a face of about 40 px
    assert short_detector.detect(far) == []
    found = cascade.detect(far)
    assert found and 420 <= found[0].centre[0] <= 520 and 200 <= found[0].centre[1] <= 300
    near = np.full((480, 640, 3), 90, dtype=np.uint8)
    near[40:440, 120:520] = cv2.resize(image, (400, 400))  # at the guide: the short model's answer is taken
    alone = short_detector.detect(near)
    assert alone and alone[0].score >= det.CONFIDENT_SCORE and alone[0].width >= det.SHORT_RANGE_FRACTION * 640
    both = cascade.detect(near)
    assert [f.box for f in both] == [f.box for f in alone]
    assert cascade.detect(np.full((480, 640, 3), 128, dtype=np.uint8)) == []


def test_an_unknown_detector_is_refused_with_the_known_ones():
    with pytest.raises(det.ModelError, match="blazeface_short_then_full"):
        det.make_detector("yolo")


def test_an_idle_kiosk_looks_far_now_and_then_and_near_on_every_frame(datasets):
    """Idle (detect mode) pays the far-range model a third of the time; identify mode always."""
    import cv2

    from kiosk.models import engine as face_engine
    from kiosk.models.pipeline import FacePipeline

    image = _rgb(sorted((datasets / "faces" / "lfw").glob("*/*.jpg"))[0])
    far = np.full((480, 640, 3), 90, dtype=np.uint8)
    far[200:300, 420:520] = cv2.resize(image, (100, 100), interpolation=cv2.INTER_AREA)
    near = np.full((480, 640, 3), 90, dtype=np.uint8)
    near[40:440, 120:520] = cv2.resize(image, (400, 400))
    engine = face_engine.FaceEngine(FacePipeline(detector="blazeface_short_then_full", threads=1), None)
    seen = [engine.analyse(far, i / 15.0, mode="detect").box is not None for i in range(2 * face_engine.FAR_LOOK_EVERY)]
    assert seen == ([True] + [False] * (face_engine.FAR_LOOK_EVERY - 1)) * 2
    assert all(engine.analyse(near, i / 15.0, mode="detect").box is not None for i in range(4))
    assert all(engine.analyse(far, i / 15.0, mode="identify").box is not None for i in range(3))
