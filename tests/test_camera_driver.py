"""The camera driver against the scenario player and video files: frames, loss, recovery, backoff."""

import os

import cv2
import numpy as np
import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.drivers import camera
from kiosk.drivers.camera_backends import OpenCVSource, PlayerSource, make_source, yuv420_to_bgr
from kiosk.errors import CameraAbsentError, CameraError, ConfigError
from kiosk_sim import scenarios
from kiosk_sim.camera import ScenarioPlayer, write_frames


@pytest.fixture(scope="module")
def faces(datasets):
    return scenarios.FaceLibrary(datasets / "faces" / "lfw")


@pytest.fixture
def clock():
    return FakeClock()


def stepped_camera(player, clock, **options):
    """A camera driven by hand (no worker thread) on a fake clock."""
    options = {"frame_timeout_s": 2.0, "frozen_frames": 5, "retry_initial_s": 0.5, "retry_max_s": 8.0, **options}
    cam = camera.Camera(PlayerSource(player), clock=clock, **options)
    events = []
    cam.when_lost = lambda reason: events.append(("lost", reason))
    cam.when_recovered = lambda: events.append(("recovered",))
    cam.start(worker=False)
    return cam, events


def test_frames_carry_both_streams_a_timestamp_and_an_index(faces, clock):
    player = ScenarioPlayer("walk_up", faces=faces)
    cam, _ = stepped_camera(player, clock, lores_size=(320, 240))
    cam.step()
    clock.advance(0.1)
    cam.step()
    frame = cam.latest()
    assert frame.image.shape == (480, 640, 3) and frame.lores.shape == (240, 320, 3)
    assert frame.index == 2 and frame.timestamp_s == clock.monotonic()
    assert not frame.image.flags.writeable and not frame.lores.flags.writeable
    assert cam.fps == pytest.approx(10.0)
    expected = scenarios.build("walk_up", faces=faces).render(1).image
    assert np.array_equal(frame.image, expected)
    cam.close()
    cam.close()  # idempotent
    assert not player.is_open and not cam.is_healthy


@pytest.mark.parametrize("rotation, shape", [(0, (480, 640, 3)), (90, (640, 480, 3)), (180, (480, 640, 3)),
                                             (270, (640, 480, 3))])
def test_rotation_turns_both_streams(faces, clock, rotation, shape):
    cam, _ = stepped_camera(ScenarioPlayer("no_face", faces=faces), clock, rotation=rotation)
    cam.step()
    frame = cam.latest()
    assert frame.image.shape == shape and frame.lores.shape == shape
    if rotation == 180:
        original = scenarios.build("no_face", faces=faces).render(0).image
        assert np.array_equal(frame.image, original[::-1, ::-1])
    cam.close()


def test_frozen_camera_is_lost_reconnected_with_backoff_and_recovers(faces, clock):
    player = ScenarioPlayer("walk_up", faces=faces)
    cam, events = stepped_camera(player, clock)
    for _ in range(3):
        cam.step()
    assert cam.is_healthy and cam.error is None
    player.freeze()
    for _ in range(5):  # the last live frame once more, then 4 repeats: 5 identical in a row
        cam.step()
    assert events == [("lost", "camera frozen: the same frame 5 times in a row")]
    assert not cam.is_healthy and "frozen" in cam.error
    assert not player.is_open  # the driver let go of the device to reconnect
    # first reconnection after 0.5 s, not before
    assert cam.step() == pytest.approx(0.5)
    assert not player.is_open
    clock.advance(0.5)
    cam.step()
    assert player.is_open and cam.reopens == 1
    for _ in range(5):  # still frozen after reopening: lost again, next try after 1 s
        cam.step()
    assert not player.is_open and events == [("lost", "camera frozen: the same frame 5 times in a row")]
    assert cam.step() == pytest.approx(1.0)
    player.clear_faults()
    clock.advance(1.0)
    cam.step()  # reopen
    cam.step()  # a live frame
    assert events[-1] == ("recovered",) and cam.is_healthy
    assert cam.backoff.failures == 0 and cam.losses == 1
    cam.close()


def test_camera_without_frames_is_lost_after_the_timeout(faces, clock):
    player = ScenarioPlayer("walk_up", faces=faces)
    cam, events = stepped_camera(player, clock, frame_timeout_s=2.0)
    cam.step()
    player.stall()
    clock.advance(1.9)
    cam.step()
    assert events == [] and cam.is_healthy
    clock.advance(0.2)
    assert not cam.is_healthy  # visible at once, even before the worker looks again
    cam.step()
    assert events == [("lost", "no frames for 2.1 s")]
    player.clear_faults()
    clock.advance(0.5)
    cam.step()
    cam.step()
    assert events[-1] == ("recovered",)
    cam.close()


