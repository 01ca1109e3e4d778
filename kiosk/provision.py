"""First-boot provisioning: register the kiosk and write its settings (``kiosk provision``).

Reads ``kiosk-provision.toml`` from the boot partition, makes the device key, registers with
the central server (retrying with backoff while the screen says why it waits), writes
``/etc/kiosk/kiosk.toml``, the time zone and Wi-Fi, records the provisioning in the audit log
and erases the token from the boot partition. Every step can be repeated: a second run finds
the registration (``/etc/kiosk/registration.json``) and the key and registers nothing again.
A signed re-provisioning file changes the settings of a registered kiosk (provision_file.py).
"""

import dataclasses
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kiosk.files import fsync_dir
from kiosk import config, provision_file
from kiosk.errors import ConfigError, ProvisioningError, SyncError

log = logging.getLogger(__name__)

KIOSK_USER = "kiosk"
DONE_SUFFIX = ".done"
REJECTED_SUFFIX = ".rejected"
WIFI_CONNECTION = "kiosk-wifi"


@dataclass(frozen=True)
class Paths:
    """Where provisioning reads and writes; tests point these at temporary directories."""

    boot_dir: Path = Path("/boot/firmware")
    etc_dir: Path = Path("/etc")
    state_dir: Path = Path("/var/lib/kiosk")
    result_dir: Path = Path("/var/lib/kiosk-provision")   # root's: provision_request results

    @property
    def kiosk_etc(self):
        return Path(self.etc_dir) / "kiosk"

    @property
    def settings_file(self):
        return self.kiosk_etc / "kiosk.toml"

    @property
    def registration_file(self):
        return self.kiosk_etc / "registration.json"

    @property
    def device_key(self):
        return self.kiosk_etc / "device.key"

    @property
    def data_key(self):
        return self.kiosk_etc / "data.key"

    @property
    def ca_file(self):
        return self.kiosk_etc / "server-ca.pem"

    @property
    def provisioning_keys(self):
        """Public keys trusted to sign provisioning codes, baked in at image build."""
        return self.kiosk_etc / "provisioning-keys"

    @property
    def used_codes(self):
        return self.kiosk_etc / "used-codes.json"

    @property
    def request_dir(self):
        """The spool where the kiosk app files provisioning requests (provision_request.py)."""
        return Path(self.state_dir) / "requests"

    @property
    def database(self):
        return Path(self.state_dir) / "kiosk.db"

    @property
    def is_live_system(self):
        return Path(self.etc_dir) == Path("/etc")


@dataclass(frozen=True)
class Outcome:
    """What a run did: 'registered', 'resumed', 'reprovisioned' or 'nothing'."""

    action: str
    device_id: str = ""


class Console:
    """Plain-text status on the attached screen (tty1) until the touchscreen app is up."""

    def __init__(self, path=None):
        self.path = path

    def show(self, title, *lines):
        log.info("%s: %s", title, " / ".join(lines))
        if not self.path:
            return
        text = "\033[2J\033[H\n  KIOSK PROVISIONING: " + title + "\n\n" + "".join(f"  {line}\n" for line in lines)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            log.warning("cannot write to the console %s: %s", self.path, e)


def provision(*, paths=Paths(), file=None, console=None, sleep=time.sleep, clock=None, max_attempts=0,
              max_backoff_s=300.0, timeout_s=15.0, rng=None):
    """Run provisioning once; return an Outcome or raise ProvisioningError (shown on the console)."""
    from kiosk.clock import SystemClock

    console = console or Console()
    clock = clock or SystemClock()
    path = Path(file) if file else Path(paths.boot_dir) / provision_file.FILE_NAME
    if not path.exists():
        log.info("%s: no provisioning file, nothing to do", path)
        return Outcome("nothing")
    console.show("reading the provisioning file", str(path))
    try:
        pf = provision_file.load(path, boot_dir=paths.boot_dir)
    except ProvisioningError as e:
        console.show("the provisioning file has errors", *str(e).splitlines(),
                     "", "Fix kiosk-provision.toml on the SD card's boot partition, then restart the kiosk.")
        hook(console, "refused", source="file", reason="bad_file",
             remedy="Fix kiosk-provision.toml on the boot partition (kiosk provision --check names each problem).")
        raise
    registration = _read_registration(paths)
    try:
        if registration is not None:
            return _again(pf, registration, paths=paths, console=console, clock=clock)
        if pf.reprovision is not None:
            raise ProvisioningError("this is a re-provisioning file, but the kiosk was never provisioned: "
                                    "use a first-provisioning file with an enrolment token")
        return _first_time(pf, paths=paths, console=console, sleep=sleep, clock=clock, max_attempts=max_attempts,
                           max_backoff_s=max_backoff_s, timeout_s=timeout_s, rng=rng)
    except ProvisioningError as e:
        console.show("provisioning failed", *str(e).splitlines(), "", "See docs/provisioning.md for what to do.")
        hook(console, "failed", e)
        raise


