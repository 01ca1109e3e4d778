"""Camera scenarios: deterministic 640x480 BGR scenes composited from real face photos.

A scenario is built by a function registered in ``SCENARIOS`` (name -> builder). A builder takes
a ``SceneContext`` (face photos, seed, frame size) and returns a ``Scenario``: a frame count, a
frame rate and ``render(index) -> SceneFrame``. Rendering depends only on (seed, index), so any
frame can be re-rendered and a looped scenario repeats exactly.

Add a scenario from anywhere (a test, another module)::

    from kiosk_sim import scenarios

    @scenarios.register("blink_challenge")
    def blink_challenge(ctx):
        person = ctx.pick_people(1)[0]
        def render(index, rng):
            canvas = ctx.background(rng)
            box = scenarios.paste_face(canvas, person.photo, (320, 240), 180)
            return canvas, [scenarios.FaceTruth(box, person.name)]
        return scenarios.Scenario("blink_challenge", 60, render, ctx=ctx)

Face photos are LFW deep-funneled (aligned) images: 250x250, the face near (69, 68, 113, 113).
Ground-truth face boxes (``SceneFrame.faces``) follow that box through scaling and motion; they
are approximate (about +-10 %), good for checking a detector, not for scoring landmarks.
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kiosk_sim.datasets import datasets_dir

log = logging.getLogger(__name__)

FRAME_SIZE = (640, 480)
DEFAULT_FPS = 15.0
# where the face sits in an LFW deep-funneled 250x250 photo (median Haar box over the set)
LFW_FACE_BOX = (69, 68, 113, 113)
SENSOR_NOISE = 2.5  # grey levels, standard deviation; a live sensor never repeats a frame exactly

SCENARIOS = {}


def register(name):
    """Decorator: add a scenario builder ``builder(ctx) -> Scenario`` under ``name``."""

    def add(builder):
        if name in SCENARIOS and SCENARIOS[name] is not builder:
            raise ValueError(f"camera scenario {name!r} is already registered")
        SCENARIOS[name] = builder
        return builder

    return add


@dataclass(frozen=True)
class FaceTruth:
    """Where a face is in a frame: box (x, y, w, h), whose it is, and whether it is a photo of a face."""

    box: tuple
    person: str
    attack: bool = False


@dataclass
class SceneFrame:
    """One rendered frame with its ground truth."""

    image: np.ndarray
    index: int
    faces: list = field(default_factory=list)


@dataclass(frozen=True)
class Person:
    """A person of the photo set: name, the photo the scenario shows, and the photo's path."""

    name: str
    photo: np.ndarray
    path: Path


class FaceLibrary:
    """The LFW deep-funneled photos, grouped by person, loaded lazily."""

    def __init__(self, root=None):
        self.root = Path(root) if root else datasets_dir() / "faces" / "lfw"
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"face photos not found at {self.root} (set KIOSK_DATASETS to the shared datasets folder)")
        self.people = sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.jpg")))
        if not self.people:
            raise FileNotFoundError(f"no face photos (*.jpg) under {self.root}")

    def photos(self, name):
        """Paths of one person's photos, in name order."""
        return sorted((self.root / name).glob("*.jpg"))

    def load(self, name, number=0):
        """One person with their ``number``-th photo (0-based, wraps around)."""
        paths = self.photos(name)
        path = paths[number % len(paths)]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read face photo {path}")
        return Person(name, image, path)


class SceneContext:
    """What builders get: the photo set, a seeded generator, the frame size and a room background."""

    def __init__(self, *, faces=None, seed=0, size=FRAME_SIZE):
        self._faces = faces
        self.seed = seed
        self.size = tuple(size)
        self.rng = np.random.default_rng(seed)
        self._room = None

    @property
    def faces(self):
        if self._faces is None:
            self._faces = FaceLibrary()
        return self._faces

    def pick_people(self, count):
        """``count`` different people chosen by the seed, each with one of their photos."""
        names = self.faces.people
        chosen = self.rng.choice(len(names), size=count, replace=False)
        return [self.faces.load(names[i], int(self.rng.integers(0, 8))) for i in chosen]

    def room(self):
        """The empty room (float32 BGR), the same for every frame of a scenario."""
        if self._room is None:
            self._room = _render_room(self.size, np.random.default_rng((self.seed, 7)))
        return self._room

    def background(self, rng, *, gain=1.0):
        """A fresh float32 canvas of the room with a slight lighting flicker."""
        flicker = 1.0 + float(rng.normal(0.0, 0.01))
        return self.room() * (gain * flicker)


