"""The admin's provisioning page on a running kiosk: re-provision by a signed code or file, decommission.

Reached from the admin menu; the admin flow opens it only to a session entered with the admin
PIN (kiosk/flows/admin.py PIN_PAGES), which is this kiosk's PIN check with its lockout, so the
PIN is not asked a second time here. What happens is said on the provisioning screens
(provision_status.py) through the kiosk's screen port while it runs, then on the admin page.

- re-provisioning by code: the running camera is searched for a signed re-provisioning code for
  this device for ``scan_s``; a forged, expired or reused code ends the search, refused with its
  reason; an accepted one rewrites the settings, and the kiosk restarts to use them;
- re-provisioning by file: a signed re-provisioning kiosk-provision.toml on the boot partition
  (provision_file.py checks the signature and sequence), then the same restart;
- decommissioning: the running sync worker is stopped, every pending record is uploaded from
  here (refused, wiping nothing, while the server cannot take them all), then the keys,
  templates, database and the sensor's library are wiped, and the kiosk stops.

Each action runs on the flows' thread and is bounded: a scan by ``scan_s``, registration by
one attempt (``max_attempts``), an upload by decommission's cycle limit.

On a real kiosk kiosk.service runs as the kiosk user with /etc/kiosk read-only, so none of the
three can be done from here: the page then files a request (provision_request.py) that
kiosk-provision-request.service applies as root after checking it itself, says "waiting for
the system to apply it", and shows the helper's result: at once when it comes within
``request_wait_s``, else on the page the next time it is opened.
"""

import logging
import os
import threading
import time
from pathlib import Path

from kiosk import provision, provision_file, provision_request
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

SCAN_S = 10.0           # under the flows' 15 s stall limit (app.FLOWS_STALL_LIMIT_S)
RESTART_AFTER_S = 8.0   # the result stays on screen this long before the kiosk restarts or stops
REQUEST_WAIT_S = 12.0   # waiting for the root helper, also under the flows' stall limit
REQUEST_POLL_S = 0.5
ACTIONS = ("reprovision_code", "reprovision_file", "decommission")