def hook(console, event, *args, **kwargs):
    """Tell a console that models the screen (provision_status.StatusConsole) what happened."""
    method = getattr(console, event, None)
    if callable(method):
        method(*args, **kwargs)


def _first_time(pf, *, paths, console, sleep, clock, max_attempts, max_backoff_s, timeout_s, rng, extra=None):
    from kiosk.sync import keys

    paths.kiosk_etc.mkdir(parents=True, exist_ok=True)
    ca_file = _write_ca(pf, paths)
    _apply_system(pf, paths)
    console.show("making the device key")
    device_key = keys.load_or_create_device_key(paths.device_key)
    _give_to_kiosk(paths.device_key, mode=0o600)
    registration = register_with_retry(pf, device_key=device_key, ca_file=ca_file, console=console, sleep=sleep,
                                       clock=clock, max_attempts=max_attempts, max_backoff_s=max_backoff_s,
                                       timeout_s=timeout_s, rng=rng)
    from kiosk.sync import protocol

    record = {"device_id": registration.device_id, "server_url": pf.server_url,
              "server_public_key": registration.server_public_key,
              "server_signing_key": registration.server_signing_key, "public_key": protocol.public_key_hex(device_key),
              "token_sha256": pf.token_sha256, "registered_at": clock.time(), "site": pf.site, "door": pf.door,
              "signers": [pf.signing_public_key] if pf.signing_public_key else [], "sequence": 0,
              "server_settings": registration.settings}
    _finish(pf, record, paths=paths, console=console, clock=clock, action="registered", extra=extra)
    return Outcome("registered", registration.device_id)


def _again(pf, record, *, paths, console, clock):
    """A file on a kiosk that is already registered: resume, re-provision (signed) or reject."""
    device_id = record["device_id"]
    if pf.reprovision is not None:
        try:
            signer = provision_file.verify_signature(pf.path, pf.raw, record.get("signers", []))
            if pf.reprovision["device_id"] != device_id:
                raise ProvisioningError(f"reprovision.device_id is {pf.reprovision['device_id']!r}, "
                                        f"but this kiosk is {device_id!r}")
            if pf.reprovision["sequence"] <= record.get("sequence", 0):
                raise ProvisioningError(f"reprovision.sequence {pf.reprovision['sequence']} is not newer than "
                                        f"the last applied ({record.get('sequence', 0)}): an old file replayed?")
        except ProvisioningError as e:
            _reject(pf, paths, clock, device_id, str(e))
            raise
        if not pf.admin_pin_hash:   # as a re-provisioning code: kiosk.toml is rewritten whole, the PIN stays
            pf = dataclasses.replace(pf, admin_pin_hash=_current_admin_pin_hash(paths))
        record = {**record, "sequence": pf.reprovision["sequence"], "server_url": pf.server_url,
                  "site": pf.site, "door": pf.door}
        if pf.signing_public_key and pf.signing_public_key not in record["signers"]:
            record["signers"] = record["signers"] + [pf.signing_public_key]
        _write_ca(pf, paths)
        _apply_system(pf, paths)
        _finish(pf, record, paths=paths, console=console, clock=clock, action="reprovisioned",
                extra={"signer": signer[:16], "sequence": pf.reprovision["sequence"]})
        return Outcome("reprovisioned", device_id)
    if pf.token_sha256 and pf.token_sha256 == record.get("token_sha256") and paths.device_key.exists():
        # the same file again: an earlier run registered, then stopped before it finished
        console.show("already registered", f"Device {device_id}: finishing the remaining steps")
        _write_ca(pf, paths)
        _apply_system(pf, paths)
        _finish(pf, record, paths=paths, console=console, clock=clock, action="resumed")
        return Outcome("resumed", device_id)
    message = (f"this kiosk is already provisioned as device {device_id}; an unsigned file with another "
               "token cannot change it (re-flash the card, or use a signed re-provisioning file)")
    _reject(pf, paths, clock, device_id, message)
    raise ProvisioningError(message)


