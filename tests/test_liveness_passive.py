"""The optional passive anti-spoofing model (FaceAntiSpoofing.tflite) on the real PAD samples.

Only what was observed is asserted: both attack samples score as attacks. The live sample and
most LFW faces ALSO score as attacks with this model (see docs/benchmarks.md), which is why it
is an option and not the default.
"""

import cv2
import numpy as np
import pytest

from kiosk.models.detector import FaceDetector
from kiosk.models.liveness import PassiveAntiSpoof, face_square


@pytest.fixture(scope="module")
def models():
    return FaceDetector(), PassiveAntiSpoof()


@pytest.mark.parametrize("sample", ["image_F1.jpg", "image_F2.jpg"])
def test_attack_samples_score_as_attacks(models, datasets, sample):
    detector, passive = models
    image = cv2.cvtColor(cv2.imread(str(datasets / "faces" / "pad" / sample)), cv2.COLOR_BGR2RGB)
    face = detector.detect_centre(image)
    assert face is not None
    score = passive.score(image, face)
    assert 0.0 <= score <= 1.5
    assert passive.is_attack(image, face)


def test_face_square_is_clipped_to_the_image(models):
    image = np.zeros((100, 80, 3), np.uint8)
    assert face_square(image, (60, 70, 100, 120)).shape[:2] == (30, 25)
    with pytest.raises(ValueError):
        models[1].score(image, (200, 200, 260, 260))
