"""Runs voice verifications for the flows on a thread of its own and posts the outcome as events.

``request(person_id=..., language=...)`` starts one attempt (the flow's ``start_capture("voice")``):
show a phrase, record, gate, compare with the person's voice print, then post one of
``voice_matched(score)``, ``voice_refused(score, reason)`` (``no_voice_print``,
``voice_not_matched``, or ``digits_not_spoken``: the voice matched but the digit check did not
hear the digits shown), or ``voice_unusable(guidance)`` (the gate's code, or ``microphone`` when the device is
lost). ``request_enrol(language=...)`` (the enrolment flow's ``start_capture("voice",
mode="enrol")``) takes a voice print from 3 readings and posts ``voice_enrolled(template,
model_id)`` or ``voice_failed(guidance)``. ``cancel()`` (the flow's ``stop_capture("voice")``)
drops an attempt under way: a recording cannot be cut short, but it shows nothing more and nobody
acts on its outcome.
"""

import logging
import queue
import threading

from kiosk.errors import MicrophoneError

log = logging.getLogger(__name__)


class VoiceWorker:
    """One attempt at a time; ``serve`` is the whole attempt and can be called directly in tests."""

    def __init__(self, step, post, *, template_for, show, before=None):
        self.step = step
        self.post = post
        self.template_for = template_for   # person_id -> voice print or None
        self.show = show                   # the screen port: show(screen, **data)
        self.before = before               # after the phrase is shown, before recording (simulator)
        self._requests = queue.Queue()
        self._generation = 0
        self._thread = None
        self._stop = threading.Event()

    def request(self, *, person_id, language=None):
        self._generation += 1
        self._requests.put((self._generation, person_id, language, "verify"))

    def request_enrol(self, *, language=None):
        self._generation += 1
        self._requests.put((self._generation, None, language, "enrol"))

    def cancel(self):
        self._generation += 1

    def start(self):
        self._thread = threading.Thread(target=self._run, name="voice-worker", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        self._requests.put(None)
        if self._thread is not None:
            self._thread.join(10.0)

    @property
    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    def run_pending(self):
        """Serve every queued request on the caller's thread (what the worker thread does)."""
        while True:
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[0] == self._generation:
                self.serve(person_id=item[1], language=item[2], generation=item[0], mode=item[3])

    def _run(self):
        while not self._stop.is_set():
            item = self._requests.get()
            if item is None:
                break
            generation, person_id, language, mode = item
            if generation != self._generation:
                continue  # a newer request or a cancel came first
            try:
                self.serve(person_id=person_id, language=language, generation=generation, mode=mode)
            except Exception:
                log.exception("voice attempt failed")

    def serve(self, *, person_id, language=None, generation=None, mode="verify"):
        """One attempt for ``person_id`` (or an enrolment): posts exactly one event unless cancelled meanwhile."""
        generation = self._generation if generation is None else generation

        def post(event, **data):
            if generation == self._generation:
                self.post(event, **data)

        def show(screen, **data):
            # an attempt the flow has dropped (cancel, inactivity) records on, but out of sight:
            # the screen belongs to whatever the flow shows now (home, or the next person)
            if generation == self._generation:
                self.show(screen, language=language, **data)

        if mode == "enrol":
            self._enrol(post, show)
            return

        template = self.template_for(person_id)
        if template is None:
            post("voice_refused", score=None, reason="no_voice_print")
            return
        self.step.show = show
        try:
            match = self.step.verify(template, before=self.before)
        except MicrophoneError as e:
            log.error("voice attempt: %s", e)
            show("voice_guidance", guidance="microphone")
            post("voice_unusable", guidance="microphone")
            return
        if match is None:
            post("voice_unusable", guidance=self.step.last_reading.quality.guidance)
        elif match.accepted:
            post("voice_matched", score=match.score)
        elif match.digits_spoken is False:
            log.info("voice matched but the digits shown were not heard")
            post("voice_refused", score=match.score, reason="digits_not_spoken")
        else:
            log.info("voice not matched for the claimed person")
            post("voice_refused", score=match.score, reason="voice_not_matched")

    def _enrol(self, post, show):
        self.step.show = show
        try:
            template = self.step.enrol(before_each=self.before)
        except MicrophoneError as e:
            log.error("voice enrolment: %s", e)
            show("voice_guidance", guidance="microphone")
            post("voice_failed", guidance="microphone")
            return
        if template is None:
            last = self.step.last_reading
            post("voice_failed", guidance=last.quality.guidance if last is not None else "too_little_speech")
        else:
            post("voice_enrolled", template=template, model_id=self.step.model_id)
