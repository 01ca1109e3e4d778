"""Camera driver: frames from Picamera2, a USB camera (OpenCV V4L2) or the scenario player.

One interface whatever the backend::

    with camera.from_settings("v4l2", settings.camera) as cam:
        frame = cam.wait_for_frame(timeout_s=2)
        frame.image      # display stream, BGR uint8 (read-only)
        frame.lores      # inference stream, BGR uint8 at camera.lores_width x lores_height
        frame.timestamp_s, frame.index

A worker thread reads the source. A camera that stops delivering frames for ``frame_timeout_s``
or repeats the very same frame ``frozen_frames`` times is *lost*: ``is_healthy`` turns False,
``error`` says why, ``when_lost(reason)`` is called once, and the driver closes and reopens the
device with exponential backoff until a live frame arrives (``when_recovered()``).

Backends (``kiosk.drivers.camera_backends``) are picked by name and never silently: ``picamera2``
(Pi camera module), ``v4l2`` (a USB camera node, or a video file for tests), ``player`` (the
simulator's scenario player, handed in by ``kiosk.app``).
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.backoff import Backoff
from kiosk.errors import CameraError

log = logging.getLogger(__name__)

BACKENDS = ("picamera2", "v4l2", "player")
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_FLAT_STD = 1.0  # a frame this uniform (lens covered, black room) may repeat without being "frozen"


@dataclass(frozen=True)
class Frame:
    """One captured frame: the display image, the small inference image, when, and which."""

    image: np.ndarray
    lores: np.ndarray
    timestamp_s: float
    index: int

    def lores_rgb(self):
        """The inference image in RGB, the channel order the face models take (frames are BGR)."""
        return np.ascontiguousarray(self.lores[:, :, ::-1])


class _MonotonicClock:
    def monotonic(self):
        return time.monotonic()


class FrameHealth:
    """Judges a frame stream: stale (no frames for timeout) or frozen (identical frames in a row)."""

    def __init__(self, *, frame_timeout_s, frozen_frames):
        self.frame_timeout_s = frame_timeout_s
        self.frozen_frames = frozen_frames
        self.last_frame_s = None
        self.repeats = 0
        self._last_digest = None

    def restart(self, now_s):
        """The source was (re)opened: give it a full timeout to deliver."""
        self.last_frame_s = now_s
        self.repeats = 0

    def frame_arrived(self, image, now_s):
        """Record a frame; return True if it is live (differs from the previous one)."""
        self.last_frame_s = now_s
        sample = image[::4, ::4]
        digest = hash(sample.tobytes())
        repeated = digest == self._last_digest and float(sample.std()) >= _FLAT_STD
        self._last_digest = digest
        self.repeats = self.repeats + 1 if repeated else 0
        return not repeated

    def problem(self, now_s):
        """Why the stream is unhealthy now, or None."""
        if self.repeats + 1 >= self.frozen_frames:
            return f"camera frozen: the same frame {self.repeats + 1} times in a row"
        if self.last_frame_s is not None and now_s - self.last_frame_s > self.frame_timeout_s:
            return f"no frames for {now_s - self.last_frame_s:.1f} s"
        return None


class Camera:
    """A camera on a worker thread, with lost-camera detection and reconnection."""

    def __init__(self, source, *, lores_size=(640, 480), rotation=0, frame_timeout_s=2.0, frozen_frames=30,
                 retry_initial_s=0.5, retry_max_s=30.0, clock=None):
        if rotation not in (0, 90, 180, 270):
            raise CameraError(f"rotation must be 0, 90, 180 or 270, not {rotation!r}")
        self.source = source
        self.lores_size = tuple(lores_size)
        self.rotation = rotation
        self.clock = clock or _MonotonicClock()
        self.health = FrameHealth(frame_timeout_s=frame_timeout_s, frozen_frames=frozen_frames)
        self.backoff = Backoff(base_s=retry_initial_s, cap_s=retry_max_s, jitter=False)
        self.when_frame = None
        self.when_lost = None
        self.when_recovered = None
        self.frames_delivered = 0
        self.losses = 0
        self.reopens = 0
        self._latest = None
        self._index = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = None
        self._running = False
        self._source_open = False
        self._lost_reason = None
        self._retry_at_s = 0.0
        self._next_read_s = 0.0
        self._stamps = deque(maxlen=30)
        self.pace_fps = None  # see pace()

    # --- life cycle --------------------------------------------------------------------------

    def start(self, *, worker=True):
        """Open the device and start capturing; raises CameraError if it cannot be opened.

        With ``worker=False`` no thread is started and the caller drives capture with ``step()``.
        """
        if self._running:
            return self
        self._lost_reason = None
        self.backoff.success()
        self._open_source()
        self._running = True
        self._stop.clear()
        if worker:
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.source.name}", daemon=True)
            self._thread.start()
        log.info("camera started (%s)", self.source.name)
        return self

    def stop(self):
        """Stop capturing and release the device; safe to call more than once."""
        if not self._running and self._thread is None:
            return
        self._running = False
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.health.frame_timeout_s + 2.0)
            if thread.is_alive():
                log.warning("camera worker still blocked in a read; it releases the device when it returns")
                return
        self._close_source()
        with self._cond:
            self._cond.notify_all()
        log.info("camera stopped (%s)", self.source.name)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- state -------------------------------------------------------------------------------

    @property
    def is_running(self):
        return self._running

    @property
    def is_healthy(self):
        """True while running and delivering live frames."""
        if not self._running or self._lost_reason is not None:
            return False
        return self.health.problem(self.clock.monotonic()) is None

    @property
    def error(self):
        """Why the camera is unhealthy (one line), or None."""
        if not self._running:
            return "camera not started"
        if self._lost_reason is not None:
            return self._lost_reason
        return self.health.problem(self.clock.monotonic())

    @property
    def fps(self):
        """Frames per second over the last (up to) 30 frames; 0.0 before two frames."""
        stamps = list(self._stamps)
        if len(stamps) < 2 or stamps[-1] <= stamps[0]:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def latest(self):
        """The most recent frame, or None before the first."""
        return self._latest

    def wait_for_frame(self, timeout_s=None, *, after_index=None):
        """Block until a frame newer than ``after_index`` (default: the latest now) arrives.

        Raises CameraError if the camera is not running or no frame arrives within ``timeout_s``.
        """
        with self._cond:
            if after_index is None:
                after_index = self._latest.index if self._latest is not None else -1
            ok = self._cond.wait_for(
                lambda: not self._running or (self._latest is not None and self._latest.index > after_index),
                timeout=timeout_s)
            if not self._running:
                raise CameraError("camera not started")
            if not ok:
                raise CameraError(f"no frame within {timeout_s} s ({self.error or 'camera slow'})")
            return self._latest

    def frames(self, *, timeout_s=None):
        """Iterate over new frames (skipping any the caller was too slow for) until stopped."""
        last = -1
        while self._running:
            try:
                frame = self.wait_for_frame(timeout_s, after_index=last)
            except CameraError:
                if not self._running:
                    return
                raise
            last = frame.index
            yield frame

    def pace(self, fps=None):
        """Read a source that can skip frames (the simulator) at most ``fps`` times a second.

        The frames between are skipped, not delayed, so the source keeps its own time. An idle
        kiosk looks at a few frames a second; drawing the others in the simulator took about 40%
        of ``kiosk run --backend sim``'s CPU at rest (py-spy). A camera that delivers frames by
        itself (Pi, USB) is read as it delivers. ``None``: every frame again, from the next.
        """
        self.pace_fps = None if fps is None else float(fps)
        if fps is None:
            self._next_read_s = 0.0  # the worker sleeps at most one frame: full rate from the next

    def _skip_per_read(self, paced):
        """How many of a paced source's frames to skip before each read (0: read them all)."""
        if not paced or self.pace_fps is None or self.pace_fps >= paced or not hasattr(self.source, "skip"):
            return 0
        return max(0, int(round(paced / self.pace_fps)) - 1)

    # --- capture -----------------------------------------------------------------------------

    def step(self):
        """Do one unit of capture work (open, read or health check); return seconds to wait before the next."""
        now = self.clock.monotonic()
        if not self._source_open:
            if now < self._retry_at_s:
                return self._retry_at_s - now
            try:
                self._open_source()
            except CameraError as e:
                delay = self.backoff.failure()
                self._retry_at_s = now + delay
                log.debug("camera reopen failed (%s); next try in %.1f s", e, delay)
                return delay
            self.reopens += 1
            return 0.0
        paced = getattr(self.source, "paced_fps", None)
        if paced and self.pace_fps is not None and now < self._next_read_s:
            return min(self._next_read_s - now, 1.0 / paced)  # paced: sleep a frame at a time
        skip = self._skip_per_read(paced)
        try:
            if skip:
                self.source.skip(skip)
            captured = self.source.read(timeout_s=self.health.frame_timeout_s)
        except CameraError as e:
            self._lose(f"camera read failed: {e}")
            return 0.0
        now = self.clock.monotonic()
        if captured is None:
            problem = self.health.problem(now)
            if problem:
                self._lose(problem)
                return 0.0
            return 1.0 / paced if paced else min(0.01, self.health.frame_timeout_s / 10)
        main, lores = captured
        live = self.health.frame_arrived(lores if lores is not None else main, now)
        problem = self.health.problem(now)
        if problem:
            self._lose(problem)
            return 0.0
        self._deliver(self._make_frame(main, lores, now))
        if live and self._lost_reason is not None:
            self._recover()
        if paced:
            self._next_read_s = max(self._next_read_s + (skip + 1) / paced, now)
            return min(max(0.0, self._next_read_s - self.clock.monotonic()), 1.0 / paced)
        return 0.0

    def _run(self):
        try:
            while not self._stop.is_set():
                try:
                    wait_s = self.step()
                except Exception:  # a bug must not kill capture silently: log it and treat as a loss
                    log.exception("camera worker error")
                    self._lose("camera worker error")
                    wait_s = 0.1
                if wait_s > 0:
                    self._stop.wait(wait_s)
        finally:
            if not self._running:
                self._close_source()

    def _open_source(self):
        try:
            self.source.open()
        except CameraError:
            raise
        except Exception as e:  # a backend library raising its own error type
            raise CameraError(f"cannot open {self.source.name}: {e}") from e
        self._source_open = True
        now = self.clock.monotonic()
        self.health.restart(now)
        self._next_read_s = now

    def _close_source(self):
        if self._source_open:
            self._source_open = False
            try:
                self.source.close()
            except Exception:
                log.exception("closing camera %s", self.source.name)

    def _lose(self, reason):
        now = self.clock.monotonic()
        first = self._lost_reason is None
        self._lost_reason = reason
        self._close_source()
        delay = self.backoff.failure()
        self._retry_at_s = now + delay
        if first:
            self.losses += 1
            log.warning("camera lost: %s; reconnecting", reason)
            self._call(self.when_lost, reason)
        else:
            log.debug("camera still lost: %s; next try in %.1f s", reason, delay)

    def _recover(self):
        log.info("camera recovered after: %s", self._lost_reason)
        self._lost_reason = None
        self.backoff.success()
        self._call(self.when_recovered)

    def _make_frame(self, main, lores, now):
        if lores is None:
            if (main.shape[1], main.shape[0]) == self.lores_size:
                lores = main
            else:
                lores = cv2.resize(crop_to_aspect(main, self.lores_size), self.lores_size,
                                   interpolation=cv2.INTER_AREA)
        turn = (self.rotation - getattr(self.source, "rotation_applied", 0)) % 360
        if turn:
            main = cv2.rotate(main, _ROTATE[turn])
            lores = main if lores is main else cv2.rotate(lores, _ROTATE[turn])
        main.flags.writeable = False
        lores.flags.writeable = False
        self._index += 1
        return Frame(main, lores, now, self._index)

    def _deliver(self, frame):
        with self._cond:
            self._latest = frame
            self.frames_delivered += 1
            self._stamps.append(frame.timestamp_s)
            self._cond.notify_all()
        self._call(self.when_frame, frame)

    def _call(self, callback, *args):
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("camera callback %r failed", callback)


def crop_to_aspect(image, size):
    """The centre of ``image`` with the aspect of ``size`` (w, h): a resize after it never stretches a face."""
    height, width = image.shape[:2]
    want = size[0] / size[1]
    if abs(width / height - want) < 0.01:
        return image
    if width / height > want:
        keep = int(round(height * want))
        x0 = (width - keep) // 2
        return image[:, x0:x0 + keep]
    keep = int(round(width / want))
    y0 = (height - keep) // 2
    return image[y0:y0 + keep]


def from_settings(backend, camera_settings, *, player=None, clock=None):
    """Build a Camera for ``backend`` ('picamera2', 'v4l2' or 'player') from CameraSettings."""
    from kiosk.drivers import camera_backends

    source = camera_backends.make_source(backend, camera_settings, player=player)
    return Camera(source, lores_size=(camera_settings.lores_width, camera_settings.lores_height),
                  rotation=camera_settings.rotation, frame_timeout_s=camera_settings.frame_timeout_s,
                  frozen_frames=camera_settings.frozen_frames, clock=clock)
