"""Real models, real photos, frame by frame: the activation flow's face step with the tracked face's liveness.

The camera simulator renders each frame of a scripted person (who turns when the screen asks),
the face engine analyses it in the mode the flow asked for, and the flow seals the capture. A
printed photo never becomes a capture: after three refused attempts the assisted path takes over.
"""

import cv2
import numpy as np
import pytest
from kiosk_sim import scenarios
from kiosk_sim.scripted_person import PromptFollower

from kiosk import config
from kiosk.flows.services.activation import ActivationFlow
from kiosk.models.engine import FaceEngine
from kiosk.models.pipeline import FacePipeline

from flow_fakes import FirstChoice
from service_fakes import GOOD_ID, make

pytestmark = pytest.mark.slow  # hundreds of frames through the real models (minutes on a loaded machine)

LIVE = "Richard_Myers"
VICTIM = "Aaron_Peirsol"


@pytest.fixture(scope="module")
def settings():
    return config.build([("test", {"face": {"liveness": "challenge", "challenge": "turn"}})])


@pytest.fixture(scope="module")
def pipeline(settings):
    return FacePipeline.from_settings(settings.face)


def at_face_step(settings):
    flow, ports, clock = make(ActivationFlow, face={"liveness": "challenge", "challenge": "turn"}, rng=FirstChoice())
    flow.handle("id_entered", national_id=GOOD_ID)
    flow.handle("code_entered", code="123456")
    flow.handle("consent_given")
    assert flow.state == "capturing_face" and ports.count("start_capture", kind="face", mode="enrol") == 1
    return flow, ports, clock


def play(flow, ports, clock, engine, scene, *, frames, follow=None):
    shown = 0
    for index in range(frames):
        if flow.state != "capturing_face":
            break
        rendered = scene.render(index)
        frame = engine.analyse(cv2.cvtColor(rendered.image, cv2.COLOR_BGR2RGB), index / 15.0, mode="enrol")
        flow.handle("face_seen", frame=frame)
        clock.advance(1 / 15.0)
        flow.tick()
        if follow is not None:
            for name, data in ports.calls[shown:]:
                if name == "show" and data["screen"] == "service_face" and data["challenge"]:
                    follow("face_challenge", {"challenge": data["challenge"], "stage": None})
            shown = len(ports.calls)


def test_a_live_person_who_turns_is_captured_and_the_capture_is_theirs(settings, pipeline, lfw):
    flow, ports, clock = at_face_step(settings)
    engine = FaceEngine.from_settings(settings.face, pipeline=pipeline, gallery=None)
    scene = scenarios.build(f"scripted:person={LIVE}")
    play(flow, ports, clock, engine, scene, frames=200, follow=PromptFollower(scene.person))
    assert flow.state == "capturing_finger"
    captured = np.frombuffer(ports.open(flow.sealed["face"], flow.context("face")), dtype="<f4")
    other_photo = sorted((lfw / LIVE).glob("*.jpg"))[-1]
    reference = pipeline.process(cv2.cvtColor(cv2.imread(str(other_photo)), cv2.COLOR_BGR2RGB))[0].embedding
    assert float(np.dot(captured, reference)) >= settings.face.match_threshold


def test_a_printed_photo_is_never_captured_and_ends_in_the_assisted_path(settings, pipeline):
    flow, ports, clock = at_face_step(settings)
    engine = FaceEngine.from_settings(settings.face, pipeline=pipeline, gallery=None)
    scene = scenarios.build(f"printed_photo:person={VICTIM},photo=0")
    play(flow, ports, clock, engine, scene, frames=900)
    assert "face" not in flow.sealed
    assert flow.state == "assisted" and ports.screen["kind"] == "face"
