"""The voice print's screens (kiosk/flows/voice_step.py): the phrase to read, the live level, the guidance;
and the enrolment flow's "voice print not taken" screen (retry or skip).

Recording starts as soon as the phrase is shown (the flow has no record button), so the phrase
screen and the recording screen are one widget that takes each new update in place: the level
meter moves about ten times a second without the screen being rebuilt.
"""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QProgressBar

from kiosk.ui.screen import Screen
from kiosk.ui.widgets import label


def voice_guidance_text(words, code):
    """The words for a voice guidance code (``kiosk.models.voice_quality.GUIDANCE``, ``microphone``)."""
    return words.first(f"voice.guidance.{code}", "voice.guidance.other")

QUIET_DBFS = -60.0   # the meter's empty end; 0 dBFS (full scale) is its full end


def level_percent(level_dbfs):
    """A level in dBFS as 0..100 for the meter (silence and anything below -60 dBFS are 0)."""
    if level_dbfs is None:
        return 0
    level = max(QUIET_DBFS, min(0.0, float(level_dbfs)))
    return int(round((level - QUIET_DBFS) / -QUIET_DBFS * 100))


class VoiceReading(Screen):
    """Read the phrase and the digits aloud: the sentence, the digits (left to right), the live level."""

    interactive = False   # the flow's own timeout ends it; the person speaks, they do not touch

    def build(self):
        self.box.addStretch(1)
        self.prompt = label("", align=Qt.AlignCenter, name="prompt")
        self.phrase = label("", role="title", align=Qt.AlignCenter, name="phrase")
        self.digits = label("", role="title", align=Qt.AlignCenter, name="digits")
        self.hint = label("", role="error", align=Qt.AlignCenter, name="hint")
        self.meter = QProgressBar()
        self.meter.setObjectName("level")
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.meter.setMinimumHeight(self.theme.spacing_px * 2)
        for widget in (self.prompt, self.phrase, self.digits, self.hint, self.meter):
            self.box.addWidget(widget)
        self.box.addStretch(1)
        self._fill()

    def take(self, name, data):
        self.name, self.data = name, dict(data)
        self._fill()
        return True

    def _fill(self):
        d, w = self.data, self.words
        if self.name == "voice_phrase" and d.get("readings", 1) > 1:
            self.prompt.setText(w("voice.reading_of", reading=d.get("reading", 1), readings=d.get("readings", 1)))
        elif self.name == "voice_recording":
            self.prompt.setText(w("voice.recording", elapsed=int(d.get("elapsed_s") or 0),
                                  record=int(d.get("record_s") or 0)))
        else:
            self.prompt.setText(w("voice.read_aloud"))
        self.phrase.setText(w(f"voice.{d.get('phrase')}", default=""))
        self.digits.setText(w.ltr(d.get("digits", "")))
        self.hint.setText(self.guidance_text_voice(d.get("guidance")) if self.name == "voice_guidance" else "")
        self.meter.setValue(level_percent(d.get("level_dbfs")) if self.name == "voice_recording" else 0)

    def title(self):
        return self.words("voice_phrase.title")

    def guidance_text_voice(self, code):
        return voice_guidance_text(self.words, code)


class EnrolVoiceRetry(Screen):
    """Enrolment: the voice print was not taken (the guidance says why); try again or skip it."""

    def title(self):
        return self.words("voice_phrase.title")

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("enrol_voice_retry.title"), role="banner_error")
        self.box.addWidget(label(voice_guidance_text(w, d.get("guidance")), role="title", align=Qt.AlignCenter,
                                 name="hint"))
        self.box.addStretch(1)
        self.actions([(w("btn.skip_voice"), "voice_skipped", None, None),
                      (w("btn.try_again"), "retry_requested", "primary", None)])
