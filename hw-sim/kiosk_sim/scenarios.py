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

A scenario is chosen by a spec string: its name, optionally followed by parameters that the
scenario declares, ``name:key=value,key=value`` (``walk_up:person=Aaron_Peirsol,photo=2``).
Unknown names, parameters, people or photo numbers raise ``ScenarioSpecError`` (a ValueError;
an unknown name is also a KeyError).

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
NOISE_PAD = 64  # a uint8 noise field is this much larger than the frame, and read at a random offset

SCENARIOS = {}
PARAMS = {}  # scenario name -> the parameter names its spec string may carry


class ScenarioSpecError(ValueError):
    """A scenario spec names an unknown parameter, person or photo, or is malformed."""


class UnknownScenarioError(ScenarioSpecError, KeyError):
    """A scenario spec names no registered scenario."""

    def __str__(self):  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def register(name, *, params=()):
    """Decorator: add a scenario builder ``builder(ctx) -> Scenario`` under ``name``.

    ``params`` lists the parameters a spec string may give it; the builder reads them from
    ``ctx.params`` (a dict of strings).
    """

    def add(builder):
        if name in SCENARIOS and SCENARIOS[name] is not builder:
            raise ValueError(f"camera scenario {name!r} is already registered")
        SCENARIOS[name] = builder
        PARAMS[name] = tuple(params)
        return builder

    return add


def parse_spec(spec):
    """Split ``name:key=value,...`` into (name, {key: value}); checks the syntax only."""
    name, sep, rest = str(spec).strip().partition(":")
    name = name.strip()
    if not name:
        raise ScenarioSpecError(f"camera scenario spec {spec!r} has no scenario name")
    params = {}
    if sep:
        for item in rest.split(","):
            key, eq, value = (part.strip() for part in item.partition("="))
            if not key or not eq or not value:
                raise ScenarioSpecError(
                    f"camera scenario spec {spec!r}: {item.strip()!r} is not key=value "
                    f"(write e.g. {name}:person=Aaron_Peirsol,photo=2)")
            if key in params:
                raise ScenarioSpecError(f"camera scenario spec {spec!r} gives {key!r} twice")
            params[key] = value
    return name, params


