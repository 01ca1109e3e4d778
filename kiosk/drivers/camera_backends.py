"""Camera backends: where frames come from. Each is a small source the ``Camera`` worker reads.

A source has ``name``, ``paced_fps`` (the worker paces reads to this rate for sources that do
not block until a frame is ready; None otherwise; such a source may also have ``skip(count)``,
for ``Camera.pace``), ``rotation_applied`` (degrees the source
already turned the picture), and ``open()``, ``read(timeout_s=) -> (main, lores|None) | None``,
``close()``. Errors are ``CameraError``. Hardware libraries are imported only inside the
backend that needs them.
"""

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import CameraAbsentError, CameraError, ConfigError

log = logging.getLogger(__name__)


def yuv420_to_bgr(array, size):
    """Convert a planar YUV420 (I420) buffer, possibly with padded rows, to BGR of ``size`` (w, h)."""
    width, height = size
    stride = array.shape[1] if array.ndim == 2 else width
    flat = np.ascontiguousarray(array).reshape(-1)
    y_end = height * stride
    chroma_stride, chroma_rows = stride // 2, height // 2
    u_end = y_end + chroma_rows * chroma_stride
    v_end = u_end + chroma_rows * chroma_stride
    if flat.size < v_end:
        raise CameraError(f"YUV420 buffer too small for {width}x{height} (stride {stride})")
    y = flat[:y_end].reshape(height, stride)[:, :width]
    u = flat[y_end:u_end].reshape(chroma_rows, chroma_stride)[:, :width // 2]
    v = flat[u_end:v_end].reshape(chroma_rows, chroma_stride)[:, :width // 2]
    i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


class PlayerSource:
    """Frames from the simulator's scenario player (``kiosk_sim.camera.ScenarioPlayer``)."""

    rotation_applied = 0

    def __init__(self, player, *, fps=None):
        self.player = player
        self.name = f"player:{player.source}"
        self.paced_fps = fps or player.fps

    def open(self):
        try:
            self.player.open()
        except OSError as e:
            raise CameraAbsentError(f"simulated camera: {e}") from e

    def skip(self, count):
        """Let ``count`` frames go by unseen (``Camera.pace``): the scenario keeps its time, unrendered."""
        self.player.skip(count)

    def read(self, *, timeout_s=None):
        try:
            image = self.player.read()
        except OSError as e:
            raise CameraError(f"simulated camera: {e}") from e
        return None if image is None else (image, None)

    def close(self):
        self.player.close()


class OpenCVSource:
    """A USB camera through OpenCV's V4L2 backend, or a video file (played at its own frame rate)."""

    rotation_applied = 0

    def __init__(self, device, *, width=1280, height=720, fps=15.0, loop=True):
        self.device = str(device)
        self.width, self.height, self.fps = width, height, fps
        self.loop = loop
        self.name = f"v4l2:{self.device}"
        self.is_file = not (self.device.isdigit() or self.device.startswith("/dev/"))
        self.paced_fps = None
        self._capture = None

    def open(self):
        if self.is_file and not Path(self.device).is_file():
            raise CameraAbsentError(f"no video file at {self.device}")
        if not self.is_file and not self.device.isdigit() and not os.path.exists(self.device):
            raise CameraAbsentError(f"no camera at {self.device} (is it plugged in? see `v4l2-ctl --list-devices`)")
        target = int(self.device) if self.device.isdigit() else self.device
        api = cv2.CAP_ANY if self.is_file else cv2.CAP_V4L2
        capture = cv2.VideoCapture(target, api)
        if not capture.isOpened():
            capture.release()
            hint = "" if self.is_file else " (is the user in group 'video'? is another program using it?)"
            raise CameraAbsentError(f"cannot open {self.device}{hint}")
        if self.is_file:
            self.paced_fps = capture.get(cv2.CAP_PROP_FPS) or self.fps
        else:
            # MJPG lets USB 2 cameras deliver 720p at full rate; the buffer of 1 keeps latency low.
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            capture.set(cv2.CAP_PROP_FPS, self.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            if got != (self.width, self.height):
                log.warning("camera %s gives %dx%d, not the configured %dx%d", self.device, *got,
                            self.width, self.height)
        self._capture = capture

    def read(self, *, timeout_s=None):
        if self._capture is None:
            raise CameraError(f"{self.device} is not open")
        ok, image = self._capture.read()
        if not ok and self.is_file and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        if not ok or image is None:
            return None
        return image, None

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Picamera2Source:
    """A Raspberry Pi camera module through Picamera2: RGB888 main stream + YUV420 lores stream."""

    paced_fps = None

    def __init__(self, *, camera_num=0, size=(1280, 720), lores_size=(640, 480), fps=15.0, rotation=0):
        self.camera_num = camera_num
        self.size, self.lores_size, self.fps = tuple(size), tuple(lores_size), fps
        self.rotation = rotation
        # The ISP can flip both ways (= 180 degrees) for free; 90/270 are turned in software.
        self.rotation_applied = 180 if rotation == 180 else 0
        self.name = f"picamera2:{camera_num}"
        self._camera = None

    def open(self):
        try:
            from libcamera import Transform
            from picamera2 import Picamera2
        except ImportError as e:
            raise CameraError("picamera2 is not installed: `sudo apt install python3-picamera2` and make the "
                              "venv with --system-site-packages") from e
        try:
            camera = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as e:
            raise CameraAbsentError(f"no Pi camera {self.camera_num} ({e}); check the ribbon cable and "
                                    "`rpicam-hello --list-cameras`") from e
        try:
            flip = 1 if self.rotation_applied == 180 else 0
            # "RGB888" is stored B, G, R per pixel: exactly OpenCV's BGR order.
            config = camera.create_video_configuration(
                main={"size": self.size, "format": "RGB888"},
                lores={"size": self.lores_size, "format": "YUV420"},
                controls={"FrameRate": float(self.fps)},
                transform=Transform(hflip=flip, vflip=flip),
                buffer_count=4)
            camera.configure(config)
            camera.start()
        except Exception as e:
            camera.close()
            raise CameraError(f"Pi camera {self.camera_num} would not start: {e}") from e
        self._camera = camera

    def read(self, *, timeout_s=2.0):
        camera = self._camera
        if camera is None:
            raise CameraError("Pi camera is not open")
        job = camera.capture_request(wait=False)
        try:
            request = camera.wait(job, timeout=timeout_s)
        except TimeoutError:
            return None
        except Exception as e:
            raise CameraError(f"Pi camera capture failed: {e}") from e
        try:
            main = request.make_array("main")
            lores = yuv420_to_bgr(request.make_array("lores"), self.lores_size)
        finally:
            request.release()
        return main, lores

    def close(self):
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


def make_source(backend, camera_settings, *, player=None):
    """The source for ``backend``: 'picamera2', 'v4l2' or 'player' (needs ``player``)."""
    s = camera_settings
    if backend == "picamera2":
        return Picamera2Source(size=(s.width, s.height), lores_size=(s.lores_width, s.lores_height),
                               fps=s.fps, rotation=s.rotation)
    if backend == "v4l2":
        return OpenCVSource(s.device, width=s.width, height=s.height, fps=s.fps)
    if backend == "player":
        if player is None:
            raise ConfigError("camera backend 'player' needs a scenario player (built by kiosk.app for "
                              "hardware.backend = 'sim')")
        return PlayerSource(player, fps=s.fps)
    raise ConfigError(f"unknown camera backend {backend!r} (known: picamera2, v4l2, player)")
