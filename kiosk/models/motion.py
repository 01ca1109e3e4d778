"""Is anything moving? A cheap look that lets an idle kiosk skip the face detector on a still room.

An idle kiosk looks for faces a few times a second. Most of the day the room in front of it is
empty and still, and the detector's work there (two BlazeFace models, several MB of activations
each) finds nothing. ``MotionGate`` compares a coarse picture of each frame with the one the
detector last looked at and says whether the detector should look again:

- always when it has never looked, when its last look found a face, or when ``max_quiet_s`` has
  passed since (a person standing still, or a change too faint to see here, is found by then);
- otherwise when at least ``min_cells`` cells of 16x16 pixels changed by more than
  ``change_level`` grey levels, after the frame's overall change (exposure, flicker) is taken out.

The coarse picture samples every 4th pixel of every 4th row of one channel and averages 4x4
samples into a cell: it reads a quarter of the frame's memory, and a cell's average is steady
against sensor noise (2.5 grey levels per pixel become about 0.6 per cell).
"""

import numpy as np

STRIDE = 4            # pixels between samples, in both directions
CELL_SAMPLES = 4      # samples per cell side: a cell is STRIDE * CELL_SAMPLES = 16 pixels wide
CHANGE_LEVEL = 12.0   # grey levels a cell must change by, beyond the frame's overall change
MIN_CHANGED_CELLS = 2
MAX_QUIET_S = 1.0     # the longest the detector waits, however still the room


def cells(image):
    """The coarse picture: mean green level (the same channel in BGR and RGB) per 16x16 cell, float32."""
    samples = np.asarray(image)[::STRIDE, ::STRIDE, 1] if np.ndim(image) == 3 else np.asarray(image)[::STRIDE, ::STRIDE]
    rows = samples.shape[0] - samples.shape[0] % CELL_SAMPLES
    cols = samples.shape[1] - samples.shape[1] % CELL_SAMPLES
    samples = samples[:rows, :cols].astype(np.float32)
    return samples.reshape(rows // CELL_SAMPLES, CELL_SAMPLES, cols // CELL_SAMPLES, CELL_SAMPLES).mean(axis=(1, 3))


class MotionGate:
    """``worth_looking(image, now_s)`` before the detector; ``looked(found)`` after it ran on that image."""

    def __init__(self, *, max_quiet_s=MAX_QUIET_S, change_level=CHANGE_LEVEL, min_cells=MIN_CHANGED_CELLS):
        self.max_quiet_s = float(max_quiet_s)
        self.change_level = float(change_level)
        self.min_cells = int(min_cells)
        self.reset()

    def reset(self):
        """Forget the last look: the next frame is looked at."""
        self._reference = None
        self._looked_s = None
        self._face_seen = False
        self._pending = None

    def worth_looking(self, image, now_s):
        """Whether the detector should look at ``image`` (taken at ``now_s``)."""
        self._pending = (cells(image), float(now_s))
        if self._reference is None or self._face_seen or now_s - self._looked_s >= self.max_quiet_s:
            return True
        current = self._pending[0]
        if current.shape != self._reference.shape:
            return True
        change = current - self._reference
        change -= np.median(change)
        return int(np.count_nonzero(np.abs(change) > self.change_level)) >= self.min_cells

    def looked(self, *, found):
        """The detector looked at the image last given to ``worth_looking``; ``found``: it saw a face."""
        if self._pending is not None:
            self._reference, self._looked_s = self._pending
        self._face_seen = bool(found)
