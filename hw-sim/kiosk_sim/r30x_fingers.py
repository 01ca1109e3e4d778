"""Scripted fingers for the R30x simulator: real images, deterministic features, a matcher.

A finger's identity is its dataset folder plus file prefix, e.g. ``FVC2002_DB1_B/101``;
impressions 1-8 are the files ``101_1.tif`` ... ``101_8.tif``. Identities starting with
``synthetic/`` need no dataset: their image is a generated ridge pattern.

The simulated "features" are not extracted from pixels. A character file carries 240 feature
bytes drawn from a generator seeded by the identity, with a share of them (10-30 %, fixed per
impression) replaced by noise. Two impressions of one finger therefore agree on most bytes and
two different fingers on almost none, so the matcher separates genuine from impostor by
identity, while staying a pure function of the bytes: templates downloaded from one simulator
match in another. False rejects and false accepts are then injected at configured rates from
a seeded generator.
"""

import functools
import hashlib
import logging
import os
import random
from pathlib import Path

import numpy as np

from kiosk_sim.datasets import datasets_dir

log = logging.getLogger(__name__)

IMAGE_WIDTH = 256
IMAGE_HEIGHT = 288
CHAR_LEN = 256
TEMPLATE_LEN = 512
CHAR_MARK = 0x43  # first byte of a simulated character file
FEATURE_OFFSET = 16
FEATURE_LEN = CHAR_LEN - FEATURE_OFFSET
SCORE_SCALE = 250  # score = share of agreeing feature bytes x this
IMPRESSIONS = range(1, 9)

# score a comparison must reach, by security level (1 lenient .. 5 strict)
THRESHOLDS = {1: 20, 2: 35, 3: 50, 4: 65, 5: 80}

# finger conditions and what they do to a capture
CONDITIONS = ("clean", "wet", "oily", "dirty", "moved")


def default_fingers_dir():
    """$KIOSK_SIM_FINGERS, else fingers/ in the shared datasets folder ($KIOSK_DATASETS or ../shared/datasets)."""
    env = os.environ.get("KIOSK_SIM_FINGERS")
    if env:
        return Path(env)
    return datasets_dir() / "fingers"


