"""The face engine: one camera image in, one ``FaceFrame`` out, at the cost the flow asks for.

Modes:
- ``detect``: the detector only, on the face nearest the centre: cheap, for an idle kiosk
  waiting for someone to walk up (with the default cascade detector, its far-range stage only
  on one such frame in ``FAR_LOOK_EVERY``);
- ``identify`` (and ``enrol``): detector, face mesh, alignment and embedding of that face, the quality gate
  with its guidance, a 1:N search when the frame is good, and (when configured) the passive
  anti-spoofing score.

The embedding is computed even for a frame that fails the gate: the tracker needs it to tell
whether the face is still the same one (``kiosk.flows.tracking``).
"""

import logging

from kiosk.models import quality
from kiosk.models.detector import nearest_centre
from kiosk.models.face_frame import FaceFrame

log = logging.getLogger(__name__)

MODES = ("detect", "identify", "enrol")  # enrol analyses like identify (the flow keeps the vectors)
# idle: the detector's far-range stage runs on one detect-mode frame in this many (the near one on
# every frame): at the default 5 detect frames a second a person far away is seen within 0.4 s
FAR_LOOK_EVERY = 2


class FaceEngine:
    """A face pipeline, a gallery and the quality limits; ``analyse(image, timestamp_s, mode=...)``."""

    def __init__(self, pipeline, gallery, *, limits=quality.QualityLimits(), passive=None, top_k=2):
        self.pipeline = pipeline
        self.gallery = gallery
        self.limits = limits
        self.passive = passive
        self.top_k = int(top_k)
        self._detects = 0  # detect-mode frames analysed, to space out the far-range looks

    @classmethod
    def from_settings(cls, face_settings, *, pipeline, gallery, passive=None):
        return cls(pipeline, gallery, limits=quality.QualityLimits.from_settings(face_settings), passive=passive)

    def analyse(self, image, timestamp_s, *, mode="identify"):
        """What one RGB uint8 image shows, as a ``FaceFrame``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        height, width = image.shape[:2]
        size = (width, height)
        near_only = False
        if mode == "detect":
            near_only = self._detects % FAR_LOOK_EVERY != 0  # the first, then one in FAR_LOOK_EVERY
            self._detects += 1
        detections = self.pipeline.detect(image, near_only=near_only)
        chosen = nearest_centre(detections, width, height)
        if chosen is None:
            return FaceFrame(timestamp_s, guidance=quality.NO_FACE, failures=(quality.NO_FACE,), image_size=size)
        if mode == "detect":
            return FaceFrame(timestamp_s, box=tuple(float(v) for v in chosen.box), image_size=size)
        face = self.pipeline.analyse(image, chosen, embed=True)
        report = quality.assess(image, detections, face.landmarks, limits=self.limits, chosen=chosen)
        matches = ()
        if report.ok and self.gallery is not None and len(self.gallery):
            matches = tuple(self.gallery.search(face.embedding, k=self.top_k))
        attack_score = None
        if self.passive is not None and report.ok:
            attack_score = self.passive.score(image, chosen)
        return FaceFrame(timestamp_s, box=tuple(float(v) for v in chosen.box), embedding=face.embedding,
                         landmarks=face.landmarks, guidance=report.guidance, failures=report.failures,
                         matches=matches, attack_score=attack_score, image_size=size)
