"""The digit check on the microphone simulator's readings: digits shown heard, other digits not."""

import numpy as np
import pytest

from kiosk.models.spoken_digits import SpokenDigits, parse_digits
from kiosk.models.vad import Vad
from kiosk_sim.microphone import build


@pytest.fixture(scope="module")
def digits():
    return SpokenDigits(vad=Vad())


@pytest.mark.parametrize("take,said", [(0, "4719"), (5, "0386"), (11, "2250")])
def test_the_digits_read_after_the_phrase_are_heard_and_no_others(digits, datasets, take, said):
    audio = build(f"reading:allison:{take}:{said}", root=datasets)
    heard = digits.check(audio, " ".join(said))
    assert heard.spoken and heard.tried >= 1
    other = "".join(str((int(d) + 3) % 10) for d in said)
    assert not digits.check(audio, other).spoken
    assert not digits.check(audio, said[::-1]).spoken  # the same digits in another order


def test_a_phrase_without_digits_and_silence_are_not_heard(digits, datasets):
    assert not digits.check(build("reading:allison:2", root=datasets), "1 2 3 4").spoken
    silence = digits.check(build("silence", root=datasets), "1 2 3 4")
    assert not silence.spoken and silence.tried == 0


def test_hostile_samples_do_not_break_it(digits):
    junk = np.full(16000, np.nan, np.float32)
    junk[::7] = np.inf
    assert not digits.check(junk, "1234").spoken
    assert not digits.check(np.zeros(0, np.float32), "1234").spoken


@pytest.mark.parametrize("bad", ["", "12a4", "١٢٣٤", "1" * 13, "-1"])
def test_only_ascii_digits_are_checked(bad):
    with pytest.raises(ValueError):
        parse_digits(bad)


def test_only_the_speaker_with_digit_recordings_reads_digits(datasets):
    with pytest.raises(ValueError):
        build("reading:carlo_it:0:1234", root=datasets)
