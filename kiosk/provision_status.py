"""What the provisioning screen shows: a plain-Python status model the touchscreen renders.

Provisioning reports what happens (a code refused, a registration attempt failed, the self-test
ran) to a ``ProvisioningStatus``; it turns each event into one screen and hands it to a port
``show(screen, **data)``, the same shape as the flows' screen port. With a display, `kiosk
provision` passes a port that draws it on the touchscreen (kiosk/ui/provision_window.py);
``StatusFile`` is the headless port: it writes the current screen as JSON (atomically) and logs
its name, so a technician or a test can follow it.

Screens and their data (every value is JSON-safe; no token, code, PIN or key is ever in them):

- ``provision_waiting``: ``ways`` (["file", "code"] or ["file"] on an image without a key),
  ``file`` (where the provisioning file goes), ``last_refusal`` (``{reason, remedy}`` or None)
- ``provision_network``: ``interfaces`` ([{name, addresses}]), ``server_url``, ``reachable``
  (True/False/None), ``remedy``
- ``provision_registering``: ``server_url``, ``attempt``, ``retry_in_s`` (None on the first try),
  ``reason`` (None, or one of RETRY_REASONS), ``remedy``
- ``provision_refused``: ``source`` ("code" or "file"), ``reason``, ``remedy``
- ``provision_failed``: ``reason``, ``remedy``, ``detail`` (one line)
- ``provision_self_test``: ``checks`` ([{name, status, detail, remedy}]), ``ok``, ``failed`` (names)
- ``provision_done``: ``device_id``, ``site``, ``door``, ``problems`` (the self-test's failed
  checks still to fix, [{name, detail, remedy}]; empty when all passed or none ran)
"""

import json
import logging
import os
from pathlib import Path

from kiosk.errors import ProvisioningError, UntrustedAnswerError

log = logging.getLogger(__name__)

SCREENS = ("provision_waiting", "provision_network", "provision_registering", "provision_refused",
           "provision_failed", "provision_self_test", "provision_done")

# why a registration attempt failed -> what the technician can do about it
RETRY_REASONS = {
    "dns": "The server's name does not resolve: check the network's DNS, or server.url for a typo.",
    "tls": "The server's certificate is not trusted: check the CA (kiosk-ca.pem) matches the server.",
    "bad_token": "The server refused the enrolment token: it may be wrong, used or expired; ask for a new one.",
    "untrusted": "The server's signing key is not the one the provisioning file or code names: check both.",
    "server_down": "The server does not answer: check the cable or Wi-Fi, and that the server is running.",
}


def classify_registration_error(error):
    """(reason, remedy) for an exception from a registration attempt."""
    text = str(error)
    if isinstance(error, ProvisioningError):
        reason = "bad_token"
    elif isinstance(error, UntrustedAnswerError):
        reason = "untrusted"
    elif "TLS verification" in text or "SSLError" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = "tls"
    elif any(marker in text for marker in ("NameResolution", "Name or service not known", "Failed to resolve",
                                           "nodename nor servname", "Temporary failure in name resolution")):
        reason = "dns"
    else:
        reason = "server_down"
    return reason, RETRY_REASONS[reason]


