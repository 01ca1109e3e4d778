"""Alignment: the similarity transform and the canonical 112x112 crop."""

import math

import numpy as np
import pytest

from kiosk.models import align


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = math.radians(17), 1.7, np.array([12.0, -4.0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = np.array([[10, 20], [40, 22], [25, 40], [12, 55], [38, 56]], dtype=float)
    dst = src @ (scale * rotation).T + shift
    matrix = align.similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    src = np.array([[0, 0], [1, 0], [0, 1]], dtype=float)
    mirrored = src * [-1, 1]
    matrix = align.similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_similarity_transform_rejects_bad_input():
    with pytest.raises(ValueError):
        align.similarity_transform(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        align.similarity_transform(np.ones((3, 2)), np.zeros((3, 2)))


def test_points_on_the_template_give_the_identity_crop():
    image = (np.arange(112 * 112 * 3) % 251).astype(np.uint8).reshape(112, 112, 3)
    crop = align.align(image, align.ARCFACE_TEMPLATE)
    assert crop.shape == (112, 112, 3)
    np.testing.assert_array_equal(crop[5:-5, 5:-5], image[5:-5, 5:-5])
    four = align.align(image, align.TEMPLATE_4)
    np.testing.assert_array_equal(four[5:-5, 5:-5], image[5:-5, 5:-5])


def test_points_from_mesh_and_detection():
    mesh = np.zeros((468, 3))
    mesh[33], mesh[133] = [10, 20, 0], [20, 20, 0]
    mesh[362], mesh[263] = [40, 21, 0], [50, 21, 0]
    mesh[1], mesh[61], mesh[291] = [30, 35, 0], [18, 50, 0], [42, 50, 0]
    np.testing.assert_allclose(align.points_from_mesh(mesh),
                               [[15, 20], [45, 21], [30, 35], [18, 50], [42, 50]])
    keypoints = np.arange(12, dtype=float).reshape(6, 2)
    np.testing.assert_allclose(align.points_from_detection(keypoints), keypoints[:4])
    with pytest.raises(ValueError):
        align.align(np.zeros((50, 50, 3), np.uint8), np.zeros((3, 2)))
