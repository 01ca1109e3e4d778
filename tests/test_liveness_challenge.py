"""Active liveness on real images: stills and printed/replayed photos never pass, a real head turn does."""

import math
import random
import sys

import cv2
import numpy as np
import pytest

from kiosk.models.detector import FaceDetector
from kiosk.models.landmarks import FaceLandmarker, FaceLandmarks
from kiosk.models.liveness import (ActiveChallenge, ChallengeKind, ChallengeRunner, Stage, choose_challenge,
                                   planar_residual)

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.camera import ScenarioPlayer  # noqa: E402

ALL_KINDS = list(ChallengeKind)


@pytest.fixture(scope="module")
def models():
    return FaceDetector(), FaceLandmarker()


def scenario_frames(name, *, passes=1):
    player = ScenarioPlayer(name, loop=False)
    frames = []
    with player:
        while (image := player.read()) is not None:
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return frames * passes, player.fps


def run(models, kind, frames, fps, *, timeout_s=6.0):
    challenge = ActiveChallenge(kind, started_s=0.0, timeout_s=timeout_s)
    runner = ChallengeRunner(*models, challenge)
    for index, frame in enumerate(frames):
        status = runner.feed(frame, index / fps)
        if status.finished:
            break
    return challenge


@pytest.mark.parametrize("scenario, kind", [("head_turn_left", ChallengeKind.TURN_LEFT),
                                            ("head_turn_right", ChallengeKind.TURN_RIGHT)])
def test_scenario_performing_the_turn_passes(models, scenario, kind):
    frames, fps = scenario_frames(scenario)
    challenge = run(models, kind, frames, fps)
    assert challenge.status.passed, challenge.status
    assert challenge.parallax >= challenge.min_parallax


@pytest.mark.parametrize("scenario, kind", [("head_turn_left", ChallengeKind.TURN_RIGHT),
                                            ("head_turn_right", ChallengeKind.TURN_LEFT)])
def test_turning_the_wrong_way_fails(models, scenario, kind):
    frames, fps = scenario_frames(scenario)
    challenge = run(models, kind, frames, fps)
    assert challenge.stage is Stage.FAILED and challenge.reason == "wrong_direction"


