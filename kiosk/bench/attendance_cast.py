"""Who plays in `kiosk bench attendance`: people chosen from a photo folder by measured head pose.

A person's photos go through the kiosk's own face pipeline (detector, the face mesh
``kiosk.models.landmarks.FaceLandmarker`` for the head pose, and the embedder), in order, until
what they need is found. A person can walk up in the benchmark when they have:

- a first photo with a face (their enrolment photo: its embedding goes into the gallery, with
  those of their next photos, up to ``face.enrol_captures`` in all, as the kiosk's enrolment
  takes several captures; never the photo they walk up with);
- another photo that is frontal (|yaw| < 8 and |pitch| < 15 degrees) and clear for the quality
  gate (light, contrast, focus); the most frontal such one: the face they walk up with. The head turn
  the liveness challenge asks for is rendered from this photo by the camera simulator's head
  model (``kiosk_sim.head_model``), so no turned photo is needed: every person with two usable
  photos can walk up, not only the few whose photo set happens to hold a turned one.

A person who is not used as a walk-up (not enough people yet, or because they lack one of
the above) is skipped with the reason counted. Unenrolled people need a frontal photo (any,
the first included): they perform the challenge too.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FRONTAL_DEG = 8.0
FRONTAL_PITCH_DEG = 15.0
CLEAR_MARGIN = 10.0  # inside the quality gate's limits: grey levels of brightness; half of it for contrast, sharpness
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class Member:
    """One person of the cast: their photos by role, and the yaw measured on each."""

    person: str
    photos: list                       # every photo path, sorted
    yaws: list                         # yaw in degrees per photo (None: no face found)
    pitches: list = field(default_factory=list)  # pitch in degrees per photo (None: no face found)
    clear: list = field(default_factory=list)    # per photo: light, contrast and focus pass the quality gate
    enrol_embedding: object = None     # embedding of the first photo (None: no face)
    embeddings: list = field(default_factory=list)  # embedding per photo (None: no face)
    enrol_embeddings: list = field(default_factory=list)  # what goes into the gallery
    frontal: Path = None               # the photo they walk up with
    in_gallery: bool = False           # enrolled in the bench's gallery


def list_people(dataset):
    """Per-person folders under ``dataset`` (sorted) with their image files (sorted)."""
    root = Path(dataset)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}")
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            people.append((folder.name, photos))
    return people


def _read_rgb(path):
    import cv2
    import numpy as np

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def measure(pipeline, person, photos, *, limits=None):
    """A ``Member`` with every photo's head pose (face mesh), embedding and whether its face is clear.

    Clear: the face's brightness, contrast and sharpness (``kiosk.models.quality.face_measures``)
    lie inside the quality gate's ``limits`` with ``CLEAR_MARGIN`` to spare (default limits: the
    gate's defaults), so the photo's own exposure and focus do not decide the walk-up.
    """
    from kiosk.models import quality

    limits = limits or quality.QualityLimits()
    yaws, pitches, embeddings, clear = [], [], [], []
    for path in photos:
        image = _read_rgb(path)
        faces = pipeline.process(image, embed=True)
        face = faces[0] if faces else None
        mesh = None if face is None else face.landmarks
        yaws.append(None if mesh is None else float(mesh.yaw_deg))
        pitches.append(None if mesh is None else float(mesh.pitch_deg))
        embeddings.append(None if face is None else face.embedding)
        if face is None:
            clear.append(False)
            continue
        brightness, contrast, sharpness = quality.face_measures(image, face.box)
        clear.append(limits.min_brightness + CLEAR_MARGIN <= brightness <= limits.max_brightness - CLEAR_MARGIN
                     and contrast >= limits.min_contrast + CLEAR_MARGIN / 2
                     and sharpness >= limits.min_sharpness + CLEAR_MARGIN / 2)
    return Member(person, list(photos), yaws, pitches=pitches, clear=clear,
                  enrol_embedding=embeddings[0] if embeddings else None, embeddings=embeddings)


def enrolment_embeddings(member, count):
    """The first photo's embedding and the next photos' (not walked up or turned with), ``count`` in all."""
    kept = {member.frontal}
    chosen = [member.enrol_embedding]
    for path, embedding in zip(member.photos[1:], member.embeddings[1:]):
        if len(chosen) >= count:
            break
        if embedding is not None and path not in kept:
            chosen.append(embedding)
    return chosen


def frontal_photo(member, *, skip_first):
    """The photo facing the camera most squarely: |yaw| < FRONTAL_DEG and |pitch| < FRONTAL_PITCH_DEG.

    The simulated person walks up with it and looks at the kiosk that way; the kiosk wants a
    frontal look (|yaw| < 8, |pitch| < 20 degrees, ``kiosk.models.liveness``) before it asks for
    a turn, and a person who is asked looks straight at it: the photo must be one of them doing so.
    The face must be clear too (``Member.clear``): the kiosk stands in the light it was installed
    for, and a press photo's murky exposure or soft focus is the photographer's, not the person's.
    """
    candidates = []
    clear = member.clear or [True] * len(member.photos)
    for position, (path, yaw, pitch) in enumerate(zip(member.photos, member.yaws, member.pitches)):
        if skip_first and position == 0 or yaw is None or pitch is None or not clear[position]:
            continue
        if abs(yaw) < FRONTAL_DEG and abs(pitch) < FRONTAL_PITCH_DEG:
            candidates.append((abs(yaw) + abs(pitch), position, path))
    return min(candidates)[2] if candidates else None


def choose(dataset, pipeline, *, walkups, unknown, enrol_photos=1, limits=None):
    """``(enrolled, unenrolled, skipped)``: lists of ``Member`` and a Counter of skip reasons.

    People are taken in folder order: the first ``walkups`` who qualify walk up enrolled; of
    the rest, those with a frontal photo (the first one may be it) are ``unenrolled`` (at most
    ``unknown``). Measuring stops once both lists are full.
    """
    enrolled, unenrolled, skipped = [], [], Counter()
    for person, photos in list_people(dataset):
        if len(enrolled) >= walkups and len(unenrolled) >= unknown:
            break
        member = measure(pipeline, person, photos, limits=limits)
        if len(enrolled) < walkups:
            member.frontal = frontal_photo(member, skip_first=True)
            if member.enrol_embedding is None:
                skipped["no face in the first (enrolment) photo"] += 1
            elif member.frontal is None:
                skipped[f"no photo but the first frontal within {FRONTAL_DEG:g} deg yaw, "
                        f"{FRONTAL_PITCH_DEG:g} deg pitch, and clear"] += 1
            else:
                member.enrol_embeddings = enrolment_embeddings(member, enrol_photos)
                enrolled.append(member)
                continue
        if len(unenrolled) < unknown:
            member.frontal = frontal_photo(member, skip_first=False)
            if member.frontal is not None:
                unenrolled.append(member)
    return enrolled, unenrolled, skipped
