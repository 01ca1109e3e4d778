"""A scripted person in front of the camera who does what the kiosk's screen asks.

``ScriptedPerson`` is a camera source (give it to ``ScenarioPlayer``) playing one person who
walks up to the kiosk (the face grows toward the centre guide, as in ``walk_up``) and then
stands there. Whoever reads the kiosk's prompt (a test, a benchmark, the demo's control panel)
tells the person what to do, from any thread:

- ``perform("turn_left" | "turn_right")``: turn the head to the person's own left or right over
  a few frames, hold it, and come back to frontal. A head turn is real 3D motion drawn from real
  photos of the same person at different head angles (see ``liveness_scenarios``), so the face
  landmarks move with parallax, as a living head's do.
- ``hold_up_photo(path)``: raise a printed photo (of someone else) in front of the face at the
  same place; the sheet moves rigidly like ``printed_photo`` and hides the live face.
- ``leave()``: walk away out of view; the room is empty afterwards.

Commands are queued: each starts ``delay_frames`` after the next frame to be rendered, or when
the previous command has finished, whichever is later. A person may act while still walking up
(people read the screen as they come: a head turn during the last steps is drawn at the
walking-up position and size).
Frames are addressed by index and are a pure function of (seed, index, the commands given so
far): a command only ever changes frames that were not yet rendered, so ``render(i)`` gives the
same picture whenever it is called. Every frame carries ground truth: the live face as
``FaceTruth(box, person)`` (unless the sheet covers half of it or more) and the printed face as
``FaceTruth(box, photo_person, attack=True)``.

A direction with no turned photo of its own is, by default, the other direction's photos
mirrored left-right. A mirrored photo of a real head turned to its left is a real head turned to
its right: the 3D geometry (and so the parallax the liveness check looks for) is genuine. It is
the mirror image of the person, which face recognition treats as very nearly the same face.

With ``head_turn_deg`` a direction that has no photo (given or mirrored) is rendered from the
frontal photo by the head model (``kiosk_sim.head_model``: the face laid on a 3D head shape and
rotated), one angle per frame of the turn up to ``head_turn_deg``, or the ``degrees`` given to
``perform``. So anyone with one frontal photo can act a head turn: the same face, light and
expression throughout, as in a real turn, with the landmarks moving non-planarly.
"""

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from kiosk_sim import head_model
from kiosk_sim.printed import PrintedSheet, sheet_motion
from kiosk_sim.scenarios import (DEFAULT_FPS, FRAME_SIZE, LFW_FACE_BOX, FaceTruth, Scenario, SceneContext,
                                 ease, paste_face, read_photo, walk_up_pose)

log = logging.getLogger(__name__)

TURNS = ("turn_left", "turn_right")
OTHER_WAY = {"turn_left": "turn_right", "turn_right": "turn_left"}
HIDDEN_COVERAGE = 0.5  # the live face is hidden once the sheet covers this share of its box


@dataclass(frozen=True)
class PersonState:
    """What the scripted person is doing at one frame."""

    index: int
    phase: str                  # "approaching", "present", "leaving" or "gone"
    action: str = None          # "turn_left"/"turn_right" while turning, holding or coming back
    pose: str = "frontal"       # the head as drawn: "frontal", "turn_left" or "turn_right"
    head: Path = None           # the photo the live head is drawn from (None when gone)
    mirrored: bool = False      # that photo is drawn mirrored left-right
    head_yaw_deg: float = None  # the head model's rotation as drawn (None: a photo as it is)
    held_photo: Path = None     # the printed photo in front of the face, if one is raised
    face_hidden: bool = False   # the sheet covers the live face (it is not in the ground truth)


@dataclass(frozen=True)
class _Command:
    start: int
    kind: str                   # "turn_left", "turn_right", "photo" or "leave"
    sheet: PrintedSheet = None
    path: Path = None
    person: str = None
    degrees: float = None       # a head-model turn's angle


