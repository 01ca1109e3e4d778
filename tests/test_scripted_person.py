"""The scripted person: walks up, turns the head, holds up a photo and leaves on cue, deterministically."""

import threading

import cv2
import numpy as np
import pytest

from kiosk_sim import scenarios
from kiosk_sim.camera import ScenarioPlayer
from kiosk_sim.liveness_scenarios import turn_photos
from kiosk_sim.scripted_person import ScriptedPerson

SMALL = (160, 120)  # where pixels do not matter: a quarter of the size renders ~10x faster


@pytest.fixture(scope="module")
def faces(datasets):
    return scenarios.FaceLibrary(datasets / "faces" / "lfw")


@pytest.fixture(scope="module")
def myers(faces):
    return turn_photos(faces)  # (frontal path, {"turn_left": [...], "turn_right": [...]})


def make(myers, **options):
    frontal, turns = myers
    options.setdefault("turns", turns)
    return ScriptedPerson(frontal, **options)


def overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / float(aw * ah + bw * bh - ix * iy)


def face_crop(frame, size=64):
    x, y, w, h = frame.faces[0].box
    return cv2.resize(frame.image[y:y + h, x:x + w], (size, size)).astype(np.float32)


def photo_crop(photo, size=64):
    fx, fy, fw, fh = scenarios.LFW_FACE_BOX
    return cv2.resize(photo[fy:fy + fh, fx:fx + fw], (size, size)).astype(np.float32)


