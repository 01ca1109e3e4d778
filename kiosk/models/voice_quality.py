"""Capture quality gate for a voice recording: is it usable, and if not, what should the person do.

One recording window (16 kHz mono floats) in, a ``VoiceQuality`` out with the speech trimmed
out of it and, when it is not usable, one guidance code for the screen, checked in this order:

- ``clipped``: too many samples at full scale (speak softer or further from the microphone);
- ``too_noisy``: speech power over the noise floor (the quietest tenth of 30 ms frames) below
  ``min_snr_db`` (find a quieter place);
- ``too_quiet``: speech found but its level below ``min_level_dbfs`` (speak louder, closer);
- ``too_little_speech``: less than ``min_speech_s`` of speech, none at all included (read the
  whole phrase aloud);
- ``outside_window``: speech in the first or last ``edge_s`` of the window (started before
  the recording began, or was still speaking when it ended: press record, then speak).

The limits are set from general recording practice (a quiet room gives 25-40 dB SNR, speech
sits around -30..-10 dBFS), not fitted to any data set.
"""

import dataclasses
import logging
import math

import numpy as np

from kiosk.models.vad import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

GUIDANCE = ("clipped", "too_noisy", "too_quiet", "too_little_speech", "outside_window")
_POWER_FLOOR = 1e-10  # -100 dBFS: digital silence


@dataclasses.dataclass(frozen=True)
class VoiceLimits:
    """The gate's thresholds; ``from_settings`` copies them from the ``voice`` settings section."""

    min_snr_db: float = 15.0
    min_level_dbfs: float = -40.0
    max_clipped_fraction: float = 0.002
    clip_level: float = 0.98
    min_speech_s: float = 1.5
    edge_s: float = 0.15

    @classmethod
    def from_settings(cls, voice_settings):
        """Limits taken from a ``VoiceSettings`` section."""
        return cls(min_snr_db=voice_settings.min_snr_db, min_level_dbfs=voice_settings.min_level_dbfs,
                   max_clipped_fraction=voice_settings.max_clipped_fraction,
                   min_speech_s=voice_settings.min_speech_s, edge_s=voice_settings.edge_s)


@dataclasses.dataclass(frozen=True)
class VoiceQuality:
    """What the gate measured; ``guidance`` is None when the recording is usable."""

    guidance: str | None
    speech_s: float
    snr_db: float
    level_dbfs: float
    clipped_fraction: float
    speech: np.ndarray = dataclasses.field(repr=False, compare=False)

    @property
    def ok(self):
        return self.guidance is None


def _db(power):
    return 10.0 * math.log10(max(float(power), _POWER_FLOOR))


def level_dbfs(samples):
    """RMS level of ``samples`` in dB relative to full scale (the screen's level meter)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        return _db(0.0)
    return _db(np.mean(samples.astype(np.float64) ** 2))


def assess(samples, vad, *, limits=VoiceLimits(), pad_s=0.1):
    """Check one recording window with ``vad`` (a ``kiosk.models.vad.Vad``); returns ``VoiceQuality``."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    flags = vad.speech_frames(samples)
    count = flags.size
    frames = samples[:count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES).astype(np.float64) if count else None
    power = (frames ** 2).mean(axis=1) if count else np.zeros(0)
    clipped = float((np.abs(samples) >= limits.clip_level).mean()) if samples.size else 0.0
    speech_s = float(flags.sum()) * FRAME_SAMPLES / SAMPLE_RATE
    if flags.any():
        speech_power = power[flags].mean()
        quietest = np.sort(power)[:max(1, count // 10)]
        snr = _db(speech_power) - _db(quietest.mean())
        level = _db(speech_power)
    else:
        snr, level = 0.0, level_dbfs(samples)
    edge = max(1, int(round(limits.edge_s * SAMPLE_RATE / FRAME_SAMPLES)))
    outside = bool(count > 2 * edge and (flags[:edge].any() or flags[-edge:].any()))
    if clipped > limits.max_clipped_fraction:
        guidance = "clipped"
    elif flags.any() and snr < limits.min_snr_db:
        guidance = "too_noisy"
    elif flags.any() and level < limits.min_level_dbfs:
        guidance = "too_quiet"
    elif speech_s < limits.min_speech_s:
        guidance = "too_little_speech"
    elif outside:
        guidance = "outside_window"
    else:
        guidance = None
    if flags.any():
        first, last = np.flatnonzero(flags)[[0, -1]]
        pad = int(pad_s * SAMPLE_RATE)
        speech = samples[max(0, first * FRAME_SAMPLES - pad):min(samples.size, (last + 1) * FRAME_SAMPLES + pad)]
    else:
        speech = samples[:0]
    return VoiceQuality(guidance=guidance, speech_s=round(speech_s, 3), snr_db=round(snr, 1),
                        level_dbfs=round(level, 1), clipped_fraction=round(clipped, 5), speech=speech)
