"""Fingers for the R30x simulator: images on the glass and a matcher on their minutiae.

A finger's identity is its dataset folder plus file prefix, e.g. ``FVC2002_DB1_B/101``;
impressions 1-8 are the files ``101_1.tif`` ... ``101_8.tif``. ``image:/path/to/file.png`` places
any image file (impression ignored). Identities starting with ``synthetic/`` need no dataset:
their image is a generated ridge pattern with minutiae of its own.

What the module does with an image is decided on the image: quality measured on it (smeared
or too little ridge area give the module's "too messy" and "too few features" answers),
minutiae extracted from it, and comparisons scored by a real minutiae matcher
(``kiosk_sim.r30x_minutiae``). Configured false-reject and false-accept rates are injected on
top, from a seeded generator, for fault tests.
"""

import functools
import hashlib
import logging
import os
import random
from pathlib import Path

import numpy as np

from kiosk_sim import r30x_minutiae as minutiae
from kiosk_sim.datasets import datasets_dir

log = logging.getLogger(__name__)

IMAGE_WIDTH = 256
IMAGE_HEIGHT = 288
CHAR_LEN = TEMPLATE_LEN = minutiae.RECORD_LEN
IMPRESSIONS = range(1, 9)
THRESHOLDS = minutiae.THRESHOLDS
IMAGE_PREFIX = "image:"

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
        if identity.startswith(IMAGE_PREFIX):
            path = Path(identity[len(IMAGE_PREFIX):])
            return path if path.is_file() else None
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
    """The centre width x height window at the image's own resolution, padded with background.

    No scaling: the FVC optical sets and the R30x optics are both about 500 dpi, and ridge
    spacing is what the minutiae extractor is tuned for.
    """
    h, w = image.shape
    canvas = np.full((height, width), 255, np.uint8)
    src_top, src_left = max(0, (h - height) // 2), max(0, (w - width) // 2)
    dst_top, dst_left = max(0, (height - h) // 2), max(0, (width - w) // 2)
    rows, cols = min(h, height), min(w, width)
    canvas[dst_top:dst_top + rows, dst_left:dst_left + cols] = image[src_top:src_top + rows, src_left:src_left + cols]
    return canvas


def _synthetic_image(identity, impression):
    """Parallel ridges bent by a per-finger phase field whose spirals are minutiae; shifted per impression."""
    rng = np.random.default_rng(_seed("synthetic", identity))
    shift = np.random.default_rng(_seed("synthetic", identity, impression)).normal(0, 5, 2)
    yy, xx = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH].astype(np.float64)
    yy, xx = yy - shift[0], xx - shift[1]
    period, direction = rng.uniform(8.0, 10.0), rng.uniform(0, np.pi)
    cy, cx = IMAGE_HEIGHT * rng.uniform(0.3, 0.7), IMAGE_WIDTH * rng.uniform(0.3, 0.7)
    phase = 2 * np.pi * (xx * np.cos(direction) + yy * np.sin(direction)) / period
    phase += 0.0012 * ((xx - cx) ** 2 + (yy - cy) ** 2) / period * 2 * np.pi  # curved, whorl-like
    for _ in range(int(rng.integers(30, 45))):  # each spiral of the phase ends or splits a ridge
        y0, x0 = rng.uniform(20, IMAGE_HEIGHT - 20), rng.uniform(20, IMAGE_WIDTH - 20)
        phase += rng.choice((-1, 1)) * np.arctan2(yy - y0, xx - x0)
    ridges = 0.5 + 0.5 * np.cos(phase)
    radius = np.hypot((yy - IMAGE_HEIGHT / 2) / (IMAGE_HEIGHT * 0.55), (xx - IMAGE_WIDTH / 2) / (IMAGE_WIDTH * 0.55))
    mask = np.clip((1.0 - radius) * 6, 0, 1)
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
    # grease smears dark patches over the ridges; dirt hides them under flat light patches
    blotches = np.zeros(image.shape, np.float32)
    count, radius = (70, (16, 44)) if condition == "dirty" else (16, (22, 48))
    for _ in range(count):
        y, x = rng.integers(0, image.shape[0]), rng.integers(0, image.shape[1])
        cv2.circle(blotches, (int(x), int(y)), int(rng.integers(*radius)), 1.0, -1)
    blotches = np.clip(cv2.GaussianBlur(blotches, (0, 0), 6) * 1.5, 0, 1)
    shade = 235.0 if condition == "dirty" else 60.0
    out = image.astype(np.float32) * (1 - blotches) + shade * blotches
    return np.clip(out, 0, 255).astype(np.uint8)


def character_file(image):
    """The 512-byte character file Img2Tz makes from a sensor image (an ISO 19794-2 record)."""
    return minutiae.extract(image)


def merge(char_a, char_b):
    """The template RegModel builds from two character files: the one with more minutiae.

    A real module merges the two; keeping the richer one is the simple approximation.
    """
    a, b = bytes(char_a), bytes(char_b)
    return a if minutiae.minutiae_count(a) >= minutiae.minutiae_count(b) else b


def raw_score(probe, reference):
    """The matcher's score of two character files or templates (before injected errors)."""
    return minutiae.score(probe, reference)


class Matcher:
    """Compare minutiae; inject false rejects and false accepts from a seeded generator."""

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