def likeness(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_walks_up_to_the_guide_and_stands_there(myers):
    person = make(myers, seed=1, approach_frames=30)
    first, arrived, later = person.render(0), person.render(30), person.render(80)
    assert first.image.shape == (480, 640, 3) and first.image.dtype == np.uint8
    assert [f.person for f in first.faces] == ["Richard_Myers"] and not first.faces[0].attack
    assert person.state_at(0).phase == "approaching" and person.state_at(29).phase == "approaching"
    assert person.state_at(30).phase == "present" and person.arrived_frame == 30
    (x0, _, w0, _), = [f.box for f in first.faces]
    (x1, y1, w1, h1), = [f.box for f in arrived.faces]
    assert w0 < 60 and w1 > 180  # grew from far away to the centre guide
    assert abs(x1 + w1 / 2 - 320) < 10 and abs(y1 + h1 / 2 - 240) < 10
    assert overlap(arrived.faces[0].box, later.faces[0].box) > 0.9  # and stays
    assert person.state_at(80).pose == "frontal" and person.state_at(80).head == myers[0]
    assert person.frame_count == 0 and person.fps == 15.0  # endless, at the kiosk's rate


def test_frames_depend_only_on_seed_index_and_cues(myers):
    a, b, c = make(myers, seed=5, size=SMALL), make(myers, seed=5, size=SMALL), make(myers, seed=6, size=SMALL)
    for person in (a, b):
        person.render(50)
        person.perform("turn_right", delay_frames=2)
    for index in (0, 40, 52, 55, 70):
        assert np.array_equal(a.render(index).image, b.render(index).image)
        assert a.render(index).faces == b.render(index).faces
    assert not np.array_equal(a.render(10).image, c.render(10).image)  # another seed, other noise
    assert not np.array_equal(a.render(60).image, a.render(61).image)  # a live sensor never repeats


def test_a_cue_changes_only_frames_not_yet_rendered(myers):
    person = make(myers, seed=2, size=SMALL)
    before = [person.render(i).image for i in range(50, 56)]
    assert person.next_index == 56
    start = person.perform("turn_left")
    assert start == 56
    assert all(np.array_equal(image, person.render(50 + i).image) for i, image in enumerate(before))
    assert person.state_at(55).action is None and person.state_at(56).action == "turn_left"


def test_perform_turns_through_the_given_photos_and_back(myers):
    frontal, turns = myers
    person = make(myers, seed=3, turn_frames=2, hold_frames=4, return_frames=2)
    person.render(59)
    start = person.perform("turn_left", delay_frames=5)
    assert start == 65 and person.busy_until == 65 + 8
    states = [person.state_at(start + j) for j in range(-1, 9)]
    assert [s.action for s in states] == [None] + ["turn_left"] * 8 + [None]
    assert [s.head for s in states] == ([frontal] + turns["turn_left"] + [turns["turn_left"][1]] * 4
                                        + [turns["turn_left"][0], frontal, frontal])
    assert [s.pose for s in states].count("turn_left") == 7 and not any(s.mirrored for s in states)
    # the picture follows: the fully turned head is the turned photo, not the frontal one
    turned = face_crop(person.render(start + 3))
    full = cv2.imread(str(turns["turn_left"][1]))
    assert likeness(turned, photo_crop(full)) > likeness(turned, photo_crop(cv2.imread(str(frontal))))
    assert person.render(start + 3).faces[0].person == "Richard_Myers"


def test_cues_queue_after_each_other_and_may_come_while_walking_up(myers):
    person = make(myers, seed=4, size=SMALL, approach_frames=30, turn_frames=2, hold_frames=3, return_frames=2)
    person.render(9)
    first = person.perform("turn_right")  # asked while still walking up: turns on the way
    second = person.perform("turn_left", delay_frames=1)
    assert first == 10 and second == 17
    state = person.state_at(12)
    assert state.phase == "approaching" and state.pose == "turn_right"
    assert person.state_at(16).action == "turn_right" and person.state_at(17).action == "turn_left"
    leaving = person.leave()
    assert leaving == 24 and person.state_at(23).phase == "approaching" and person.state_at(24).phase == "leaving"


def test_a_missing_direction_is_the_other_one_mirrored(myers):
    frontal, turns = myers
    person = ScriptedPerson(frontal, turns={"turn_left": turns["turn_left"][-1]}, seed=1)
    start = person.perform("turn_right", delay_frames=50)
    state = person.state_at(start + 4)
    assert state.pose == "turn_right" and state.mirrored and state.head == turns["turn_left"][-1]
    crop = face_crop(person.render(start + 4))
    photo = cv2.imread(str(turns["turn_left"][-1]))
    assert likeness(crop, photo_crop(cv2.flip(photo, 1))) > likeness(crop, photo_crop(photo)) + 0.1
    plain = ScriptedPerson(frontal, turns={"turn_left": turns["turn_left"]}, mirror=False, size=SMALL)
    with pytest.raises(ValueError, match="no photo turned for turn_right"):
        plain.perform("turn_right")


def test_bad_cues_and_options_are_refused(myers):
    frontal, turns = myers
    person = make(myers, size=SMALL)
    with pytest.raises(ValueError, match="turn_left or turn_right, not 'blink'"):
        person.perform("blink")
    with pytest.raises(ValueError, match="delay_frames"):
        person.perform("turn_left", delay_frames=-1)
    with pytest.raises(ValueError, match="not nod"):
        ScriptedPerson(frontal, turns={"nod": turns["turn_left"]})
    with pytest.raises(ValueError, match="hold_frames"):
        ScriptedPerson(frontal, hold_frames=0)
    with pytest.raises(OSError, match="cannot read"):
        ScriptedPerson(frontal.parent / "missing.jpg")
    with pytest.raises(ValueError, match="has no photo turned"):
        ScriptedPerson(frontal, size=SMALL).perform("turn_left")  # no turned photos at all


def test_kiosk_challenge_codes_are_accepted(myers):
    class Kind:  # like kiosk.models.liveness.ChallengeKind: a str Enum member
        value = "turn_right"

    person = make(myers, size=SMALL)
    assert person.state_at(person.perform(Kind())).action == "turn_right"


def test_a_held_up_photo_hides_the_face_at_the_same_place(myers, faces):
    person = make(myers, seed=7, raise_frames=3)
    person.render(69)
    live_box = person.render(69).faces[0].box
    photo = faces.photo_path("Aaron_Peirsol", 1)
    start = person.hold_up_photo(photo)
    assert start == 70
    assert person.state_at(69).held_photo is None and not person.state_at(69).face_hidden
    up = [person.render(i) for i in range(start + 2, start + 40, 6)]
    for frame in up:
        assert [(f.person, f.attack) for f in frame.faces] == [("Aaron_Peirsol", True)]
        assert overlap(frame.faces[0].box, live_box) > 0.6  # where the live face was: one track
    state = person.state_at(start + 10)
    assert state.held_photo == photo and state.face_hidden and state.phase == "present"
    boxes = [f.faces[0].box for f in up]
    assert len(set(boxes)) > 1 and max(b[2] for b in boxes) / min(b[2] for b in boxes) < 1.15  # rigid sway
    # it is printed on paper: the border is a bright band along the sheet's edge
    x, y, w, h = boxes[0]
    grey = cv2.cvtColor(up[0].image, cv2.COLOR_BGR2GRAY)
    left_band = grey[y:y + h, max(0, x - int(w * 0.72)):max(1, x - int(w * 0.56))]
    assert np.percentile(left_band, 75) > 200
    assert likeness(face_crop(up[2]), photo_crop(cv2.imread(str(photo)))) > 0.6
    with pytest.raises(RuntimeError, match="already holding"):
        person.hold_up_photo(faces.photo_path("Aaron_Peirsol", 2))


def test_the_photo_is_raised_from_below(myers, faces):
    person = make(myers, seed=7, raise_frames=4)
    start = person.hold_up_photo(faces.photo_path("Aaron_Peirsol", 0), delay_frames=50)
    tops = []
    for index in range(start, start + 4):
        frame = person.render(index)
        attack = [f for f in frame.faces if f.attack]
        tops.append(attack[0].box[1] if attack else 10_000)  # not yet in view: below the frame
    assert tops == sorted(tops, reverse=True) and tops[0] > tops[-1]
    assert person.state_at(start - 1).held_photo is None


def test_leave_walks_out_of_view_and_nothing_follows(myers):
    person = make(myers, seed=8, size=SMALL, leave_frames=10)
    start = person.leave(delay_frames=50)
    assert start == 50
    phases = [person.state_at(i).phase for i in (49, 50, 59, 60, 200)]
    assert phases == ["present", "leaving", "leaving", "gone", "gone"]
    assert person.render(60).faces == [] and person.state_at(60).head is None
    assert person.render(50).faces[0].person == "Richard_Myers"
    for cue in (lambda: person.perform("turn_left"), person.leave,
                lambda: person.hold_up_photo(myers[0])):
        with pytest.raises(RuntimeError, match="has left"):
            cue()


def test_the_player_plays_a_scripted_person_and_its_cues(myers):
    person = make(myers, seed=9, size=SMALL, approach_frames=10, turn_frames=1, hold_frames=2, return_frames=1)
    with ScenarioPlayer(person, size=SMALL, loop=False) as player:
        assert player.source == "scripted:Richard_Myers" and player.fps == 15.0
        scenes = [player.read_scene() for _ in range(12)]
        start = person.perform("turn_left")
        scenes += [player.read_scene() for _ in range(6)]
    assert start == 12 and [s.index for s in scenes] == list(range(18))
    assert [person.state_at(s.index).pose for s in scenes[12:]] == ["turn_left"] * 3 + ["frontal"] * 3


def test_cues_from_another_thread_never_rewrite_a_frame_already_read(myers):
    person = make(myers, seed=10, size=SMALL, approach_frames=5, turn_frames=1, hold_frames=1, return_frames=1)
    player = ScenarioPlayer(person, size=SMALL)
    player.open()
    read = {}
    requests = []
    done = threading.Event()
    frame_read = threading.Condition()

    def reader():
        for _ in range(150):
            scene = player.read_scene()
            read[scene.index] = (scene.image, scene.faces)
            with frame_read:
                frame_read.notify_all()
        done.set()
        with frame_read:
            frame_read.notify_all()

    def cues():
        # like a kiosk reading its own prompt: cue again as soon as the last cue is over, while
        # the camera keeps reading, so each cue races the frame being rendered
        for k in range(60):
            with frame_read:
                frame_read.wait_for(lambda: done.is_set() or person.next_index >= person.busy_until, timeout=10)
            if done.is_set():
                break
            seen = person.next_index
            start = person.perform(("turn_left", "turn_right")[k % 2], delay_frames=k % 3)
            requests.append((seen, k % 3, start))

    threads = [threading.Thread(target=reader), threading.Thread(target=cues)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    player.close()
    assert len(read) == 150 and len(requests) >= 20
    starts = [start for _, _, start in requests]
    assert starts == sorted(set(starts))  # queued, never overlapping (each cue lasts 3 frames)
    assert all(b - a >= 3 for a, b in zip(starts, starts[1:]))
    assert all(start >= seen + delay for seen, delay, start in requests)
    for index, (image, faces) in read.items():  # what the camera showed is what the script says
        again = person.render(index)
        assert np.array_equal(image, again.image) and faces == again.faces