def _seed(*parts):
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class FingerCatalog:
    """Find finger images in a dataset folder and turn them into 256x288 sensor images."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_fingers_dir()

    def identities(self):
        """Every identity with at least one impression on disk, sorted."""
        found = set()
        if not self.root.is_dir():
            return []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in folder.iterdir():
                stem, sep, number = path.stem.rpartition("_")
                if sep and number.isdigit():
                    found.add(f"{folder.name}/{stem}")
        return sorted(found)

    def image_path(self, identity, impression):
        """The file holding one impression, or None when the dataset lacks it."""
        folder, _, prefix = identity.rpartition("/")
        if not folder or not prefix or ".." in identity.split("/"):
            return None
        directory = self.root / folder
        if not directory.is_dir():
            return None
        for path in sorted(directory.glob(f"{prefix}_{impression}.*")):
            return path
        return None

    def check(self, identity, impression):
        """Raise ValueError unless this finger and impression can be placed."""
        if not isinstance(impression, int) or impression < 1:
            raise ValueError(f"impression must be a positive integer, got {impression!r}")
        if identity.startswith("synthetic/") and len(identity) > len("synthetic/"):
            return
        if self.image_path(identity, impression) is None:
            raise ValueError(f"no impression {impression} of finger {identity!r} under {self.root}")

    def image(self, identity, impression, condition="clean"):
        """The 288x256 uint8 image the sensor would see (already quantised to 16 grey levels)."""
        return _sensor_image(str(self.root), identity, impression, condition).copy()


@functools.lru_cache(maxsize=64)
def _sensor_image(root, identity, impression, condition):
    if identity.startswith("synthetic/"):
        image = _synthetic_image(identity, impression)
    else:
        path = FingerCatalog(root).image_path(identity, impression)
        image = _load_grey(path)
        image = _fit(image, IMAGE_WIDTH, IMAGE_HEIGHT)
    image = _apply_condition(image, condition, _seed(identity, impression, condition))
    image = (image.astype(np.uint16) // 17 * 17).astype(np.uint8)  # 4 bits per pixel on the wire
    image.setflags(write=False)
    return image


def _load_grey(path):
    import cv2  # opencv-python-headless is a runtime dependency of the firmware

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read finger image {path}")
    return image


def _fit(image, width, height):
    """Scale to cover width x height, then crop the centre (keeps the aspect ratio)."""
    import cv2

    h, w = image.shape
    scale = max(width / w, height / h)
    if abs(scale - 1.0) > 1e-6:
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    h, w = image.shape
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def _synthetic_image(identity, impression):
    """A ridge-like pattern: concentric waves around a per-finger core, shifted per impression."""
    rng = np.random.default_rng(_seed("synthetic", identity))
    shift = np.random.default_rng(_seed("synthetic", identity, impression)).normal(0, 6, 2)
    cy, cx = IMAGE_HEIGHT * rng.uniform(0.4, 0.6) + shift[0], IMAGE_WIDTH * rng.uniform(0.4, 0.6) + shift[1]
    period = rng.uniform(7.0, 10.0)
    yy, xx = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH]
    radius = np.hypot((yy - cy) * 0.8, xx - cx)
    ridges = 0.5 + 0.5 * np.cos(2 * np.pi * radius / period + rng.uniform(0, 2 * np.pi))
    mask = np.clip(1.4 - radius / (IMAGE_WIDTH * 0.55), 0, 1)
    return (255 - ridges * mask * 200).astype(np.uint8)


def _apply_condition(image, condition, seed):
    """Make wet fingers dark and smeared, dirty/oily ones blotchy."""
    if condition in ("clean", "moved"):
        return image
    import cv2

    rng = np.random.default_rng(seed)
    if condition == "wet":
        smeared = cv2.GaussianBlur(image, (0, 0), 4)
        return (smeared.astype(np.float32) * 0.45).astype(np.uint8)
    blotches = np.zeros(image.shape, np.float32)
    for _ in range(12 if condition == "dirty" else 6):
        y, x = rng.integers(0, image.shape[0]), rng.integers(0, image.shape[1])
        cv2.circle(blotches, (int(x), int(y)), int(rng.integers(10, 35)), 1.0, -1)
    blotches = cv2.GaussianBlur(blotches, (0, 0), 6)
    shade = 255.0 if condition == "dirty" else 60.0
    out = image.astype(np.float32) * (1 - blotches) + shade * blotches
    return np.clip(out, 0, 255).astype(np.uint8)


def finger_features(identity):
    """The 240 noise-free feature bytes of one finger."""
    return random.Random(_seed("finger", identity)).randbytes(FEATURE_LEN)


def character_file(identity, impression):
    """The 256-byte character file Img2Tz makes from one impression."""
    rng = random.Random(_seed("impression", identity, impression))
    features = bytearray(finger_features(identity))
    noise_share = rng.uniform(0.10, 0.30)
    for position in rng.sample(range(FEATURE_LEN), round(FEATURE_LEN * noise_share)):
        features[position] = rng.randrange(256)
    quality = round(100 * (1 - noise_share))
    header = bytes([CHAR_MARK, quality]) + bytes(FEATURE_OFFSET - 2)
    return header + bytes(features)


def merge(char_a, char_b):
    """The 512-byte template RegModel builds from two character files."""
    return bytes(char_a[:CHAR_LEN]).ljust(CHAR_LEN, b"\0") + bytes(char_b[:CHAR_LEN]).ljust(CHAR_LEN, b"\0")


def _feature_blocks(data):
    blocks = []
    for start in range(0, len(data) - CHAR_LEN + 1, CHAR_LEN):
        block = data[start:start + CHAR_LEN]
        if block[0] == CHAR_MARK:
            blocks.append(np.frombuffer(block, np.uint8, FEATURE_LEN, FEATURE_OFFSET))
    return blocks


def raw_score(probe, reference):
    """Agreement of two character files or templates, 0..SCORE_SCALE (before injected errors)."""
    best = 0
    for a in _feature_blocks(bytes(probe)):
        for b in _feature_blocks(bytes(reference)):
            best = max(best, int(np.count_nonzero(a == b)))
    return round(best * SCORE_SCALE / FEATURE_LEN)


class Matcher:
    """Compare features; inject false rejects and false accepts from a seeded generator."""

    def __init__(self, *, false_reject_rate=0.0, false_accept_rate=0.0, seed=0):
        for name, rate in (("false_reject_rate", false_reject_rate), ("false_accept_rate", false_accept_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {rate}")
        self.false_reject_rate = false_reject_rate
        self.false_accept_rate = false_accept_rate
        self._rng = random.Random(seed)

    def compare(self, probe, reference, security_level):
        """(accepted, score) for one comparison at this security level."""
        threshold = THRESHOLDS.get(security_level, THRESHOLDS[3])
        score = raw_score(probe, reference)
        if score >= threshold:
            if self.false_reject_rate and self._rng.random() < self.false_reject_rate:
                return False, self._rng.randrange(threshold // 3, threshold)
            return True, score
        if self.false_accept_rate and self._rng.random() < self.false_accept_rate:
            return True, threshold + self._rng.randrange(0, 30)
        return False, score

    def search(self, probe, templates, security_level):
        """(slot, score) of the best accepted template among ``{slot: bytes}``, or None."""
        best = None
        for slot in sorted(templates):
            accepted, score = self.compare(probe, templates[slot], security_level)
            if accepted and (best is None or score > best[1]):
                best = (slot, score)
        return best
