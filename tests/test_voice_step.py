"""Voice enrolment and verification end to end on the simulated microphone, real voices, sealed storage."""

import random

import numpy as np
import pytest

from kiosk import app, config
from kiosk.errors import SealError
from kiosk.flows.voice_step import PHRASES, voice_print
from kiosk.storage import people
from kiosk.storage import db
from kiosk.storage.seal import DataKey
from kiosk_sim.microphone import ScenarioMicrophone


class Screens(list):
    def __call__(self, screen, **data):
        self.append((screen, data))

    def named(self, screen):
        return [data for name, data in self if name == screen]


@pytest.fixture(scope="module")
def settings():
    return config.build([("test", {"hardware": {"backend": "sim"}})])


@pytest.fixture
def rig(settings, datasets):
    player = ScenarioMicrophone(speed=0, seed=2, root=datasets)
    screens = Screens()
    step = app.build_voice_step(settings, microphone=app.build_microphone(settings, player=player),
                                show=screens, rng=random.Random(5))
    return player, screens, step


def reads(player, specs):
    """The simulated person: reads the next scenario each time a phrase is shown."""
    queue = list(specs)
    return lambda phrase, digits: player.play(queue.pop(0))


@pytest.fixture
def carlo_print(rig):
    player, screens, step = rig
    template = step.enrol(before_each=reads(player, ["reading:carlo_it:0", "reading:carlo_it:1", "reading:carlo_it:2"]))
    assert template is not None
    return template


def test_enrolment_takes_three_different_phrases_with_digits(rig, carlo_print):
    _, screens, _ = rig
    shown = screens.named("voice_phrase")
    assert len(shown) == 3 and len({d["phrase"] for d in shown}) == 3
    assert all(d["phrase"] in PHRASES and len(d["digits"].split()) == 4 for d in shown)
    assert [(d["reading"], d["readings"]) for d in shown] == [(1, 3), (2, 3), (3, 3)]
    meter = screens.named("voice_recording")
    assert len(meter) >= 3 * 45 and all({"phrase", "digits", "level_dbfs", "elapsed_s", "record_s"} <= set(d) for d in meter)
    assert max(d["level_dbfs"] for d in meter) > -30 and min(d["level_dbfs"] for d in meter) < -55
    assert abs(np.linalg.norm(carlo_print) - 1) < 1e-5


def test_the_enrolled_speaker_is_accepted_and_another_refused(rig, carlo_print):
    player, screens, step = rig
    same = step.verify(carlo_print, before=reads(player, ["reading:carlo_it:9"]))
    assert same.accepted and same.score > step.match_threshold
    other = step.verify(carlo_print, before=reads(player, ["reading:paola_it8k:9"]))
    assert other is not None and not other.accepted and other.score < step.match_threshold


@pytest.mark.parametrize("spec,guidance", [("noise:carlo_it:9", "too_noisy"), ("clipping:carlo_it:9", "clipped"),
                                           ("silence", "too_little_speech"), ("early:carlo_it:9", "outside_window")])
def test_a_bad_recording_gets_its_guidance_and_no_decision(rig, carlo_print, spec, guidance):
    player, screens, step = rig
    assert step.verify(carlo_print, before=reads(player, [spec])) is None
    shown = screens.named("voice_guidance")[-1]
    assert shown["guidance"] == guidance and shown["phrase"] in PHRASES


def test_enrolment_retries_an_unusable_reading_with_a_new_phrase(rig):
    player, screens, step = rig
    specs = ["noise:june_fr:0", "reading:june_fr:0", "reading:june_fr:1", "reading:june_fr:2"]
    assert step.enrol(before_each=reads(player, specs)) is not None
    assert [d["guidance"] for d in screens.named("voice_guidance")] == ["too_noisy"]
    assert len(screens.named("voice_phrase")) == 4


def test_enrolment_gives_up_after_its_attempts(rig):
    player, screens, step = rig
    assert step.enrol(max_attempts=2, before_each=reads(player, ["silence", "silence"])) is None


def test_voice_prints_are_sealed_at_rest(tmp_path, carlo_print):
    database = db.open_db(":memory:")
    key = DataKey.create(tmp_path / "data.key")
    people.upsert_person(database, {"person_id": "e1", "name": "Carlo"})
    people.set_voice_template(database, key, "e1", "campplus-fp16-v1", carlo_print)
    people.set_voice_template(database, key, "e1", "campplus-fp16-v1", carlo_print)  # replaced, not added
    stored = list(database.query("SELECT sealed FROM voice_templates"))
    assert len(stored) == 1 and carlo_print.astype("<f4").tobytes() not in stored[0]["sealed"]
    assert np.array_equal(people.voice_template(database, key, "e1", "campplus-fp16-v1"), carlo_print)
    assert people.voice_template(database, key, "e1", "other-model") is None
    with pytest.raises(SealError):
        people.voice_template(database, DataKey.create(tmp_path / "other.key"), "e1", "campplus-fp16-v1")
    people.delete_person(database, "e1")
    assert list(database.query("SELECT * FROM voice_templates")) == []


def test_voice_print_is_the_unit_mean():
    a, b = np.eye(4, dtype=np.float32)[:2]
    assert np.allclose(voice_print([a, b]), (a + b) / np.sqrt(2))
