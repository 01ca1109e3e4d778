"""Voice activity detection: which 30 ms frames of 16 kHz mono audio hold speech (webrtcvad).

``webrtcvad`` (PyPI ``webrtcvad-wheels``, MIT) is imported on first use only, so ``import
kiosk`` works without it. Aggressiveness 3 (the strictest) measured best in the references.
"""

import logging

import numpy as np

from kiosk.errors import ModelError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_S = 0.03
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_S)  # 480
AGGRESSIVENESS = 3


def to_int16(samples):
    """Float samples in -1..1 as int16 (clipped), the format webrtcvad reads."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


class Vad:
    """One webrtcvad instance; ``speech_frames`` marks each whole 30 ms frame as speech or not."""

    def __init__(self, *, aggressiveness=AGGRESSIVENESS):
        try:
            import webrtcvad
        except ImportError as e:
            raise ModelError("voice activity detection needs webrtcvad (pip install webrtcvad-wheels)") from e
        self._make = webrtcvad.Vad
        self.aggressiveness = int(aggressiveness)

    def speech_frames(self, samples):
        """A bool array, one per whole 30 ms frame of ``samples`` (a trailing part frame is ignored)."""
        # a fresh detector per recording: webrtcvad carries a speech hangover from call to call,
        # which would mark the start of one recording as speech because the last one ended in it
        vad = self._make(self.aggressiveness)
        pcm = to_int16(samples)
        count = pcm.size // FRAME_SAMPLES
        flags = np.zeros(count, dtype=bool)
        for i in range(count):
            frame = pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES].tobytes()
            flags[i] = vad.is_speech(frame, SAMPLE_RATE)
        return flags

    def trim(self, samples, *, pad_s=0.1):
        """``samples`` from the first to the last speech frame, ``pad_s`` kept around; empty if no speech."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        flags = self.speech_frames(samples)
        if not flags.any():
            return samples[:0]
        first, last = np.flatnonzero(flags)[[0, -1]]
        pad = int(pad_s * SAMPLE_RATE)
        start = max(0, first * FRAME_SAMPLES - pad)
        end = min(samples.size, (last + 1) * FRAME_SAMPLES + pad)
        return samples[start:end]
