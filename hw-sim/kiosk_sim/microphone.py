"""Simulated microphone: plays voice scenarios built from the shared voices dataset.

A source for ``kiosk.drivers.microphone.Microphone`` (``open``/``read``/``close``). Between
scenarios it delivers quiet room noise, like a live microphone; ``play(spec)`` starts a
scenario at the next read, cutting short the one playing (queued ones play after it). Specs (SPEAKER is a folder of ``voices/``, TAKE picks
which of the speaker's recordings are read, so different takes are different phrases):

- ``reading:SPEAKER[:TAKE]``: 0.4 s of room, about 3.5 s of the speaker's recordings, 0.6 s of room;
- ``noise:SPEAKER[:TAKE]``: the same reading under loud white noise (about 0 dB SNR) lasting 2.5 s past it;
- ``clipping:SPEAKER[:TAKE]``: the same reading 12 times too loud, clipped at full scale;
- ``early:SPEAKER[:TAKE]``: the reading already under way when the recording starts;
- ``replay:SPEAKER[:TAKE]``: the reading played back through a loudspeaker (300-3400 Hz band);
- ``silence``: room noise only.

``speed`` 0 delivers audio as fast as it is read; 1 paces it in real time. ``unplug()`` makes
every read fail until ``replug()``; ``dead()`` makes it deliver exact zeros.
"""

import logging
import threading
import time

import numpy as np

from kiosk_sim.datasets import datasets_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ROOM_DBFS = -65.0
READ_S = 3.5
KINDS = ("reading", "noise", "clipping", "early", "replay", "silence")


def _read_flac(path):
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: expected 16 kHz, got {rate}")
    return samples[:, 0]


def _trim(samples, *, level=0.01):
    loud = np.flatnonzero(np.abs(samples) > level)
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples[:0]


def speakers(root=None):
    """Speaker folder names in the voices dataset."""
    root = (root or datasets_dir()) / "voices"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def reading(speaker, take=0, *, root=None, length_s=READ_S):
    """About ``length_s`` of ``speaker`` reading: take ``take`` of their recordings, joined."""
    folder = (root or datasets_dir()) / "voices" / speaker
    files = sorted(folder.glob("*.flac"))
    if not files:
        raise FileNotFoundError(f"no recordings for speaker {speaker!r} in {folder}")
    pieces, total, i = [], 0, 0
    start = (take * 3) % len(files)
    while total < length_s * SAMPLE_RATE and i < len(files):
        piece = _trim(_read_flac(files[(start + i) % len(files)]))
        pieces.append(piece)
        pieces.append(np.zeros(int(0.15 * SAMPLE_RATE), np.float32))
        total += piece.size
        i += 1
    return np.concatenate(pieces)[:int(length_s * SAMPLE_RATE)]


def _band(samples, low_hz=300.0, high_hz=3400.0):
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1.0 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    return np.fft.irfft(spectrum, n=samples.size).astype(np.float32)


def build(spec, *, root=None, seed=0):
    """The audio of one scenario spec (see the module docstring) as float32 samples."""
    parts = spec.split(":")
    kind = parts[0]
    if kind not in KINDS:
        raise ValueError(f"unknown microphone scenario {spec!r}; kinds: {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    room = 10 ** (ROOM_DBFS / 20)
    if kind == "silence":
        return (rng.normal(0, room, int(4.5 * SAMPLE_RATE))).astype(np.float32)
    if len(parts) < 2:
        raise ValueError(f"scenario {spec!r} needs a speaker: {kind}:SPEAKER[:TAKE]")
    speech = reading(parts[1], int(parts[2]) if len(parts) > 2 else 0, root=root)
    lead = 0 if kind == "early" else int(0.4 * SAMPLE_RATE)
    # loud noise goes on after the reading (it is the room's), so it fills any recording window
    tail = int((2.5 if kind == "noise" else 0.6) * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    if kind == "replay":
        audio = _band(audio)
    audio = audio + rng.normal(0, room, audio.size).astype(np.float32)
    if kind == "noise":
        speech_rms = float(np.sqrt(np.mean(speech ** 2)))
        audio = audio + rng.normal(0, speech_rms, audio.size).astype(np.float32)
    if kind == "clipping":
        audio = audio * 12.0
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


class ScenarioMicrophone:
    """The simulated capture device; thread-safe ``play``/``unplug`` from a test or control panel."""

    name = "player:microphone"

    def __init__(self, *, speed=0.0, seed=0, root=None):
        self.speed = float(speed)
        self.root = root
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._lock = threading.Lock()
        self._queue = []
        self._current = np.zeros(0, np.float32)
        self._position = 0
        self._unplugged = False
        self._dead = False
        self.is_open = False
        self.played = []

    def play(self, spec):
        """Start a scenario at the next read, cutting short the one playing."""
        audio = build(spec, root=self.root, seed=self._seed + len(self.played))
        with self._lock:
            self._current, self._position = np.zeros(0, np.float32), 0
            self._queue.append(audio)
            self.played.append(spec)

    def unplug(self):
        with self._lock:
            self._unplugged = True

    def replug(self):
        with self._lock:
            self._unplugged = False
            self._dead = False

    def dead(self):
        """Deliver exact zeros from now on (a USB microphone that vanished under some drivers)."""
        with self._lock:
            self._dead = True

    def open(self):
        with self._lock:
            if self._unplugged:
                raise OSError("no such audio device (unplugged)")
            self.is_open = True

    def close(self):
        self.is_open = False

    def read(self, frames):
        with self._lock:
            if self._unplugged or not self.is_open:
                raise OSError("audio device unplugged")
            if self._dead:
                out = np.zeros(frames, np.float32)
            else:
                out = self._take(frames)
        if self.speed > 0:
            time.sleep(frames / SAMPLE_RATE / self.speed)
        return out

    def _take(self, frames):
        if self._position >= self._current.size:
            if self._queue:
                self._current, self._position = self._queue.pop(0), 0
            else:
                room = 10 ** (ROOM_DBFS / 20)
                return self._rng.normal(0, room, frames).astype(np.float32)
        out = self._current[self._position:self._position + frames]
        self._position += out.size
        return out
