"""The first-boot provisioning screens: what kiosk/provision_status.py shows, in words a technician acts on.

No flow drives these: ``kiosk provision`` feeds ``ProvisioningStatus`` events to the window (see
kiosk/ui/provision_window.py). Nothing here is touched: the technician acts on the SD card, the
code or the network, so every screen is read-only (no top-bar action, no inactivity warning).
Reasons come as stable words (kiosk/provision_code.py REMEDIES, provision_status.RETRY_REASONS);
each is said in both languages, with its remedy from the translation files, falling back to the
remedy the model sent. The self-test's details and remedies are the doctor's own (English) lines.
"""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QFrame, QGridLayout, QScrollArea, QWidget

from kiosk.ui.screen import Screen
from kiosk.ui.widgets import label

STATUS_MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–"}


class ProvisionScreen(Screen):
    """Base: read-only, no way back; the model's reason and remedy said in the screen's language."""

    interactive = False
    top_action = None

    def reason_words(self, reason):
        return self.words.first(f"provision_reason.{reason}", "provision_reason.other")

    def remedy_words(self, reason, given):
        return self.words(f"provision_remedy.{reason}", default=given or "") if reason else (given or "")

    def line(self, text, *, role=None, name=None, align=Qt.AlignCenter):
        w = label(text, role=role, align=align, name=name)
        self.box.addWidget(w)
        return w

    def latin(self, text):
        """A path, URL or device id: left to right inside Arabic text."""
        return self.words.ltr(text)

    def scrolled(self):
        """A scroll area filling the rest of the screen; returns its grid (long lists on a small panel)."""
        holder = QWidget()
        grid = QGridLayout(holder)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(self.theme.spacing_px)
        grid.setVerticalSpacing(self.theme.spacing_px // 3)
        area = QScrollArea()
        area.setObjectName("list")
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        area.setWidget(holder)
        self.box.addWidget(area, 1)
        return grid


class ProvisionWaiting(ProvisionScreen):
    """No provisioning yet: the ways this kiosk accepts (file, code), and the last refusal with its remedy."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("provision_waiting.prompt"), role=None)
        ways = d.get("ways") or ["file"]
        if "file" in ways:
            self.line(w("provision_waiting.file", file=self.latin(d.get("file") or "")), name="way_file")
        if "code" in ways:
            self.line(w("provision_waiting.code"), name="way_code")
        refusal = d.get("last_refusal")
        if refusal:
            self.line(w("provision_waiting.last_refusal", reason=self.reason_words(refusal.get("reason"))),
                      role="error", name="last_refusal")
            self.line(self.remedy_words(refusal.get("reason"), refusal.get("remedy")), name="remedy")
        self.box.addStretch(1)


class ProvisionNetwork(ProvisionScreen):
    """The network as the kiosk sees it: each interface's addresses, the server, whether it answers."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        for i, iface in enumerate(d.get("interfaces") or []):
            addresses = ", ".join(iface.get("addresses") or [])
            self.line(w("provision_network.interface", name=self.latin(iface.get("name") or ""),
                        addresses=self.latin(addresses) if addresses else w("provision_network.no_address")),
                      name=f"interface_{i}")
        if not d.get("interfaces"):
            self.line(w("provision_network.no_interface"), role="error", name="no_interface")
        self.line(w("provision_network.server", server=self.latin(d.get("server_url") or "")), name="server")
        reachable = d.get("reachable")
        key = {True: "reachable", False: "unreachable"}.get(reachable, "unknown")
        self.line(w(f"provision_network.{key}"), role={True: "ok", False: "error"}.get(reachable), name="reachable")
        if d.get("remedy"):
            reason = "no_address" if not any(i.get("addresses") for i in d.get("interfaces") or []) else "server_down"
            self.line(self.remedy_words(reason, d["remedy"]), name="remedy")
        self.box.addStretch(1)


class ProvisionRegistering(ProvisionScreen):
    """Registering with the server; after a failed try, why (in words), what to do, and when it tries again."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("provision_registering.server", server=self.latin(d.get("server_url") or "")), role=None)
        self.line(w("provision_registering.attempt", attempt=int(d.get("attempt") or 1)), name="attempt")
        reason = d.get("reason")
        if reason:
            self.heading(self.reason_words(reason), role="banner_error").setObjectName("reason")
            self.line(self.remedy_words(reason, d.get("remedy")), name="remedy")
            retry = d.get("retry_in_s")
            if isinstance(retry, (int, float)):
                self.line(w("provision_registering.retry_in", seconds=max(0, int(round(retry)))), role="small",
                          name="retry_in")
        self.box.addStretch(1)


class ProvisionRefused(ProvisionScreen):
    """The provisioning file or code was refused: why, and what to do."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w.first(f"provision_refused.{d.get('source')}", "provision_refused.file"),
                     role="banner_error").setObjectName("source")
        self.line(self.reason_words(d.get("reason")), role="error", name="reason")
        self.line(self.remedy_words(d.get("reason"), d.get("remedy")), name="remedy")
        self.box.addStretch(1)


