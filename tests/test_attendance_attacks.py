"""Real models, real photos, frame by frame: the attendance flow refuses the photo attacks.

The camera simulator renders each frame; the face engine (BlazeFace, face mesh, SFace, the
quality gate, the gallery) analyses it; the attendance flow decides. Time is frame time on a
fake clock, so the outcome does not depend on how loaded the machine is.
"""

import cv2
import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.flows.attendance import AttendanceFlow
from kiosk.flows.ports import Person
from kiosk.models.engine import FaceEngine
from kiosk.models.gallery import Gallery
from kiosk.models.pipeline import FacePipeline
from kiosk_sim import scenarios
from kiosk_sim.scripted_person import PromptFollower

from flow_fakes import FirstChoice, RecordingPorts

VICTIM = "Aaron_Peirsol"   # enrolled; their photo is the attack
LIVE = "Richard_Myers"     # a real head that can turn


@pytest.fixture(scope="module")
def settings():
    return config.build([("test", {"face": {"liveness": "challenge", "challenge": "turn"}})])


@pytest.fixture(scope="module")
def pipeline(settings):
    return FacePipeline.from_settings(settings.face)


def enrol(pipeline, lfw, names):
    templates = []
    for name in names:
        photo = sorted((lfw / name).glob("*.jpg"))[0]  # enrolled from their first photo
        image = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        templates.append((name, pipeline.process(image)[0].embedding))
    return Gallery.from_templates(pipeline.model_id, templates)


def play(settings, pipeline, gallery, scene, *, frames, follow=None):
    clock = FakeClock()
    ports = RecordingPorts(clock, [Person(n, n.replace("_", " ")) for n in gallery.person_ids()])
    flow = AttendanceFlow(ports=ports, clock=clock, settings=settings, rng=FirstChoice())
    engine = FaceEngine.from_settings(settings.face, pipeline=pipeline, gallery=gallery)
    shown = 0
    for index in range(frames):
        rendered = scene.render(index)
        face = engine.analyse(cv2.cvtColor(rendered.image, cv2.COLOR_BGR2RGB), index / 15.0,
                              mode="identify" if flow.state != "idle" else "detect")
        if face.box is not None or flow.state != "idle":
            flow.handle("face_seen", frame=face)
        clock.advance(1 / 15.0)
        flow.tick()
        if follow is not None:
            for name, data in ports.calls[shown:]:
                if name == "show":
                    follow(data["screen"], data)
            shown = len(ports.calls)
        if ports.records:
            break
    return flow, ports


def test_a_live_enrolled_person_who_turns_is_recorded(settings, pipeline, lfw):
    """The control: the same machinery accepts a live enrolled person (so the refusals below mean something)."""
    gallery = enrol(pipeline, lfw, [LIVE, VICTIM])
    scene = scenarios.build(f"scripted:person={LIVE}")
    flow, ports = play(settings, pipeline, gallery, scene, frames=150, follow=PromptFollower(scene.person))
    assert [r.person_id for r in ports.records] == [LIVE]
    assert ports.count("open_door") == 1


class SwapAfterTheTurn:
    """The attacker: stands in the guide, performs the asked turn live, then at once raises the enrolled person's photo."""

    def __init__(self, person, photo):
        self.person, self.photo, self.done = person, photo, False

    def __call__(self, screen, data):
        if screen == "face_challenge" and not self.done:
            self.done = True
            arrived = max(0, self.person.arrived_frame - self.person.next_index)
            self.person.perform(data["challenge"], delay_frames=arrived)
            self.person.hold_up_photo(self.photo)  # queued: starts as the head comes back


def test_photo_swap_live_challenge_then_enrolled_photo_is_refused(settings, pipeline, lfw):
    """An unenrolled live person performs the turn, then raises a printed photo of an enrolled person."""
    gallery = enrol(pipeline, lfw, [VICTIM])
    scene = scenarios.build(f"scripted:person={LIVE}")
    photo = sorted((lfw / VICTIM).glob("*.jpg"))[0]  # the very photo the victim was enrolled from
    attacker = SwapAfterTheTurn(scene.person, photo)
    flow, ports = play(settings, pipeline, gallery, scene, frames=200, follow=attacker)
    assert attacker.done and scene.person.state_at(199).held_photo == photo
    # the live turn passed (the attack is the swap, not a failed turn); the photo got nothing
    assert any(data["screen"] == "face_checking" for name, data in ports.calls if name == "show")
    assert not ports.records and ports.count("open_door") == 0


def test_photo_swap_scenario_is_refused(settings, pipeline, lfw):
    gallery = enrol(pipeline, lfw, [VICTIM])
    scene = scenarios.build(f"photo_swap:live={LIVE},photo_of={VICTIM},photo=0,turn=left")
    flow, ports = play(settings, pipeline, gallery, scene, frames=scene.frame_count)
    assert not ports.records and ports.count("open_door") == 0


def test_printed_photo_of_an_enrolled_person_is_refused(settings, pipeline, lfw):
    gallery = enrol(pipeline, lfw, [VICTIM])
    scene = scenarios.build(f"printed_photo:person={VICTIM},photo=0")
    flow, ports = play(settings, pipeline, gallery, scene, frames=150)
    assert not ports.records and ports.count("open_door") == 0
    assert flow.state in ("not_recognised", "watching", "idle")
