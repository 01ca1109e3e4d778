"""What the admin pages show and do on a running kiosk (``ports.admin_page(page, **args)``).

The admin flow (``kiosk.flows.admin``) checks page and argument names; this module reads the
running parts (storage, camera, sensor poller, board, sync worker, recent log lines) and runs
the few actions an admin may take. Every answer is a plain dict the screen renders. Nothing here
starts a process or reaches a shell; an export writes only onto a mounted USB stick (a block
device mounted under ``STICK_ROOTS``, as the image's udev rule mounts one), refusing links.
"""

import collections
import logging
import os
import re
from pathlib import Path

from kiosk.storage import db, events, outbox, people
from kiosk.storage.audit import audit

log = logging.getLogger(__name__)

PAGE_ROWS = 50
PUNCH_MODES = ("time_windows", "toggle", "first_in_last_out", "ask", "fixed")
PUNCH_MODE_META = "attendance.status_rule"  # the admin's choice, kept across restarts
# where USB sticks are mounted (the image's udev rule: /media/kiosk-usb; a desktop: /media/USER/LABEL)
STICK_ROOTS = ("/media", "/mnt")
MOUNTS = "/proc/self/mounts"


def mounted_sticks(*, roots=STICK_ROOTS, mounts=MOUNTS):
    """Sorted mount points of block devices under ``roots``: the folders an export may write to."""
    try:
        table = Path(mounts).read_text()
    except OSError:
        return []
    found = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].startswith("/dev/"):
            continue
        # the kernel writes a space, tab, newline or backslash in a path as an octal escape
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        if any(point.startswith(root.rstrip("/") + "/") for root in roots):
            found.add(point)
    return sorted(found)


class RecentLines(logging.Handler):
    """The last log lines, for the admin's log page (log lines never hold biometrics or PINs)."""

    def __init__(self, capacity=200):
        super().__init__(level=logging.INFO)
        self.lines = collections.deque(maxlen=capacity)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line that cannot be formatted is dropped, never raised
            pass


RECENT = RecentLines()


