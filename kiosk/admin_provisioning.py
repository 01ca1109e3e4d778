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
"""

import logging
import threading
from pathlib import Path

from kiosk import provision, provision_file
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

SCAN_S = 10.0           # under the flows' 15 s stall limit (app.FLOWS_STALL_LIMIT_S)
RESTART_AFTER_S = 8.0   # the result stays on screen this long before the kiosk restarts or stops


class AdminProvisioning:
    """The provisioning page's content and actions over the running kiosk's parts (AdminPages)."""

    def __init__(self, pages, *, paths, show, request_restart, request_stop, clock=None, scan_s=SCAN_S,
                 restart_after_s=RESTART_AFTER_S, timer=None):
        self.pages = pages                  # kiosk.admin_pages.AdminPages: settings, db, camera, poller, sync
        self.paths = paths
        self.show = show
        self.request_restart = request_restart
        self.request_stop = request_stop
        self.clock = clock or pages.clock
        self.scan_s = scan_s
        self.restart_after_s = restart_after_s
        self.timer = timer or _later

    def _status(self):
        from kiosk import first_boot

        return first_boot.status_console(lambda screen, **data: self.show(screen, **data), self.paths)

    def page(self):
        record = provision._read_registration(self.paths) or {}
        return {"device_id": record.get("device_id", ""), "site": record.get("site", ""),
                "door": record.get("door", ""), "server": record.get("server_url", ""),
                "file_waiting": (Path(self.paths.boot_dir) / provision_file.FILE_NAME).exists()}

    def _read_only(self):
        """Why this process cannot rewrite the settings (kiosk.service: /etc/kiosk is read-only), or None."""
        import os

        if os.access(self.paths.kiosk_etc, os.W_OK):
            return None
        return (f"{self.paths.kiosk_etc} is read-only to the kiosk app: put the signed re-provisioning file on "
                "the boot partition and restart the kiosk (the first-boot unit applies it as root)")

    def reprovision_code(self):
        """Look for a signed re-provisioning code for ``scan_s``; apply it, then restart the kiosk."""
        from kiosk import code_reader, provision_by_code, provision_code

        if self._read_only():
            return {"done": False, "error": self._read_only()}
        camera = self.pages.camera
        if camera is None or not camera.is_healthy:
            return {"done": False, "error": "camera unavailable: use a signed re-provisioning file"}
        console = self._status()
        console.status.waiting()
        keys = provision_code.load_public_keys(self.paths.provisioning_keys)
        used = provision_code.UsedCodes(self.paths.used_codes)
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
        if self._read_only():
            return {"done": False, "error": self._read_only()}
        if not path.exists():
            return {"done": False, "error": f"no {provision_file.FILE_NAME} on the boot partition"}
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
        if pages.sync_worker is not None:        # one uploader at a time: ours, on this thread
            pages.sync_worker.stop()
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

