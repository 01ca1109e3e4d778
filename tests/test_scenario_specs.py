"""Scenario spec strings choose who walks up; the photo-swap attack scenario; the player's scene sources."""

import cv2
import numpy as np
import pytest

from kiosk_sim import cli as sim_cli
from kiosk_sim import scenarios
from kiosk_sim.camera import ScenarioPlayer
from kiosk_sim.scenarios import ScenarioSpecError, UnknownScenarioError

SMALL = (160, 120)


@pytest.fixture(scope="module")
def faces(datasets):
    return scenarios.FaceLibrary(datasets / "faces" / "lfw")


def likeness(a, b):
    a, b = a.astype(np.float32) - a.mean(), b.astype(np.float32) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def face_vs_photo(frame, photo, size=64):
    x, y, w, h = frame.faces[0].box
    fx, fy, fw, fh = scenarios.LFW_FACE_BOX
    return likeness(cv2.resize(frame.image[y:y + h, x:x + w], (size, size)),
                    cv2.resize(photo[fy:fy + fh, fx:fx + fw], (size, size)))


def test_parse_spec_splits_name_and_parameters():
    assert scenarios.parse_spec("walk_up") == ("walk_up", {})
    assert scenarios.parse_spec(" walk_up : person = Aaron_Peirsol , photo=2 ") == (
        "walk_up", {"person": "Aaron_Peirsol", "photo": "2"})


@pytest.mark.parametrize("name", ["walk_up", "printed_photo", "darkness", "backlight"])
def test_person_and_photo_choose_who_is_shown(name, faces):
    scenario = scenarios.build(f"{name}:person=Aaron_Peirsol,photo=2", faces=faces, seed=5)
    frame = scenario.render(scenario.frame_count - 1)
    assert [f.person for f in frame.faces] == ["Aaron_Peirsol"]
    chosen = cv2.imread(str(faces.photo_path("Aaron_Peirsol", 2)))
    others = [cv2.imread(str(faces.photo_path("Aaron_Peirsol", n))) for n in (0, 1, 3)]
    if name != "darkness":  # too dark to tell photos apart by their pixels
        assert face_vs_photo(frame, chosen) > max(face_vs_photo(frame, o) for o in others)


def test_person_alone_means_their_first_photo_and_photo_alone_keeps_the_seeds_person(faces):
    first = scenarios.build("walk_up:person=Aaron_Peirsol", faces=faces).render(89)
    zero = scenarios.build("walk_up:person=Aaron_Peirsol,photo=0", faces=faces).render(89)
    assert np.array_equal(first.image, zero.image)
    for seed in range(4):
        default = scenarios.build("walk_up", faces=faces, seed=seed).render(0).faces[0].person
        assert scenarios.build("walk_up:photo=0", faces=faces, seed=seed).render(0).faces[0].person == default


def test_a_plain_name_still_builds_the_seeded_scenario(faces):
    a = scenarios.build("printed_photo", faces=faces, seed=4).render(9)
    with ScenarioPlayer("printed_photo", faces=faces, seed=4) as player:
        for _ in range(9):
            player.read()
        b = player.read_scene()
    assert np.array_equal(a.image, b.image) and a.faces[0].attack


@pytest.mark.parametrize("spec, error, message", [
    ("walk_upp:person=Aaron_Peirsol", UnknownScenarioError, "unknown camera scenario 'walk_upp'.*walk_up"),
    ("walk_up:persn=Aaron_Peirsol", ScenarioSpecError, "no parameter persn .takes person, photo"),
    ("two_faces:person=Aaron_Peirsol", ScenarioSpecError, "two_faces' has no parameter person .takes no param"),
    ("walk_up:person=Nobody_Here", ScenarioSpecError, "no person 'Nobody_Here'"),
    ("walk_up:person=../lfw/Aaron_Peirsol", ScenarioSpecError, "no person"),
    ("walk_up:person=Aaron_Peirsol,photo=4", ScenarioSpecError, "Aaron_Peirsol has 4 photos: photo=0..3"),
    ("walk_up:person=Aaron_Peirsol,photo=two", ScenarioSpecError, "'two' is not a photo number"),
    ("walk_up:photo=-1", ScenarioSpecError, "'-1' is not a photo number"),
    ("walk_up:person", ScenarioSpecError, "'person' is not key=value"),
    ("walk_up:person=A,person=B", ScenarioSpecError, "gives 'person' twice"),
    (":person=A", ScenarioSpecError, "no scenario name"),
    ("photo_swap:live=Aaron_Peirsol", ScenarioSpecError, "no head-turn photos are known for 'Aaron_Peirsol'"),
    ("photo_swap:photo_of=Aaron_Peirsol,turn=up", ScenarioSpecError, "turn='up' must be left or right"),
])
def test_bad_specs_fail_when_the_player_is_made(spec, error, message, faces):
    with pytest.raises(error, match=message):
        ScenarioPlayer(spec, faces=faces)
    with pytest.raises(ValueError):  # one builtin to catch for all of them
        scenarios.build(spec, faces=faces)


