"""Runs the flows on one thread and feeds them: events from anywhere, camera frames, the clock.

``FlowHost`` owns the active flow (attendance at home; admin while an admin is in). Other
threads (the fingerprint poller, GPIO callbacks, the touchscreen, the demo) only ``post()``
events; the host thread delivers them, analyses the newest camera frame in the mode the flow
asked for (stale frames are dropped, never queued), and ticks the flow's deadlines. An
exception inside a flow is logged and the flow sent home; it never stops the host.

``SensorPoller`` keeps the fingerprint sensor identifying (or enrolling) on the sensor's worker
thread while the flow wants it, and posts what happened as flow events.
"""

import logging
import queue
import threading

from kiosk.errors import (CancelledError, FingerMismatchError, FingerMovedError, HardwareError, NoFingerError,
                          NoMatchError, PoorImageError, SensorError)
from kiosk.models.motion import MotionGate

log = logging.getLogger(__name__)

MAX_QUEUED_EVENTS = 256
# what a person at the sensor did wrong (the screen says how to fix it), unlike a sensor fault
FINGER_PROBLEMS = (NoMatchError, PoorImageError, FingerMovedError, FingerMismatchError)
DETECT_FPS = 5.0  # idle: the detector alone, a few times a second, is enough to wake up
# frame times wander by a few ms: a frame this share early still counts as on time for the idle rate
FRAME_JITTER = 0.1
POLL_S = 0.02  # how often to look for a frame from a camera that cannot say when one arrived
FACE_FAILURE_LOG_EVERY_S = 60.0  # a face engine failing on every frame is logged once a minute, not 15 times a second
_FRAME_ARRIVED = object()  # queued by the camera's thread to wake the flows thread; never delivered


