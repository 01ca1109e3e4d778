"""One scene of `kiosk bench attendance`: the kiosk side, the person's side of the screen, frame by frame.

The kiosk (``Kiosk``: the real ``AttendanceFlow`` on a ``FlowHost`` over the shared, timed face
engine, with ports that note door pulses by frame) is fed the frames of a camera simulator
source (``play``), while a ``Responder`` plays the person reading the screen. See
``kiosk.bench.attendance`` for the scenarios built from these and for the timing definitions.
"""

import random
import time

FPS = 15.0


# --- the kiosk side ---------------------------------------------------------------------------

class BenchPorts:
    """The attendance flow's ports: people from a dict, records in memory, door pulses by frame."""

    def __init__(self, clock, person_ids):
        from kiosk.flows.ports import Person

        self.clock = clock
        self.host = None
        self.people = {pid: Person(pid, pid) for pid in person_ids}
        self.records = []
        self.door = []            # (frame number, person id of the last record)
        self.frame_number = None  # set by the bench before each frame
        self.on_show = None

    def show(self, screen, **data):
        if self.on_show is not None:
            self.on_show(screen, data)

    def dim(self, dimmed):
        pass

    def signal(self, kind):
        pass

    def open_door(self):
        self.door.append((self.frame_number, self.records[-1].person_id if self.records else None))

    def start_capture(self, kind, **options):
        if kind == "face":
            self.host.set_face_mode(options.get("mode", "identify"))

    def stop_capture(self, kind):
        if kind == "face":
            self.host.set_face_mode(None)

    def person(self, person_id, *, include_inactive=False):
        return self.people.get(person_id)

    def person_for_finger(self, slot):
        return None

    def find_person(self, typed):
        return None

    def last_punch(self, person_id):
        from kiosk.flows.ports import Punch

        mine = [r for r in self.records if r.person_id == person_id]
        return Punch(mine[-1].status, mine[-1].wall_time_s) if mine else None

    def punches_since(self, person_id, since_s):
        from kiosk.flows.ports import Punch

        return [Punch(r.status, r.wall_time_s) for r in self.records
                if r.person_id == person_id and r.wall_time_s >= since_s]

    def record(self, *, person_id, status, verify_mode, score=None):
        from kiosk.flows.ports import Recorded

        recorded = Recorded(len(self.records) + 1, person_id, status, verify_mode, self.clock.time())
        self.records.append(recorded)
        return recorded


class TimedEngine:
    """The face engine, timing every ``analyse`` call (real milliseconds, by mode)."""

    def __init__(self, engine):
        self.engine = engine
        self.gallery = engine.gallery
        self.ms = {"detect": [], "identify": []}

    def analyse(self, image, timestamp_s, *, mode="identify"):
        started = time.perf_counter()
        frame = self.engine.analyse(image, timestamp_s, mode=mode)
        self.ms[mode].append((time.perf_counter() - started) * 1000.0)
        return frame


class _Camera:
    """What the FlowHost reads: the frame the bench put there last."""

    def __init__(self):
        self.frame = None

    def latest(self):
        return self.frame


class Kiosk:
    """One attendance kiosk (flow, host, ports) on a shared engine and a fake clock."""

    def __init__(self, engine, settings, person_ids, *, clock, seed):
        from kiosk.flows.attendance import AttendanceFlow
        from kiosk.host import FlowHost

        self.clock = clock
        self.camera = _Camera()
        self.ports = BenchPorts(clock, person_ids)
        self.host = FlowHost(None, clock=clock, camera=self.camera, engine=engine)
        self.ports.host = self.host
        self.flow = AttendanceFlow(ports=self.ports, clock=clock, settings=settings, rng=random.Random(seed))
        self.host.home = self.host.flow = self.flow
        self.frames = 0

    def step(self, scene):
        """One camera frame: the clock moves a frame on, the host analyses it; returns real ms taken."""
        from kiosk.drivers.camera import Frame

        self.clock.advance(1.0 / FPS)
        self.frames += 1
        self.camera.frame = Frame(scene.image, scene.image, self.clock.monotonic(), self.frames)
        self.ports.frame_number = self.frames
        started = time.perf_counter()
        self.host.step()
        return (time.perf_counter() - started) * 1000.0


def fully_in_view(scene, size, min_face_px):
    """True when a live face of the scene's ground truth is wholly inside the image and identifiable.

    Identifiable: the face box (the simulator's, as drawn) is at least ``min_face_px`` wide, the
    size from which the kiosk's quality gate lets a face be identified (``face.min_face_px``).
    """
    width, height = size
    for face in scene.faces:
        x, y, w, h = face.box
        if (not face.attack and x >= 0 and y >= 0 and x + w <= width and y + h <= height
                and min(w, h) >= min_face_px):
            return True
    return False