def _current_admin_pin_hash(paths):
    """The admin PIN hash in kiosk.toml; '' when it does not load (a signed file may be its repair)."""
    try:
        return config.load(paths.settings_file).security.admin_pin_hash
    except ConfigError as e:
        log.warning("the current settings do not load (%s): no admin PIN to keep", e)
        return ""


def register_with_retry(pf, *, device_key, ca_file, console, sleep, clock, max_attempts=0, max_backoff_s=300.0,
                        timeout_s=15.0, rng=None):
    """Register, retrying with backoff while the server is unreachable; a refusal is final."""
    from kiosk.backoff import Backoff
    from kiosk.sync.registration import register

    backoff = Backoff(base_s=2.0, cap_s=max_backoff_s, rng=rng)
    info = {"site": pf.site, "door": pf.door, "timezone": pf.timezone}
    attempt = 0
    while True:
        attempt += 1
        console.show("registering with the server", pf.server_url, f"Attempt {attempt}")
        hook(console, "attempt", server_url=pf.server_url, attempt=attempt)
        try:
            return register(server_url=pf.server_url, token=pf.enrolment_token, device_key=device_key,
                            ca_file=ca_file, timeout_s=timeout_s, info=info, clock=clock,
                            server_key_sha256=pf.server_key_sha256)
        except ProvisioningError as e:
            raise ProvisioningError(f"{e}\nThe token may be wrong, used or expired: ask for a new one "
                                    "and put it in kiosk-provision.toml.") from None
        except SyncError as e:
            if max_attempts and attempt >= max_attempts:
                raise ProvisioningError(f"the server at {pf.server_url} could not be reached after "
                                        f"{attempt} attempts: {e}") from None
            delay_s = backoff.failure(retry_after_s=getattr(e, "retry_after_s", None))
            console.show("waiting for the server", f"Cannot reach {pf.server_url}:", f"  {e}",
                         f"Attempt {attempt} failed; trying again in {delay_s:.0f} s.",
                         "Check the network cable or Wi-Fi, and server.url in kiosk-provision.toml.")
            hook(console, "retrying", server_url=pf.server_url, attempt=attempt, error=e, retry_in_s=delay_s)
            log.warning("registration attempt %d failed (%s); retrying in %.0f s", attempt, e, delay_s)
            sleep(delay_s)


def _finish(pf, record, *, paths, console, clock, action, extra=None):
    """The steps after registration, ``record`` (registration.json) kept last of the files; each is idempotent.

    The settings before the record: a cut before kiosk.toml is done is provisioned again at the
    next boot (same key and token: the server answers with the same device id), and a
    re-provisioning whose new sequence is not yet recorded is applied again. A cut between the two
    files leaves a kiosk that runs on its settings (they hold its device id) with the old record or
    none. The other order left a record with no settings: registered, and never starting.
    """
    from kiosk.storage import seal

    console.show("writing the settings")
    seal.DataKey.load_or_create(paths.data_key)
    _give_to_kiosk(paths.data_key, mode=0o600)
    write_settings(pf, record, paths)
    _write_json(paths.registration_file, record)
    _audit(paths, clock, action, {"device_id": record["device_id"], "site": pf.site, "door": pf.door,
                                  "server_url": pf.server_url, **(extra or {})})
    if pf.raw:  # a file on the boot partition (a code has nothing to retire)
        _retire_file(pf, DONE_SUFFIX, note=f"after provisioning as {record['device_id']}")
    console.show("done", f"Device {record['device_id']}", f"Site: {pf.site or '-'}   Door: {pf.door or '-'}",
                 "Starting the kiosk...")
    hook(console, "done", device_id=record["device_id"], site=pf.site, door=pf.door)