def test_unplugged_camera_is_retried_with_exponential_backoff_until_it_returns(faces, clock):
    player = ScenarioPlayer("walk_up", faces=faces)
    cam, events = stepped_camera(player, clock, retry_initial_s=0.5, retry_max_s=4.0)
    cam.step()
    player.unplug()
    cam.step()
    assert events == [("lost", "camera read failed: simulated camera: simulated camera is unplugged")]
    delays = []
    for _ in range(6):
        wait = cam.step()  # waiting for the retry time
        delays.append(wait)
        clock.advance(wait)
        cam.step()  # the retry, which fails while unplugged
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    player.replug()
    clock.advance(cam.step())
    cam.step()
    cam.step()
    assert events[-1] == ("recovered",) and cam.is_healthy
    cam.close()


def test_a_uniform_dark_picture_is_not_taken_for_a_frozen_camera(tmp_path, clock):
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((480, 640, 3), np.uint8))
    cam, events = stepped_camera(ScenarioPlayer(str(tmp_path)), clock, frozen_frames=3)
    for _ in range(10):
        cam.step()
        clock.advance(0.1)
    assert events == [] and cam.is_healthy
    cam.close()


def test_start_fails_loudly_when_the_camera_is_absent(faces, clock):
    player = ScenarioPlayer("walk_up", faces=faces)
    player.unplug()
    cam = camera.Camera(PlayerSource(player), clock=clock)
    with pytest.raises(CameraAbsentError):
        cam.start()
    assert not cam.is_running


def test_worker_thread_delivers_frames_and_stops(faces):
    player = ScenarioPlayer("two_faces", faces=faces, fps=60)
    seen = []
    with camera.Camera(PlayerSource(player), frame_timeout_s=1.0) as cam:
        cam.when_frame = seen.append
        indices = []
        for frame in cam.frames(timeout_s=2.0):
            indices.append(frame.index)
            if len(indices) == 5:
                break
        assert indices == sorted(indices) and len(set(indices)) == 5
        assert cam.wait_for_frame(2.0).index > indices[-1]
        assert cam.is_healthy
    assert seen and not cam.is_running and not player.is_open
    with pytest.raises(CameraError, match="not started"):
        cam.wait_for_frame(0.1)


def test_worker_thread_reports_loss_and_recovery(faces):
    player = ScenarioPlayer("walk_up", faces=faces, fps=60)
    lost, recovered = [], []
    with camera.Camera(PlayerSource(player), frame_timeout_s=0.2, retry_initial_s=0.05) as cam:
        cam.when_lost = lost.append
        cam.when_recovered = lambda: recovered.append(True)
        first = cam.wait_for_frame(2.0)
        player.stall()
        with pytest.raises(CameraError, match="no frame within"):
            cam.wait_for_frame(0.5, after_index=cam.wait_for_frame(1.0).index + 5)
        assert lost and not cam.is_healthy
        player.clear_faults()
        frame = cam.wait_for_frame(3.0, after_index=first.index + 10)
        assert recovered and cam.is_healthy and frame.image.shape == (480, 640, 3)


def test_opencv_backend_plays_a_video_file_written_by_the_player(tmp_path, faces, clock):
    video = tmp_path / "walk.avi"
    write_frames(ScenarioPlayer("walk_up", faces=faces), video, frames=8)
    settings = config.build([]).replace(camera={"device": str(video), "lores_width": 320, "lores_height": 240})
    cam = camera.from_settings("v4l2", settings.camera, clock=clock)
    cam.start(worker=False)
    assert isinstance(cam.source, OpenCVSource) and cam.source.paced_fps == pytest.approx(15.0)
    frames = []
    for _ in range(10):  # past the end: the file loops
        cam.step()
        frames.append(cam.latest())
    cam.close()
    assert frames[0].image.shape == (480, 640, 3) and frames[0].lores.shape == (240, 320, 3)
    expected = scenarios.build("walk_up", faces=faces).render(0).image
    assert cv2.PSNR(np.ascontiguousarray(frames[0].image), expected) > 25
    assert cv2.PSNR(np.ascontiguousarray(frames[8].image), np.ascontiguousarray(frames[0].image)) > 40


def test_opencv_backend_threaded_on_a_video_file(tmp_path, faces):
    video = tmp_path / "faces.avi"
    write_frames(ScenarioPlayer("two_faces", faces=faces, fps=60), video, frames=20)
    with camera.Camera(OpenCVSource(str(video))) as cam:
        first = cam.wait_for_frame(2.0)
        later = cam.wait_for_frame(2.0, after_index=first.index + 3)
    assert later.index >= first.index + 4 and later.timestamp_s > first.timestamp_s


def test_missing_devices_and_files_are_reported_as_absent(tmp_path):
    for device in (str(tmp_path / "missing.avi"), "/dev/video97"):
        cam = camera.Camera(OpenCVSource(device))
        with pytest.raises(CameraAbsentError):
            cam.start()