def test_unknown_scenario_is_also_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError) as caught:
        scenarios.build("nope")
    assert str(caught.value).startswith("unknown camera scenario 'nope'")


def test_cli_reports_a_bad_spec_and_renders_a_good_one(tmp_path, capsys):
    assert sim_cli.main(["camera", "--scenario", "walk_up:person=Nobody", "--out", str(tmp_path / "x")]) == 1
    assert "no person 'Nobody'" in capsys.readouterr().err
    out = tmp_path / "frames"
    assert sim_cli.main(["camera", "--scenario", "walk_up:person=Aaron_Peirsol,photo=1", "--out", str(out),
                         "--frames", "2"]) == 0
    assert len(list(out.glob("*.png"))) == 2
    assert sim_cli.main(["camera", "--list"]) == 0
    assert "photo_swap" in capsys.readouterr().out


def test_photo_swap_turns_then_shows_the_enrolled_persons_photo(faces):
    scenario = scenarios.build("photo_swap:live=Richard_Myers,photo_of=Aaron_Peirsol,photo=1,turn=right",
                               faces=faces, seed=2)
    script = scenario.person
    states = [script.state_at(i) for i in range(scenario.frame_count)]
    turning = [s.index for s in states if s.action == "turn_right"]
    holding = [s.index for s in states if s.face_hidden]
    assert turning and holding and max(turning) < min(holding)  # the turn first, then the photo
    assert all(s.held_photo == faces.photo_path("Aaron_Peirsol", 1) for s in states[min(holding):])
    assert not any(s.action == "turn_left" for s in states)
    for index in (0, turning[len(turning) // 2], min(holding) - 5):
        assert [(f.person, f.attack) for f in scenario.render(index).faces] == [("Richard_Myers", False)]
    for index in range(min(holding) + 2, scenario.frame_count, 15):
        assert [(f.person, f.attack) for f in scenario.render(index).faces] == [("Aaron_Peirsol", True)]
    live = scenario.render(min(holding) - 5).faces[0].box
    photo = scenario.render(min(holding) + 10).faces[0].box
    assert abs(live[0] - photo[0]) < 25 and abs(live[1] - photo[1]) < 25  # where the face was


def test_photo_swap_defaults_to_richard_myers_and_a_victim_chosen_by_seed(faces):
    victims = set()
    for seed in range(5):
        scenario = scenarios.build("photo_swap", faces=faces, seed=seed)
        assert scenario.render(0).faces[0].person == "Richard_Myers"
        victims.add(scenario.render(scenario.frame_count - 1).faces[0].person)
    assert len(victims) > 1 and "Richard_Myers" not in victims


def test_player_takes_a_scenario_object_and_switches_source_while_open(faces):
    scene = scenarios.build("no_face", faces=faces, size=SMALL)
    with ScenarioPlayer(scene, size=SMALL, loop=False) as player:
        assert player.source == "no_face" and player.frame_count == 45
        frames = [player.read_scene() for _ in range(3)]
        assert all(f.faces == [] for f in frames)
        player.play("walk_up:person=Aaron_Peirsol,photo=0")
        assert player.index == 0 and player.source == "walk_up:person=Aaron_Peirsol,photo=0"
        after = player.read_scene()
        assert after.index == 0 and after.faces[0].person == "Aaron_Peirsol"
        with pytest.raises(ScenarioSpecError):
            player.play("walk_up:person=Nobody")
        assert player.read_scene().faces[0].person == "Aaron_Peirsol"  # a bad play() changed nothing
        with pytest.raises(OSError, match="neither a camera scenario"):
            player.play("no_such_scene")
        assert player.read_scene().index == 2
    player.play(scene)  # while closed: takes effect at open
    with player:
        assert player.read_scene().faces == []
