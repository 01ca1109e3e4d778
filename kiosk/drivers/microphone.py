"""Microphone driver: 16 kHz mono float audio from ALSA (through sounddevice) or the scenario player.

One interface whatever the backend::

    with microphone.from_settings("sounddevice", settings.voice) as mic:
        samples = mic.record(4.0, on_level=meter)   # float32 in -1..1; meter(dbfs) per block
        mic.level_dbfs                              # the last block's level, for the screen

Recording runs on the caller's thread (the flows' capture worker), block by block, and counts
audio time, not wall time, so the simulator can play faster than real time. A source that
raises while reading, or delivers only exact zeros for ``dead_s`` of audio (an unplugged USB
microphone on some systems), is *lost*: ``is_healthy`` turns False, ``error`` says why,
``when_lost(reason)`` is called once, ``record`` raises ``MicrophoneError``, and the next
``record`` reopens the device (``when_recovered()`` once audio flows again).

Backends are picked by name and never silently: ``sounddevice`` (PortAudio over ALSA; Debian
``libportaudio2``; imported only inside its source) and ``player`` (the simulator's scenario
player, handed in by ``kiosk.app``).
"""

import logging
import math

import numpy as np

from kiosk.errors import MicrophoneError

log = logging.getLogger(__name__)

BACKENDS = ("sounddevice", "player")
SAMPLE_RATE = 16000


class SoundDeviceSource:
    """ALSA capture through PortAudio (PyPI ``sounddevice``), 16 kHz mono float32."""

    def __init__(self, *, device=None):
        self.device = device or None
        self.name = f"sounddevice:{self.device or 'default'}"
        self._stream = None

    def open(self):
        import sounddevice  # only here: the firmware imports without PortAudio

        self._stream = sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                               device=self.device)
        self._stream.start()

    def read(self, frames):
        data, overflowed = self._stream.read(frames)
        if overflowed:
            log.debug("microphone input overflow (audio dropped)")
        return np.asarray(data, dtype=np.float32)[:, 0].copy()

    def close(self):
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()


def level_dbfs(block):
    """RMS level of a block in dB relative to full scale; -100 for digital silence."""
    block = np.asarray(block, dtype=np.float64)
    power = float(np.mean(block ** 2)) if block.size else 0.0
    return 10.0 * math.log10(max(power, 1e-10))


class Microphone:
    """One capture device behind a source with ``open()``, ``read(frames)`` and ``close()``."""

    def __init__(self, source, *, block_s=0.02, dead_s=2.0, max_record_s=30.0):
        self.source = source
        self.block = max(1, int(round(block_s * SAMPLE_RATE)))
        self.dead_s = dead_s
        self.max_record_s = max_record_s
        self.level_dbfs = -100.0
        self.when_lost = None
        self.when_recovered = None
        self.losses = 0
        self._open = False
        self._lost_reason = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def is_healthy(self):
        """False from a loss until audio flows again."""
        return self._lost_reason is None

    @property
    def error(self):
        """Why the microphone was lost, or None."""
        return self._lost_reason

    def start(self):
        """Open the device; raises MicrophoneError (and counts a loss) when it cannot."""
        if self._open:
            return
        try:
            self.source.open()
        except Exception as e:  # a backend library raising its own error type
            self._lose(f"cannot open {self.source.name}: {e}")
            raise MicrophoneError(self._lost_reason) from e
        self._open = True

    def stop(self):
        """Close the device; idempotent."""
        if self._open:
            self._open = False
            try:
                self.source.close()
            except Exception:
                log.exception("closing microphone %s", self.source.name)

    def record(self, duration_s, *, on_level=None):
        """``duration_s`` of audio as float32 samples; ``on_level(dbfs)`` after each block."""
        if not (math.isfinite(duration_s) and 0 < duration_s <= self.max_record_s):
            raise ValueError(f"recording length must be in (0, {self.max_record_s}] s, got {duration_s}")
        self.start()
        wanted = int(round(duration_s * SAMPLE_RATE))
        blocks, got, zeros = [], 0, 0
        while got < wanted:
            try:
                block = np.asarray(self.source.read(min(self.block, wanted - got)), dtype=np.float32).reshape(-1)
            except Exception as e:
                self.stop()
                self._lose(f"{self.source.name} stopped delivering audio: {e}")
                raise MicrophoneError(self._lost_reason) from e
            if block.size == 0:
                continue
            zeros = zeros + block.size if not block.any() else 0
            if zeros >= self.dead_s * SAMPLE_RATE:
                self.stop()
                self._lose(f"{self.source.name} delivers only digital silence")
                raise MicrophoneError(self._lost_reason)
            blocks.append(block)
            got += block.size
            self.level_dbfs = level_dbfs(block)
            if on_level is not None:
                on_level(self.level_dbfs)
        if self._lost_reason is not None:
            log.info("microphone recovered after: %s", self._lost_reason)
            self._lost_reason = None
            self._call(self.when_recovered)
        return np.concatenate(blocks)[:wanted]

    def _lose(self, reason):
        first = self._lost_reason is None
        self._lost_reason = reason
        if first:
            self.losses += 1
            log.warning("microphone lost: %s", reason)
            self._call(self.when_lost, reason)

    def _call(self, callback, *args):
        if callback is not None:
            try:
                callback(*args)
            except Exception:
                log.exception("microphone callback failed")


def from_settings(backend, voice_settings, *, player=None):
    """A Microphone for ``backend`` ('sounddevice' or 'player') from the ``voice`` settings."""
    if backend == "sounddevice":
        source = SoundDeviceSource(device=voice_settings.microphone_device)
    elif backend == "player":
        if player is None:
            raise MicrophoneError("the player backend needs the simulator's microphone player")
        source = player
    else:
        raise MicrophoneError(f"unknown microphone backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return Microphone(source, dead_s=voice_settings.dead_s)
