"""The ports through which flows act on the world, and the answers the world gives back.

Flows never touch Qt, SQL or a driver. Every effect goes out through one object with these
methods, which ``app.py`` wires to the screen, the GPIO board, storage and sync, and tests
replace with a recorder. Effects are verbs (``show``, ``signal``, ``open_door``, ``record``,
``start_capture``); questions (``person``, ``last_punch``, ``check_pin``) return the plain
dataclasses below.
"""

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Person:
    """Who someone is, as far as a flow needs to know."""

    person_id: str
    name: str
    role: str = "employee"
    has_pin: bool = False
    has_voice: bool = False


@dataclass(frozen=True)
class Punch:
    """One attendance record as flows see it: status code and local wall time (epoch seconds)."""

    status: int
    wall_time_s: float


@dataclass(frozen=True)
class Recorded:
    """A committed attendance event (it is on disk when this exists)."""

    seq: int
    person_id: str
    status: int
    verify_mode: str
    wall_time_s: float


@dataclass(frozen=True)
class PinCheck:
    """The answer to a PIN: ``ok``, or why not (``wrong``, ``locked``, ``no_pin``, ``unknown``)."""

    outcome: str
    locked_until_s: float = None   # wall seconds, when ``locked``
    attempts_left: int = None      # before a lockout, when ``wrong``

    @property
    def ok(self):
        return self.outcome == "ok"


@dataclass(frozen=True)
class EnrolResult:
    """What saving an enrolment did: the person, and how many templates of each kind."""

    person_id: str
    faces: int
    fingers: int
    slots: tuple = field(default_factory=tuple)
    voices: int = 0


class Ports(Protocol):
    """What a flow may do and ask. ``app.py`` provides the real one; tests provide a recorder."""

    # effects
    def show(self, screen, **data): ...
    def signal(self, kind): ...                   # "ok" | "error" | "warn": lights and tones
    def open_door(self): ...
    def dim(self, dimmed): ...                    # the screen's idle dimming
    def start_capture(self, kind, **options): ...  # kind "face" (mode detect|identify|enrol) or "finger"
    def stop_capture(self, kind): ...

    # attendance
    def person(self, person_id, *, include_inactive=False): ...  # -> Person | None (active only unless asked)
    def person_for_finger(self, slot): ...        # -> Person | None
    def find_person(self, typed_id): ...          # employee number / national ID typed -> Person | None
    def has_fingers(self, person_id): ...         # -> bool: fingerprint templates on record (claim and verify)
    def last_punch(self, person_id): ...          # -> Punch | None
    def punches_since(self, person_id, since_s): ...  # -> [Punch], oldest first
    def record(self, *, person_id, status, verify_mode, score=None): ...  # -> Recorded (committed)
    def check_pin(self, person_id, pin): ...      # -> PinCheck (lockouts counted by the port)
    def check_admin_pin(self, pin): ...           # -> PinCheck

    # enrolment and admin
    def face_duplicate(self, vectors): ...        # -> person_id already enrolled with this face, or None
    def finger_duplicate(self, template): ...     # -> person_id already enrolled with this finger, or None
    def enrol(self, *, person_id, name, role, faces, fingers, pin=None, voice=None): ...  # -> EnrolResult; pin: 6 digits or None; voice: (model_id, vector) or None
    def delete_person(self, person_id): ...
    def admin_page(self, page, **args): ...       # -> dict of what the page shows