class ProvisioningStatus:
    """The provisioning screen's model: events in, one ``show(screen, **data)`` call out per change."""

    def __init__(self, show, *, ways=("file", "code"), file_path="/boot/firmware/kiosk-provision.toml"):
        self._show = show
        self.ways = list(ways)
        self.file_path = str(file_path)
        self.last_refusal = None
        self.problems = []
        self.screen = None
        self.data = {}

    def _emit(self, screen, **data):
        self.screen, self.data = screen, data
        self._show(screen, **data)

    def waiting(self):
        self._emit("provision_waiting", ways=self.ways, file=self.file_path, last_refusal=self.last_refusal)

    def network(self, *, interfaces, server_url, reachable):
        remedy = "" if reachable else ("No network address: plug in the cable or check the Wi-Fi name and password."
                                       if not any(i["addresses"] for i in interfaces) else
                                       RETRY_REASONS["server_down"])
        self._emit("provision_network", interfaces=interfaces, server_url=server_url, reachable=reachable,
                   remedy=remedy)

    def registering(self, *, server_url, attempt, error=None, retry_in_s=None):
        reason, remedy = classify_registration_error(error) if error is not None else (None, "")
        self._emit("provision_registering", server_url=server_url, attempt=attempt,
                   retry_in_s=None if retry_in_s is None else round(float(retry_in_s), 1), reason=reason,
                   remedy=remedy)

    def refused(self, *, source, reason, remedy):
        self.last_refusal = {"reason": reason, "remedy": remedy}
        self._emit("provision_refused", source=source, reason=reason, remedy=remedy)

    def failed(self, error):
        reason, remedy = classify_registration_error(error)
        self._emit("provision_failed", reason=reason, remedy=remedy, detail=str(error).splitlines()[0][:200])

    def self_test(self, report):
        """Show a kiosk.doctor Report: each check pass/fail/warn/skip with its one-line remedy."""
        checks = [{"name": c.name, "status": c.status, "detail": c.detail,
                   "remedy": c.remedy if c.status != "pass" else ""} for c in report.checks]
        self.problems = [{"name": c.name, "detail": c.detail, "remedy": c.remedy} for c in report.failed]
        self._emit("provision_self_test", checks=checks, ok=report.ok, failed=[c.name for c in report.failed])

    def done(self, *, device_id, site="", door=""):
        self._emit("provision_done", device_id=device_id, site=site, door=door, problems=self.problems)


class StatusFile:
    """A ``show`` port for headless kiosks: the current screen as JSON in ``path``, replaced atomically.

    The file also lists the last screens shown (``history``), so a technician reading it after
    the fact sees the way the kiosk came.
    """

    HISTORY = 50

    def __init__(self, path):
        self.path = Path(path)
        self.history = []

    def __call__(self, screen, **data):
        log.info("provisioning screen: %s%s", screen,
                 f" ({data['reason']})" if data.get("reason") else "")
        self.history = (self.history + [screen])[-self.HISTORY:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"screen": screen, **data, "history": self.history}, sort_keys=True))
        os.replace(tmp, self.path)


class StatusConsole:
    """The Console provisioning writes to, feeding the status model as well as the text console."""

    def __init__(self, status, console=None, *, list_interfaces=None):
        from kiosk.provision import Console

        self.status = status
        self.console = console or Console()
        self.list_interfaces = list_interfaces or interfaces

    def show(self, title, *lines):
        self.console.show(title, *lines)

    def attempt(self, *, server_url, attempt):
        if attempt == 1:    # the network as the kiosk sees it, before the first try
            self.status.network(interfaces=self.list_interfaces(), server_url=server_url, reachable=None)
        self.status.registering(server_url=server_url, attempt=attempt)

    def retrying(self, *, server_url, attempt, error, retry_in_s):
        self.status.registering(server_url=server_url, attempt=attempt, error=error, retry_in_s=retry_in_s)

    def refused(self, *, source, reason, remedy):
        self.status.refused(source=source, reason=reason, remedy=remedy)

    def failed(self, error):
        self.status.failed(error)

    def done(self, *, device_id, site, door):
        # held back: the self-test screen comes between registering and done (finish())
        self.finished = {"device_id": device_id, "site": site, "door": door}

    def finish(self, report=None):
        """After provisioning: the self-test results (a doctor Report), then the done screen."""
        if report is not None:
            self.status.self_test(report)
        if getattr(self, "finished", None):
            self.status.done(**self.finished)


def interfaces():
    """[{name, addresses}] of the network interfaces other than loopback (Linux /sys and ``ip``)."""
    import subprocess

    try:
        out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, timeout=5).stdout
        entries = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        entries = []
    found = []
    for entry in entries if isinstance(entries, list) else []:
        name = str(entry.get("ifname", ""))
        if not name or name == "lo":
            continue
        addresses = [str(a.get("local")) for a in entry.get("addr_info", []) if a.get("scope") == "global"]
        found.append({"name": name, "addresses": addresses})
    return found
