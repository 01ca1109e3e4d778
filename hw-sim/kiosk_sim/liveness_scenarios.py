"""Camera scenarios for the liveness challenge: a real person turning the head, and one who does not.

A head turn is composed from real LFW photos of one person (Richard Myers, 18 photos in the
deep-funneled set) taken at different head angles, shown in order of yaw: frontal, part
turned, turned, part turned, frontal. The photos were ordered by the yaw the kiosk's face
mesh measures on them (frontal 0005: +1.5 degrees; to his left 0011: +12.5, 0013: +30.7; to
his right 0014: -10.5, 0016: -18.8, 0002: -25.9). It is a real 3D head at each angle, so the
landmark geometry changes the way a living face's does, unlike a photo turned as a whole.

``stand_still`` is the same person, live-looking (sway, sensor noise), who never performs the
challenge; the existing ``printed_photo`` scenario is the still-photo attack.
"""

import math

from kiosk_sim import scenarios
from kiosk_sim.scenarios import FaceTruth, Scenario, paste_face

PERSON = "Richard_Myers"
FRONTAL = 5
# (photo number, frames) for each step of the turn
TURN_LEFT_STEPS = ((FRONTAL, 15), (11, 4), (13, 14), (11, 4), (FRONTAL, 23))
TURN_RIGHT_STEPS = ((FRONTAL, 15), (14, 3), (16, 3), (2, 12), (16, 3), (14, 3), (FRONTAL, 21))
FACE_PX = 190


def _photo_sequence(ctx, steps):
    photos = {}
    sequence = []
    for number, frames in steps:
        if number not in photos:
            photos[number] = ctx.faces.load(PERSON, number - 1).photo  # file numbers are 1-based
        sequence.extend([photos[number]] * frames)
    return sequence


def _scenario(ctx, name, steps, description):
    sequence = _photo_sequence(ctx, steps)
    width, height = ctx.size

    def draw(index, rng):
        canvas = ctx.background(rng)
        centre = (width / 2 + 3 * math.sin(index / 5), height * 0.48 + 2 * math.sin(index / 7))
        box = paste_face(canvas, sequence[index], centre, FACE_PX)
        return canvas, [FaceTruth(box, PERSON)]

    return Scenario(name, len(sequence), draw, ctx=ctx, description=description)


@scenarios.register("head_turn_left")
def head_turn_left(ctx):
    """A person faces the camera, turns the head to their own left, and back (real photos)."""
    return _scenario(ctx, "head_turn_left", TURN_LEFT_STEPS,
                     "frontal, head turned to the person's left (about 30 degrees), frontal again")


@scenarios.register("head_turn_right")
def head_turn_right(ctx):
    """A person faces the camera, turns the head to their own right, and back (real photos)."""
    return _scenario(ctx, "head_turn_right", TURN_RIGHT_STEPS,
                     "frontal, head turned to the person's right (about 25 degrees), frontal again")


@scenarios.register("stand_still")
def stand_still(ctx):
    """A person faces the camera and does not perform any challenge."""
    return _scenario(ctx, "stand_still", ((FRONTAL, 75),), "a person facing the camera, never turning or blinking")