@pytest.mark.parametrize("scenario", ["stand_still", "printed_photo"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_scenarios_not_performing_never_pass(models, scenario, kind):
    frames, fps = scenario_frames(scenario, passes=2)  # twice the timeout's worth of frames
    challenge = run(models, kind, frames, fps, timeout_s=len(frames) / fps / 2)
    assert challenge.stage is Stage.FAILED and challenge.reason == "timeout"


def test_frozen_camera_replaying_a_still_never_passes(models):
    player = ScenarioPlayer("head_turn_left", loop=True)
    with player:
        player.freeze()
        player.read()
        frames = [cv2.cvtColor(player.read(), cv2.COLOR_BGR2RGB) for _ in range(100)]
    for kind in ALL_KINDS:
        assert run(models, kind, frames, 15.0).reason == "timeout"


def tilted(image, degrees, *, axis):
    """The image as a flat sheet turned ``degrees`` about its vertical (y) or horizontal (x) axis."""
    h, w = image.shape[:2]
    focal, theta = 1.2 * w, math.radians(degrees)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = []
    for x, y in corners - (w / 2, h / 2):
        if axis == "y":
            x, z = x * math.cos(theta), x * math.sin(theta)
        else:
            y, z = y * math.cos(theta), y * math.sin(theta)
        moved.append((w / 2 + focal * x / (z + focal), h / 2 + focal * y / (z + focal)))
    matrix = cv2.getPerspectiveTransform(corners, np.float32(moved))
    return cv2.warpPerspective(image, matrix, (w, h), borderValue=(128, 128, 128))


def attack_sequence(image, rng):
    """A held photo over 8 s at 15 fps: shaken, moved, then turned left and right as a whole, then back."""
    frames = []
    angles = [0] * 20 + list(range(0, 61, 5)) + list(range(60, -61, -5)) + list(range(-60, 1, 5)) + [0] * 10
    angles += [0] * (120 - len(angles))
    for index, angle in enumerate(angles):
        frame = tilted(image, angle, axis="y" if index % 40 < 30 else "x")
        shift = np.float32([[1, 0, rng.normal(0, 3)], [0, 1, rng.normal(0, 3)]])
        frame = cv2.warpAffine(frame, shift, (frame.shape[1], frame.shape[0]), borderValue=(128, 128, 128))
        noise = rng.normal(0, 2.5, frame.shape)
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


@pytest.mark.parametrize("sample", ["image_F1.jpg", "image_F2.jpg", "image_T1.jpg"])
def test_pad_samples_never_pass_any_challenge(models, datasets, sample):
    """F1 is a printed photo, F2 a screen replay; T1 is a live face, but a single still of one."""
    image = cv2.cvtColor(cv2.imread(str(datasets / "faces" / "pad" / sample)), cv2.COLOR_BGR2RGB)
    frames = attack_sequence(image, np.random.default_rng(7))
    for kind in ALL_KINDS:
        challenge = run(models, kind, frames, 15.0, timeout_s=7.5)
        assert challenge.stage is Stage.FAILED, (sample, kind, challenge.status)


def test_a_photo_turned_as_a_whole_is_planar_and_a_real_turn_is_not(models, datasets):
    detector, landmarker = models
    root = datasets / "faces" / "lfw" / "Richard_Myers"

    def mesh(image):
        return landmarker.landmarks(image, detector.detect_centre(image))

    frontal = cv2.cvtColor(cv2.imread(str(root / "Richard_Myers_0005.jpg")), cv2.COLOR_BGR2RGB)
    turned = cv2.cvtColor(cv2.imread(str(root / "Richard_Myers_0013.jpg")), cv2.COLOR_BGR2RGB)
    base = mesh(frontal)
    real = planar_residual(base.points, mesh(turned).points)
    photo = [planar_residual(base.points, mesh(tilted(frontal, a, axis="y")).points) for a in (-30, 30)]
    limit = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0).min_parallax
    assert real > limit > max(photo)


def synthetic(yaw=0.0, eye=0.28, points=None):
    """A landmark record with given pose/eye values (for the state machine alone)."""
    pts = np.zeros((468, 3), np.float32) if points is None else points
    return FaceLandmarks(pts, 1.0, yaw, 0.0, 0.0, eye, eye)


def test_blink_state_machine_and_timestamps():
    challenge = ActiveChallenge(ChallengeKind.BLINK, started_s=100.0, timeout_s=3.0)
    ratios = [0.28, 0.29, 0.27, 0.12, 0.08, 0.15, 0.26]
    for i, ratio in enumerate(ratios):
        status = challenge.update(synthetic(eye=ratio), 100.0 + i * 0.1)
    assert status.passed
    half = ActiveChallenge(ChallengeKind.BLINK, started_s=0.0, timeout_s=3.0)
    for i, ratio in enumerate([0.28, 0.28, 0.10, 0.10]):
        half.update(synthetic(eye=ratio), i * 0.1)
    assert half.stage is Stage.RETURNING  # closed but never reopened
    assert half.update(synthetic(eye=0.10), 3.01).reason == "timeout"  # driven by frame time only
    assert half.update(synthetic(eye=0.30), 3.1).reason == "timeout"   # finished stays finished


def turned_points(base, degrees):
    """``base`` points moved as a head turned by ``degrees`` would move them: nearer points further."""
    points = base.copy()
    points[:, 0] += np.sin(np.radians(degrees)) * points[:, 2]
    return points


def test_a_turn_passes_only_on_the_second_turned_frame_in_a_row():
    """One turned frame is not enough: a mesh misread on a small face must repeat to count."""
    rng = np.random.default_rng(4)
    base = rng.normal(0, 30, size=(468, 3)).astype(np.float32)
    turned = turned_points(base, 30)
    challenge = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0.0)
    assert challenge.update(synthetic(0.0, points=base), 0.0).stage is Stage.ACTING
    assert challenge.update(synthetic(25.0, points=turned), 0.1).stage is Stage.ACTING  # one frame: not yet
    assert challenge.update(synthetic(10.0, points=base), 0.2).stage is Stage.ACTING   # and the run is broken
    assert challenge.update(synthetic(25.0, points=turned), 0.3).stage is Stage.ACTING
    status = challenge.update(synthetic(26.0, points=turned), 0.4)
    assert status.passed and challenge.parallax >= challenge.min_parallax
    single = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0.0, turned_frames=1)
    single.update(synthetic(0.0, points=base), 0.0)
    assert single.update(synthetic(25.0, points=turned), 0.1).passed


def test_a_planar_turned_frame_fails_at_once():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 30, size=(468, 3)).astype(np.float32)
    challenge = ActiveChallenge(ChallengeKind.TURN_RIGHT, started_s=0.0)
    challenge.update(synthetic(0.0, points=base), 0.0)
    flat = base.copy()
    flat[:, 0] *= 0.8  # the whole picture squeezed sideways: one homography maps it
    status = challenge.update(synthetic(-25.0, points=flat), 0.1)
    assert status.stage is Stage.FAILED and status.reason == "planar_motion"


def test_no_face_frames_only_advance_time():
    challenge = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0.0, timeout_s=2.0)
    assert challenge.update(None, 1.0).stage is Stage.BASELINE
    assert challenge.update(None, 2.5).reason == "timeout"


def test_choose_challenge_is_random_over_the_allowed_set():
    rng = random.Random(3)
    picks = {choose_challenge(rng) for _ in range(60)}
    assert picks == set(ChallengeKind)
    assert {choose_challenge(rng, allowed="turn") for _ in range(30)} == {ChallengeKind.TURN_LEFT,
                                                                          ChallengeKind.TURN_RIGHT}
