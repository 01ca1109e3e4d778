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
                   max_backoff_s=300.0, timeout_s=15.0, rng=None):
    """First provisioning from a signed code (provision_code.py); CodeRefusedError says why not.

    The code is checked against the keys baked into the image and the list of codes already
    used; it is then checked again as a provisioning file would be, and registered the same
    way. Its id is remembered once the kiosk is registered, so it cannot be shown again.
    """
    from kiosk.clock import SystemClock

    console = console or Console()
    clock = clock or SystemClock()
    used = pc.UsedCodes(paths.used_codes)
    try:
        code = pc.decode(text, public_keys=pc.load_public_keys(paths.provisioning_keys), now_s=clock.time(),
                         used=used)
        if _read_registration(paths) is not None:
            raise pc.CodeRefusedError("already_provisioned")
        ca_pem = _code_ca(code, paths)
        try:
            pf = provision_file.parse(pc.to_tables(code, ca_pem=ca_pem), path=Path("provisioning code"),
                                      boot_dir=paths.boot_dir)
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
