"""The idle kiosk's motion gate: the detector skips a still, empty room, and never a person walking in."""

import numpy as np
import pytest

from kiosk.clock import FakeClock
from kiosk.host import FlowHost
from kiosk.models.motion import MAX_QUIET_S, MotionGate
from kiosk_sim import scenarios
from kiosk_sim.scripted_person import ScriptedPerson
from test_flow_host import FrameCounter, Recording

FPS = 5.0  # the idle detect rate (kiosk.host.DETECT_FPS)


def looks(gate, frames, *, found=False):
    """Feed frames a fifth of a second apart; which ones the detector would have looked at."""
    seen = []
    for number, image in enumerate(frames):
        look = gate.worth_looking(image, number / FPS)
        if look:
            gate.looked(found=found)
        seen.append(look)
    return seen


def test_a_still_empty_room_is_looked_at_only_once_in_max_quiet_s():
    room = scenarios.build("no_face", seed=5)
    seen = looks(MotionGate(), [room.render(i).image for i in range(50)])  # 10 s
    every = int(round(MAX_QUIET_S * FPS))
    assert seen == [i % every == 0 for i in range(50)]  # sensor noise and flicker are not motion


def test_a_change_of_exposure_over_the_whole_frame_is_not_motion():
    image = scenarios.build("no_face", seed=2).render(0).image
    gate = MotionGate()
    looks(gate, [image])
    brighter = np.clip(image.astype(np.int16) + 15, 0, 255).astype(np.uint8)
    assert not gate.worth_looking(brighter, 0.2)


@pytest.mark.parametrize("number", range(8))
def test_a_person_walking_in_from_the_far_end_is_looked_at_on_every_frame(datasets, number):
    folder = sorted(p for p in (datasets / "faces" / "lfw150").iterdir() if p.is_dir())[number * 11]
    person = ScriptedPerson(sorted(folder.iterdir())[0], turns={}, person=folder.name, seed=number, fps=15.0,
                            approach_frames=45)
    empty = person._ctx.empty_room(np.random.default_rng(number))  # the same room, nobody in it
    for index in range(0, 45, 3):  # the whole approach, from the first frame (a face about 40 px wide)
        frame = person.render(index)
        assert frame.faces, index
        gate = MotionGate()
        looks(gate, [empty])
        assert gate.worth_looking(frame.image, 0.2), (folder.name, index, frame.faces[0].box)


def test_after_a_face_was_found_every_frame_is_looked_at_and_reset_forgets():
    still = scenarios.build("no_face", seed=1).render(0).image
    gate = MotionGate()
    assert looks(gate, [still] * 6, found=True) == [True] * 6  # someone stood still in front of it
    gate = MotionGate()
    looks(gate, [still])
    assert not gate.worth_looking(still, 0.2)
    gate.reset()
    assert gate.worth_looking(still, 0.4)


@pytest.mark.parametrize("gate", [True, False])
def test_the_host_skips_the_detector_on_a_still_empty_room_only_with_the_gate(gate):
    from kiosk.drivers import camera
    from kiosk.drivers.camera_backends import PlayerSource
    from kiosk_sim.camera import ScenarioPlayer

    clock = FakeClock()
    cam = camera.Camera(PlayerSource(ScenarioPlayer("no_face")), clock=clock)
    cam.start(worker=False)
    engine = FrameCounter()
    host = FlowHost(Recording(), clock=clock, camera=cam, engine=engine, motion_gate=gate)
    host.set_face_mode("detect")
    for _ in range(15):  # 3 s at the idle rate
        cam.step()
        host.step()
        clock.advance(1.0 / FPS)
    assert len(engine.modes) == (3 if gate else 15)
    host.set_face_mode("identify")
    host.set_face_mode("detect")  # a new idle spell looks at once
    cam.step()
    host.step()
    assert len(engine.modes) == (4 if gate else 16)
    cam.stop()