class FlowHost:
    """The flows' thread: ``post(event, **data)`` from anywhere; ``run(stop)`` or ``step()``."""

    def __init__(self, flow, *, clock, camera=None, engine=None, tick_s=0.1, detect_fps=DETECT_FPS,
                 motion_gate=True):
        self.home = flow
        self.flow = flow
        self.clock = clock
        self.camera = camera
        self.engine = engine
        self.tick_s = float(tick_s)
        self.detect_fps = float(detect_fps)
        self.detect_interval_s = 1.0 / self.detect_fps
        self.face_mode = None
        # idle: the detector looks only when the room changed, or once in a while (off: every detect frame)
        self.motion = MotionGate() if motion_gate else None
        self.last_step_s = None  # the clock's monotonic time of the last completed step
        self._events = queue.Queue(maxsize=MAX_QUEUED_EVENTS)
        self._last_index = None
        self._last_detect_s = None
        self._thread = None
        self.flow_factories = {}  # event name -> callable returning a flow to switch to
        # a camera that says when a frame arrives wakes the flows thread; others are polled
        self._woken_by_frames = camera is not None and hasattr(camera, "when_frame") and camera.when_frame is None
        self._wake_queued = False  # at most one frame wake-up waits in the queue: they never crowd out events
        self._face_failures = 0  # frames the face engine failed on since the last log line
        self._face_failure_logged_s = None
        if self._woken_by_frames:
            camera.when_frame = self._frame_arrived

    # --- from any thread ------------------------------------------------------------------------

    def post(self, event, **data):
        """Queue one event for the flow thread; a flood beyond the queue's size is dropped and logged."""
        try:
            self._events.put_nowait((event, data))
        except queue.Full:
            log.warning("flow event %s dropped: %d events already queued", event, MAX_QUEUED_EVENTS)

    def _frame_arrived(self, frame):
        """The camera's thread: a frame is ready. Wakes the flows thread only if frames are wanted."""
        if self.face_mode is not None and not self._wake_queued:
            self._wake_queued = True
            try:
                self._events.put_nowait((_FRAME_ARRIVED, None))
            except queue.Full:
                self._wake_queued = False  # the flows thread is behind: it takes the newest frame when it gets there

    def set_face_mode(self, mode):
        """What to do with camera frames: None (nothing), 'detect' or 'identify'."""
        if mode != self.face_mode and self.motion is not None:
            self.motion.reset()  # whatever was in front of the camera, look again
        self.face_mode = mode
        pace = getattr(self.camera, "pace", None)
        if pace is not None:  # idle: the camera need not read more frames than the detector looks at
            pace(self.detect_fps if mode in (None, "detect") else None)

    # --- on the flow thread ---------------------------------------------------------------------

    def deliver(self, event, **data):
        """Hand one event to the active flow now (the flow thread only)."""
        if event == "user_active":  # a touch on the screen: the person is still there
            for flow in (self.flow, getattr(self.flow, "sub", None)):
                if flow is not None and flow.deadline_s is not None:
                    flow.extend_deadline()
            return True
        factory = self.flow_factories.get(event)
        if factory is not None and self.flow is self.home:
            try:
                self.home.handle("cancelled")  # whatever the person had started is wiped first
                self.switch(factory())
            except Exception:
                log.exception("could not start the flow for %s", event)
                self.go_home()
            return True
        try:
            return self.flow.handle(event, **data)
        except Exception:  # a bug in a flow must not stop the kiosk: log it and go home
            log.exception("flow %s failed on %s; going home", type(self.flow).__name__, event)
            self.go_home()
            return False

    def switch(self, flow):
        log.info("flow: %s -> %s", type(self.flow).__name__, type(flow).__name__)
        self.flow = flow

    def go_home(self):
        if self.flow is not self.home:
            self.switch(self.home)
        try:
            self.home.handle("cancelled")
            if hasattr(self.home, "resume"):
                self.home.resume()
        except Exception:
            log.exception("the home flow failed to go home")

    def step(self, *, wait_s=0.0):
        """One round: queued events, the newest camera frame, the clock. Returns True if anything ran."""
        busy = False
        try:
            event, data = self._events.get(timeout=wait_s) if wait_s > 0 else self._events.get_nowait()
            while True:
                if event is _FRAME_ARRIVED:
                    self._wake_queued = False  # before the camera step below reads the newest frame
                else:
                    self.deliver(event, **data)
                    busy = True
                event, data = self._events.get_nowait()
        except queue.Empty:
            pass
        busy = self._camera_step() or busy
        try:
            self.flow.tick()
        except Exception:  # a timeout runs flow callbacks as an event does: the same rule, or the thread ends
            log.exception("flow %s failed on its timeout; going home", type(self.flow).__name__)
            self.go_home()
        if self.flow is not self.home and self.flow.state == "finished":
            self.go_home()
        self.last_step_s = self.clock.monotonic()
        return busy

    def stalled_s(self):
        """Seconds since the flows thread last finished a step (0 before the first): a hung flow grows it."""
        if self.last_step_s is None:
            return 0.0
        return max(0.0, self.clock.monotonic() - self.last_step_s)

    def _camera_step(self):
        mode = self.face_mode
        if mode is None or self.camera is None or self.engine is None:
            return False
        frame = self.camera.latest()
        if frame is None or frame.index == self._last_index:
            return False
        if mode == "detect" and self._last_detect_s is not None and \
                frame.timestamp_s - self._last_detect_s < self.detect_interval_s * (1.0 - FRAME_JITTER):
            return False
        self._last_index = frame.index
        self._last_detect_s = frame.timestamp_s
        gated = mode == "detect" and self.motion is not None
        if gated and not self.motion.worth_looking(frame.lores, frame.timestamp_s):
            return True  # a still, empty room: nothing for the detector
        try:
            face_frame = self.engine.analyse(frame.lores_rgb(), frame.timestamp_s, mode=mode)
        except Exception:  # a broken frame or model costs that frame: the finger and PIN paths go on
            self._face_failed()
            return True
        if gated:
            self.motion.looked(found=face_frame.box is not None)
        if face_frame.box is not None or mode == "identify":
            self.deliver("face_seen", frame=face_frame)
        return True

    def _face_failed(self):
        self._face_failures += 1
        now = self.clock.monotonic()
        if self._face_failure_logged_s is None:
            log.exception("the face engine failed on a frame; the face path skips such frames")
        elif now - self._face_failure_logged_s >= FACE_FAILURE_LOG_EVERY_S:
            log.error("the face engine failed on %d frame(s) in the last %.0f s", self._face_failures,
                      now - self._face_failure_logged_s)
        else:
            return
        self._face_failures = 0
        self._face_failure_logged_s = now

    def run(self, stop):
        """Step until ``stop`` (a threading.Event) is set.

        Between steps the thread sleeps until an event, a camera frame (when the camera says so)
        or the next tick: an idle kiosk wakes for the frames it looks at and ``tick_s``.
        """
        idle_wait_s = self.tick_s if self._woken_by_frames else min(self.tick_s, POLL_S)
        while not stop.is_set():
            if not self.step(wait_s=0.0):
                self.step(wait_s=idle_wait_s)

    def start(self, stop):
        self._thread = threading.Thread(target=self.run, args=(stop,), name="flows", daemon=True)
        self._thread.start()
        return self

    @property
    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s=None):
        if self._thread is not None:
            self._thread.join(timeout_s)