class Scenario:
    """A finite, replayable frame sequence; ``render(index)`` is deterministic."""

    def __init__(self, name, frame_count, draw, *, ctx, fps=DEFAULT_FPS, noise=SENSOR_NOISE, description=""):
        self.name = name
        self.frame_count = int(frame_count)
        self.fps = float(fps)
        self.description = description
        self._draw = draw  # draw(index, rng) -> (float32 canvas, [FaceTruth])
        self._ctx = ctx
        self._noise = noise
        self._noise_bank = None

    def _noise_field(self, shape, rng):
        """Sensor noise for one frame: a seeded field from a small bank, shifted at random.

        Drawing fresh Gaussian noise for every 640x480 frame costs more than the rest of the
        rendering; a shifted bank field is as good for "no two frames alike" and 10x cheaper.
        """
        if self._noise_bank is None or self._noise_bank[0].shape != shape:
            bank_rng = np.random.default_rng((self._ctx.seed, 0xB0B))
            self._noise_bank = [bank_rng.normal(0.0, self._noise, shape).astype(np.float32) for _ in range(4)]
        field = self._noise_bank[int(rng.integers(0, len(self._noise_bank)))]
        shift = (int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1])))
        return np.roll(field, shift, axis=(0, 1))

    def render(self, index):
        """Frame ``index`` (taken modulo the frame count) as uint8 BGR with its ground truth."""
        index = int(index)
        rng = np.random.default_rng((self._ctx.seed, index % self.frame_count))
        canvas, faces = self._draw(index % self.frame_count, rng)
        if self._noise:
            canvas += self._noise_field(canvas.shape, rng)
        image = np.clip(canvas, 0, 255).astype(np.uint8)
        return SceneFrame(image, index, list(faces))


def build(name, *, seed=0, size=FRAME_SIZE, faces=None):
    """Build the scenario registered as ``name``."""
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown camera scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})") from None
    return builder(SceneContext(faces=faces, seed=seed, size=size))


# --- drawing helpers -------------------------------------------------------------------------

def _render_room(size, rng):
    """A plain office corner: graded wall, a door frame, a notice board and the floor."""
    width, height = size
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    wall = 150 + 40 * (1 - y) - 20 * np.abs(x - 0.5)
    room = np.stack([wall * 0.86, wall * 0.95, wall * 1.02], axis=-1)
    floor_top = int(height * 0.82)
    room[floor_top:] = np.array([70, 85, 100], np.float32) + rng.normal(0, 4, (height - floor_top, width, 3))
    cv2.rectangle(room, (int(width * 0.04), int(height * 0.12)), (int(width * 0.22), floor_top),
                  (60, 80, 110), thickness=-1)  # door
    cv2.rectangle(room, (int(width * 0.04), int(height * 0.12)), (int(width * 0.22), floor_top),
                  (200, 205, 210), thickness=6)  # frame
    cv2.rectangle(room, (int(width * 0.7), int(height * 0.15)), (int(width * 0.92), int(height * 0.4)),
                  (90, 140, 160), thickness=-1)  # notice board
    for _ in range(5):
        x0 = int(rng.integers(int(width * 0.71), int(width * 0.86)))
        y0 = int(rng.integers(int(height * 0.16), int(height * 0.33)))
        cv2.rectangle(room, (x0, y0), (x0 + 30, y0 + 22), (235, 235, 240), thickness=-1)
    return room.astype(np.float32)