class ProvisionFailed(ProvisionScreen):
    """Registration gave up: the reason in words, the remedy, and the error's first line for support."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("provision_failed.text"), role="banner_error")
        self.line(self.reason_words(d.get("reason")), role="error", name="reason")
        self.line(self.remedy_words(d.get("reason"), d.get("remedy")), name="remedy")
        if d.get("detail"):
            detail = label(d["detail"], role="small", align=Qt.AlignCenter, name="detail")
            detail.setLayoutDirection(Qt.LeftToRight)   # the exception's text is English
            self.box.addWidget(detail)
        self.box.addStretch(1)


class ProvisionSelfTest(ProvisionScreen):
    """The doctor's checks: one row each (name, pass/fail mark, and the remedy when it did not pass)."""

    def build(self):
        d, w = self.data, self.words
        ok = bool(d.get("ok"))
        self.heading(w("provision_self_test.ok") if ok else
                     w("provision_self_test.failed", count=len(d.get("failed") or [])),
                     role="banner_ok" if ok else "banner_error").setObjectName("verdict")
        grid = self.scrolled()
        for row, check in enumerate(d.get("checks") or []):
            name, status = check.get("name") or "", check.get("status") or "skip"
            role = {"pass": "ok", "fail": "error"}.get(status, "small")
            grid.addWidget(label(w(f"check.{name}", default=name), role=role, wrap=False, name=f"check_{name}"),
                           row, 0)
            mark = label(f"{STATUS_MARKS.get(status, '?')} {w(f'check_status.{status}', default=status)}",
                         role=role, wrap=False, name=f"status_{name}")
            grid.addWidget(mark, row, 1)
            text = check.get("remedy") if status != "pass" and check.get("remedy") else check.get("detail") or ""
            said = label(text, role=None if status == "fail" else "small", name=f"remedy_{name}")
            said.setLayoutDirection(Qt.LeftToRight)    # the doctor's own line (English)
            grid.addWidget(said, row, 2)
        grid.setColumnStretch(2, 1)
        grid.setRowStretch(len(d.get("checks") or []), 1)


class ProvisionDone(ProvisionScreen):
    """Registered: the device id, site and door, and any self-test failure still to fix."""

    def build(self):
        d, w = self.data, self.words
        problems = d.get("problems") or []
        self.heading(w("provision_done.done", device=self.latin(d.get("device_id") or "")),
                     role="banner_ok").setObjectName("device")
        if d.get("site") or d.get("door"):
            self.line(w("provision_done.where", site=w.name(d.get("site") or "-"), door=w.name(d.get("door") or "-")),
                      name="where")
        if not problems:
            self.line(w("provision_done.no_problems"), role="ok", name="no_problems")
            self.box.addStretch(1)
            return
        self.line(w("provision_done.problems", count=len(problems)), role="error", name="problems")
        grid = self.scrolled()
        for row, problem in enumerate(problems):
            name = problem.get("name") or ""
            grid.addWidget(label(w(f"check.{name}", default=name), role="error", wrap=False,
                                 name=f"problem_{name}"), row, 0)
            said = label(problem.get("remedy") or problem.get("detail") or "", name=f"remedy_{name}")
            said.setLayoutDirection(Qt.LeftToRight)
            grid.addWidget(said, row, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(len(problems), 1)
