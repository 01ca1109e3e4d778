"""Open a new account: ID -> mobile -> e-mail -> username and password -> language -> SMS code to the new mobile -> terms.

The chart (``docs/flows/account.md`` is drawn from it by ``kiosk flows diagrams``)::

    entering_id --id_entered--> entering_mobile --mobile_entered--> entering_email --email_entered-->
    entering_credentials (--credentials_typed: every rule shown live as met or not)
    entering_credentials --credentials_entered--> choosing_language --language_chosen--> sending_code
    sending_code --code_sent--> entering_code --code_entered--> checking_code --code_accepted--> accepting_terms
    accepting_terms --terms_accepted--> submitting --submitted--> done
    sending_code | checking_code --server_offline--> offline;  --code_refused--> refused
    every waiting state --cancelled|timed_out--> finished (everything wiped)

The username cannot be changed later: the terms screen shows it once more before it is sent.
The rules are ``kiosk.flows.services.rules`` (USERNAME_RULES, PASSWORD_RULES).
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import _all_to
from kiosk.flows.services import rules
from kiosk.flows.services.code_step import CodeStep, code_transitions
from kiosk.flows.services.common import ServiceBase
from kiosk.flows.services.id_step import IdStep
from kiosk.flows.services.mobile_step import MobileStep

log = logging.getLogger(__name__)

LANGUAGES = ("ar", "en")


class AccountFlow(IdStep, MobileStep, CodeStep, ServiceBase, Flow):
    """Open a new account (see the module docstring)."""

    service = "account"
    steps = {"entering_id": 1, "entering_mobile": 2, "entering_email": 3, "entering_credentials": 4,
             "choosing_language": 5, "entering_code": 6, "code_cooldown": 6, "accepting_terms": 7, "done": 8}
    back_from = ("entering_mobile", "entering_email", "entering_credentials", "choosing_language", "entering_code")

    entering_id = State(initial=True)
    entering_mobile = State()
    entering_email = State()
    entering_credentials = State()
    choosing_language = State()
    sending_code = State()
    entering_code = State()
    checking_code = State()
    code_cooldown = State()
    accepting_terms = State()
    submitting = State()
    done = State()
    offline = State()
    refused = State()
    finished = State(final=True)

    id_entered = (entering_id.to(entering_mobile, cond="id_ok", on="remember_id")
                  | entering_id.to.itself(internal=True, on="refuse_id"))
    mobile_entered = (entering_mobile.to(entering_email, cond="mobile_ok", on="keep_mobile")
                      | entering_mobile.to.itself(internal=True, on="refuse_mobile"))
    email_entered = (entering_email.to(entering_credentials, cond="email_ok", on="keep_email")
                     | entering_email.to.itself(internal=True, on="refuse_email"))
    credentials_typed = entering_credentials.to.itself(internal=True, on="show_rules")
    credentials_entered = (entering_credentials.to(choosing_language, cond="credentials_ok", on="keep_credentials")
                           | entering_credentials.to.itself(internal=True, on="refuse_credentials"))
    language_chosen = (choosing_language.to(sending_code, cond="language_ok", on="keep_language")
                       | choosing_language.to.itself(internal=True, on="refuse_language"))

    (code_sent, resend_refused, code_refused, server_offline, code_entered, resend_requested, code_accepted,
     code_wrong, code_expired, code_locked) = code_transitions(
        sending=sending_code, entering=entering_code, checking=checking_code, cooldown=code_cooldown,
        refused=refused, offline=offline, then=accepting_terms)

    terms_accepted = accepting_terms.to(submitting)
    submitted = submitting.to(done)
    submit_failed = submitting.to(accepting_terms, on="note_terms_not_saved")

    back_requested = (entering_mobile.to(entering_id) | entering_email.to(entering_mobile)
                      | entering_credentials.to(entering_email) | choosing_language.to(entering_credentials)
                      | entering_code.to(choosing_language))

    timed_out = code_cooldown.to(entering_code, on="cooldown_over") | _all_to(
        finished, entering_id, entering_mobile, entering_email, entering_credentials, choosing_language,
        entering_code, accepting_terms, done, offline, refused)
    cancelled = _all_to(finished, entering_id, entering_mobile, entering_email, entering_credentials,
                        choosing_language, entering_code, code_cooldown, accepting_terms, done, offline, refused)

    timeouts = {**dict.fromkeys(("entering_id", "entering_mobile", "entering_email", "entering_credentials",
                                 "choosing_language", "entering_code", "accepting_terms", "done", "offline",
                                 "refused"), "inactivity_s"),
                "code_cooldown": "cooldown_s"}

    def code_target(self):
        return {"phone": self.fields["mobile"]}

    # --- e-mail ------------------------------------------------------------------------------

    def on_enter_entering_email(self):
        self.show("service_email", error=None)

    def email_ok(self, email=None):
        return rules.email_ok(email)

    def keep_email(self, email=None):
        self.fields["email"] = email.strip()

    def refuse_email(self, email=None):
        self.extend_deadline()
        self.show("service_email", error="invalid_email")

    # --- username and password --------------------------------------------------------------------

    def _show_rules(self, username, password, confirmation, error):
        self.show("service_credentials", username_rules=rules.username_rules(username),
                  password_rules=rules.password_rules(password, username=username, confirmation=confirmation),
                  error=error)

    def on_enter_entering_credentials(self):
        self.fields.pop("username", None)
        self.fields.pop("password", None)
        self._show_rules("", "", "", None)

    def show_rules(self, username="", password="", confirmation=""):
        self.extend_deadline()
        self._show_rules(username, password, confirmation, None)

    def credentials_ok(self, username="", password="", confirmation=""):
        return (all(rules.username_rules(username).values())
                and all(rules.password_rules(password, username=username, confirmation=confirmation).values()))

    def keep_credentials(self, username="", password="", confirmation=""):
        self.fields["username"], self.fields["password"] = username, password

    def refuse_credentials(self, username="", password="", confirmation=""):
        self.extend_deadline()
        self._show_rules(username, password, confirmation, "rules_not_met")

    # --- language and terms -----------------------------------------------------------------------

    def on_enter_choosing_language(self):
        self.show("service_language", languages=list(LANGUAGES), error=None)

    def language_ok(self, language=None):
        return language in LANGUAGES

    def keep_language(self, language=None):
        self.fields["language"] = language

    def refuse_language(self, language=None):
        self.show("service_language", languages=list(LANGUAGES), error="invalid_language")

    terms_error = None

    def on_enter_accepting_terms(self):
        error, self.terms_error = self.terms_error, None
        self.show("service_terms", username=self.fields["username"], error=error)

    def note_terms_not_saved(self):
        self.ports.signal("error")
        self.terms_error = "not_saved"
