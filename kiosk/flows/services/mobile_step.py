"""The mobile number step: a number the rules accept, kept normalised, or refused with its reason."""

import logging

from kiosk.flows.services.rules import mobile_number

log = logging.getLogger(__name__)


class MobileStep:
    """Callbacks of ``entering_mobile`` (event ``mobile_entered(mobile=...)``)."""

    def on_enter_entering_mobile(self):
        self.show("service_mobile", error=None)

    def mobile_ok(self, mobile=None):
        return mobile_number(mobile) is not None

    def keep_mobile(self, mobile=None):
        self.fields["mobile"] = mobile_number(mobile)

    def refuse_mobile(self, mobile=None):
        self.extend_deadline()
        self.show("service_mobile", error="invalid_mobile")
