"""Were the shown digits spoken? English digit recognition (pocketsphinx) for replay resistance.

The voice screen shows a phrase and then 4 random digits; a recording made earlier holds other
digits. ``SpokenDigits.check(samples, "4 7 1 9")`` says whether those digits, in that order,
were read as the last part of the recording.

How: pocketsphinx (BSD; the PyPI wheel ships its en-us acoustic model and dictionary, nothing
is downloaded) decodes with a grammar that allows exactly ``len(digits)`` English digit words
("zero" .. "nine"). A free-length digit grammar inserts digits in the pauses and turns the
phrase before the digits into digits too, so instead each place where speech starts after a
pause (from the VAD, the last ``MAX_STARTS`` of them) is tried as the start of the digits, and
the check passes when any of those decodes is exactly the digits shown.

Not covered (say so wherever this is offered): digits read in Arabic or any language but
English (no Arabic model ships in a registry); a recording of the person that happens to say
the right digits (1 in 10,000 for 4 random digits, more if an attacker can splice digits
recorded earlier); live voice cloning or speech synthesis saying the shown digits. This checks
what was said, not who or what said it.

``pocketsphinx`` is imported when the first ``SpokenDigits`` is made, so ``import kiosk`` works
without it.
"""

import logging
import time
from dataclasses import dataclass

import numpy as np

from kiosk.errors import ModelError
from kiosk.models.vad import FRAME_SAMPLES, SAMPLE_RATE, to_int16

log = logging.getLogger(__name__)

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_STARTS = 8          # tried starts, the last ones of the recording (the digits come last)
PAUSE_FRAMES = 3        # 90 ms without speech before a start
PAD_S = 0.1             # audio kept before a start (the VAD marks speech a little late)
MAX_DIGITS = 12


def _grammar(count):
    rule = " ".join(["<d>"] * count)
    return (f"#JSGF V1.0;\ngrammar digits{count};\npublic <digits> = {rule};\n"
            f"<d> = {' | '.join(WORDS)};\n")


def parse_digits(digits):
    """'4 7 1 9' or '4719' -> (4, 7, 1, 9); ValueError for anything but 1-12 ASCII digits."""
    text = str(digits).replace(" ", "")
    if not text or len(text) > MAX_DIGITS or not all(c in "0123456789" for c in text):
        raise ValueError("expected 1-12 digits")
    return tuple(int(c) for c in text)


@dataclass(frozen=True)
class DigitCheck:
    """The outcome: ``spoken`` when one decode is the digits shown; ``tried`` starts decoded."""

    spoken: bool
    tried: int
    seconds: float


class SpokenDigits:
    """One pocketsphinx decoder with a fixed-length English digits grammar per digit count."""

    def __init__(self, *, vad):
        try:
            from pocketsphinx import Config, Decoder
        except ImportError as e:
            raise ModelError("the digit check needs pocketsphinx (pip install pocketsphinx)") from e
        self.vad = vad
        # lm=None: no language model, only the grammars added below; logfn silences its chatter
        self._decoder = Decoder(Config(lm=None, logfn="/dev/null"))
        self._grammars = set()

    def _search(self, count):
        name = f"digits{count}"
        if name not in self._grammars:
            self._decoder.add_jsgf_string(name, _grammar(count))
            self._grammars.add(name)
        self._decoder.activate_search(name)

    def decode(self, samples):
        """The digit words of the best path through the active grammar, as ints (may be empty)."""
        decoder = self._decoder
        decoder.start_utt()
        decoder.process_raw(to_int16(samples).tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        return tuple(WORDS.index(w) for w in words if w in WORDS)

    def starts(self, samples):
        """Sample offsets where speech begins after a pause, the last ``MAX_STARTS`` of them."""
        flags = self.vad.speech_frames(samples)
        found, quiet = [], PAUSE_FRAMES
        for i, speech in enumerate(flags):
            if speech and quiet >= PAUSE_FRAMES:
                found.append(max(0, i * FRAME_SAMPLES - int(PAD_S * SAMPLE_RATE)))
            quiet = 0 if speech else quiet + 1
        return found[-MAX_STARTS:]

    def check(self, samples, digits):
        """Whether ``digits`` ('4 7 1 9') were read, in order, after a pause in ``samples``."""
        began = time.perf_counter()
        wanted = parse_digits(digits)
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        self._search(len(wanted))
        starts = self.starts(samples)
        spoken, tried = False, 0
        for start in reversed(starts):  # the digits come last: the latest start is the likeliest
            tried += 1
            if self.decode(samples[start:]) == wanted:
                spoken = True
                break
        seconds = time.perf_counter() - began
        # what was heard is not logged: it would tell a listener to the logs what to say
        log.info("digit check: %s (%d of %d start(s) tried, %.0f ms)", "spoken" if spoken else "not spoken",
                 tried, len(starts), seconds * 1000)
        return DigitCheck(spoken, tried, round(seconds, 4))
