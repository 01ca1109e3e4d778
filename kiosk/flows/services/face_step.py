"""The face step: inside the on-screen guide, good light, the tracked face's liveness, sealed at once.

Frames go through ``kiosk.flows.face_attempt.FaceAttempt`` (the attendance flows' tracker and
liveness): its quality guidance is shown as it comes; a frame counts as the capture only once
liveness has passed (or is off), the frame passed the quality gate, and it is of the face that
performed the challenge. The capture's embedding is sealed to the server's key at that moment
(``ports.seal``); the flow keeps the sealed box only. An attempt refused (liveness failed, never
in position) is counted; after ``FACE_ATTEMPTS`` the assisted path takes over.
"""

import logging

import numpy as np

from kiosk.flows.face_attempt import FaceAttempt

log = logging.getLogger(__name__)

FACE_ATTEMPTS = 3
MAX_EMBEDDING_DIMS = 4096
CAPTURED = ("checking", "accepted")  # liveness passed and the frame is good (no gallery is asked here)


def embedding_bytes(embedding):
    """A finite embedding as little-endian float32 bytes, or None."""
    try:
        vector = np.asarray(embedding, dtype="<f4").ravel()
    except (TypeError, ValueError):
        return None
    if not 0 < vector.size <= MAX_EMBEDDING_DIMS or not np.all(np.isfinite(vector)):
        return None
    return vector.tobytes()


class FaceStep:
    """Callbacks of ``capturing_face`` (events ``face_seen(frame=...)``, ``capture_impossible``)."""

    def on_enter_capturing_face(self):
        self.face_failures = 0
        self.sealed.pop("face", None)
        self.face_attempt = FaceAttempt(self.settings.face, rng=self.rng)
        self.ports.start_capture("face", mode="enrol")  # analysed like identify: embedding, landmarks, quality
        self._show_face(guidance=None, challenge=None)

    def on_exit_capturing_face(self):
        self.ports.stop_capture("face")
        if self.face_attempt is not None:
            self.face_attempt.reset()

    def _show_face(self, *, guidance, challenge):
        self.show("service_face", guidance=guidance, challenge=challenge, attempt=self.face_failures + 1,
                  attempts=FACE_ATTEMPTS)

    def consider_face(self, frame=None):
        """One analysed camera frame: guidance, a refused attempt, or the capture."""
        if frame is None or not hasattr(frame, "box"):
            return
        outcome = self.face_attempt.update(frame)
        if outcome.kind != "no_face":
            self.extend_deadline()  # someone is in front of the camera
        if outcome.kind == "refused":
            self.face_failures += 1
            log.info("%s: face attempt %d refused (%s)", self.service, self.face_failures, outcome.reason)
            if self.face_failures >= FACE_ATTEMPTS:
                self.send("face_failed", reason="failed_repeatedly")
                return
            self.ports.signal("warn")
            self.face_attempt.reset()
            self._show_face(guidance="try_again", challenge=None)
            return
        if outcome.kind in CAPTURED and self._performed(frame):
            data = embedding_bytes(frame.embedding)
            if data is not None:
                self.sealed["face"] = self.ports.seal(data, context=self.context("face"))
                self.quality["face"] = {"attempts": self.face_failures + 1}
                self.send("face_captured")
                return
        self._show_face(guidance=outcome.guidance, challenge=outcome.challenge)

    def _performed(self, frame):
        if frame.embedding is None:
            return False
        return self.face_attempt.mode == "off" or self.face_attempt.performed_by(frame.embedding)

    def face_exception(self, reason="cannot_capture"):
        self.assist_kind = "face"
        self.exceptions.append({"kind": "face", "finger": None, "reason": reason})
