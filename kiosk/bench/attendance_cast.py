"""Who plays in `kiosk bench attendance`: people chosen from a photo folder by measured head pose.

Every photo of a person goes through the kiosk's own face pipeline (detector, the face mesh
``kiosk.models.landmarks.FaceLandmarker`` for the head pose, and the embedder). A person can
walk up in the benchmark when they have:

- a first photo with a face (their enrolment photo: its embedding goes into the gallery, with
  those of their next photos, up to ``face.enrol_captures`` in all, as the kiosk's enrolment
  takes several captures; never the photos they walk up or turn with);
- another photo that is frontal (|yaw| < 8 degrees): the face they walk up with;
- a photo turned at least 20 degrees either way: the head turn the liveness challenge asks for.
  The other direction is that photo mirrored by the simulator (a real 3D head, mirror image).

A person who is not used as a walk-up (not enough people yet, or because they lack one of
the above) is skipped with the reason counted. Unenrolled people need a frontal photo (any,
the first included) and a turned one: they must be able to perform the challenge too.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FRONTAL_DEG = 8.0
TURNED_DEG = 20.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class Member:
    """One person of the cast: their photos by role, and the yaw measured on each."""

    person: str
    photos: list                       # every photo path, sorted
    yaws: list                         # yaw in degrees per photo (None: no face found)
    enrol_embedding: object = None     # embedding of the first photo (None: no face)
    embeddings: list = field(default_factory=list)  # embedding per photo (None: no face)
    enrol_embeddings: list = field(default_factory=list)  # what goes into the gallery
    frontal: Path = None               # the photo they walk up with
    turns: dict = field(default_factory=dict)  # "turn_left"/"turn_right" -> photo path
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


def measure(pipeline, person, photos):
    """A ``Member`` with every photo's yaw (face mesh) and embedding."""
    yaws, embeddings = [], []
    for path in photos:
        faces = pipeline.process(_read_rgb(path), embed=True)
        face = faces[0] if faces else None
        yaws.append(None if face is None or face.landmarks is None else float(face.landmarks.yaw_deg))
        embeddings.append(None if face is None else face.embedding)
    return Member(person, list(photos), yaws, enrol_embedding=embeddings[0] if embeddings else None,
                  embeddings=embeddings)


def enrolment_embeddings(member, count):
    """The first photo's embedding and the next photos' (not walked up or turned with), ``count`` in all."""
    kept = {member.frontal, *member.turns.values()}
    chosen = [member.enrol_embedding]
    for path, embedding in zip(member.photos[1:], member.embeddings[1:]):
        if len(chosen) >= count:
            break
        if embedding is not None and path not in kept:
            chosen.append(embedding)
    return chosen


def turned_photos(member):
    """The most turned photo each way among those at least TURNED_DEG (yaw > 0: the person's left)."""
    turns = {}
    for kind, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
        turned = [(sign * yaw, path) for path, yaw in zip(member.photos, member.yaws)
                  if yaw is not None and sign * yaw >= TURNED_DEG]
        if turned:
            turns[kind] = max(turned)[1]
    return turns


def frontal_photo(member, *, skip_first):
    for position, (path, yaw) in enumerate(zip(member.photos, member.yaws)):
        if skip_first and position == 0:
            continue
        if yaw is not None and abs(yaw) < FRONTAL_DEG:
            return path
    return None


def choose(dataset, pipeline, *, walkups, unknown, enrol_photos=1):
    """``(enrolled, unenrolled, skipped)``: lists of ``Member`` and a Counter of skip reasons.

    People are taken in folder order: the first ``walkups`` who qualify walk up enrolled; of
    the rest, those with a frontal photo (the first one may be it) and a turned one are
    ``unenrolled`` (at most ``unknown``). Measuring stops once both lists are full.
    """
    enrolled, unenrolled, skipped = [], [], Counter()
    for person, photos in list_people(dataset):
        if len(enrolled) >= walkups and len(unenrolled) >= unknown:
            break
        member = measure(pipeline, person, photos)
        member.turns = turned_photos(member)
        if len(enrolled) < walkups:
            member.frontal = frontal_photo(member, skip_first=True)
            if member.enrol_embedding is None:
                skipped["no face in the first (enrolment) photo"] += 1
            elif member.frontal is None:
                skipped[f"no photo but the first frontal within {FRONTAL_DEG:g} deg"] += 1
            elif not member.turns:
                skipped[f"no photo turned {TURNED_DEG:g} deg or more"] += 1
            else:
                member.enrol_embeddings = enrolment_embeddings(member, enrol_photos)
                enrolled.append(member)
                continue
        if len(unenrolled) < unknown:
            member.frontal = frontal_photo(member, skip_first=False)
            if member.frontal is not None and member.turns:
                unenrolled.append(member)
    return enrolled, unenrolled, skipped