def write_settings(pf, record, paths):
    """Write kiosk.toml (checked by kiosk.config before it replaces the old one) and display.env."""
    sections = {}
    server = record.get("server_settings") or {}
    for layer in (server, pf.settings):
        for name, values in layer.items():
            if isinstance(values, dict):
                sections.setdefault(name, {}).update(values)
    try:
        config.build([("server settings", sections)])
    except ConfigError as e:  # the server sent something this firmware rejects: keep our own only
        log.warning("ignoring settings from the server that this firmware rejects: %s", e)
        sections = {name: dict(values) for name, values in pf.settings.items() if isinstance(values, dict)}
    sections.setdefault("sync", {}).update({"server_url": pf.server_url, "device_id": record["device_id"],
                                            "ca_file": str(paths.ca_file) if pf.ca_pem else ""})
    sections.setdefault("ui", {}).update({"language": pf.language})
    sections.setdefault("device", {}).update({"timezone": pf.timezone})
    sections.setdefault("storage", {})["data_dir"] = str(paths.state_dir)
    sections.setdefault("security", {}).update({
        "device_key_file": str(paths.device_key), "data_key_file": str(paths.data_key),
        "server_public_key": record.get("server_public_key", ""),
        "server_signing_key": record.get("server_signing_key", ""), "admin_pin_hash": pf.admin_pin_hash})
    text = ("# Written by `kiosk provision` from kiosk-provision.toml; a signed re-provisioning file\n"
            "# changes it. Check with: kiosk config check /etc/kiosk/kiosk.toml\n" + config.to_toml(sections))
    tmp = paths.settings_file.with_name(paths.settings_file.name + ".new")
    _write_private(tmp, text.encode(), mode=0o640)
    try:
        config.check_file(tmp)
    except ConfigError:
        tmp.unlink()
        raise
    os.replace(tmp, paths.settings_file)
    _give_to_kiosk(paths.settings_file, mode=0o640, group_only=True)
    display = paths.kiosk_etc / "display.env"
    display.write_text("# Environment for kiosk.service (Qt eglfs, for the touchscreen UI of a later issue):\n"
                       "# set Qt platform overrides here if a panel needs them, e.g.\n"
                       "# QT_QPA_EGLFS_PHYSICAL_WIDTH=155\n# QT_QPA_EGLFS_PHYSICAL_HEIGHT=86\n")


