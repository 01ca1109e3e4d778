"""The camera simulator's head model: a turn rendered from one frontal photo moves like a 3D head.

The liveness challenge must pass for the head model's turn (the landmarks move non-planarly) and
still refuse the same photo moved as a flat sheet (a printed photo turned or tilted as a whole):
the head model gives the bench's people a way to act the challenge without weakening the check.
"""

import dataclasses
import math

import cv2
import numpy as np
import pytest

from kiosk.models.detector import FaceDetector
from kiosk.models.landmarks import FaceLandmarker
from kiosk.models.liveness import ActiveChallenge, ChallengeKind, ChallengeRunner, Stage
from kiosk_sim import head_model
from kiosk_sim.scenarios import LFW_FACE_BOX, paste_face, read_photo
from kiosk_sim.scripted_person import ScriptedPerson

FPS = 15.0
PEOPLE = 3  # the first people in folder order with a frontal photo


@pytest.fixture(scope="module")
def models():
    return FaceDetector(), FaceLandmarker()


def rgb(canvas):
    return cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB)


def in_frame(photo, rng, *, size=(640, 480), face_px=190):
    """The photo's head drawn at the centre guide of a camera frame, with sensor noise (RGB uint8)."""
    canvas = np.full((size[1], size[0], 3), 120.0, np.float32)
    paste_face(canvas, photo, (size[0] / 2, size[1] * 0.48), face_px)
    return rgb(canvas + rng.normal(0, 2.5, canvas.shape))


def flat_turn(image, degrees):
    """The whole frame as a flat sheet turned ``degrees`` about its vertical axis (a printed photo)."""
    h, w = image.shape[:2]
    focal, theta = 1.2 * w, math.radians(degrees)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = [(w / 2 + focal * x * math.cos(theta) / (x * math.sin(theta) + focal),
              h / 2 + focal * y / (x * math.sin(theta) + focal)) for x, y in corners - (w / 2, h / 2)]
    matrix = cv2.getPerspectiveTransform(corners, np.float32(moved))
    return cv2.warpPerspective(image, matrix, (w, h), borderValue=(120, 120, 120))


def frontal_photos_in(dataset, detector, landmarker, *, limit, max_yaw, max_pitch):
    """(person, BGR photo) of the first photo per folder facing the camera, for the first ``limit`` such folders.

    Facing the camera: the face mesh reads |yaw| < ``max_yaw`` and |pitch| < ``max_pitch`` degrees.
    (Also used by tools/turn_sizes.py.)
    """
    chosen = []
    for folder in sorted(p for p in dataset.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.jpg")):
            image = cv2.cvtColor(read_photo(path), cv2.COLOR_BGR2RGB)
            face = detector.detect_centre(image)
            mesh = None if face is None else landmarker.landmarks(image, face)
            if mesh is not None and abs(mesh.yaw_deg) < max_yaw and abs(mesh.pitch_deg) < max_pitch:
                chosen.append((folder.name, read_photo(path)))
                break
        if len(chosen) == limit:
            break
    return chosen


@pytest.fixture(scope="module")
def frontal_photos(models, lfw):
    """(person, photo) for the first PEOPLE folders with a photo facing the camera (|yaw| < 4, |pitch| < 12)."""
    chosen = frontal_photos_in(lfw, *models, limit=PEOPLE, max_yaw=4, max_pitch=12)
    if len(chosen) < PEOPLE:
        pytest.skip("too few frontal photos in the dataset")
    return chosen


def challenge_on(models, kind, frames):
    challenge = ActiveChallenge(kind, started_s=0.0, timeout_s=len(frames) / FPS)
    runner = ChallengeRunner(*models, challenge)
    for index, frame in enumerate(frames):
        if runner.feed(frame, index / FPS).finished:
            break
    return challenge


@pytest.mark.parametrize("kind, sign", [(ChallengeKind.TURN_LEFT, 1.0), (ChallengeKind.TURN_RIGHT, -1.0)])
def test_the_head_models_turn_passes_and_the_same_photo_turned_flat_never_does(models, frontal_photos, kind, sign):
    rng = np.random.default_rng(3)
    for person, photo in frontal_photos:
        still = [in_frame(photo, rng) for _ in range(4)]
        turn = [in_frame(head_model.turned(photo, sign * angle), rng) for angle in (12, 23, 35, 35, 35)]
        live = challenge_on(models, kind, still + turn)
        assert live.stage is Stage.PASSED, (person, live.status, live.parallax)
        # the printed photo: the same frame turned as a flat sheet, as far as the head turned and further
        for degrees in (35, 50):
            flat = [flat_turn(still[0], sign * d * degrees / 35) for d in (12, 23, 35, 35, 35)]
            printed = challenge_on(models, kind, still + flat + still * 2)
            assert printed.stage is not Stage.PASSED, (person, degrees, printed.status, printed.parallax)


def test_the_parallax_check_passes_the_head_models_turn_and_refuses_the_flat_sheet(models, frontal_photos):
    from kiosk.models.liveness import planar_residual

    detector, landmarker = models
    limit = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0).min_parallax
    rng = np.random.default_rng(5)

    def mesh(image):
        return landmarker.landmarks(image, detector.detect_centre(image))

    for person, photo in frontal_photos:
        base = in_frame(photo, rng)
        for sign, kind in ((1.0, ChallengeKind.TURN_LEFT), (-1.0, ChallengeKind.TURN_RIGHT)):
            modelled = mesh(in_frame(head_model.turned(photo, sign * 35), rng))
            flat = mesh(flat_turn(base, sign * 35))
            assert planar_residual(mesh(base).points, modelled.points) > limit, (person, sign)
            assert planar_residual(mesh(base).points, flat.points) < limit, (person, sign)
            # the challenge itself: even a sheet whose mesh read as turned far enough is refused as planar
            read_as_turned = dataclasses.replace(flat, yaw_deg=sign * 25.0)
            for turned, stage in ((modelled, Stage.PASSED), (read_as_turned, Stage.FAILED)):
                challenge = ActiveChallenge(kind, started_s=0.0)
                challenge.update(mesh(base), 0.0)
                challenge.update(turned, 0.1)  # a turn passes on its second turned frame in a row
                assert challenge.update(turned, 0.2).stage is stage, (person, kind, challenge.status)
            assert challenge.reason == "planar_motion"


