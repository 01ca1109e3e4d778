"""The root side of a provisioning request (``kiosk provision apply-request``): check, apply, say.

Run by kiosk-provision-request.service when the kiosk app files a request
(provision_request.py says what is checked and why). One request per run; its outcome is
written to the result file either way, so the admin page can show it.
"""

import logging
import os
import stat
from pathlib import Path

from kiosk import provision, provision_file
from kiosk.errors import ConfigError, ProvisioningError
from kiosk.provision_request import RequestRefusedError, take_request, write_result

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 600      # a file's problems, all of them, but bounded on screen


def apply_pending(paths, *, clock=None, timeout_s=15.0):
    """Handle the request waiting in ``paths.request_dir``; its result dict (None: no request)."""
    from kiosk.clock import SystemClock

    clock = clock or SystemClock()
    try:
        request = take_request(paths.request_dir)
    except RequestRefusedError as e:
        log.warning("provisioning request refused: %s", e)
        result = {"id": "", "action": "", "done": False, "error": str(e), "at_s": clock.time()}
        write_result(paths, result)
        return result
    if request is None:
        return None
    action = request["action"]
    log.info("provisioning request %s: %s", request["id"][:8], action)
    try:
        if provision._read_registration(paths) is None:
            raise RequestRefusedError("this kiosk is not registered: the first-boot unit provisions it")
        _check_state_files(paths)
        outcome = ACTIONS[action](request, paths=paths, clock=clock, timeout_s=timeout_s)
    except ProvisioningError as e:
        reason = f"{e.reason}: {e.remedy}" if hasattr(e, "reason") else " ".join(str(e).split())[:MAX_REASON_CHARS]
        log.warning("provisioning request %s (%s) refused: %s", request["id"][:8], action,
                    getattr(e, "reason", reason))
        outcome = {"done": False, "error": reason}
    except (ConfigError, OSError) as e:       # settings that do not load, a file that cannot be written
        log.error("provisioning request %s (%s) failed: %s", request["id"][:8], action, e)
        outcome = {"done": False, "error": f"failed: {e}"}
    result = {"id": request["id"], "action": action, **outcome, "at_s": clock.time()}
    write_result(paths, result)
    return result


def _check_state_files(paths):
    """Root is about to open the kiosk's database, in a directory the kiosk user owns: no links in place of it."""
    from kiosk import config

    databases = {Path(paths.database)}
    if paths.settings_file.exists():
        databases.add(Path(config.load(paths.settings_file).db_path))
    for database in databases:
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{database}{suffix}")
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                raise RequestRefusedError(f"{path} is not a plain file (a link?): nothing was changed")


def _reprovision_code(request, *, paths, clock, timeout_s):
    from kiosk import provision_by_code

    # the fleet key, expiry, used-code list and device are all checked here, as root, against
    # files the kiosk user cannot write; the app's own check of the code only gave quick feedback
    outcome = provision_by_code.provision_code(request["code"], paths=paths, clock=clock, admin_verified=True,
                                               max_attempts=1, timeout_s=timeout_s)
    return _reprovisioned(outcome, paths)


def _reprovision_file(request, *, paths, clock, timeout_s):
    path = Path(paths.boot_dir) / provision_file.FILE_NAME
    if not path.exists():
        raise RequestRefusedError(f"no {provision_file.FILE_NAME} on the boot partition")
    pf = provision_file.load(path, boot_dir=paths.boot_dir)
    if pf.reprovision is None:      # a first-provisioning file is the first-boot unit's business
        raise RequestRefusedError(f"{provision_file.FILE_NAME} is not a re-provisioning file ([reprovision] and "
                                  "its signature)")
    outcome = provision.provision(paths=paths, file=path, clock=clock, max_attempts=1, timeout_s=timeout_s)
    return _reprovisioned(outcome, paths)


def _reprovisioned(outcome, paths):
    record = provision._read_registration(paths) or {}
    return {"done": True, "said": "reprovisioned", "device_id": outcome.device_id, "site": record.get("site", ""),
            "door": record.get("door", "")}


def _decommission(request, *, paths, clock, timeout_s):
    """As `kiosk provision decommission`, without the PIN and the sensor (the app holds the sensor)."""
    from kiosk import config, decommission
    from kiosk.storage import db, seal
    from kiosk.sync import service, worker

    settings = config.load(paths.settings_file)
    if not settings.sync.device_id:
        raise RequestRefusedError("not registered: nothing to upload")
    database = db.open_db(settings.db_path)
    uploader = service.build_worker(settings, database, clock=clock,
                                    data_key=seal.DataKey.load(Path(settings.security.data_key_file)))
    try:
        done = decommission.decommission(settings=settings, paths=paths, pin=None, pin_verified=True,
                                         database=database, run_sync_cycle=uploader.run_once,
                                         sync_status=lambda: worker.status(database))
    except decommission.DecommissionRefusedError:
        database.conn.close()
        for suffix in ("", "-wal", "-shm"):     # files root made while syncing stay the kiosk's
            provision._give_to_kiosk(Path(f"{settings.db_path}{suffix}"))
        raise
    finally:
        uploader.client.close()
    return {"done": True, "said": "decommissioned", "wiped": len(done.wiped),
            "uploaded_cycles": done.uploaded_cycles}


ACTIONS = {"reprovision_code": _reprovision_code, "reprovision_file": _reprovision_file,
           "decommission": _decommission}