def check_spec(spec):
    """Parse ``spec`` and check its name and parameter names (no photos are read); return (name, params)."""
    name, params = parse_spec(spec)
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"unknown camera scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})")
    allowed = PARAMS.get(name, ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
        raise ScenarioSpecError(f"camera scenario {name!r} has no parameter {', '.join(unknown)} ({takes})")
    return name, params


def photo_number(value, *, key="photo"):
    """A spec's photo number: a whole number >= 0."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or str(value).strip() != str(number):
        raise ScenarioSpecError(f"{key}={value!r} is not a photo number (0, 1, 2 ...)")
    return number


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

    def photo_path(self, name, number):
        """Path of ``name``'s photo ``number`` (0-based, name order), or ``ScenarioSpecError`` if none."""
        if name not in self.people:  # also keeps names like '../x' out of the path
            raise ScenarioSpecError(f"no person {name!r} in the face photos at {self.root} "
                                    f"(a person is a folder name there, e.g. {self.people[0]})")
        paths = self.photos(name)
        if not 0 <= number < len(paths):
            raise ScenarioSpecError(f"{name} has {len(paths)} photos: photo=0..{len(paths) - 1} "
                                    f"({paths[0].name} .. {paths[-1].name}), not {number}")
        return paths[number]

    def load(self, name, number=0, *, wrap=True):
        """One person with their ``number``-th photo (0-based; wraps around unless ``wrap=False``)."""
        if wrap:
            paths = self.photos(name)
            path = paths[number % len(paths)]
        else:
            path = self.photo_path(name, number)
        return Person(name, read_photo(path), path)


def read_photo(path):
    """A face photo as uint8 BGR; ``OSError`` if it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read face photo {path}")
    return image


class SceneContext:
    """What builders get: the photo set, a seeded generator, the frame size and a room background."""

    def __init__(self, *, faces=None, seed=0, size=FRAME_SIZE, params=None):
        self._faces = faces
        self.seed = seed
        self.size = tuple(size)
        self.params = dict(params or {})
        self.rng = np.random.default_rng(seed)
        self._room = None
        self._room_u8 = None

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

    def chosen_person(self, *, person_key="person", photo_key="photo"):
        """The person the ``person``/``photo`` parameters name; the seed chooses what they leave open.

        With only ``photo`` given, the seed picks the same person it would pick without it.
        With ``person`` but no ``photo``, their first photo (photo=0) is used.
        """
        photo = self.params.get(photo_key)
        if self.params.get(person_key) is None and photo is None:
            return self.pick_people(1)[0]
        name = self.params.get(person_key)
        if name is None:
            names = self.faces.people
            name = names[int(self.rng.choice(len(names), size=1, replace=False)[0])]
        number = 0 if photo is None else photo_number(photo, key=photo_key)
        return self.faces.load(name, number, wrap=False)

    def room(self):
        """The empty room (float32 BGR), the same for every frame of a scenario."""
        if self._room is None:
            self._room = _render_room(self.size, np.random.default_rng((self.seed, 7)))
        return self._room

    def background(self, rng, *, gain=1.0):
        """A fresh float32 canvas of the room with a slight lighting flicker."""
        flicker = 1.0 + float(rng.normal(0.0, 0.01))
        return self.room() * (gain * flicker)

    def empty_room(self, rng):
        """The room alone, with the same flicker as ``background``, drawn in uint8.

        A quarter of the float canvas's memory traffic: nothing is drawn on it, and an idle
        kiosk looks at it all day (``kiosk bench idle``).
        """
        if self._room_u8 is None:
            self._room_u8 = np.rint(np.clip(self.room(), 0, 255)).astype(np.uint8)
        flicker = 1.0 + float(rng.normal(0.0, 0.01))
        return cv2.convertScaleAbs(self._room_u8, alpha=flicker)


class Scenario:
    """A finite, replayable frame sequence; ``render(index)`` is deterministic."""

    def __init__(self, name, frame_count, draw, *, ctx, fps=DEFAULT_FPS, noise=SENSOR_NOISE, description=""):
        self.name = name
        self.frame_count = int(frame_count)  # 0: endless (indices are never wrapped)
        self.fps = float(fps)
        self.description = description
        self._draw = draw  # draw(index, rng) -> (float32 canvas, [FaceTruth])
        self._ctx = ctx
        self._noise = noise
        self._noise_bank = None
        self._noise_bank_u8 = None  # (positive part, negative part), padded by NOISE_PAD

    def _add_noise(self, canvas, rng):
        """Add sensor noise for one frame: a seeded field from a small bank, shifted at random.

        Drawing fresh Gaussian noise for every 640x480 frame costs more than the rest of the
        rendering; a shifted bank field is as good for "no two frames alike" and 10x cheaper.
        It is added in place, quarter by quarter, as ``np.roll`` would place it (no rolled copy).
        """
        shape = canvas.shape
        if self._noise_bank is None or self._noise_bank[0].shape != shape:
            bank_rng = np.random.default_rng((self._ctx.seed, 0xB0B))
            self._noise_bank = [bank_rng.normal(0.0, self._noise, shape).astype(np.float32) for _ in range(4)]
        field = self._noise_bank[int(rng.integers(0, len(self._noise_bank)))]
        dy, dx = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        h, w = shape[0], shape[1]
        canvas[dy:, dx:] += field[:h - dy, :w - dx]
        canvas[dy:, :dx] += field[:h - dy, w - dx:]
        canvas[:dy, dx:] += field[h - dy:, :w - dx]
        canvas[:dy, :dx] += field[h - dy:, w - dx:]

    def _add_noise_u8(self, image, rng):
        """``_add_noise`` for a uint8 frame: a seeded field from a padded bank at a random offset,
        added as its positive and negative parts with saturation (two passes over the frame)."""
        height, width = image.shape[:2]
        if self._noise_bank_u8 is None or self._noise_bank_u8[0].shape[:2] != (height + NOISE_PAD, width + NOISE_PAD):
            bank_rng = np.random.default_rng((self._ctx.seed, 0xB0C))
            field = np.rint(bank_rng.normal(0.0, self._noise, (height + NOISE_PAD, width + NOISE_PAD) + image.shape[2:]))
            self._noise_bank_u8 = (np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8))
        dy, dx = int(rng.integers(0, NOISE_PAD)), int(rng.integers(0, NOISE_PAD))
        up, down = (part[dy:dy + height, dx:dx + width] for part in self._noise_bank_u8)
        cv2.add(image, up, dst=image)
        cv2.subtract(image, down, dst=image)

    def render(self, index):
        """Frame ``index`` (taken modulo the frame count) as uint8 BGR with its ground truth.

        A drawing may be a float32 canvas (noise added, then clipped to uint8) or, for a scene
        with nothing drawn on the room (``SceneContext.empty_room``), already uint8.
        """
        index = int(index)
        local = index % self.frame_count if self.frame_count else index
        rng = np.random.default_rng((self._ctx.seed, local))
        canvas, faces = self._draw(local, rng)
        if canvas.dtype == np.uint8:
            if self._noise:
                self._add_noise_u8(canvas, rng)
            return SceneFrame(canvas, index, list(faces))
        if self._noise:
            self._add_noise(canvas, rng)
        image = np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)
        return SceneFrame(image, index, list(faces))


def build(spec, *, seed=0, size=FRAME_SIZE, faces=None):
    """Build the scenario a spec names (``walk_up`` or ``walk_up:person=Aaron_Peirsol,photo=2``)."""
    name, params = check_spec(spec)
    return SCENARIOS[name](SceneContext(faces=faces, seed=seed, size=size, params=params))


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


def ease(t):
    """Smooth 0..1 progress (smoothstep): people speed up and slow down."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


GUIDE_FACE = 0.42  # face width at the centre guide, as a fraction of the frame's shorter side


def walk_up_pose(index, size, approach):
    """Where a walking-up face is at frame ``index``: (centre x, centre y, face width px).

    The face grows from 40 px at the right toward the centre guide over ``approach`` frames,
    with a step bounce, then holds there swaying a little.
    """
    width, height = size
    t = ease(index / approach)
    face_px = 40 + (min(width, height) * GUIDE_FACE - 40) * t
    step = math.sin(index * 2 * math.pi / 8) * (1 - t)
    cx = width * (0.74 - 0.24 * t) + 3 * math.sin(index / 5)
    cy = height * (0.42 + 0.08 * t) + 5 * step
    return cx, cy, face_px


# --- the scenarios ---------------------------------------------------------------------------

PERSON_PARAMS = ("person", "photo")


@register("walk_up", params=PERSON_PARAMS)
def walk_up(ctx):
    """One person walks up from the side; the face grows toward the guide in the centre, then holds."""
    person = ctx.chosen_person()
    approach, hold = 60, 30

    def draw(index, rng):
        cx, cy, face_px = walk_up_pose(index, ctx.size, approach)
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
    return Scenario("no_face", 45, lambda index, rng: (ctx.empty_room(rng), []), ctx=ctx,
                    description="the empty room")


@register("darkness", params=PERSON_PARAMS)
def darkness(ctx):
    """A person at the kiosk in a room with the lights off: a very dark, noisy picture."""
    person = ctx.chosen_person()
    width, height = ctx.size

    def draw(index, rng):
        canvas = ctx.background(rng)
        box = paste_face(canvas, person.photo, (width / 2 + 3 * math.sin(index / 6), height * 0.48), 180)
        return canvas * 0.06, [FaceTruth(box, person.name)]

    return Scenario("darkness", 45, draw, ctx=ctx, noise=3.5, description="lights off: mean brightness under 15")


@register("backlight", params=PERSON_PARAMS)
def backlight(ctx):
    """A person in front of a bright window: blown-out background, face in shadow."""
    person = ctx.chosen_person()
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
from kiosk_sim import printed  # noqa: E402,F401  (printed_photo)
from kiosk_sim import liveness_scenarios  # noqa: E402,F401  (head_turn_left/right, stand_still, photo_swap)
from kiosk_sim import code_scenarios  # noqa: E402,F401  (code_phone, code_paper, code_tilted, code_far, code_close)