REACTION_FRAMES = 6  # 400 ms at 15 fps: reading the prompt before the head starts to turn
HEAD_TURN_DEG = 35.0  # how far the simulated people turn when asked: a plain, unhurried head turn
TURN_FURTHER_DEG = 10.0  # asked again (the prompt is still up after a turn), they turn this much further
MAX_TURN_DEG = 55.0


class Responder:
    """Plays the person's side of the screen: turns the head when the challenge asks, after reading it."""

    def __init__(self, person, *, then_photo=None, reaction_frames=REACTION_FRAMES):
        self.person = person
        self.then_photo = then_photo  # photo swap: raise this photo once the turn is done
        self.reaction_frames = int(reaction_frames)
        self.turns = 0
        self.turn_starts = []  # the person's frame index at which each turn starts

    def __call__(self, screen, data):
        if screen != "face_challenge" or data.get("stage") != "acting":
            return  # "baseline": the screen asks them to look at the camera first
        if self.then_photo is not None and self.turns:
            return  # the attacker now holds the photo up and keeps it there
        if self.turns and self.person.busy_until > self.person.next_index:
            return  # still turning
        degrees = min(HEAD_TURN_DEG + TURN_FURTHER_DEG * self.turns, MAX_TURN_DEG)
        self.turn_starts.append(self.person.perform(data["challenge"], delay_frames=self.reaction_frames,
                                                    degrees=degrees))
        self.turns += 1
        if self.then_photo is not None:
            self.person.hold_up_photo(self.then_photo)


# --- one scene --------------------------------------------------------------------------------

def play(kiosk, player, *, arrived_frame, watch_s, responder=None, stop_at_door=True):
    """Play frames until the door pulses (``stop_at_door``) or ``watch_s`` after the face is in view.

    Returns ``{"in_view", "door", "step_ms", "prompted", "passed", "last_screen"}``: frame
    numbers (the kiosk's, from 1) of the first frame in which the face is fully in view
    (``fully_in_view``: wholly inside the image and at least ``face.min_face_px`` wide), of each
    door pulse, of the first liveness prompt and of the frame that passed the challenge; the
    real ms of every frame; the last screen shown (name, data). ``arrived_frame`` (when the
    person stops at the guide) only bounds how long to play.
    """
    prompted, shown, passed = [], [None], None

    def on_show(screen, data):
        if screen == "face_challenge" and not prompted:
            prompted.append(kiosk.frames)
        shown[0] = (screen, data)
        if responder is not None:
            responder(screen, data)

    kiosk.ports.on_show = on_show
    first, in_view, step_ms, doors_before = kiosk.frames + 1, None, {}, len(kiosk.ports.door)
    limit = arrived_frame + int(round((watch_s + 1.0) * FPS)) + 200  # in_view comes within this
    for local in range(limit):
        scene = player.read_scene()
        ms = kiosk.step(scene)
        step_ms[kiosk.frames] = ms
        challenge = kiosk.flow.attempt.challenge
        if passed is None and challenge is not None and challenge.status.passed:
            passed = kiosk.frames
        if passed is None and len(kiosk.ports.door) > doors_before:
            passed = kiosk.frames  # accepted on the frame that passed the challenge (the attempt is over)
        if in_view is None and fully_in_view(scene, player.size, kiosk.flow.settings.face.min_face_px):
            in_view = kiosk.frames
        if stop_at_door and len(kiosk.ports.door) > doors_before:
            break
        if in_view is not None and kiosk.frames - in_view >= watch_s * FPS:
            break
    kiosk.ports.on_show = None
    doors = kiosk.ports.door[doors_before:]
    return {"in_view": in_view, "first": first, "door": doors, "step_ms": step_ms,
            "prompted": prompted[0] if prompted else None, "passed": passed, "last_screen": shown[0]}


def scripted(member, *, seed, photo=None, approach_frames=45):
    from kiosk_sim.scripted_person import ScriptedPerson

    # every head turn is the head model's, from the photo walked up with (see attendance_cast)
    return ScriptedPerson(photo or member.frontal, turns={}, head_turn_deg=HEAD_TURN_DEG, person=member.person,
                          seed=seed, fps=FPS, approach_frames=approach_frames)


def open_player(source, seed):
    from kiosk_sim.camera import ScenarioPlayer

    player = ScenarioPlayer(source, seed=seed)
    player.open()
    return player


def phases(out, responder):
    """Where one walk-up's time went, in frame-time ms (None where a step never happened)."""
    first, prompted, passed = out["first"], out["prompted"], out["passed"]
    door = out["door"][0][0] if out["door"] else None
    turn = first + responder.turn_starts[0] if responder.turn_starts else None  # person index 0 = kiosk `first`

    def span(a, b):
        return None if a is None or b is None else (b - a) / FPS * 1000.0

    return {"prompt_to_in_view": span(prompted, out["in_view"]), "prompt_to_turn": span(prompted, turn),
            "turn_to_pass": span(turn, passed), "pass_to_door": span(passed, door)}
