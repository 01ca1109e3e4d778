"""The camera simulator: scenarios built from real face photos, the player, its faults and its CLI."""

import cv2
import numpy as np
import pytest

from kiosk_sim import cli as sim_cli
from kiosk_sim import scenarios
from kiosk_sim.camera import ScenarioPlayer, fit_frame


@pytest.fixture(scope="module")
def faces(datasets):
    return scenarios.FaceLibrary(datasets / "faces" / "lfw")


@pytest.fixture(scope="module")
def haar():
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


def detect(haar, image):
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return [tuple(int(v) for v in box) for box in haar.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))]


def test_every_required_scenario_is_registered():
    for name in ("walk_up", "two_faces", "no_face", "printed_photo", "darkness", "backlight"):
        assert name in scenarios.SCENARIOS


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_scenarios_are_640x480_bgr_and_deterministic(name, faces):
    first = scenarios.build(name, seed=3, faces=faces)
    again = scenarios.build(name, seed=3, faces=faces)
    a, b = first.render(5), again.render(5)
    assert a.image.shape == (480, 640, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image)
    assert a.faces == b.faces
    # consecutive frames differ (sensor noise at least), so a live camera never looks frozen
    assert not np.array_equal(first.render(5).image, first.render(6).image)
    # looping: frame N + frame_count is frame N again
    assert np.array_equal(first.render(2).image, first.render(2 + first.frame_count).image)


def test_seed_chooses_different_people(faces):
    people = {scenarios.build("walk_up", seed=seed, faces=faces).render(0).faces[0].person for seed in range(6)}
    assert len(people) > 1


def test_walk_up_face_grows_toward_the_centre_and_is_a_real_face(faces, haar):
    scenario = scenarios.build("walk_up", seed=1, faces=faces)
    start, end = scenario.render(0), scenario.render(scenario.frame_count - 1)
    (sx, sy, sw, sh), = [f.box for f in start.faces]
    (ex, ey, ew, eh), = [f.box for f in end.faces]
    assert ew > 3 * sw
    centre = np.array([320, 240])
    assert np.linalg.norm(np.array([ex + ew / 2, ey + eh / 2]) - centre) < 40
    assert np.linalg.norm(np.array([sx + sw / 2, sy + sh / 2]) - centre) > 100
    found = detect(haar, end.image)
    assert any(overlap(box, end.faces[0].box) > 0.4 for box in found), (found, end.faces)


def test_two_faces_shows_two_different_detectable_people(faces, haar):
    frame = scenarios.build("two_faces", seed=2, faces=faces).render(10)
    assert len(frame.faces) == 2 and frame.faces[0].person != frame.faces[1].person
    found = detect(haar, frame.image)
    for truth in frame.faces:
        assert any(overlap(box, truth.box) > 0.3 for box in found), (found, truth)


def test_no_face_has_nobody(faces, haar):
    frame = scenarios.build("no_face", faces=faces).render(3)
    assert frame.faces == []
    assert detect(haar, frame.image) == []


def test_the_empty_room_in_uint8_is_the_float_room_with_the_same_sensor_noise(faces):
    """no_face draws in uint8 (cheap at rest); it must show the room the float drawing shows, as noisy."""
    scenario = scenarios.build("no_face", seed=2, faces=faces)
    room = scenario._ctx.room()
    for index in range(3):
        image = scenario.render(index).image.astype(np.float32)
        flicker = float(np.median(image / np.maximum(room, 1.0)))
        residual = image - room * flicker
        assert abs(flicker - 1.0) < 0.05
        assert abs(float(residual.mean())) < 0.6  # the same room, not a shifted one
        assert 0.8 * scenarios.SENSOR_NOISE < float(residual.std()) < 1.25 * scenarios.SENSOR_NOISE


def test_printed_photo_moves_rigidly_with_a_white_border(faces):
    scenario = scenarios.build("printed_photo", seed=4, faces=faces)
    frames = [scenario.render(i) for i in range(0, 40, 8)]
    boxes = [f.faces[0].box for f in frames]
    assert all(f.faces[0].attack for f in frames)
    widths = [w for _, _, w, _ in boxes]
    assert max(widths) / min(widths) < 1.2  # a rigid sheet: the face does not grow or shrink much
    assert len({(x, y) for x, y, _, _ in boxes}) == len(boxes)  # but it moves
    x, y, w, h = boxes[0]
    grey = cv2.cvtColor(frames[0].image, cv2.COLOR_BGR2GRAY)
    # the paper border: a bright band above the printed picture (face top is ~68 px below the photo top)
    band = grey[max(0, y - int(h * 0.85)):y - int(h * 0.55), x:x + w]
    assert np.percentile(band, 90) > 215


