"""The national ID / iqama number step: refused as typed, with the broken rule named."""

import logging

from kiosk.digits import western_digits
from kiosk.flows.services.rules import MAX_TYPED, national_id_problem

log = logging.getLogger(__name__)


class IdStep:
    """Callbacks of ``entering_id`` (event ``id_entered(national_id=...)``)."""

    def on_enter_entering_id(self):
        self.show("service_id", error=None, typed=0)

    def id_ok(self, national_id=None):
        return national_id_problem(national_id) is None

    def remember_id(self, national_id=None):
        self.national_id = western_digits(national_id)

    def refuse_id(self, national_id=None):
        self.extend_deadline()
        typed = len(western_digits(national_id)) if isinstance(national_id, str) and len(national_id) <= MAX_TYPED else 0
        self.show("service_id", error=national_id_problem(national_id), typed=typed)