def _apply_system(pf, paths):
    """Time zone and Wi-Fi: files under etc_dir, and the running system's tools when it is /etc."""
    etc = Path(paths.etc_dir)
    (etc / "timezone").write_text(pf.timezone + "\n")
    localtime = etc / "localtime"
    if localtime.is_symlink() or localtime.exists():
        localtime.unlink()
    localtime.symlink_to(f"/usr/share/zoneinfo/{pf.timezone}")
    if not pf.wifi_ssid:
        return
    conn_dir = etc / "NetworkManager" / "system-connections"
    conn_dir.mkdir(parents=True, exist_ok=True)
    conn_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{WIFI_CONNECTION}.{pf.wifi_ssid}"))
    lines = ["[connection]", f"id={WIFI_CONNECTION}", f"uuid={conn_uuid}", "type=wifi", "autoconnect=true", "",
             "[wifi]", "mode=infrastructure", f"ssid={keyfile_ssid(pf.wifi_ssid)}", ""]
    if pf.wifi_psk:
        lines += ["[wifi-security]", "key-mgmt=wpa-psk", f"psk={keyfile_string(pf.wifi_psk)}", ""]
    lines += ["[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""]
    _write_private(conn_dir / f"{WIFI_CONNECTION}.nmconnection", "\n".join(lines).encode(), mode=0o600)
    _set_wifi_country(paths, pf.wifi_country)
    if paths.is_live_system:
        import subprocess

        for command in (["nmcli", "connection", "reload"], ["nmcli", "connection", "up", WIFI_CONNECTION],
                        ["iw", "reg", "set", pf.wifi_country]):
            try:
                subprocess.run(command, capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as e:
                log.warning("%s: %s", " ".join(command), e)


def keyfile_string(value):
    """A value escaped for a NetworkManager keyfile (GKeyFile rules): no newline can start a new key."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if out.startswith(" "):
        out = "\\s" + out[1:]
    return out


def keyfile_ssid(ssid):
    """An SSID for a NetworkManager keyfile: plain when that is unambiguous, else its bytes as 'n;n;...;'."""
    raw = ssid.encode("utf-8")
    plain = all(0x20 <= b <= 0x7E for b in raw) and b";" not in raw and b"\\" not in raw and ssid == ssid.strip()
    return ssid if plain else "".join(f"{b};" for b in raw)


def _set_wifi_country(paths, country):
    """cfg80211.ieee80211_regdom=CC in cmdline.txt: the regulatory domain from the first boot on."""
    cmdline = Path(paths.boot_dir) / "cmdline.txt"
    if not cmdline.exists():
        return
    words = [w for w in cmdline.read_text().split() if not w.startswith("cfg80211.ieee80211_regdom=")]
    cmdline.write_text(" ".join(words + [f"cfg80211.ieee80211_regdom={country}"]) + "\n")


def _write_ca(pf, paths):
    if not pf.ca_pem:
        return None
    paths.kiosk_etc.mkdir(parents=True, exist_ok=True)
    paths.ca_file.write_text(pf.ca_pem)
    paths.ca_file.chmod(0o644)
    return str(paths.ca_file)


def _audit(paths, clock, action, detail):
    from kiosk.storage import audit, db

    database = db.open_db(paths.database)
    try:
        with db.transaction(database):
            audit.audit(database, actor="technician", action=action, detail=detail, now=clock.time())
    finally:
        database.conn.close()
    for suffix in ("", "-wal", "-shm"):
        _give_to_kiosk(Path(str(paths.database) + suffix))


def _reject(pf, paths, clock, device_id, reason):
    """Move a refused file aside (secrets erased), so the kiosk keeps running on its settings."""
    log.error("provisioning file rejected: %s", reason)
    if paths.database.parent.exists():
        _audit(paths, clock, "provisioning_rejected", {"device_id": device_id, "reason": reason[:200]})
    _retire_file(pf, REJECTED_SUFFIX, note="(file rejected)")


def _retire_file(pf, suffix, *, note):
    """Rename the provisioning file to ``suffix`` with the token and Wi-Fi password erased."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    wiped = provision_file.without_secrets(pf.raw, note=f"{today} {note}")
    dest = pf.path.with_name(pf.path.name + suffix)
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(wiped)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    pf.path.unlink()
    sig = provision_file.signature_path(pf.path)
    if sig.exists():
        os.replace(sig, sig.with_name(sig.name + suffix))
    fsync_dir(pf.path.parent)


def _read_registration(paths):
    try:
        record = json.loads(paths.registration_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ProvisioningError(f"{paths.registration_file}: unreadable ({e}); restore it or re-flash") from None
    if not record.get("device_id"):
        raise ProvisioningError(f"{paths.registration_file}: has no device_id")
    return record


def _write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    _write_private(tmp, json.dumps(data, indent=2, sort_keys=True).encode(), mode=0o640)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    _give_to_kiosk(path, mode=0o640, group_only=True)


def _write_private(path, data, *, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _give_to_kiosk(path, *, mode=None, group_only=False):
    """Owner kiosk (or root:kiosk with ``group_only``) when that user exists, as on the device."""
    import grp
    import pwd

    path = Path(path)
    if path.is_symlink() or not path.exists():    # never chown a link's target (the kiosk user may plant one)
        return
    if mode is not None:
        path.chmod(mode)
    try:
        uid = 0 if group_only else pwd.getpwnam(KIOSK_USER).pw_uid
        gid = grp.getgrnam(KIOSK_USER).gr_gid
    except KeyError:
        return  # a development machine: no kiosk user, files stay with whoever runs this
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except PermissionError as e:
        log.warning("cannot hand %s to the kiosk user: %s", path, e)