def test_darkness_is_dark_and_backlight_leaves_the_face_in_shadow(faces):
    dark = scenarios.build("darkness", faces=faces).render(0)
    assert dark.image.mean() < 20
    lit = scenarios.build("backlight", faces=faces).render(0)
    x, y, w, h = lit.faces[0].box
    face = cv2.cvtColor(lit.image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY).mean()
    window = cv2.cvtColor(lit.image[30:100, 100:200], cv2.COLOR_BGR2GRAY).mean()
    assert window > 235 and face < 90


def test_a_new_scenario_can_be_registered_and_played(faces):
    @scenarios.register("test_still_face")
    def still_face(ctx):
        person = ctx.pick_people(1)[0]

        def draw(index, rng):
            canvas = ctx.background(rng)
            box = scenarios.paste_face(canvas, person.photo, (320, 240), 150)
            return canvas, [scenarios.FaceTruth(box, person.name)]

        return scenarios.Scenario("test_still_face", 5, draw, ctx=ctx)

    try:
        with ScenarioPlayer("test_still_face", faces=faces, loop=False) as player:
            scenes = [player.read_scene() for _ in range(6)]
        assert [s is None for s in scenes] == [False] * 5 + [True]
        assert scenes[0].faces[0].box == (245, 165, 150, 150)
    finally:
        del scenarios.SCENARIOS["test_still_face"]


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(OSError, match="walk_up"):
        ScenarioPlayer("no_such_scene").open()


def test_player_faults_behave_like_hardware(faces):
    player = ScenarioPlayer("walk_up", faces=faces)
    with pytest.raises(OSError):
        player.read()  # not open yet
    player.open()
    a = player.read()
    player.freeze()
    b, c = player.read(), player.read()
    assert np.array_equal(a, b) and np.array_equal(b, c)  # the last frame, again and again
    player.clear_faults()
    assert not np.array_equal(player.read(), c)
    player.stall()
    assert player.read() is None
    player.clear_faults()
    player.unplug()
    with pytest.raises(OSError, match="unplugged"):
        player.read()
    player.close()
    with pytest.raises(OSError, match="unplugged"):
        player.open()
    player.replug()
    player.open()
    assert player.read().shape == (480, 640, 3)
    player.close()


def test_cli_writes_a_video_file_the_player_and_opencv_read_back(tmp_path, faces):
    out = tmp_path / "walk.avi"
    assert sim_cli.main(["camera", "--scenario", "walk_up", "--out", str(out), "--frames", "12"]) == 0
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 12
    expected = scenarios.build("walk_up", faces=faces).render(0).image
    with ScenarioPlayer(str(out), loop=False) as player:
        frames = []
        while (image := player.read()) is not None:
            frames.append(image)
    assert len(frames) == 12 and frames[0].shape == (480, 640, 3)
    assert cv2.PSNR(frames[0], expected) > 25  # MJPG is lossy, but it is the same picture


def test_cli_writes_an_image_folder_and_the_player_replays_it(tmp_path):
    out = tmp_path / "frames"
    assert sim_cli.main(["camera", "--scenario", "two_faces", "--out", str(out), "--frames", "4"]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 4
    with ScenarioPlayer(str(out), loop=True) as player:
        images = [player.read() for _ in range(5)]
    assert np.array_equal(images[0], cv2.imread(str(files[0])))
    assert np.array_equal(images[4], images[0])  # looped


def test_cli_lists_scenarios_and_rejects_a_bad_output(tmp_path, capsys):
    assert sim_cli.main(["camera", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "printed_photo" in listed and "backlight" in listed
    assert sim_cli.main(["camera", "--scenario", "no_face", "--out", str(tmp_path / "x.gif")]) == 1


def test_fit_frame_letterboxes_other_sizes(datasets):
    grey = cv2.imread(str(datasets / "faces" / "att" / "s1" / "1.pgm"), cv2.IMREAD_GRAYSCALE)
    out = fit_frame(grey, (640, 480))
    assert out.shape == (480, 640, 3)
    assert (out[:, :20] == 96).all()  # a tall picture gets side bars