class AdminPages:
    """The admin pages over the running kiosk's parts (any may be None: the page says so)."""

    def __init__(self, *, settings, database, clock, board=None, camera=None, poller=None, gallery=None,
                 sync_worker=None, attendance=None, sensor_model=None, stick_roots=STICK_ROOTS, mounts=MOUNTS):
        self.settings = settings
        self.db = database
        self.clock = clock
        self.board = board
        self.camera = camera
        self.poller = poller
        self.gallery = gallery
        self.sync_worker = sync_worker
        self.attendance = attendance
        self.sensor_model = sensor_model or settings.fingerprint.sensor_model
        self.provisioning = None    # kiosk.admin_provisioning.AdminProvisioning, set by `kiosk run`
        self.stick_roots = tuple(stick_roots)
        self.mounts = mounts

    def answer(self, page, action=None, **args):
        handler = getattr(self, f"do_{action}" if action else f"page_{page}", None)
        if handler is None:
            raise ValueError(f"no admin {'action ' + action if action else 'page ' + page}")
        return {"page": page, **handler(**args)}

    # --- pages ----------------------------------------------------------------------------------

    def page_status(self):
        from kiosk import doctor
        from kiosk.doctor import FAIL, PASS

        report = doctor.run_checks(self.settings, only=("disk", "database", "keys", "provisioning", "clock"),
                                   clock=self.clock)
        checks = [{"name": c.name, "status": c.status, "detail": c.detail, "remedy": c.remedy} for c in report.checks]
        camera = self.camera
        checks.append({"name": "camera", "status": PASS if camera is not None and camera.is_healthy else FAIL,
                       "detail": "live" if camera is not None and camera.is_healthy else
                       (camera.error if camera is not None else "no camera"), "remedy": ""})
        sensor_ok = self.poller is not None and self.poller.is_alive
        checks.append({"name": "fingerprint", "status": PASS if sensor_ok else FAIL,
                       "detail": "polling" if sensor_ok else "sensor unavailable", "remedy": ""})
        return {"checks": checks, "faces": len(self.gallery) if self.gallery is not None else 0,
                "people": people.count_people(self.db)}

    def page_people(self, offset=0):
        offset = max(0, int(offset))
        rows = list(self.db.query("SELECT person_id, name, role, pin_hash IS NOT NULL AS has_pin FROM people "
                                  "ORDER BY person_id LIMIT ? OFFSET ?", [PAGE_ROWS, offset]))
        return {"rows": [dict(r) for r in rows], "offset": offset, "total": people.count_people(self.db)}

    def page_events(self, offset=0):
        from kiosk.flows.punch import day_start_s

        offset = max(0, int(offset))
        since = day_start_s(self.clock.time(), self.settings.device.timezone)
        rows = list(self.db.query(
            "SELECT seq, person_id, status_code, verify_mode, wall_time FROM attendance_events "
            "WHERE wall_time >= ? ORDER BY seq DESC LIMIT ? OFFSET ?", [events.iso_utc(since), PAGE_ROWS, offset]))
        return {"rows": [dict(r) for r in rows], "offset": offset}

    def page_export(self):
        return {"sticks": mounted_sticks(roots=self.stick_roots, mounts=self.mounts)}

    def page_sync(self):
        return {"server": self.settings.sync.server_url or "(not provisioned)",
                "running": bool(self.sync_worker is not None and self.sync_worker.is_alive)}

    def page_outbox(self):
        return dict(outbox.stats(self.db))

    def page_network(self):
        interfaces = []
        root = Path("/sys/class/net")
        for entry in sorted(root.iterdir()) if root.is_dir() else []:
            state = (entry / "operstate").read_text().strip() if (entry / "operstate").exists() else "?"
            interfaces.append({"name": entry.name, "state": state})
        return {"hostname": os.uname().nodename, "interfaces": interfaces, "server": self.settings.sync.server_url}

    def page_log(self):
        return {"lines": list(RECENT.lines)[-PAGE_ROWS:]}

    def page_door(self):
        return {"door_pulse_s": self.settings.gpio.door_pulse_s, "board": self.board is not None}

    def page_punch_mode(self):
        rule = self.attendance.rule.rule if self.attendance is not None else self.settings.attendance.status_rule
        return {"mode": rule, "modes": list(PUNCH_MODES)}

    def page_provisioning(self):
        if self.provisioning is None:
            return {"error": "provisioning is not available in this run"}
        return self.provisioning.page()

    # --- actions --------------------------------------------------------------------------------

    def _provisioning_action(self, name):
        if self.provisioning is None:
            return {"done": False, "error": "provisioning is not available in this run"}
        return getattr(self.provisioning, name)()

    def do_reprovision_code(self):
        return self._provisioning_action("reprovision_code")

    def do_reprovision_file(self):
        return self._provisioning_action("reprovision_file")

    def do_decommission(self):
        return self._provisioning_action("decommission")

    def do_clear_unknown_slots(self):
        if self.poller is None:
            return {"done": False, "error": "sensor unavailable"}
        from kiosk.flows.sensor_library import clear_unknown_slots

        database_path = self.settings.db_path

        def job(sensor):
            own = db.open_db(database_path)  # the sensor's thread uses its own connection
            try:
                return clear_unknown_slots(sensor, own)
            finally:
                own.close()

        cleared = self.poller.worker.run(job).result(timeout=60)
        log.warning("admin cleared sensor templates the database did not know: %s", cleared)
        return {"done": True, "cleared": list(cleared) if cleared is not None else []}

    def do_export(self, path=""):
        from kiosk.errors import ExportError
        from kiosk.storage.export import export_events

        if path not in mounted_sticks(roots=self.stick_roots, mounts=self.mounts):
            return {"done": False, "error": "no_stick"}
        try:
            result = export_events(self.db, path, tz=self.settings.device.timezone, now=self.clock.time(),
                                   device_name=self.settings.sync.device_id or "kiosk")
        except ExportError as e:  # a full or write-protected stick, a link: the reason, in words
            log.error("admin export to %s failed: %s", path, e)
            return {"done": False, "error": "export_failed", "reason": str(e)}
        # people's attendance leaves the kiosk on a stick: kept in the audit log as well as the journal
        audit(self.db, actor="admin", action="events_exported",
              detail={"folder": path, "events": result.events, "first_day": str(result.first_day),
                      "last_day": str(result.last_day)}, now=self.clock.time())
        log.info("admin exported %d event(s) to %s", result.events, path)
        return {"done": True, "events": result.events,
                "files": ", ".join(sorted((result.csv_path.name, result.attlog_path.name)))}

    def do_sync_now(self):
        if self.sync_worker is None:
            return {"done": False, "error": "not provisioned"}
        self.sync_worker.sync_now()
        return {"done": True}

    def do_door_test(self):
        if self.board is None:
            return {"done": False, "error": "no GPIO board"}
        self.board.open_door()
        log.info("admin door test")
        return {"done": True}

    def do_set_punch_mode(self, mode=""):
        if mode not in PUNCH_MODES:
            return {"done": False, "error": f"unknown mode {mode!r}"}
        was = self.page_punch_mode()["mode"]
        # the mode decides every punch's in or out: kept with the audit entry, then used
        with db.transaction(self.db):
            db.set_meta(self.db, PUNCH_MODE_META, mode)
            audit(self.db, actor="admin", action="punch_mode_set", detail={"mode": mode, "was": was},
                  now=self.clock.time())
        if self.attendance is not None:
            self.attendance.set_punch_rule(mode)
        log.info("admin set the punch-state mode to %s", mode)
        return {"done": True, "mode": mode}
