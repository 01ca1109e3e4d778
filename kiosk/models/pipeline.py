"""The face pipeline: detect -> landmarks -> align -> embed, with per-stage timings.

Build one ``FacePipeline`` per worker thread and reuse it for every frame; it holds one
interpreter per model. Frames are RGB uint8 ``(H, W, 3)``.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from kiosk.errors import ModelError
from kiosk.models import align as alignment
from kiosk.models.detector import make_detector, nearest_centre
from kiosk.models.embedder import load_embedder
from kiosk.models.landmarks import FaceLandmarker

log = logging.getLogger(__name__)

ALIGN_SOURCES = ("mesh", "detector")
# BlazeFace runs on one thread whatever ``threads`` says: a second thread made it slower here
# (short 2.0 -> 2.5 ms, full 5.3 -> 6.7 ms of CPU per frame), and an idle kiosk runs it all day,
# where XNNPACK's waiting worker thread cost about 2% of a core (``kiosk bench idle``)
DETECTOR_THREADS = 1


@dataclass
class Face:
    """One face: detection, landmarks, alignment points, embedding and how long each stage took."""

    box: tuple
    keypoints: np.ndarray          # BlazeFace's 6 keypoints (6, 2), image pixels
    score: float
    points: np.ndarray             # the points used for alignment (5 or 4, 2)
    embedding: np.ndarray = None   # unit-length float32, None when not embedded
    landmarks: object = None       # landmarks.FaceLandmarks (mesh, pose, eyes), None if not run/found
    crop: np.ndarray = None        # the aligned 112x112 crop
    timings_ms: dict = field(default_factory=dict)


class FacePipeline:
    """Detector, face mesh and embedder, each loaded once (``threads``: the mesh's and the embedder's).

    ``align_source="mesh"`` aligns on 5 points from the face mesh (measured more accurate;
    when the mesh model sees no face in the box it falls back to the detector's points);
    ``"detector"`` uses BlazeFace's 4 points and skips the mesh (faster).
    """

    def __init__(self, *, detector="blazeface_short", embedder="sface-int8-v2", threads=1,
                 runtime=None, align_source="mesh", min_score=None, detector_threads=DETECTOR_THREADS):
        if align_source not in ALIGN_SOURCES:
            raise ModelError(f"align_source must be one of {ALIGN_SOURCES}, got {align_source!r}")
        self.align_source = align_source
        self.detector = make_detector(detector, threads=detector_threads, runtime=runtime, min_score=min_score)
        self.landmarker = FaceLandmarker(threads=threads, runtime=runtime) if align_source == "mesh" else None
        self.embedder = load_embedder(embedder, threads=threads, runtime=runtime)
        self.threads = threads

    @classmethod
    def from_settings(cls, face_settings, **overrides):
        """A pipeline configured from the ``face`` section of the settings."""
        options = {"detector": face_settings.detector, "embedder": face_settings.embedder,
                   "threads": face_settings.threads}
        options.update(overrides)
        return cls(**options)

    @property
    def model_id(self):
        """The embedder's model id (what stored templates are tagged with)."""
        return self.embedder.model_id

    def detect(self, image, *, near_only=False):
        """All detections in a frame, best score first; ``near_only``: the detector's cheap first stage alone."""
        return self.detector.detect_near(image) if near_only else self.detector.detect(image)

    def analyse(self, image, detection, *, embed=True):
        """Landmarks, alignment and (optionally) the embedding of one detection."""
        timings = {}
        start = time.perf_counter()
        landmarks = None
        if self.landmarker is not None:
            landmarks = self.landmarker.landmarks(image, detection)
        if landmarks is not None:
            points = alignment.points_from_mesh(landmarks.points)
        else:
            points = alignment.points_from_detection(detection.keypoints)
        crop = alignment.align(image, points)
        timings["landmarks"] = (time.perf_counter() - start) * 1000.0
        embedding = None
        if embed:
            start = time.perf_counter()
            embedding = self.embedder.embed(crop)
            timings["embed"] = (time.perf_counter() - start) * 1000.0
        return Face(box=detection.box, keypoints=detection.keypoints, score=detection.score,
                    points=points, embedding=embedding, landmarks=landmarks, crop=crop,
                    timings_ms=timings)

    def process(self, image, *, all_faces=False, embed=True):
        """Faces in a frame: only the one nearest the centre (the default) or all of them.

        Returns a list (empty when no face was found). Each face's ``timings_ms`` holds
        ``detect`` (the whole frame), ``landmarks`` (mesh + alignment), ``embed`` and ``total``.
        """
        start = time.perf_counter()
        detections = self.detector.detect(image)
        detect_ms = (time.perf_counter() - start) * 1000.0
        if not all_faces:
            centre = nearest_centre(detections, image.shape[1], image.shape[0])
            detections = [] if centre is None else [centre]
        faces = []
        for detection in detections:
            face = self.analyse(image, detection, embed=embed)
            face.timings_ms["detect"] = detect_ms
            face.timings_ms["total"] = sum(face.timings_ms.values())
            faces.append(face)
        return faces
