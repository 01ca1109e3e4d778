"""A head turn rendered from one frontal photo: the face laid on a 3D head shape and rotated.

``turned(photo, yaw_deg)`` takes an aligned frontal photo (LFW deep-funneled framing, 250x250,
face box ``LFW_FACE_BOX``) and returns the same photo as the head would look turned ``yaw_deg``
about its vertical axis (> 0: to the person's own left, the nose moving toward the image's
right, as ``kiosk.models.landmarks`` counts yaw). Every pixel is given a depth from a generic
head shape, ``head_depth``:

- an ellipsoid for the skull and face (half-width 0.62, half-height 0.84, half-depth 0.62 of
  the face box width: a head about as deep as it is wide, seen from the front);
- a nose on it: a ridge from between the eyes (no height) to the tip (0.25 of the face width
  proud of the ellipsoid, about 3.5 cm on a 14 cm face), falling off to the cheeks;
- slight hollows at the eye sockets.

The points are rotated in 3D about the head's vertical axis through the ellipsoid's centre
and projected orthographically (a camera at arm's length sees a head with little perspective);
where the turned surface hides itself (the far cheek behind the nose) the nearest point wins.
So the landmarks move non-planarly as a real head's do: the nose tip moves across the cheeks by
more than the eye corners move, which no single plane-to-plane mapping reproduces. A side of
the head the frontal photo never saw is filled from the nearest seen surface (stretched), as
little of it comes into view at the angles a liveness prompt asks for.

This is a model, not the person's own 3D shape: the head-turn photos of real people
(``liveness_scenarios``) remain what the liveness tests check against; the model lets every
person with one frontal photo act the challenge.
"""

import functools
import math

import cv2
import numpy as np

from kiosk_sim.scenarios import LFW_FACE_BOX

LFW_SIZE = 250
HEAD_HALF_WIDTH, HEAD_HALF_HEIGHT, HEAD_HALF_DEPTH = 0.6, 0.84, 0.8  # of the face box's width/height
NOSE, NOSE_WIDTH = 0.2, 0.09  # the nose: its tip proud of the ellipsoid, and its half-width, in face widths
OVERSAMPLE = 4  # surface samples per output pixel along a row: no holes where the turn stretches the face


@functools.lru_cache(maxsize=4)
def head_depth(size=LFW_SIZE):
    """Depth toward the camera (pixels of a ``size`` photo, 0 at the head's rotation axis) per pixel."""
    fx, fy, fw, fh = (v * size / LFW_SIZE for v in LFW_FACE_BOX)
    cx, cy = fx + fw / 2.0, fy + fh / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = x - cx, y - (cy - 0.08 * fh)  # the skull's centre sits a little above the face's
    a, b, c = HEAD_HALF_WIDTH * fw, HEAD_HALF_HEIGHT * fh, HEAD_HALF_DEPTH * fw
    inside = 1.0 - (dx / a) ** 2 - (dy / b) ** 2
    depth = c * np.sqrt(np.clip(inside, 0.0, None))
    # the nose: rises from the bridge (eye level) to the tip, narrow across, gone below the tip
    bridge, tip = fy + 0.40 * fh, fy + 0.66 * fh
    along = np.clip((y - bridge) / (tip - bridge), 0.0, None)
    rise = np.where(y <= tip, along, np.exp(-((y - tip) / (0.05 * fh)) ** 2))
    width = NOSE_WIDTH * fw * (1.0 + 0.6 * np.clip(along, 0.0, 1.0))  # wider toward the nostrils
    depth += NOSE * fw * rise * np.exp(-(dx / width) ** 2 / 2.0) * (y >= bridge)
    # the eye sockets: a little deeper than the ellipsoid
    for side in (-1.0, 1.0):
        ex, ey = cx + side * 0.21 * fw, fy + 0.38 * fh
        depth -= 0.05 * fw * np.exp(-(((x - ex) / (0.10 * fw)) ** 2 + ((y - ey) / (0.07 * fh)) ** 2) / 2.0)
    return depth.astype(np.float32), float(cx)


def turned(photo, yaw_deg):
    """``photo`` (an aligned square face photo, any dtype, 1 or 3 channels) with the head turned ``yaw_deg``."""
    if not math.isfinite(yaw_deg) or abs(yaw_deg) >= 80.0:
        raise ValueError(f"a head turn is between -80 and 80 degrees, not {yaw_deg!r}")
    height, width = photo.shape[:2]
    if height != width:
        raise ValueError(f"the head model takes a square aligned photo, not {width}x{height}")
    if yaw_deg == 0:
        return photo.copy()
    depth, axis_x = head_depth(width)
    theta = math.radians(yaw_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    samples = np.arange(width * OVERSAMPLE, dtype=np.float32) / OVERSAMPLE  # source x positions
    left = np.floor(samples).astype(np.int64)
    right = np.minimum(left + 1, width - 1)
    frac = samples - left
    z = depth[:, left] * (1 - frac) + depth[:, right] * frac          # rows x samples
    x = axis_x + (samples - axis_x) * cos + z * sin                     # where each sample lands
    toward = -(samples - axis_x) * sin + z * cos                        # its depth toward the camera
    column = np.rint(x).astype(np.int64)
    rows = np.broadcast_to(np.arange(height)[:, None], column.shape)
    seen = (column >= 0) & (column < width)
    key = (rows * width + column)[seen]
    order = np.lexsort((toward[seen], key))                             # per output pixel, nearest last
    key, source = key[order], np.broadcast_to(samples, column.shape)[seen][order]
    last = np.r_[key[1:] != key[:-1], True]
    map_x = np.full(height * width, np.nan, np.float32)
    map_x[key[last]] = source[last]
    map_x = map_x.reshape(height, width)
    columns = np.arange(width, dtype=np.float32)
    for row in range(height):  # output pixels no sample landed on: from their neighbours
        holes = np.isnan(map_x[row])
        if holes.any():
            map_x[row, holes] = np.interp(columns[holes], columns[~holes], map_x[row, ~holes])
    map_y = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width)).copy()
    return cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