def test_picamera2_backend_says_how_to_install_picamera2_when_missing():
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    settings = config.build([])
    cam = camera.from_settings("picamera2", settings.camera)
    with pytest.raises(CameraError, match="python3-picamera2"):
        cam.start()


def test_backends_are_chosen_by_name_never_silently(faces):
    settings = config.build([])
    with pytest.raises(ConfigError, match="unknown camera backend"):
        make_source("auto", settings.camera)
    with pytest.raises(ConfigError, match="scenario player"):
        make_source("player", settings.camera)
    source = make_source("player", settings.camera, player=ScenarioPlayer("no_face", faces=faces))
    assert source.paced_fps == settings.camera.fps


@pytest.mark.parametrize("width, stride", [(64, 64), (48, 64)])
def test_yuv420_lores_buffers_convert_to_bgr(width, stride):
    height = 32
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (5, 5), 2)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (h * 3/2, w), tightly packed
    y, u, v = i420[:height], i420[height:height + height // 4], i420[height + height // 4:]
    padded = np.zeros((height * 3 // 2, stride), np.uint8)  # as the ISP lays it out: rows padded to stride
    padded[:height, :width] = y
    flat = padded.reshape(-1)
    chroma = u.reshape(height // 2, width // 2), v.reshape(height // 2, width // 2)
    offset = height * stride
    for plane in chroma:
        block = np.zeros((height // 2, stride // 2), np.uint8)
        block[:, :width // 2] = plane
        flat[offset:offset + block.size] = block.reshape(-1)
        offset += block.size
    out = yuv420_to_bgr(padded, (width, height))
    assert np.array_equal(out, cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))


@pytest.mark.hardware
def test_real_camera_delivers_frames():
    """KIOSK_TEST_CAMERA=picamera2 (default) or v4l2 (with KIOSK_CAMERA__DEVICE)."""
    settings = config.load()
    backend = os.environ.get("KIOSK_TEST_CAMERA", "picamera2")
    with camera.from_settings(backend, settings.camera) as cam:
        first = cam.wait_for_frame(5.0)
        last = cam.wait_for_frame(5.0, after_index=first.index + 9)
        assert cam.is_healthy and cam.fps > 1.0
    assert first.lores.shape[:2] in ((settings.camera.lores_height, settings.camera.lores_width),
                                     (settings.camera.lores_width, settings.camera.lores_height))
    assert last.image.mean() > 1.0


def test_lores_rgb_is_the_inference_image_in_model_channel_order():
    import numpy as np

    from kiosk.drivers.camera import Frame

    lores = np.zeros((4, 4, 3), np.uint8)
    lores[..., 0] = 10  # blue in BGR
    lores[..., 2] = 200  # red in BGR
    rgb = Frame(image=lores, lores=lores, timestamp_s=0.0, index=0).lores_rgb()
    assert rgb[0, 0].tolist() == [200, 0, 10] and rgb.flags["C_CONTIGUOUS"]


def test_a_paced_camera_reads_the_simulator_at_the_asked_rate_skipping_the_frames_between(faces, clock):
    """Idle: the simulator renders the frames the detector looks at, and its time still runs at 15 fps."""
    player = ScenarioPlayer("walk_up", faces=faces)
    cam, _ = stepped_camera(player, clock)
    cam.step()

    def reads(count):
        seen = []
        while len(seen) < count:
            delivered = cam.frames_delivered
            wait = cam.step()
            if cam.frames_delivered > delivered:
                seen.append((round(clock.monotonic(), 3), player.index))
            clock.advance(wait)
        return seen

    cam.pace(5)
    paced = reads(4)
    assert [b[1] - a[1] for a, b in zip(paced, paced[1:])] == [3, 3, 3]  # two frames skipped each time
    assert [round(b[0] - a[0], 3) for a, b in zip(paced, paced[1:])] == [0.2, 0.2, 0.2]
    cam.pace(None)
    full = reads(4)
    assert [b[1] - a[1] for a, b in zip(full, full[1:])] == [1, 1, 1]
    assert full[0][0] - paced[-1][0] <= 1 / 15 + 1e-9  # back to every frame within a frame
    cam.close()


def test_the_flow_host_paces_the_camera_while_idle_and_not_while_identifying(faces, clock):
    from kiosk.host import FlowHost

    cam, _ = stepped_camera(ScenarioPlayer("walk_up", faces=faces), clock)
    host = FlowHost(None, clock=clock, camera=cam)
    host.set_face_mode("detect")
    assert cam.pace_fps == host.detect_fps
    host.set_face_mode("identify")
    assert cam.pace_fps is None
    host.set_face_mode(None)
    assert cam.pace_fps == host.detect_fps
    cam.close()
