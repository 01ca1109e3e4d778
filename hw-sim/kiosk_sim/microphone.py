"""Simulated microphone: plays voice scenarios built from the shared voices dataset.

A source for ``kiosk.drivers.microphone.Microphone`` (``open``/``read``/``close``). Between
scenarios it delivers quiet room noise, like a live microphone; ``play(spec)`` starts a
scenario at the next read, cutting short the one playing (queued ones play after it). Specs (SPEAKER is a folder of ``voices/``, TAKE picks
which of the speaker's recordings are read, so different takes are different phrases; DIGITS,
such as ``4719``, appends the speaker reading those digits after the phrase, see below):

- ``reading:SPEAKER[:TAKE]``: 0.4 s of room, about 3.5 s of the speaker's recordings, 0.6 s of room;
- ``noise:SPEAKER[:TAKE]``: the same reading under loud white noise (about 0 dB SNR) lasting 2.5 s past it;
- ``clipping:SPEAKER[:TAKE]``: the same reading 12 times too loud, clipped at full scale;
- ``early:SPEAKER[:TAKE]``: the reading already under way when the recording starts;
- ``replay:SPEAKER[:TAKE]``: the reading played back through a small loudspeaker (300-3400 Hz band);
- ``playback:SPEAKER[:TAKE]``: the reading recorded earlier and played back through a good
  loudspeaker (full band, a little quieter, one 15 ms room echo): the voice matches, so only the
  digit check can tell it from the person;
- ``silence``: room noise only.

With DIGITS (``reading:allison:3:4719``, ``replay:allison:3:1234``) the person reads about 2 s
of phrase, pauses 0.3 s, then reads the digits: Allison Smith's digit recordings from Debian's
``asterisk-core-sounds-en-g722`` (CC-BY-SA-3.0, the same voice talent as ``voices/allison``;
G.722 is 16 kHz wideband, decoded by PyPI ``G722``), so only ``allison`` can read digits. The
whole reading lasts about 5.3 s: give it a recording window of 6.5 s (``voice.record_s``).

``speed`` 0 delivers audio as fast as it is read; 1 paces it in real time. ``unplug()`` makes
every read fail until ``replug()``; ``dead()`` makes it deliver exact zeros.
"""

import logging
import threading
import time
from pathlib import Path

import numpy as np

from kiosk_sim.datasets import datasets_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ROOM_DBFS = -65.0
READ_S = 3.5
KINDS = ("reading", "noise", "clipping", "early", "replay", "playback", "silence")
# Debian asterisk-core-sounds-en-g722 (scripts/install-system-deps.sh): sim and test data only
DIGITS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
DIGIT_SPEAKER = "allison"
PHRASE_BEFORE_DIGITS_S = 2.0


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


def spoken_digit(digit, *, digits_dir=None):
    """Allison reading one digit (0-9), 16 kHz float32, silence trimmed."""
    import G722  # simulator only: decodes the Debian package's wideband recordings

    path = Path(digits_dir or DIGITS_DIR) / f"{int(digit)}.g722"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: install Debian asterisk-core-sounds-en-g722 "
                                "(scripts/install-system-deps.sh) for digit readings")
    pcm = np.asarray(G722.G722(SAMPLE_RATE, 64000).decode(path.read_bytes()), dtype=np.float32) / 32768.0
    return _trim(pcm)


def reading_with_digits(speaker, take, digits, *, root=None, digits_dir=None):
    """About 2 s of ``speaker``'s phrase, a pause, then ``digits`` ('4719') read one by one."""
    if speaker != DIGIT_SPEAKER:
        raise ValueError(f"only {DIGIT_SPEAKER!r} has digit recordings (asked for {speaker!r})")
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"DIGITS must be 0-9 only, got {digits!r}")
    gap = np.zeros(int(0.1 * SAMPLE_RATE), np.float32)
    pieces = [reading(speaker, take, root=root, length_s=PHRASE_BEFORE_DIGITS_S),
              np.zeros(int(0.3 * SAMPLE_RATE), np.float32)]
    for i, digit in enumerate(digits):
        pieces += ([gap] if i else []) + [spoken_digit(digit, digits_dir=digits_dir)]
    return np.concatenate(pieces)


def _band(samples, low_hz=300.0, high_hz=3400.0):
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1.0 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    return np.fft.irfft(spectrum, n=samples.size).astype(np.float32)


def build(spec, *, root=None, seed=0, digits_dir=None):
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
        raise ValueError(f"scenario {spec!r} needs a speaker: {kind}:SPEAKER[:TAKE[:DIGITS]]")
    take = int(parts[2]) if len(parts) > 2 else 0
    if len(parts) > 3:
        speech = reading_with_digits(parts[1], take, parts[3], root=root, digits_dir=digits_dir)
    else:
        speech = reading(parts[1], take, root=root)
    lead = 0 if kind == "early" else int(0.4 * SAMPLE_RATE)
    # loud noise goes on after the reading (it is the room's), so it fills any recording window
    tail = int((2.5 if kind == "noise" else 0.6) * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    if kind == "replay":
        audio = _band(audio)
    if kind == "playback":
        echo = int(0.015 * SAMPLE_RATE)
        audio = 0.7 * audio + 0.2 * np.concatenate([np.zeros(echo, np.float32), audio[:-echo]])
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

    def __init__(self, *, speed=0.0, seed=0, root=None, digits_dir=None):
        self.speed = float(speed)
        self.root = root
        self.digits_dir = digits_dir
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
        audio = build(spec, root=self.root, seed=self._seed + len(self.played), digits_dir=self.digits_dir)
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
