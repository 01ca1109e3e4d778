"""A printed photo held up to the camera: a flat sheet with a white border that moves rigidly.

``PrintedSheet`` draws one photo printed on paper (less contrast, lifted blacks, a white border)
onto a frame under a perspective mapping: the whole sheet shifts, rotates, scales and turns a
little about its vertical axis as one plane, the way a hand-held print moves. It never changes
the pose of the face printed on it, which is what the kiosk's liveness challenge relies on.

``printed_photo`` (a registered scenario) holds such a sheet up in the middle of the frame; the
scripted person (``kiosk_sim.scripted_person``) raises one in front of their own face.
"""

import math

import cv2
import numpy as np

from kiosk_sim.scenarios import LFW_FACE_BOX, PERSON_PARAMS, FaceTruth, Scenario, register

BORDER = 22  # px of white paper around the printed photo, at the photo's own scale


def sheet_motion(index):
    """The hand's rigid sway at frame ``index``: (dx px, dy px, angle rad, nearer -1..1, tilt).

    ``nearer`` is how far the sheet is brought toward the camera and back; the caller scales it
    (the sheet grows and shrinks by about 4 %).
    """
    return (18 * math.sin(index / 11), 10 * math.sin(index / 7), math.radians(4 * math.sin(index / 9)),
            math.sin(index / 13), 0.06 * math.sin(index / 10))


class PrintedSheet:
    """One aligned face photo printed with a white border, ready to be drawn at any rigid pose."""

    def __init__(self, photo):
        printed = photo.astype(np.float32) * 0.88 + 14  # paper: less contrast, lifted blacks
        self.image = cv2.copyMakeBorder(printed, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT,
                                        value=(238, 240, 242))
        ph, pw = self.image.shape[:2]
        self.height, self.width = ph, pw
        self.corners = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
        fx, fy, fw, fh = LFW_FACE_BOX
        self.face_corners = np.float32([[fx + BORDER, fy + BORDER], [fx + fw + BORDER, fy + BORDER],
                                        [fx + fw + BORDER, fy + fh + BORDER], [fx + BORDER, fy + fh + BORDER]])

    def matrix(self, centre, scale, angle, tilt):
        """The perspective mapping that puts the sheet's centre at ``centre``, scaled, rotated and turned."""
        cx, cy = centre
        ph, pw = self.height, self.width
        src = self.corners - (pw / 2, ph / 2)
        dst = []
        for x, y in src:
            x2 = x * (1 - tilt * (y / ph)) * scale
            y2 = y * (1 + tilt * (x / pw)) * scale
            dst.append((cx + x2 * math.cos(angle) - y2 * math.sin(angle),
                        cy + x2 * math.sin(angle) + y2 * math.cos(angle)))
        return cv2.getPerspectiveTransform(self.corners, np.float32(dst))

    def draw(self, canvas, matrix):
        """Draw the sheet (and its shadow) onto the float32 canvas; return (face box, sheet coverage 0..1)."""
        size = (canvas.shape[1], canvas.shape[0])
        coverage = cv2.warpPerspective(np.ones((self.height, self.width), np.float32), matrix, size)
        shadow = np.roll(cv2.GaussianBlur(coverage, (0, 0), 6), (8, 10), axis=(0, 1))
        canvas *= (1 - 0.35 * shadow)[..., None]
        sheet = cv2.warpPerspective(self.image, matrix, size, flags=cv2.INTER_LINEAR)
        alpha = coverage[..., None]
        canvas[:] = canvas * (1 - alpha) + sheet * alpha
        warped = cv2.perspectiveTransform(self.face_corners[None], matrix)[0]
        x0, y0 = warped.min(axis=0)
        x1, y1 = warped.max(axis=0)
        return (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), coverage


@register("printed_photo", params=PERSON_PARAMS)
def printed_photo(ctx):
    """A printed photo with a white border held up in front of the camera, moving rigidly."""
    person = ctx.chosen_person()
    width, height = ctx.size
    sheet = PrintedSheet(person.photo)

    def draw(index, rng):
        dx, dy, angle, sway, tilt = sheet_motion(index)
        matrix = sheet.matrix((width * 0.5 + dx, height * 0.47 + dy), 1.25 + 0.05 * sway, angle, tilt)
        canvas = ctx.background(rng)
        box, _ = sheet.draw(canvas, matrix)
        return canvas, [FaceTruth(box, person.name, attack=True)]

    return Scenario("printed_photo", 60, draw, ctx=ctx,
                    description="a printed photo with a visible border held up, moving rigidly")
