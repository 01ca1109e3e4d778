"""Test doubles for flows: a port recorder with an in-memory world, and synthetic face frames.

``RecordingPorts`` answers the flows' questions from dicts and records every effect in order,
so a test can assert "recorded, then the door opened". ``Faces`` makes ``FaceFrame``s for a
named identity: a fixed unit embedding per name, gallery matches computed by real cosine
scores against the enrolled names, and face-mesh landmarks projected from a synthetic 3D head
at a given yaw (a real head turn: non-planar) or warped as a flat picture (a photo attack).
"""

import random
import zlib
from dataclasses import dataclass

import numpy as np

from kiosk.flows.ports import EnrolResult, PinCheck, Person, Punch, Recorded
from kiosk.models.face_frame import FaceFrame
from kiosk.models.gallery import Match
from kiosk.models.landmarks import FaceLandmarks


def _seed_of(name):
    """A seed from a name, the same in every process (``hash`` of a str changes with PYTHONHASHSEED)."""
    return zlib.crc32(name.encode())


class RecordingPorts:
    """Every effect recorded in ``calls`` (name, data); questions answered from the dicts."""

    def __init__(self, clock, people=(), *, pins=None, slots=None):
        self.clock = clock
        self.calls = []
        self.people = {p.person_id: p for p in people}
        self.pins = dict(pins or {})
        self.slots = dict(slots or {})
        self.fingers_off_sensor = set()  # people with templates on record but outside the working set
        self.records = []
        self.fail_record = None
        self.pin_failures = {}
        self.pin_max_failures = 3
        self.locked = set()
        self.admin_pin = "246810"
        self.face_dupes = {}
        self.finger_dupes = {}
        self.enrolled = []
        self.deleted = []

    # effects
    def _call(self, _what, **data):
        self.calls.append((_what, data))

    def show(self, screen, **data):
        self._call("show", screen=screen, **data)

    def signal(self, kind):
        self._call("signal", kind=kind)

    def open_door(self):
        self._call("open_door")

    def dim(self, dimmed):
        self._call("dim", dimmed=dimmed)

    def start_capture(self, kind, **options):
        self._call("start_capture", kind=kind, **options)

    def stop_capture(self, kind):
        self._call("stop_capture", kind=kind)

    # what was done
    def names(self):
        return [name for name, _ in self.calls]

    def screens(self):
        return [data["screen"] for name, data in self.calls if name == "show"]

    @property
    def screen(self):
        shown = [data for name, data in self.calls if name == "show"]
        return shown[-1] if shown else None

    def count(self, name, **match):
        return sum(1 for n, d in self.calls if n == name and all(d.get(k) == v for k, v in match.items()))

    # questions
    def person(self, person_id, *, include_inactive=False):
        return self.people.get(person_id)

    def person_for_finger(self, slot):
        return self.people.get(self.slots.get(slot))

    def find_person(self, typed):
        return self.people.get(typed)

    def has_fingers(self, person_id):
        return person_id in self.slots.values() or person_id in self.fingers_off_sensor

    def last_punch(self, person_id):
        mine = [r for r in self.records if r.person_id == person_id]
        return Punch(mine[-1].status, mine[-1].wall_time_s) if mine else None

    def punches_since(self, person_id, since_s):
        return [Punch(r.status, r.wall_time_s) for r in self.records
                if r.person_id == person_id and r.wall_time_s >= since_s]

    def record(self, *, person_id, status, verify_mode, score=None):
        if self.fail_record is not None:
            raise self.fail_record
        recorded = Recorded(len(self.records) + 1, person_id, status, verify_mode, self.clock.time())
        self.records.append(recorded)
        self._call("record", person_id=person_id, status=status, verify_mode=verify_mode, score=score)
        return recorded

    def check_pin(self, person_id, pin):
        if person_id in self.locked:
            return PinCheck("locked", locked_until_s=self.clock.time() + 300)
        if self.pins.get(person_id) == pin:
            self.pin_failures[person_id] = 0
            return PinCheck("ok")
        failures = self.pin_failures.get(person_id, 0) + 1
        self.pin_failures[person_id] = failures
        if failures >= self.pin_max_failures:
            self.locked.add(person_id)
            return PinCheck("locked", locked_until_s=self.clock.time() + 300)
        return PinCheck("wrong", attempts_left=self.pin_max_failures - failures)

    def check_admin_pin(self, pin):
        if "admin" in self.locked:
            return PinCheck("locked", locked_until_s=self.clock.time() + 600)
        if pin == self.admin_pin:
            return PinCheck("ok")
        failures = self.pin_failures.get("admin", 0) + 1
        self.pin_failures["admin"] = failures
        if failures >= 5:
            self.locked.add("admin")
            return PinCheck("locked", locked_until_s=self.clock.time() + 600)
        return PinCheck("wrong", attempts_left=5 - failures)

    def face_duplicate(self, vectors):
        return self.face_dupes.get(len(vectors))

    def finger_duplicate(self, template):
        return self.finger_dupes.get(bytes(template))

    def enrol(self, *, person_id, name, role, faces, fingers):
        self.enrolled.append(dict(person_id=person_id, name=name, role=role, faces=faces, fingers=fingers))
        self.people[person_id] = Person(person_id, name, role)
        self._call("enrol", person_id=person_id)
        return EnrolResult(person_id, len(faces), len(fingers), tuple(range(len(fingers))))

    def delete_person(self, person_id):
        self.deleted.append(person_id)
        self.people.pop(person_id, None)
        self._call("delete_person", person_id=person_id)

    def admin_page(self, page, **args):
        self._call("admin_page", page=page, **args)
        return {"page": page, **args}


