"""The flows' host: events from any thread reach the flow, a failing flow goes home, a stall shows."""

from kiosk.clock import FakeClock
from kiosk.host import MAX_QUEUED_EVENTS, FlowHost


class Recording:
    """A stand-in flow: remembers events; ``boom`` raises, as a flow with a bug would."""

    state = "idle"

    def __init__(self):
        self.events = []
        self.ticks = 0

    def handle(self, event, **data):
        if event == "boom":
            raise RuntimeError("a bug in a flow")
        self.events.append((event, data))
        return True

    def tick(self):
        self.ticks += 1
        if self.state == "boom_on_tick":
            self.state = "idle"
            raise RuntimeError("a bug in a flow's timeout")


def test_posted_events_reach_the_flow_in_order_on_the_next_step():
    flow = Recording()
    host = FlowHost(flow, clock=FakeClock())
    host.post("finger_matched", slot=3)
    host.post("cancelled")
    assert flow.events == []
    host.step()
    assert flow.events == [("finger_matched", {"slot": 3}), ("cancelled", {})] and flow.ticks == 1


def test_a_flood_of_events_is_bounded():
    flow = Recording()
    host = FlowHost(flow, clock=FakeClock())
    for n in range(MAX_QUEUED_EVENTS + 50):
        host.post("presence_detected", n=n)
    host.step()
    assert len(flow.events) == MAX_QUEUED_EVENTS


def test_a_failing_flow_is_sent_home_and_the_host_goes_on():
    flow = Recording()
    host = FlowHost(flow, clock=FakeClock())
    host.post("boom")
    host.post("presence_detected")
    host.step()
    assert ("cancelled", {}) in flow.events and flow.events[-1] == ("presence_detected", {})


def test_a_flow_failing_on_its_timeout_is_sent_home_and_the_host_goes_on():
    """A timeout runs the flow's callbacks as an event does (the attendance flow records on the punch
    choice's timeout): what they raise must not end the flows thread, which would leave the screen
    frozen until the watchdog restarts the kiosk."""
    flow = Recording()
    host = FlowHost(flow, clock=FakeClock())
    flow.state = "boom_on_tick"
    host.step()
    assert ("cancelled", {}) in flow.events
    host.post("presence_detected")
    host.step()
    assert flow.events[-1] == ("presence_detected", {})


def test_a_stalled_flows_thread_shows_in_stalled_s():
    clock = FakeClock()
    host = FlowHost(Recording(), clock=clock)
    assert host.stalled_s() == 0.0
    host.step()
    clock.advance(20)
    assert host.stalled_s() == 20.0  # run_appliance withholds the watchdog past FLOWS_STALL_LIMIT_S
    host.step()
    assert host.stalled_s() == 0.0


def test_another_flow_is_entered_by_its_event_and_left_when_finished():
    home, admin = Recording(), Recording()
    host = FlowHost(home, clock=FakeClock())
    host.flow_factories["admin_requested"] = lambda: admin
    host.post("admin_requested")
    host.post("pin_entered", pin="x")
    host.step()
    assert host.flow is admin and admin.events == [("pin_entered", {"pin": "x"})]
    admin.state = "finished"
    host.step()
    assert host.flow is home and home.events[-1] == ("cancelled", {})


class FrameCounter:
    """A stand-in face engine: counts the frames the host hands it (nobody in them)."""

    def __init__(self):
        self.modes = []

    def analyse(self, image, timestamp_s, *, mode):
        from kiosk.models.face_frame import FaceFrame

        self.modes.append(mode)
        return FaceFrame(timestamp_s, guidance="no_face", failures=("no_face",))


def test_a_frame_from_the_camera_wakes_the_waiting_flows_thread_only_when_frames_are_wanted():
    """The host sleeps until an event, a frame or its tick; it must not sleep through a frame it wants."""
    import time

    from kiosk.drivers import camera
    from kiosk.drivers.camera_backends import PlayerSource
    from kiosk_sim.camera import ScenarioPlayer

    clock = FakeClock()
    cam = camera.Camera(PlayerSource(ScenarioPlayer("no_face")), clock=clock)
    cam.start(worker=False)
    engine = FrameCounter()
    host = FlowHost(Recording(), clock=clock, camera=cam, engine=engine, tick_s=30.0)
    cam.step()  # face mode None: a frame arrives, nobody wants it, nothing wakes the host
    assert host._events.empty()
    host.set_face_mode("detect")
    clock.advance(1.0)
    cam.step()
    began = time.monotonic()
    host.step(wait_s=20.0)  # would sleep the whole 20 s if the frame did not wake it
    assert time.monotonic() - began < 10.0
    assert engine.modes == ["detect"]
    for _ in range(MAX_QUEUED_EVENTS + 10):  # a stalled flows thread: frames keep coming
        clock.advance(0.2)
        cam.step()
    host.post("finger_matched", slot=1)  # frame wake-ups never crowd out an event
    host.step()
    assert host.flow.events == [("finger_matched", {"slot": 1})]
    cam.stop()


class BrokenEngine(FrameCounter):
    """A face engine that raises on every frame (a model error, a frame of the wrong shape)."""

    def analyse(self, image, timestamp_s, *, mode):
        self.modes.append(mode)
        raise ValueError("expected an RGB image (H, W, 3)")


def test_a_face_engine_that_raises_costs_its_frames_not_the_flows_thread(caplog):
    from kiosk.drivers import camera
    from kiosk.drivers.camera_backends import PlayerSource
    from kiosk_sim.camera import ScenarioPlayer

    clock = FakeClock()
    cam = camera.Camera(PlayerSource(ScenarioPlayer("no_face")), clock=clock)
    cam.start(worker=False)
    engine = BrokenEngine()
    host = FlowHost(Recording(), clock=clock, camera=cam, engine=engine, tick_s=30.0)
    host.set_face_mode("identify")
    with caplog.at_level("WARNING", logger="kiosk.host"):
        for _ in range(30):  # two seconds of frames, each one failing
            clock.advance(1 / 15)
            cam.step()
            host.step()
        host.post("finger_matched", slot=1)  # the fingerprint and PIN paths still work
        host.step()
    assert len(engine.modes) == 30 and host.flow.ticks == 31
    assert host.flow.events == [("finger_matched", {"slot": 1})]
    failures = [r for r in caplog.records if r.name == "kiosk.host"]
    assert len(failures) == 1 and failures[0].exc_info is not None  # once with its traceback, not 30 times
    clock.advance(61.0)
    cam.step()
    with caplog.at_level("WARNING", logger="kiosk.host"):
        host.step()
    again = [r for r in caplog.records if r.name == "kiosk.host"][1:]
    assert len(again) == 1 and "30 frame(s)" in again[0].getMessage()  # 29 after the first, and this one
    cam.stop()