def _head_mask(photo_shape):
    """A feathered ellipse over head and hair of an aligned LFW photo (float32 0..1)."""
    h, w = photo_shape[:2]
    mask = np.zeros((h, w), np.float32)
    fx, fy, fw, fh = LFW_FACE_BOX
    centre = (int(w * (fx + fw / 2) / 250), int(h * (fy + fh / 2 + 4) / 250))
    axes = (int(w * 0.29), int(h * 0.42))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=w * 0.03)


def _blend(canvas, patch, alpha, x0, y0):
    """Alpha-blend ``patch`` onto ``canvas`` at (x0, y0), clipped to the canvas."""
    ch, cw = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + pw, cw), min(y0 + ph, ch)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    px0, py0 = cx0 - x0, cy0 - y0
    region = canvas[cy0:cy1, cx0:cx1]
    a = alpha[py0:py0 + (cy1 - cy0), px0:px0 + (cx1 - cx0), None]
    p = patch[py0:py0 + (cy1 - cy0), px0:px0 + (cx1 - cx0)]
    region[:] = region * (1 - a) + p * a


def paste_face(canvas, photo, centre, face_px, *, gain=1.0):
    """Composite a head from an aligned photo so its face is ``face_px`` wide at ``centre``; return the box."""
    fx, fy, fw, fh = LFW_FACE_BOX
    scale = face_px / fw
    size = max(2, int(round(photo.shape[1] * scale)))
    patch = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    alpha = _head_mask(patch.shape)
    face_cx, face_cy = (fx + fw / 2) * scale, (fy + fh / 2) * scale
    x0 = int(round(centre[0] - face_cx))
    y0 = int(round(centre[1] - face_cy))
    _draw_shoulders(canvas, centre, face_px, gain)
    _blend(canvas, patch.astype(np.float32) * gain, alpha, x0, y0)
    return (int(round(centre[0] - face_px / 2)), int(round(centre[1] - face_px / 2)), int(face_px), int(face_px))


def _draw_shoulders(canvas, centre, face_px, gain):
    """A dark jacket below the head so the head is not floating."""
    cx, cy = centre
    top = int(cy + face_px * 0.95)
    axes = (int(face_px * 1.25), int(face_px * 0.8))
    colour = (55 * gain, 50 * gain, 48 * gain)
    cv2.ellipse(canvas, (int(cx), top + axes[1]), axes, 0, 180, 360, colour, -1)
    cv2.rectangle(canvas, (int(cx - axes[0]), top + axes[1]), (int(cx + axes[0]), canvas.shape[0]), colour, -1)


def _ease(t):
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


# --- the scenarios ---------------------------------------------------------------------------

@register("walk_up")
def walk_up(ctx):
    """One person walks up from the side; the face grows toward the guide in the centre, then holds."""
    person = ctx.pick_people(1)[0]
    width, height = ctx.size
    approach, hold = 60, 30

    def draw(index, rng):
        t = _ease(index / approach)
        face_px = 40 + (min(width, height) * 0.42 - 40) * t
        step = math.sin(index * 2 * math.pi / 8) * (1 - t)
        cx = width * (0.74 - 0.24 * t) + 3 * math.sin(index / 5)
        cy = height * (0.42 + 0.08 * t) + 5 * step
        canvas = ctx.background(rng)
        box = paste_face(canvas, person.photo, (cx, cy), face_px)
        return canvas, [FaceTruth(box, person.name)]

    return Scenario("walk_up", approach + hold, draw, ctx=ctx,
                    description="a person walks up; the face grows toward the centre guide and holds")


@register("two_faces")
def two_faces(ctx):
    """Two people side by side in front of the kiosk, swaying a little."""
    first, second = ctx.pick_people(2)
    width, height = ctx.size

    def draw(index, rng):
        canvas = ctx.background(rng)
        a = paste_face(canvas, second.photo, (width * 0.7 + 4 * math.sin(index / 6), height * 0.45), 110)
        b = paste_face(canvas, first.photo, (width * 0.33 + 5 * math.sin(index / 7 + 1), height * 0.5), 140)
        return canvas, [FaceTruth(b, first.name), FaceTruth(a, second.name)]

    return Scenario("two_faces", 60, draw, ctx=ctx, description="two people in view at once")


