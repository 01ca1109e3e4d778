"""Provisioning codes shown to the camera: on a phone screen, on paper, tilted, too far, close up.

Each scenario draws one QR code (segno, a dev/simulator dependency) as a flat card seen through
a pinhole camera: the card is rotated about its vertical axis (``yaw``) and in its plane
(``roll``), sways a little as a hand does, and is projected with perspective. Sizes are the
code's width as a fraction of the frame width: at 1280x720 and a Pi camera's ~62 degree field,
0.25 is a 60 mm printed code at about 25 cm, 0.12 the same code at about 50 cm.

``code_file=PATH`` names a text file holding the code to show (``kiosk provision make-code``
output is a PNG; the bench writes the text). Without it the scenario shows a code-shaped text
of realistic length that no fleet key signed: the kiosk must read it and refuse it.
"""

import base64
import math
from pathlib import Path

import cv2
import numpy as np

from kiosk_sim.scenarios import Scenario, ScenarioSpecError, register

CODE_PARAMS = ("code_file",)
LENS_BLUR_PX = 0.8               # a fixed-focus kiosk lens is a little soft at arm's length
FAKE_CODE_BYTES = 237            # a first-provisioning code with Wi-Fi and a PIN hash: ~380 characters
SHAPES = {
    # name: (surface, width fraction, yaw deg, roll deg, description)
    "code_phone": ("phone", 0.26, 8.0, 4.0, "a provisioning code on a phone screen held up to the camera"),
    "code_paper": ("paper", 0.24, 6.0, 3.0, "a printed provisioning code held up to the camera"),
    "code_tilted": ("paper", 0.24, 40.0, 20.0, "a printed code turned 40 degrees away and rotated 20"),
    "code_far": ("paper", 0.11, 4.0, 2.0, "a printed code held too far away (about 55 cm)"),
    # a technician at the admin page holds the code up close: it reads even from the 640x480 frames
    # `kiosk run --backend sim` plays (a short re-provisioning code; tests/test_admin_provisioning_e2e.py)
    "code_close": ("paper", 0.5, 5.0, 3.0, "a printed code held close to the camera (about 12 cm)"),
}


def code_text(ctx):
    """The text the scenario shows: from ``code_file``, or a seeded unsigned look-alike."""
    path = ctx.params.get("code_file")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise ScenarioSpecError(f"code_file={path!r}: {e.strerror}") from None
    blob = np.random.default_rng((ctx.seed, 0xC0DE)).integers(0, 256, FAKE_CODE_BYTES, dtype=np.uint8).tobytes()
    return "KP1:" + base64.b32encode(blob).decode().rstrip("=")


def card_image(text, surface):
    """The code as the card the camera sees (float32 BGR): paper with a margin, or a phone."""
    import segno

    modules = np.array([[0.0 if dark else 1.0 for dark in row] for row in segno.make(text, error="m", micro=False).matrix],
                       dtype=np.float32)
    px = 6
    code = cv2.resize(modules, None, fx=px, fy=px, interpolation=cv2.INTER_NEAREST)
    quiet = 4 * px
    code = cv2.copyMakeBorder(code, quiet, quiet, quiet, quiet, cv2.BORDER_CONSTANT, value=1.0)
    if surface == "paper":
        grey = 18 + code * 220                       # toner is not black, paper not white
        card = cv2.copyMakeBorder(grey, px * 3, px * 3, px * 3, px * 3, cv2.BORDER_CONSTANT, value=236)
        return np.dstack([card * 0.98, card, card * 1.01]).astype(np.float32)
    # a backlit screen: whites clip, blacks are lifted by glare, a faint pixel grid, a dark bezel
    grey = 45 + code * 215
    grid = np.ones_like(grey)
    grid[::3, :] = 0.93
    grey = grey * grid
    bezel = px * 5
    card = cv2.copyMakeBorder(grey, bezel * 2, bezel * 3, bezel, bezel, cv2.BORDER_CONSTANT, value=20)
    return np.dstack([card * 1.04, card, card * 0.95]).astype(np.float32)


def card_matrix(card_shape, frame_size, *, width_fraction, yaw_deg, roll_deg, centre):
    """Perspective mapping of a card turned ``yaw`` about its vertical axis and ``roll`` in plane."""
    h, w = card_shape[:2]
    fw, _ = frame_size
    target_w = width_fraction * fw
    focal = fw / (2 * math.tan(math.radians(31)))      # a ~62 degree horizontal field of view
    distance = focal * w / target_w                   # in card pixels: the card spans target_w facing us
    yaw, roll = math.radians(yaw_deg), math.radians(roll_deg)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = []
    for x, y in src - (w / 2, h / 2):
        xr, yr = x * math.cos(roll) - y * math.sin(roll), x * math.sin(roll) + y * math.cos(roll)
        x3, z3 = xr * math.cos(yaw), distance + xr * math.sin(yaw)
        dst.append((centre[0] + focal * x3 / z3, centre[1] + focal * yr / z3))
    return cv2.getPerspectiveTransform(src, np.float32(dst))


def _make(name):
    surface, fraction, yaw_deg, roll_deg, description = SHAPES[name]

    def builder(ctx):
        card = card_image(code_text(ctx), surface)
        width, height = ctx.size
        ones = np.ones(card.shape[:2], np.float32)

        def draw(index, rng):
            sway = math.sin(index / 9)
            matrix = card_matrix(card.shape, ctx.size, width_fraction=fraction * (1 + 0.03 * sway),
                                 yaw_deg=yaw_deg + 3 * math.sin(index / 7), roll_deg=roll_deg + 2 * sway,
                                 centre=(width * 0.5 + 12 * math.sin(index / 11), height * 0.5 + 8 * sway))
            canvas = ctx.background(rng)
            coverage = cv2.warpPerspective(ones, matrix, ctx.size)[..., None]
            drawn = cv2.warpPerspective(card, matrix, ctx.size, flags=cv2.INTER_AREA)
            drawn = cv2.GaussianBlur(drawn, (0, 0), LENS_BLUR_PX)
            canvas[:] = canvas * (1 - coverage) + drawn * coverage
            if surface == "phone":      # a glare streak across the glass
                x = np.arange(width, dtype=np.float32)[None, :]
                y = np.arange(height, dtype=np.float32)[:, None]
                streak = np.exp(-(((x - y * 0.6 - width * 0.3) / (width * 0.05)) ** 2)) * 30
                canvas += (streak * coverage[..., 0])[..., None]
            return canvas, []

        return Scenario(name, 45, draw, ctx=ctx, description=description)

    builder.__doc__ = description
    return builder


for _name in SHAPES:
    register(_name, params=CODE_PARAMS)(_make(_name))
