"""What the face engine reports about one camera frame; the attendance and enrolment flows read it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceFrame:
    """The chosen face of one frame (or none) and its analysis."""

    timestamp_s: float
    box: tuple = None              # (x0, y0, x1, y1) of the face nearest the centre, None = no face
    embedding: object = None       # unit vector of that face, None when not computed
    landmarks: object = None       # kiosk.models.landmarks.FaceLandmarks, None if not found
    guidance: str = None           # the quality gate's first failure; None = a good frame
    failures: tuple = ()           # every quality failure, most important first
    matches: tuple = ()            # gallery top-k (Match) for the face; empty when not searched
    attack_score: float = None     # passive anti-spoofing score, when that check runs
    image_size: tuple = None       # (width, height) of the analysed image