class AdminProvisioning:
    """The provisioning page's content and actions over the running kiosk's parts (AdminPages)."""

    def __init__(self, pages, *, paths, show, request_restart, request_stop, clock=None, scan_s=SCAN_S,
                 restart_after_s=RESTART_AFTER_S, timer=None, settings_dir=None, request_wait_s=REQUEST_WAIT_S,
                 sleep=None):
        self.pages = pages                  # kiosk.admin_pages.AdminPages: settings, db, camera, poller, sync
        self.paths = paths
        self.show = show
        self.request_restart = request_restart
        self.request_stop = request_stop
        self.clock = clock or pages.clock
        self.scan_s = scan_s
        self.restart_after_s = restart_after_s
        self.timer = timer or _later
        # the directory whose writability decides between doing it here and filing a request
        self.settings_dir = Path(settings_dir) if settings_dir is not None else Path(paths.kiosk_etc)
        self.request_wait_s = request_wait_s
        self.sleep = sleep or time.sleep
        self._pending = None        # (request id, action) filed and not answered yet

    def _status(self):
        from kiosk import first_boot

        return first_boot.status_console(lambda screen, **data: self.show(screen, **data), self.paths)

    def page(self):
        record = provision._read_registration(self.paths) or {}
        return {"device_id": record.get("device_id", ""), "site": record.get("site", ""),
                "door": record.get("door", ""), "server": record.get("server_url", ""),
                "file_waiting": (Path(self.paths.boot_dir) / provision_file.FILE_NAME).exists(),
                **self._request_state()}

    def _request_state(self):
        """The page's line about a filed request: still waiting, or what the system answered."""
        if self._pending is None:
            return {}
        request_id, action = self._pending
        result = provision_request.read_result(self.paths, request_id)
        if result is None:
            return {"request_waiting": True}     # in the spool, or taken by the helper and not answered yet
        answer = self._answered(result, action)
        return {"last_request": answer.get("said") or answer.get("error", "")}

    def _read_only(self):
        """True when this process cannot rewrite the settings (kiosk.service: /etc/kiosk is read-only)."""
        return not os.access(self.settings_dir, os.W_OK)

    def _ask_system(self, action, *, code=None):
        """File a request for the root helper, say so, and wait up to ``request_wait_s`` for its answer."""
        try:
            request_id = provision_request.file_request(self.paths, action, code=code)
        except OSError as e:
            return {"done": False, "error": f"cannot file the request ({e.strerror})"}
        self._pending = (request_id, action)
        waiting = {"waiting": True, "said": "request_waiting"}
        self.show("admin_page", page="provisioning", content=self.page(), actions=list(ACTIONS), result=waiting)
        polls = int(self.request_wait_s / REQUEST_POLL_S)    # counted, not timed: bounded whatever the clock
        for poll in range(polls + 1):
            result = provision_request.read_result(self.paths, request_id)
            if result is not None:
                return self._answered(result, action)
            if poll < polls:
                self.sleep(REQUEST_POLL_S)
        log.warning("provisioning request %s not answered within %g s", request_id[:8], self.request_wait_s)
        return waiting

    def _answered(self, result, action):
        """The page's result for the helper's answer; the restart or stop it calls for, once."""
        self._pending = None
        if not result.get("done"):
            if action == "decommission" and self.pages.sync_worker is not None:
                self.pages.sync_worker.start()      # nothing wiped: the kiosk goes on as before
            return {"done": False, "error": str(result.get("error", "refused"))}
        if action == "decommission":
            cleared = self._clear_sensor()
            self.timer(self.restart_after_s, self.request_stop)
            return {"done": True, "said": "decommissioned", "wiped": result.get("wiped", 0),
                    "sensor_cleared": cleared, "stop_in_s": self.restart_after_s}
        log.warning("re-provisioned by the system (%s); the kiosk restarts with the new settings", action)
        self.timer(self.restart_after_s, self.request_restart)
        return {"done": True, "said": "reprovisioned", "device_id": result.get("device_id", ""),
                "site": result.get("site", ""), "door": result.get("door", ""), "restart_in_s": self.restart_after_s}

    def _clear_sensor(self):
        """Empty the fingerprint sensor's library from here: the app, not the helper, holds the sensor."""
        if self.pages.poller is None:
            return False
        try:
            self.pages.poller.worker.run(lambda sensor: sensor.clear()).result(timeout=60)
            return True
        except Exception as e:      # the wipe is done; say the sensor was not emptied rather than fail
            log.error("the fingerprint sensor was not emptied (%s): clear it before reusing it", e)
            return False

    def reprovision_code(self):
        """Look for a signed re-provisioning code for ``scan_s``; apply it, then restart the kiosk."""
        from kiosk import code_reader, provision_by_code, provision_code

        camera = self.pages.camera
        if camera is None or not camera.is_healthy:
            return {"done": False, "error": "camera unavailable: use a signed re-provisioning file"}
        console = self._status()
        console.status.waiting()
        keys = provision_code.load_public_keys(self.paths.provisioning_keys)
        # read-only here (kiosk.service): root's used-code list may be unreadable to the app; the
        # root helper checks reuse against it, so the app's quick look skips it
        used = None if self._read_only() else provision_code.UsedCodes(self.paths.used_codes)
        refusals = []

        def refused(error):
            refusals.append(error)
            console.refused(source="code", reason=error.reason, remedy=error.remedy)

        scanner = code_reader.CodeScanner(
            check=lambda text: provision_code.decode(text, public_keys=keys, now_s=self.clock.time(), used=used))
        text = code_reader.scan_camera(camera, scanner, timeout_s=self.scan_s, clock=self.clock, on_refused=refused,
                                       stop_at_refusal=True)
        if text is None:
            last = refusals[-1] if refusals else None
            return {"done": False, "error": f"{last.reason}: {last.remedy}" if last else
                    f"no signed code seen within {self.scan_s:g} s: hold it flat, 20-30 cm from the camera"}
        if self._read_only():       # checked here for quick feedback only: the helper checks it again as root
            return self._ask_system("reprovision_code", code=text)
        try:
            outcome = provision_by_code.provision_code(text, paths=self.paths, console=console, clock=self.clock,
                                                       admin_verified=True, max_attempts=1)
        except provision_code.CodeRefusedError as e:
            return {"done": False, "error": f"{e.reason}: {e.remedy}"}
        except ProvisioningError as e:
            return {"done": False, "error": str(e).splitlines()[0]}
        return self._restart(outcome)

    def reprovision_file(self):
        """Apply a signed re-provisioning file from the boot partition, then restart the kiosk."""
        path = Path(self.paths.boot_dir) / provision_file.FILE_NAME
        if not path.exists():
            return {"done": False, "error": f"no {provision_file.FILE_NAME} on the boot partition"}
        if self._read_only():       # the helper reads the file itself, as root
            return self._ask_system("reprovision_file")
        try:
            outcome = provision.provision(paths=self.paths, console=self._status(), clock=self.clock, max_attempts=1)
        except ProvisioningError as e:
            return {"done": False, "error": str(e).splitlines()[0]}
        return self._restart(outcome)

    def _restart(self, outcome):
        record = provision._read_registration(self.paths) or {}
        log.warning("re-provisioned from the admin page (%s); the kiosk restarts with the new settings",
                    outcome.action)
        self.timer(self.restart_after_s, self.request_restart)
        return {"done": True, "said": "reprovisioned", "device_id": outcome.device_id, "site": record.get("site", ""),
                "door": record.get("door", ""), "restart_in_s": self.restart_after_s}

    def decommission(self):
        """Upload everything pending, then wipe keys, templates, database and sensor; the kiosk stops."""
        from kiosk import decommission
        from kiosk.storage import seal
        from kiosk.sync import service, worker

        pages, settings = self.pages, self.pages.settings
        if not settings.sync.device_id:
            return {"done": False, "error": "not provisioned"}
        if pages.sync_worker is not None:        # one uploader at a time: ours, or the helper's
            pages.sync_worker.stop()
        if self._read_only():
            return self._ask_system("decommission")
        uploader = service.build_worker(settings, pages.db, clock=self.clock,
                                        data_key=seal.DataKey.load(Path(settings.security.data_key_file)))
        clear_sensor = None
        if pages.poller is not None:
            def clear_sensor():
                pages.poller.worker.run(lambda sensor: sensor.clear()).result(timeout=60)
        try:
            done = decommission.decommission(settings=settings, paths=self.paths, pin=None, pin_verified=True,
                                             database=pages.db, run_sync_cycle=uploader.run_once,
                                             sync_status=lambda: worker.status(pages.db), clear_sensor=clear_sensor)
        except decommission.DecommissionRefusedError as e:
            if pages.sync_worker is not None:    # nothing wiped: the kiosk goes on as before
                pages.sync_worker.start()
            return {"done": False, "error": str(e)}
        finally:
            uploader.client.close()
        self.timer(self.restart_after_s, self.request_stop)
        return {"done": True, "said": "decommissioned", "wiped": len(done.wiped), "sensor_cleared": done.sensor_cleared,
                "stop_in_s": self.restart_after_s}


def _later(delay_s, action):
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()
    return timer

