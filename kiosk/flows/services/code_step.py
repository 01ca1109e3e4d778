"""The one-time code step: send by SMS, type it before it expires, resend after a delay, cooldown.

The server decides the code's length, its expiry, the resend delay, the attempts and the
cooldown, and enforces them itself; the flow follows its answers and counts down on the
screen. States: ``sending_code`` (asks the server) -> ``entering_code`` -> ``checking_code``
(asks the server) -> the service's next step; three wrong codes -> ``code_cooldown`` for the
server's ``retry_after_s``, after which a new code may be sent. A code past its expiry is
refused on the kiosk without asking the server.
"""

import dataclasses
import logging

from kiosk.digits import western_digits
from kiosk.flows.services.ports import OFFLINE

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN_S = 300.0   # when the server locks without saying for how long
MAX_CODE_LENGTH = 12


def code_transitions(*, sending, entering, checking, cooldown, refused, offline, then):
    """The code step's events, the same in every service, as a tuple to unpack in the flow's class body.

    ``(code_sent, resend_refused, code_refused, server_offline, code_entered, resend_requested,
    code_accepted, code_wrong, code_expired, code_locked)``; an accepted code goes on to ``then``.
    python-statemachine reads events from the class namespace, so each flow still names them.
    """
    return (sending.to(entering, on="hold_code"),
            sending.to(entering, on="note_resend_refused"),
            sending.to(refused) | checking.to(refused),
            sending.to(offline) | checking.to(offline),
            entering.to(checking, cond="code_format_ok") | entering.to.itself(internal=True, on="refuse_code_format"),
            entering.to(sending, cond="may_resend") | entering.to.itself(internal=True, on="refuse_resend"),
            checking.to(then, on="keep_code_token"),
            checking.to(entering),
            checking.to(entering),
            checking.to(cooldown))


class CodeStep:
    """Callbacks of ``sending_code``, ``entering_code``, ``checking_code`` and ``code_cooldown``."""

    cooldown_for_s = DEFAULT_COOLDOWN_S

    def code_target(self):
        """Where the code goes: {} for the phone registered to the ID, or {phone, proof}."""
        return {}

    # --- sending ----------------------------------------------------------------------------------

    def on_enter_sending_code(self):
        resend_of = self.code.code_id if self.code is not None else None
        answer = self.ports.request_code(service=self.service, national_id=self.national_id, resend_of=resend_of,
                                         **self.code_target())
        if answer.outcome == "sent":
            self.send("code_sent", answer=answer)
        elif answer.outcome == OFFLINE:
            self.send("server_offline", at="code")
        elif answer.outcome == "resend_too_soon" and self.code is not None:
            self.send("resend_refused")
        else:
            log.info("%s: code request refused (%s)", self.service, answer.outcome)
            self.send("code_refused", reason=answer.outcome, retry_after_s=answer.retry_after_s)

    def hold_code(self, answer=None):
        length = answer.code_length if isinstance(answer.code_length, int) else 0
        self.code = dataclasses.replace(answer, code_length=min(max(length, 4), MAX_CODE_LENGTH))
        self.code_sent_s = self.clock.monotonic()
        self.code_error = None

    def note_resend_refused(self):
        self.code_error = "resend_too_soon"

    # --- typing -----------------------------------------------------------------------------------

    def _elapsed_s(self):
        return self.clock.monotonic() - self.code_sent_s

    def code_alive(self):
        return self.code is not None and self.code.attempts_left > 0 and self._elapsed_s() < self.code.expires_in_s

    def _show_code(self):
        code = self.code
        self.show("service_code", phone_hint=code.phone_hint, code_length=code.code_length,
                  expires_in_s=max(0.0, code.expires_in_s - self._elapsed_s()),
                  resend_in_s=0.0 if self.may_resend() else max(0.0, code.resend_after_s - self._elapsed_s()),
                  attempts_left=code.attempts_left, error=self.code_error)

    def on_enter_entering_code(self):
        self._show_code()

    def _typed(self, code):
        return western_digits(code) if isinstance(code, str) and len(code) <= 4 * MAX_CODE_LENGTH else ""

    def code_format_ok(self, code=None):
        digits = self._typed(code)
        return self.code_alive() and digits.isascii() and digits.isdigit() and len(digits) == self.code.code_length

    def refuse_code_format(self, code=None):
        self.extend_deadline()
        self.code_error = "format" if self.code_alive() else "expired"
        self._kill_code_if_expired()
        self._show_code()

    def _kill_code_if_expired(self):
        if self.code is not None and self._elapsed_s() >= self.code.expires_in_s:
            self.code = dataclasses.replace(self.code, attempts_left=0)

    def may_resend(self):
        return not self.code_alive() or self._elapsed_s() >= self.code.resend_after_s

    def refuse_resend(self):
        self.extend_deadline()
        self.code_error = "resend_too_soon"
        self._show_code()

    # --- checking ---------------------------------------------------------------------------------

    def on_enter_checking_code(self, code=None):
        answer = self.ports.verify_code(self.code.code_id, self._typed(code))
        if answer.outcome == "ok":
            self.send("code_accepted", token=answer.token)
        elif answer.outcome == "wrong" and (answer.attempts_left or 0) > 0:
            self.send("code_wrong", attempts_left=answer.attempts_left)
        elif answer.outcome in ("wrong", "locked"):
            self.send("code_locked", retry_after_s=answer.retry_after_s)
        elif answer.outcome == "expired":
            self.send("code_expired")
        elif answer.outcome == OFFLINE:
            self.send("server_offline", at="code")
        else:
            self.send("code_refused", reason=answer.outcome, retry_after_s=answer.retry_after_s)

    def keep_code_token(self, token=None):
        self.proofs["code"] = token
        self.code = None

    def on_code_wrong(self, attempts_left=None):
        self.ports.signal("warn")
        self.code = dataclasses.replace(self.code, attempts_left=attempts_left)
        self.code_error = "wrong"

    def on_code_expired(self):
        self.code = dataclasses.replace(self.code, attempts_left=0)
        self.code_error = "expired"

    def on_code_locked(self, retry_after_s=None):
        ok = isinstance(retry_after_s, (int, float)) and 0 < retry_after_s < 86400
        self.cooldown_for_s = float(retry_after_s) if ok else DEFAULT_COOLDOWN_S
        self.code = dataclasses.replace(self.code, attempts_left=0)

    def cooldown_s(self):
        return self.cooldown_for_s

    def on_enter_code_cooldown(self):
        self.ports.signal("error")
        self.show("service_code_cooldown", retry_in_s=self.cooldown_for_s)

    def cooldown_over(self):
        self.code_error = "cooldown_over"