def test_the_nose_moves_across_the_face_further_than_the_eyes_do():
    """Parallax by construction: points nearer the camera move further sideways in a turn."""
    fx, fy, fw, fh = LFW_FACE_BOX
    cx = fx + fw / 2
    marks = {"nose": (cx, fy + 0.66 * fh), "eye": (cx + 0.21 * fw, fy + 0.38 * fh),
             "cheek": (cx + 0.45 * fw, fy + 0.6 * fh)}
    moved = {}
    for name, (x, y) in marks.items():
        photo = np.zeros((250, 250), np.uint8)
        cv2.circle(photo, (int(round(x)), int(round(y))), 2, 255, -1)
        turned = head_model.turned(photo, 30.0)
        ys, xs = np.nonzero(turned > 128)
        assert len(xs), name  # still in view
        moved[name] = xs.mean() - x
        assert abs(ys.mean() - y) < 1.5  # a turn about the vertical axis keeps rows
    assert moved["nose"] > moved["eye"] > moved["cheek"] > 0  # yaw > 0: toward the image's right
    assert moved["nose"] - moved["cheek"] > 0.1 * fw


def test_the_head_model_keeps_the_photo_at_0_and_refuses_impossible_turns():
    photo = np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)
    assert np.array_equal(head_model.turned(photo, 0.0), photo)
    assert head_model.turned(photo, -20.0).shape == photo.shape
    for bad in (80.0, -95.0, float("nan")):
        with pytest.raises(ValueError):
            head_model.turned(photo, bad)
    with pytest.raises(ValueError):
        head_model.turned(photo[:, :200], 10.0)


def test_a_scripted_person_turns_through_the_head_model_when_given_no_turned_photo(lfw):
    frontal = sorted((lfw / "Richard_Myers").glob("*.jpg"))[4]
    with pytest.raises(ValueError):
        ScriptedPerson(frontal, size=(160, 120)).perform("turn_left")  # no photo, no head model: cannot turn
    person = ScriptedPerson(frontal, head_turn_deg=30.0, size=(160, 120), approach_frames=2)
    start = person.perform("turn_right", delay_frames=3)
    person.perform("turn_left", degrees=45.0)
    yaws = [person.state_at(i).head_yaw_deg for i in range(start, person.busy_until + 1)]
    assert yaws[:12] == [-10.0, -20.0, -30.0] + [-30.0] * 6 + [-20.0, -10.0, None]
    assert yaws[12:15] == [15.0, 30.0, 45.0] and yaws[-1] is None
    states = [person.state_at(i) for i in range(start, start + 3)]
    assert all(s.head == frontal and s.pose == "turn_right" and not s.mirrored for s in states)
    assert not np.array_equal(person.render(start + 2).image, person.render(start - 1).image)
    with pytest.raises(ValueError):
        person.perform("turn_left", degrees=90.0)
