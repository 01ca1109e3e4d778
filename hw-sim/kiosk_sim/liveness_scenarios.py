"""Camera scenarios for the liveness challenge: a real person turning the head, and one who does not.

A head turn is composed from real LFW photos of one person (Richard Myers, 18 photos in the
deep-funneled set) taken at different head angles, shown in order of yaw: frontal, part
turned, turned, part turned, frontal. The photos were ordered by the yaw the kiosk's face
mesh measures on them (frontal 0005: +1.5 degrees; to his left 0011: +12.5, 0013: +30.7; to
his right 0014: -10.5, 0016: -18.8, 0002: -25.9). It is a real 3D head at each angle, so the
landmark geometry changes the way a living face's does, unlike a photo turned as a whole.

``stand_still`` is the same person, live-looking (sway, sensor noise), who never performs the
challenge; the existing ``printed_photo`` scenario is the still-photo attack.

``photo_swap`` is the attack on a liveness check that is not bound to one tracked face: a live
person performs the head turn, then holds a printed photo of someone else (an enrolled person)
in front of their face at the same place. ``turn_photos`` gives the photo paths for building a
``ScriptedPerson`` who can turn either way on cue.
"""

import math

from kiosk_sim import scenarios
from kiosk_sim.scenarios import FaceTruth, Scenario, ScenarioSpecError, paste_face, photo_number

PERSON = "Richard_Myers"
FRONTAL = 5
# (photo number, frames) for each step of the turn
TURN_LEFT_STEPS = ((FRONTAL, 15), (11, 4), (13, 14), (11, 4), (FRONTAL, 23))
TURN_RIGHT_STEPS = ((FRONTAL, 15), (14, 3), (16, 3), (2, 12), (16, 3), (14, 3), (FRONTAL, 21))
FACE_PX = 190
# people whose photos at measured head angles are known: frontal and turned photo numbers
# (1-based, as in the file names), turned ones from slightly to fully turned
TURN_PHOTOS = {PERSON: (FRONTAL, {"turn_left": (11, 13), "turn_right": (14, 16, 2)})}


def turn_photos(faces, person=PERSON):
    """(frontal photo path, {"turn_left": [paths], "turn_right": [paths]}) for a person in ``TURN_PHOTOS``."""
    if person not in TURN_PHOTOS:
        raise ScenarioSpecError(f"no head-turn photos are known for {person!r} (known: {', '.join(TURN_PHOTOS)})")
    frontal, turns = TURN_PHOTOS[person]
    return (faces.photo_path(person, frontal - 1),
            {kind: [faces.photo_path(person, n - 1) for n in numbers] for kind, numbers in turns.items()})


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


# photo_swap's script, in frames at 15 fps
SWAP_APPROACH, SWAP_WAIT, SWAP_HOLD, SWAP_GAP, SWAP_PHOTO = 45, 15, 8, 10, 60


@scenarios.register("photo_swap", params=("live", "photo_of", "photo", "turn"))
def photo_swap(ctx):
    """A live person performs a head turn, then holds up a printed photo of someone else at the same place."""
    from kiosk_sim.scripted_person import ScriptedPerson  # here: it imports this module's parents

    live = ctx.params.get("live", PERSON)
    frontal, turns = turn_photos(ctx.faces, live)
    turn = ctx.params.get("turn", "left")
    if turn not in ("left", "right"):
        raise ScenarioSpecError(f"photo_swap: turn={turn!r} must be left or right")
    victim = ctx.params.get("photo_of")
    if victim is None:
        others = [name for name in ctx.faces.people if name != live]
        victim = others[int(ctx.rng.integers(0, len(others)))]
    number = photo_number(ctx.params.get("photo", "0"))
    photo = ctx.faces.photo_path(victim, number)
    person = ScriptedPerson(frontal, turns=turns, person=live, seed=ctx.seed, size=ctx.size,
                            approach_frames=SWAP_APPROACH, hold_frames=SWAP_HOLD)
    turned_at = person.perform(f"turn_{turn}", delay_frames=SWAP_APPROACH + SWAP_WAIT)
    raised_at = person.hold_up_photo(photo, person=victim, delay_frames=person.busy_until + SWAP_GAP)
    scenario = Scenario("photo_swap", raised_at + person.raise_frames + SWAP_PHOTO, person.draw, ctx=ctx,
                        description=f"{live} turns {turn} (frame {turned_at}), then holds up a printed "
                                    f"photo of {victim} (frame {raised_at})")
    scenario.person = person  # its script: person.state_at(i) tells what happens at frame i
    return scenario


@scenarios.register("scripted", params=("person",))
def scripted(ctx):
    """A person with known head-turn photos walks up and turns when the kiosk's screen asks."""
    from kiosk_sim.scripted_person import ScriptedPerson

    name = ctx.params.get("person", PERSON)
    frontal, turns = turn_photos(ctx.faces, name)
    person = ScriptedPerson(frontal, turns=turns, person=name, seed=ctx.seed, size=ctx.size, hold_frames=12)
    scenario = Scenario("scripted", 0, person.draw, ctx=ctx,
                        description=f"{name} walks up and turns the head when the screen asks")
    scenario.person = person  # kiosk_sim.scripted_person.PromptFollower(scenario.person) reads the screen
    return scenario