class ScriptedPerson:
    """One person who walks up to the kiosk and then turns the head, holds up a photo or leaves on cue.

    ``frontal`` is the path of an aligned (LFW deep-funneled, 250x250) frontal photo, shown while
    walking up and standing. ``turns`` maps "turn_left"/"turn_right" to one photo path or a list
    ordered from slightly to fully turned (the person's own left/right); with ``mirror`` a missing
    direction is the other one's photos mirrored. ``person`` names them in the ground truth
    (default: the photo's folder name). Frame counts are in frames at ``fps``.
    """

    def __init__(self, frontal, *, turns=None, person=None, mirror=True, head_turn_deg=None, seed=0,
                 size=FRAME_SIZE, fps=DEFAULT_FPS, approach_frames=45, turn_frames=3, hold_frames=6,
                 return_frames=3, raise_frames=4, leave_frames=20):
        counts = dict(approach_frames=approach_frames, turn_frames=turn_frames, hold_frames=hold_frames,
                      return_frames=return_frames, raise_frames=raise_frames, leave_frames=leave_frames)
        self._made_with = dict(frontal=frontal, turns=turns, person=person, mirror=mirror,
                               head_turn_deg=head_turn_deg, seed=seed, size=size, fps=fps, **counts)
        for key, value in counts.items():
            if int(value) != value or value < 1:
                raise ValueError(f"{key} must be a whole number >= 1, not {value!r}")
        self.approach_frames, self.turn_frames, self.hold_frames = approach_frames, turn_frames, hold_frames
        self.return_frames, self.raise_frames, self.leave_frames = return_frames, raise_frames, leave_frames
        self.frontal_path = Path(frontal)
        self.person = person or self.frontal_path.parent.name
        self.name = f"scripted:{self.person}"
        self.fps = float(fps)
        self.frame_count = 0  # endless: the person stays until told to leave
        self.size = tuple(size)
        self._frontal = read_photo(self.frontal_path)
        self._turns = self._load_turns(turns or {}, mirror)
        if head_turn_deg is not None and not 0 < float(head_turn_deg) < 80:
            raise ValueError(f"head_turn_deg must be between 0 and 80 degrees, not {head_turn_deg!r}")
        self.head_turn_deg = None if head_turn_deg is None else float(head_turn_deg)
        self._modelled = {}     # (kind, degrees) -> the head model's frames of that turn
        self._ctx = SceneContext(seed=seed, size=self.size)
        self._scenario = Scenario(self.name, 0, self.draw, ctx=self._ctx, fps=self.fps,
                                  description=f"{self.person} walks up and acts on cue")
        self._lock = threading.Lock()
        self._commands = ()     # replaced, never mutated, so a render can hold a snapshot
        self._next_index = 0
        self._busy_until = 0
        self._left = False

    def again(self):
        """The same person, back at the start: walking up again with no cues given yet."""
        made = dict(self._made_with)
        return ScriptedPerson(made.pop("frontal"), **made)

    @staticmethod
    def _load_turns(turns, mirror):
        unknown = sorted(set(turns) - set(TURNS))
        if unknown:
            raise ValueError(f"turned photos are keyed by {' or '.join(TURNS)}, not {', '.join(unknown)}")
        loaded = {}
        for kind, paths in turns.items():
            paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
            if not paths:
                raise ValueError(f"no photo given for {kind}")
            loaded[kind] = [(Path(p), read_photo(p), False) for p in paths]
        if mirror:
            for kind in TURNS:
                if kind not in loaded and OTHER_WAY[kind] in loaded:
                    loaded[kind] = [(p, cv2.flip(image, 1), True) for p, image, _ in loaded[OTHER_WAY[kind]]]
        return loaded

    # --- what a camera player reads ----------------------------------------------------------

    def render(self, index):
        """Frame ``index`` as a ``SceneFrame`` (uint8 BGR with ground truth)."""
        return self._scenario.render(index)

    def draw(self, index, rng):
        """Frame ``index`` before sensor noise: (float32 canvas, [FaceTruth]).

        Marks every frame up to ``index`` as seen, so later commands start after it.
        """
        with self._lock:
            self._next_index = max(self._next_index, index + 1)
            commands = self._commands
        canvas = self._ctx.background(rng)
        faces = self._compose(index, commands, canvas)
        return canvas, faces

    # --- cues --------------------------------------------------------------------------------

    def perform(self, kind, *, delay_frames=0, degrees=None):
        """Turn the head to the person's own left or right and back; return the frame it starts at.

        ``degrees`` sets how far a head-model turn goes (default ``head_turn_deg``); a turn drawn
        from photos goes as far as its photos do.
        """
        kind = str(getattr(kind, "value", kind))  # also takes the kiosk's ChallengeKind
        if kind not in TURNS:
            raise ValueError(f"a scripted person can perform {' or '.join(TURNS)}, not {kind!r}")
        if kind not in self._turns and self.head_turn_deg is None:
            raise ValueError(f"{self.person} has no photo turned for {kind} (give turns={{'{kind}': path}}, "
                             "the other direction with mirror=True, or head_turn_deg)")
        if degrees is not None and not 0 < float(degrees) < 80:
            raise ValueError(f"a head turn is between 0 and 80 degrees, not {degrees!r}")
        modelled = kind not in self._turns
        degrees = (float(degrees) if degrees is not None else self.head_turn_deg) if modelled else None
        length = self.turn_frames + self.hold_frames + self.return_frames
        return self._queue(_Command(0, kind, degrees=degrees), length, delay_frames)

    def hold_up_photo(self, photo_path, *, person=None, delay_frames=0):
        """Raise a printed photo in front of the face and keep it there; return the frame it starts at.

        ``person`` names the photo's subject in the ground truth (default: its folder name).
        """
        path = Path(photo_path)
        sheet = PrintedSheet(read_photo(path))
        with self._lock:
            if any(c.kind == "photo" for c in self._commands):
                raise RuntimeError(f"{self.person} is already holding up a photo")
        return self._queue(_Command(0, "photo", sheet, path, person or path.parent.name), self.raise_frames,
                           delay_frames)

    def leave(self, *, delay_frames=0):
        """Walk away out of view (with any photo held); return the frame the person starts leaving."""
        return self._queue(_Command(0, "leave"), self.leave_frames, delay_frames)

    def _queue(self, command, length, delay_frames):
        if int(delay_frames) != delay_frames or delay_frames < 0:
            raise ValueError(f"delay_frames must be a whole number >= 0, not {delay_frames!r}")
        with self._lock:
            if self._left:
                raise RuntimeError(f"{self.person} has left")
            start = max(self._next_index + int(delay_frames), self._busy_until)
            command = _Command(start, command.kind, command.sheet, command.path, command.person, command.degrees)
            self._commands = self._commands + (command,)
            self._busy_until = start + length
            self._left = command.kind == "leave"
        log.debug("%s: %s from frame %d", self.person, command.kind, start)
        return start

    @property
    def next_index(self):
        """The first frame not yet rendered: a command given now starts here at the earliest."""
        with self._lock:
            return self._next_index

    @property
    def busy_until(self):
        """The frame at which everything queued so far is done."""
        with self._lock:
            return self._busy_until

    @property
    def arrived_frame(self):
        """The first frame in which the face holds at the centre guide."""
        return self.approach_frames

    # --- the script, frame by frame ----------------------------------------------------------

    def state_at(self, index):
        """What the person is doing at frame ``index``, given the commands so far (a ``PersonState``)."""
        with self._lock:
            commands = self._commands
        state, centre, face_px, _, sheet = self._moment(index, commands)
        if sheet is not None:
            matrix = self._sheet_matrix(index, centre, face_px, sheet)
            coverage = cv2.warpPerspective(np.ones((sheet.sheet.height, sheet.sheet.width), np.float32), matrix,
                                           self.size)
            box = _face_box(centre, face_px)
            state = replace(state, face_hidden=_covered(coverage, box) >= HIDDEN_COVERAGE)
        return state

    def _moment(self, index, commands):
        """(PersonState, face centre, face px, head image, sheet command or None) at ``index``."""
        leave = next((c for c in commands if c.kind == "leave"), None)
        if leave and index >= leave.start + self.leave_frames:
            return PersonState(index, "gone"), None, 0.0, None, None
        cx, cy, face_px = walk_up_pose(index, self.size, self.approach_frames)
        phase = "approaching" if index < self.approach_frames else "present"
        if leave and index >= leave.start:
            phase = "leaving"
            u = ease((index - leave.start + 1) / self.leave_frames)
            width = self.size[0]
            cx += (width * 0.75 - cx) * u + width * 0.3 * u * u  # away to the side, out of the frame
            face_px += (40 - face_px) * u
        action, pose, head, image, mirrored = None, "frontal", self.frontal_path, self._frontal, False
        yaw = None
        for command in commands:
            if command.kind in TURNS and command.start <= index:
                frames = self._turn_frames_of(command)
                step = self._turn_step(index - command.start, len(frames))
                if step is not None:
                    action = command.kind
                    if step >= 0:
                        pose = command.kind
                        head, image, mirrored = frames[step][:3]
                        yaw = frames[step][3] if len(frames[step]) > 3 else None
        sheet = next((c for c in commands if c.kind == "photo" and c.start <= index), None)
        state = PersonState(index, phase, action, pose, head, mirrored, yaw, sheet.path if sheet else None)
        return state, (cx, cy), face_px, image, sheet

    def _turn_frames_of(self, command):
        """The pictures of one turn, from slightly to fully turned: photos, or the head model's frames."""
        if command.degrees is None:
            return self._turns[command.kind]
        key = (command.kind, command.degrees)
        with self._lock:
            frames = self._modelled.get(key)
        if frames is None:
            sign = 1.0 if command.kind == "turn_left" else -1.0  # yaw > 0: the person's own left
            angles = [sign * command.degrees * (k + 1) / self.turn_frames for k in range(self.turn_frames)]
            frames = [(self.frontal_path, head_model.turned(self._frontal, angle), False, angle) for angle in angles]
            with self._lock:
                self._modelled[key] = frames
        return frames

    def _turn_step(self, j, steps):
        """Which turned photo frame ``j`` of a turn shows: None (turn over), -1 (frontal) or 0..steps-1."""
        turn, hold, back = self.turn_frames, self.hold_frames, self.return_frames
        if j < turn:
            num, den = j + 1, turn
        elif j < turn + hold:
            num, den = 1, 1
        elif j < turn + hold + back:
            num, den = back - (j - turn - hold + 1), back
        else:
            return None
        return -(-num * steps // den) - 1  # ceil(level * steps) - 1; level 0 is frontal

    def _sheet_matrix(self, index, centre, face_px, sheet):
        """Where the raised sheet is: in front of the face, swaying like a hand-held print."""
        dx, dy, angle, nearer, tilt = sheet_motion(index)
        scale = face_px / LFW_FACE_BOX[2] * (1 + 0.04 * nearer)  # the printed face as big as the live one
        target = (centre[0] + dx * 0.5, centre[1] + dy * 0.5)  # held close to the face: a smaller sway
        rise = ease((index - sheet.start + 1) / self.raise_frames)
        below = self.size[1] + sheet.sheet.height * scale / 2  # the raise starts out of view
        return sheet.sheet.matrix((target[0], below + (target[1] - below) * rise), scale, angle, tilt)

    def _compose(self, index, commands, canvas):
        state, centre, face_px, image, sheet = self._moment(index, commands)
        if state.phase == "gone":
            return []
        box = paste_face(canvas, image, centre, face_px)
        faces = [FaceTruth(box, self.person)]
        if sheet is not None:
            photo_box, coverage = sheet.sheet.draw(canvas, self._sheet_matrix(index, centre, face_px, sheet))
            if _covered(coverage, box) >= HIDDEN_COVERAGE:
                faces = []
            faces.append(FaceTruth(photo_box, sheet.person, attack=True))
        return [face for face in faces if _centre_in_view(face.box, self.size)]


def _face_box(centre, face_px):
    """The box ``paste_face`` reports for a face ``face_px`` wide at ``centre``."""
    return (int(round(centre[0] - face_px / 2)), int(round(centre[1] - face_px / 2)), int(face_px), int(face_px))


def _centre_in_view(box, size):
    x, y, w, h = box
    return 0 <= x + w / 2 < size[0] and 0 <= y + h / 2 < size[1]


def _covered(coverage, box):
    """The share of ``box`` (x, y, w, h) under the sheet."""
    x, y, w, h = box
    height, width = coverage.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(np.sum(coverage[y0:y1, x0:x1])) / float(w * h)


class PromptFollower:
    """Reads the kiosk's screen for a scripted person and does what it asks, as a person would.

    Call it with each screen the kiosk shows (``follower(screen, data)``): on a liveness prompt
    (``face_challenge`` with ``challenge`` turn_left/turn_right) the person turns, and turns again
    if asked again once the last turn is over. A blink cannot be performed (no closed-eye photos).
    """

    def __init__(self, person, *, reaction_frames=6):
        self.person = person
        self.reaction_frames = int(reaction_frames)  # reading the prompt takes a moment
        self.performed = 0

    def __call__(self, screen, data):
        kind = data.get("challenge") if screen == "face_challenge" else None
        if kind not in TURNS or data.get("stage") not in (None, "acting"):
            return  # "baseline": the kiosk still wants a frontal look before it asks for the turn
        person = self.person
        if self.performed == 0 or person.busy_until <= person.next_index:
            self.performed += 1
            starts = person.perform(kind, delay_frames=self.reaction_frames)
            log.info("%s reads '%s' and turns at frame %d", person.person, kind, starts)