@register("no_face")
def no_face(ctx):
    """The empty room: nobody in front of the kiosk."""
    return Scenario("no_face", 45, lambda index, rng: (ctx.background(rng), []), ctx=ctx,
                    description="the empty room")


@register("printed_photo")
def printed_photo(ctx):
    """A printed photo with a white border held up in front of the camera, moving rigidly."""
    person = ctx.pick_people(1)[0]
    width, height = ctx.size
    border = 22
    photo = person.photo.astype(np.float32) * 0.88 + 14  # paper: less contrast, lifted blacks
    print_img = cv2.copyMakeBorder(photo, border, border, border, border, cv2.BORDER_CONSTANT,
                                   value=(238, 240, 242))
    ph, pw = print_img.shape[:2]
    corners = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    fx, fy, fw, fh = LFW_FACE_BOX
    face_corners = np.float32([[fx + border, fy + border], [fx + fw + border, fy + border],
                               [fx + fw + border, fy + fh + border], [fx + border, fy + fh + border]])

    def draw(index, rng):
        angle = math.radians(4 * math.sin(index / 9))
        scale = 1.25 + 0.05 * math.sin(index / 13)
        cx = width * 0.5 + 18 * math.sin(index / 11)
        cy = height * 0.47 + 10 * math.sin(index / 7)
        tilt = 0.06 * math.sin(index / 10)  # the sheet turns a little about its vertical axis
        src = corners - (pw / 2, ph / 2)
        dst = []
        for x, y in src:
            x2 = x * (1 - tilt * (y / ph)) * scale
            y2 = y * (1 + tilt * (x / pw)) * scale
            dst.append((cx + x2 * math.cos(angle) - y2 * math.sin(angle),
                        cy + x2 * math.sin(angle) + y2 * math.cos(angle)))
        dst = np.float32(dst)
        matrix = cv2.getPerspectiveTransform(corners, dst)
        canvas = ctx.background(rng)
        shadow = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, ctx.size)
        shadow = np.roll(cv2.GaussianBlur(shadow, (0, 0), 6), (8, 10), axis=(0, 1))
        canvas *= (1 - 0.35 * shadow)[..., None]
        sheet = cv2.warpPerspective(print_img, matrix, ctx.size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, ctx.size)[..., None]
        canvas[:] = canvas * (1 - alpha) + sheet * alpha
        warped = cv2.perspectiveTransform(face_corners[None], matrix)[0]
        x0, y0 = warped.min(axis=0)
        x1, y1 = warped.max(axis=0)
        box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        return canvas, [FaceTruth(box, person.name, attack=True)]

    return Scenario("printed_photo", 60, draw, ctx=ctx,
                    description="a printed photo with a visible border held up, moving rigidly")


@register("darkness")
def darkness(ctx):
    """A person at the kiosk in a room with the lights off: a very dark, noisy picture."""
    person = ctx.pick_people(1)[0]
    width, height = ctx.size

    def draw(index, rng):
        canvas = ctx.background(rng)
        box = paste_face(canvas, person.photo, (width / 2 + 3 * math.sin(index / 6), height * 0.48), 180)
        return canvas * 0.06, [FaceTruth(box, person.name)]

    return Scenario("darkness", 45, draw, ctx=ctx, noise=3.5, description="lights off: mean brightness under 15")


@register("backlight")
def backlight(ctx):
    """A person in front of a bright window: blown-out background, face in shadow."""
    person = ctx.pick_people(1)[0]
    width, height = ctx.size

    def draw(index, rng):
        canvas = ctx.background(rng)
        window = (slice(int(height * 0.05), int(height * 0.8)), slice(int(width * 0.12), int(width * 0.88)))
        canvas[window] = 250.0
        box = paste_face(canvas, person.photo, (width / 2 + 3 * math.sin(index / 6), height * 0.48), 180,
                         gain=0.3)
        return canvas, [FaceTruth(box, person.name)]

    return Scenario("backlight", 45, draw, ctx=ctx, description="bright window behind, the face underexposed")


# scenarios defined in other modules register themselves on import
from kiosk_sim import liveness_scenarios  # noqa: E402,F401  (head_turn_left/right, stand_still)
