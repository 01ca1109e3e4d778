"""Voice print capture for enrolment and verification: phrase, recording, quality gate, embedding.

Plain Python on the capture worker's thread; it talks to the screen only through ``show``:

- ``show("voice_phrase", phrase=KEY, digits="4 7 1 9", reading=i, readings=n, record_s=S)``:
  the phrase to read (``KEY`` names a sentence the screen has in both languages, ``PHRASES``)
  with random digits, before the recording starts (the screen's record button sends the
  person's go-ahead to the caller, which then calls ``capture``);
- ``show("voice_recording", phrase=KEY, digits=..., level_dbfs=L, elapsed_s=T, record_s=S)``:
  about ten times a second while recording, for the live level meter;
- ``show("voice_guidance", guidance=CODE, phrase=KEY, digits=..., snr_db=..., level_dbfs=...,
  speech_s=...)``: the recording was not usable; ``CODE`` is one of
  ``kiosk.models.voice_quality.GUIDANCE``.

Enrolment takes 3 readings of different phrases, each passing the quality gate; the voice
print is the normalised mean of their embeddings. Verification takes one reading and accepts
when its cosine score to the person's voice print exceeds ``voice.match_threshold`` and, when
the step has a digit check (``voice.digit_check``, ``kiosk.models.spoken_digits``), the digits
shown were read (checked only once the voice matched; not at enrolment, which an admin watches).
Neither the recordings, the embeddings nor the digits heard are logged.
"""

import logging
import random
from dataclasses import dataclass

import numpy as np

from kiosk.models.voice_quality import VoiceLimits, assess

log = logging.getLogger(__name__)

# sentence keys the screen shows in the session's language; each reading gets a different one
PHRASES = ("voice_phrase_present", "voice_phrase_today", "voice_phrase_confirm", "voice_phrase_arrived",
           "voice_phrase_clock")
DIGITS = 4
METER_EVERY_S = 0.1


@dataclass(frozen=True)
class Reading:
    """One capture: the phrase shown, the gate's verdict, and the embedding when usable."""

    phrase: str
    digits: str
    quality: object
    embedding: np.ndarray = None

    @property
    def ok(self):
        return self.embedding is not None


@dataclass(frozen=True)
class VoiceMatch:
    """A verification: accepted or not, the score, and the reading it came from."""

    accepted: bool
    score: float
    reading: Reading
    digits_spoken: bool | None = None  # None: not checked (no digit check, or the voice did not match)


class VoiceStep:
    """Captures readings from a ``Microphone`` and turns them into voice prints and decisions."""

    def __init__(self, *, microphone, vad, embedder, show, limits=VoiceLimits(), record_s=5.0,
                 match_threshold=0.5, enrol_readings=3, rng=None, digits=None):
        self.microphone = microphone
        self.vad = vad
        self.embedder = embedder
        self.show = show
        self.limits = limits
        self.record_s = record_s
        self.match_threshold = match_threshold
        self.enrol_readings = enrol_readings
        self.rng = rng or random.SystemRandom()
        self.digits = digits  # a kiosk.models.spoken_digits.SpokenDigits, or None: no digit check
        self.last_reading = None

    @classmethod
    def from_settings(cls, voice_settings, **parts):
        """A step with the limits, window and threshold of the ``voice`` settings section."""
        return cls(limits=VoiceLimits.from_settings(voice_settings), record_s=voice_settings.record_s,
                   match_threshold=voice_settings.match_threshold, **parts)

    @property
    def model_id(self):
        return self.embedder.model_id

    def prompt(self, *, exclude=(), reading=1, readings=1):
        """Pick a phrase (not in ``exclude``) and random digits, and show them; returns both."""
        phrase = self.rng.choice([p for p in PHRASES if p not in exclude] or list(PHRASES))
        digits = " ".join(str(self.rng.randrange(10)) for _ in range(DIGITS))
        self.show("voice_phrase", phrase=phrase, digits=digits, reading=reading, readings=readings,
                  record_s=self.record_s)
        return phrase, digits

    def capture(self, phrase, digits):
        """Record one window, gate it, embed the speech; shows the meter and any guidance."""
        state = {"elapsed": 0.0, "shown": -1.0}
        block_s = self.microphone.block / 16000.0

        def meter(level):
            state["elapsed"] += block_s
            if state["elapsed"] - state["shown"] >= METER_EVERY_S:
                state["shown"] = state["elapsed"]
                self.show("voice_recording", phrase=phrase, digits=digits, level_dbfs=round(level, 1),
                          elapsed_s=round(state["elapsed"], 2), record_s=self.record_s)

        samples = self.microphone.record(self.record_s, on_level=meter)
        quality = assess(samples, self.vad, limits=self.limits)
        if not quality.ok:
            log.info("voice reading not usable: %s", quality.guidance)
            self.show("voice_guidance", guidance=quality.guidance, phrase=phrase, digits=digits,
                      snr_db=quality.snr_db, level_dbfs=quality.level_dbfs, speech_s=quality.speech_s)
            self.last_reading = Reading(phrase, digits, quality)
        else:
            self.last_reading = Reading(phrase, digits, quality, self.embedder.embed(quality.speech))
        return self.last_reading

    def enrol(self, *, max_attempts=6, before_each=None):
        """A voice print from ``enrol_readings`` usable readings of different phrases, or None.

        ``before_each(phrase, digits)`` runs after each phrase is shown and before recording
        (the screen's record button; the simulator's person starts reading there).
        """
        used, vectors = [], []
        for _ in range(max_attempts):
            phrase, digits = self.prompt(exclude=used, reading=len(vectors) + 1, readings=self.enrol_readings)
            if before_each is not None:
                before_each(phrase, digits)
            reading = self.capture(phrase, digits)
            if reading.ok:
                used.append(phrase)
                vectors.append(reading.embedding)
                if len(vectors) == self.enrol_readings:
                    return voice_print(vectors)
        log.info("voice enrolment gave up after %d attempts", max_attempts)
        return None

    def verify(self, template, *, before=None):
        """One reading compared with ``template``; None when the reading was not usable."""
        phrase, digits = self.prompt()
        if before is not None:
            before(phrase, digits)
        reading = self.capture(phrase, digits)
        if not reading.ok:
            return None
        score = float(np.dot(np.asarray(template, dtype=np.float32), reading.embedding))
        if score <= self.match_threshold:
            return VoiceMatch(False, round(score, 4), reading)
        if self.digits is None:
            return VoiceMatch(True, round(score, 4), reading)
        spoken = self.digits.check(reading.quality.speech, digits).spoken
        return VoiceMatch(spoken, round(score, 4), reading, digits_spoken=spoken)


def voice_print(vectors):
    """The unit-length mean of unit embeddings: what is stored for a person."""
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-10)).astype(np.float32)
