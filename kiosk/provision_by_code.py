"""First provisioning from a signed code (provision_code.py), registered like a provisioning file.

`kiosk provision --code-image` and the camera's provisioning mode come here. The code is
checked against the fleet keys baked into the image and the list of codes already used, then
checked again as a provisioning file would be, and the kiosk registers the same way.
"""

import logging
import time
from pathlib import Path

from kiosk import provision_code as pc
from kiosk import provision_file
from kiosk.errors import ProvisioningError
from kiosk.provision import Console, Paths, _audit, _first_time, _read_registration, hook

log = logging.getLogger(__name__)

CODE_CA_FILE = "kiosk-ca.pem"      # on the boot partition, beside where a file would go
FLEET_CA_FILE = "fleet-ca.pem"     # or baked into the image (KIOSK_IMG_EXTRA_OVERLAY)


def provision_code(text, *, paths=Paths(), console=None, sleep=time.sleep, clock=None, max_attempts=0,
                   max_backoff_s=300.0, timeout_s=15.0, rng=None, admin_pin=None, admin_verified=False):
    """First provisioning from a signed code (provision_code.py); CodeRefusedError says why not.

    The code is checked against the keys baked into the image and the list of codes already
    used; it is then checked again as a provisioning file would be, and registered the same
    way. Its id is remembered once the kiosk is registered, so it cannot be shown again.
    A re-provisioning code (``dev``) changes a registered kiosk, given its ``admin_pin`` (or
    ``admin_verified``: an admin session entered with that PIN, kiosk/admin_provisioning.py).
    """
    from kiosk.clock import SystemClock

    console = console or Console()
    clock = clock or SystemClock()
    used = pc.UsedCodes(paths.used_codes)
    try:
        code = pc.decode(text, public_keys=pc.load_public_keys(paths.provisioning_keys), now_s=clock.time(),
                         used=used)
        record = _read_registration(paths)
        if record is not None and "dev" not in code.payload:
            raise pc.CodeRefusedError("already_provisioned")
        if record is None and "dev" in code.payload:
            raise pc.CodeRefusedError("not_provisioned")
        tables = pc.to_tables(code, ca_pem=_code_ca(code, paths))
        if record is not None:
            current_pin_hash = _check_admin(code, record, paths, admin_pin, verified=admin_verified)
            # a code without a PIN hash keeps the kiosk's PIN (the settings are rewritten whole)
            tables.setdefault("admin", {}).setdefault("pin_hash", current_pin_hash)
        try:
            pf = provision_file.parse(tables, path=Path("provisioning code"), boot_dir=paths.boot_dir)
        except ProvisioningError as e:
            raise pc.CodeRefusedError("bad_field", " / ".join(str(e).splitlines()[1:])) from None
    except pc.CodeRefusedError as e:
        log.error("provisioning code refused: %s", e.reason)
        if paths.database.parent.exists():
            _audit(paths, clock, "provisioning_code_refused", {"reason": e.reason})
        console.show("provisioning code refused", e.remedy, f"(reason: {e.reason})")
        hook(console, "refused", source="code", reason=e.reason, remedy=e.remedy)
        raise
    console.show("provisioning code accepted", f"Server: {pf.server_url}", f"Site: {pf.site or '-'}")
    if record is not None:
        outcome = _reprovision(pf, record, code, paths=paths, console=console, clock=clock)
        used.remember(code.code_id, expires_at_s=code.expires_at_s, now_s=clock.time())
        return outcome
    try:
        outcome = _first_time(pf, paths=paths, console=console, sleep=sleep, clock=clock, max_attempts=max_attempts,
                              max_backoff_s=max_backoff_s, timeout_s=timeout_s, rng=rng,
                              extra={"code_id": code.code_id, "signer": code.signer[:16]})
    except ProvisioningError as e:
        console.show("provisioning failed", *str(e).splitlines(), "", "See docs/provisioning.md for what to do.")
        hook(console, "failed", e)
        raise
    used.remember(code.code_id, expires_at_s=code.expires_at_s, now_s=clock.time())
    return outcome


def _check_admin(code, record, paths, admin_pin, *, verified=False):
    """The kiosk's admin PIN hash, once the code is for this kiosk and the PIN matches it (or was checked)."""
    from kiosk import config, pinhash

    if code.payload["dev"] != record["device_id"]:
        raise pc.CodeRefusedError("wrong_device", f"this kiosk is {record['device_id']}")
    pin_hash = config.load(paths.settings_file).security.admin_pin_hash
    if verified and pin_hash:
        return pin_hash
    if not pin_hash or not admin_pin or not pinhash.verify_pin(admin_pin, pin_hash):
        raise pc.CodeRefusedError("admin_pin")
    return pin_hash


def _reprovision(pf, record, code, *, paths, console, clock):
    """Apply a re-provisioning code: server URL, site, door, time zone, language, Wi-Fi, CA."""
    from kiosk.provision import Outcome, _apply_system, _finish, _write_ca

    record = {**record, "server_url": pf.server_url, "site": pf.site, "door": pf.door}
    if pf.signing_public_key and pf.signing_public_key not in record.get("signers", []):
        record["signers"] = record.get("signers", []) + [pf.signing_public_key]
    _write_ca(pf, paths)
    _apply_system(pf, paths)
    _finish(pf, record, paths=paths, console=console, clock=clock, action="reprovisioned",
            extra={"code_id": code.code_id, "signer": code.signer[:16]})
    return Outcome("reprovisioned", record["device_id"])


def _code_ca(code, paths):
    """The CA certificate a code names by its sha256, from the boot partition or the image."""
    wanted = code.payload.get("ca")
    if not wanted:
        return ""
    candidates = (Path(paths.boot_dir) / CODE_CA_FILE, paths.kiosk_etc / FLEET_CA_FILE)
    for candidate in candidates:
        try:
            pem = candidate.read_text()
            if pc.ca_fingerprint(pem) == wanted:
                return pem
        except (OSError, ValueError, IndexError):
            continue
    raise pc.CodeRefusedError("ca_missing", "no CA certificate with the code's sha256")