class FirstChoice(random.Random):
    """An rng whose every choice is the first option (the challenge is then turn_left)."""

    def randrange(self, *args, **kwargs):
        return 0


@dataclass
class Head:
    """A synthetic 3D head: 468 points with depth, seeded by name."""

    points3d: np.ndarray

    @classmethod
    def of(cls, name):
        rng = np.random.default_rng(_seed_of(name))
        pts = rng.normal(size=(468, 3)) * np.array([40.0, 50.0, 30.0])
        return cls(pts)

    def project(self, yaw_deg, centre=(320.0, 240.0)):
        t = np.radians(yaw_deg)
        x, y, z = self.points3d.T
        xr = x * np.cos(t) + z * np.sin(t)
        zr = -x * np.sin(t) + z * np.cos(t)
        return np.stack([xr + centre[0], y + centre[1], zr], axis=1)


def landmarks(points, yaw=0.0, eye=0.3, pitch=0.0):
    return FaceLandmarks(points=points, presence=1.0, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                         right_eye_ratio=eye, left_eye_ratio=eye)


class Faces:
    """Makes FaceFrames for named identities against a gallery of enrolled names."""

    def __init__(self, enrolled, *, dim=128, fps=15.0):
        self.dim = dim
        self.fps = fps
        self.enrolled = list(enrolled)
        self.t = 0.0

    def vector(self, name, jitter=0.0, seed=0):
        rng = np.random.default_rng(_seed_of(name))
        v = rng.normal(size=self.dim)
        if jitter:
            v = v / np.linalg.norm(v) + np.random.default_rng(seed).normal(size=self.dim) * jitter / np.sqrt(self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def matches(self, embedding):
        scored = sorted(((float(np.dot(embedding, self.vector(n))), n) for n in self.enrolled), reverse=True)
        return tuple(Match(n, s) for s, n in scored[:2])

    def frame(self, name, *, yaw=0.0, box=(220, 120, 420, 360), guidance=None, failures=None, planar=False,
              eye=0.3, jitter=0.1, attack_score=None, dt=None):
        """The next frame (time advances by one frame) showing ``name`` (None = nobody)."""
        self.t += dt if dt is not None else 1.0 / self.fps
        if name is None:
            return FaceFrame(self.t, guidance="no_face", failures=("no_face",))
        embedding = self.vector(name, jitter=jitter, seed=int(self.t * 1000))
        head = Head.of(name)
        if planar:  # a flat picture turned as a whole: every point moves by one 2D mapping
            flat = head.project(0.0)
            squeeze = np.cos(np.radians(yaw))
            points = flat.copy()
            points[:, 0] = (flat[:, 0] - 320.0) * squeeze + 320.0
        else:
            points = head.project(yaw)
        failures = tuple(failures if failures is not None else ((guidance,) if guidance else ()))
        return FaceFrame(self.t, box=box, embedding=embedding, landmarks=landmarks(points, yaw=yaw, eye=eye),
                         guidance=failures[0] if failures else None, failures=failures,
                         matches=self.matches(embedding) if not failures else (), attack_score=attack_score)

    def turn_left(self, name, **kw):
        """Frontal, turned 25 degrees to the person's left, frontal: a passed turn_left challenge."""
        frames = [self.frame(name, **kw) for _ in range(2)]
        frames += [self.frame(name, yaw=25.0, failures=("face_the_camera",), **kw) for _ in range(2)]
        frames += [self.frame(name, **kw) for _ in range(3)]
        return frames