class SensorPoller:
    """Keeps the sensor identifying while wanted; posts ``finger_matched`` / ``finger_not_matched``."""

    def __init__(self, worker, post, *, capture_timeout_s=1.0, retry_s=5.0):
        self.worker = worker
        self.post = post
        self.capture_timeout_s = float(capture_timeout_s)
        self.retry_s = float(retry_s)
        self.mode = None
        self.healthy = True          # False after the sensor failed to answer, until it answers again
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._current = None
        self._enrol_request = None
        self._thread = None

    def set_mode(self, mode, **options):
        """None (stop), 'identify', 'verify' (with ``templates``: the claimed person's), 'enrol' (with ``finger=N``),
        or 'sample' (one capture's character file, for the server to compare)."""
        if mode in ("enrol", "verify"):
            self._enrol_request = options
        self.mode = mode
        current = self._current
        if current is not None:
            self.worker.cancel(current)
        self._wake.set()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="finger-poller", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        self.set_mode(None)
        if self._thread is not None:
            self._thread.join(5.0)

    @property
    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    def _wait(self, future):
        self._current = future
        try:
            return future.result()
        finally:
            self._current = None

    def _run(self):
        while not self._stop.is_set():
            mode = self.mode
            if mode is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                if mode == "enrol":
                    self._enrol()
                elif mode == "verify":
                    self._verify()
                elif mode == "sample":
                    self._sample()
                else:
                    self._identify()
                self.healthy = True
            except CancelledError:
                continue
            except NoFingerError:
                self.healthy = True   # the sensor answered: nobody there
                continue
            except FINGER_PROBLEMS as e:
                self.healthy = True
                self.post("finger_failed" if mode in ("enrol", "sample") else "finger_not_matched",
                          guidance=getattr(e, "guidance", None) or "try_again")
                self._lifted()
            except HardwareError as e:
                self.healthy = False  # the touchscreen says so, and offers the other ways in
                log.error("fingerprint sensor unavailable: %s; retrying in %.0f s", e, self.retry_s)
                self.post("sensor_unavailable", reason=str(e))
                self._stop.wait(self.retry_s)
            except Exception:
                log.exception("fingerprint poller step failed")
                self._stop.wait(self.retry_s)

    def _identify(self):
        slot, score = self._wait(self.worker.identify(timeout_s=self.capture_timeout_s))
        self.post("finger_matched", slot=slot, score=score)
        self._lifted()

    def _verify(self):
        """Claim and verify: the finger on the glass against the claimed person's templates, 1:1 on the sensor."""
        templates = (self._enrol_request or {}).get("templates") or ()
        score = self._wait(self.worker.submit("verify_any", list(templates), timeout_s=self.capture_timeout_s))
        self.post("finger_verified", score=score)
        self._lifted()

    def _sample(self):
        """One capture, then the sensor's character file of it (UpChar): the kiosk does not compare it."""
        self._wait(self.worker.submit("capture", timeout_s=self.capture_timeout_s))
        sample = self._wait(self.worker.submit("characteristics"))
        self.mode = None
        self.post("finger_sampled", sample=sample)
        self._lifted()

    def _enrol(self):
        request, self._enrol_request = self._enrol_request or {}, None

        def step(name, number):
            self.post("finger_step", step=name, number=number, finger=request.get("finger"))

        # a finger still on the glass from the last capture (or the other finger) must not be taken
        # as this finger's first capture
        step("lift_finger", 0)
        self._wait(self.worker.submit("wait_for_lift", timeout_s=30.0))
        enrollment = self._wait(self.worker.enroll(on_step=step, timeout_s=30.0, captures=request.get("captures")))
        self.mode = None
        self.post("finger_enrolled", template=enrollment.template, finger=request.get("finger"))

    def _lifted(self):
        try:
            self._wait(self.worker.submit("wait_for_lift", timeout_s=10.0))
        except (CancelledError, SensorError):
            pass
