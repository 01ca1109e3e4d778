"""The provisioning file on the boot partition: parse, validate, sign, and wipe its secrets.

``kiosk-provision.toml`` (see image-build/kiosk-provision.toml.example) carries the server
URL, its CA, a one-time enrolment token, the kiosk's place, time zone, language, Wi-Fi
and admin PIN hash. Every problem is reported with the key it concerns, all at once, so the
technician fixes the file in one go.

A *re-provisioning* file changes an already registered kiosk. It is the same format plus a
``[reprovision]`` table (``device_id``, an increasing ``sequence``) and a detached signature
``kiosk-provision.toml.sig``: base64 of the Ed25519 signature over the file's exact bytes,
by a key the kiosk learnt at first provisioning (``[admin] signing_public_key``).
"""

import base64
import hashlib
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from kiosk import config, pinhash
from kiosk.errors import ConfigError, ProvisioningError
# the admin PIN hash: hash_pin and check_pin stay importable from here for the CLI and old callers
from kiosk.pinhash import PIN_HASH_RE, hash_pin  # noqa: F401
from kiosk.pinhash import verify_pin as check_pin  # noqa: F401
from kiosk.urls import url_problem

log = logging.getLogger(__name__)

FILE_NAME = "kiosk-provision.toml"
SIGNATURE_SUFFIX = ".sig"
PLACEHOLDER_TOKEN = "PASTE-THE-ONE-TIME-TOKEN-HERE"
SECRET_KEYS = ("enrolment_token", "psk")
TABLES = {
    "server": {"url", "ca_file", "ca_pem", "enrolment_token", "signing_key_sha256"},
    "device": {"site", "door", "timezone", "language"},
    "wifi": {"ssid", "psk", "country"},
    "admin": {"pin_hash", "signing_public_key"},
    "settings": None,       # any kiosk.toml sections, checked by kiosk.config
    "reprovision": {"device_id", "sequence"},
}
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class ProvisionFile:
    """A validated provisioning file (secrets never appear in repr)."""

    path: Path
    raw: bytes = field(repr=False)
    server_url: str
    ca_pem: str = field(repr=False)
    enrolment_token: str = field(repr=False)
    site: str
    door: str
    timezone: str
    language: str
    wifi_ssid: str
    wifi_psk: str = field(repr=False)
    wifi_country: str
    admin_pin_hash: str = field(repr=False)
    signing_public_key: str
    server_key_sha256: str
    settings: dict
    reprovision: dict | None

    @property
    def token_sha256(self):
        return hashlib.sha256(self.enrolment_token.encode()).hexdigest() if self.enrolment_token else ""


def load(path, *, boot_dir=None):
    """Read and validate the file at ``path``; ProvisioningError lists every problem by key."""
    path = Path(path)
    boot_dir = Path(boot_dir) if boot_dir else path.parent
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProvisioningError(f"{path}: no provisioning file") from None
    except OSError as e:
        raise ProvisioningError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ProvisioningError(f"{path.name}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ProvisioningError(f"{path.name}: not valid TOML: {e}") from None
    return parse(data, raw=raw, path=path, boot_dir=boot_dir)


def parse(data, *, raw=b"", path=Path(FILE_NAME), boot_dir=Path(".")):
    """Validate a parsed provisioning table; see ``load``."""
    problems = []
    for table, value in data.items():
        if table not in TABLES:
            problems.append(f"[{table}]: unknown table (known: {', '.join(TABLES)})")
        elif not isinstance(value, dict):
            problems.append(f"{table}: expected a [{table}] table")
        elif TABLES[table] is not None:
            for key in value:
                if key not in TABLES[table]:
                    problems.append(f"{table}.{key}: unknown key (known: {', '.join(sorted(TABLES[table]))})")
    get = _Getter(data, problems)

    url = get.str("server", "url", required=True)
    url_trouble = url_problem(url) if url else None
    if url_trouble:
        problems.append(f"server.url: {url_trouble}")
        url = ""
    server_key_sha256 = get.str("server", "signing_key_sha256").lower()
    if server_key_sha256 and not re.fullmatch(r"[0-9a-f]{64}", server_key_sha256):
        problems.append("server.signing_key_sha256: must be the sha256 of the server's signing key, 64 hex digits")
    ca_pem = _ca(get, boot_dir, problems)
    if url and not url_trouble and urlparse(url).scheme == "https" and not ca_pem:
        log.info("server.url is https without a CA: the system's CA store will be used")
    token = get.str("server", "enrolment_token")
    if token == PLACEHOLDER_TOKEN:
        problems.append("server.enrolment_token: still the example's placeholder; paste the token "
                        "from the server's admin console")
    reprovision = data.get("reprovision") if isinstance(data.get("reprovision"), dict) else None
    if not token and reprovision is None:
        problems.append("server.enrolment_token: missing; a first provisioning needs a one-time token")

    tz = get.str("device", "timezone", default="UTC")
    if config.timezone_problem(tz):
        problems.append(f"device.timezone: {config.timezone_problem(tz)}")
    language = get.str("device", "language", default="ar")
    if language not in ("ar", "en"):
        problems.append(f"device.language: {language!r} is not one of ar, en")

    ssid = get.str("wifi", "ssid")
    psk = get.str("wifi", "psk")
    country = get.str("wifi", "country", default="")
    if ssid:
        if len(ssid.encode()) > 32:
            problems.append("wifi.ssid: longer than 32 bytes")
        if psk and not (8 <= len(psk) <= 63 or re.fullmatch(r"[0-9a-fA-F]{64}", psk)):
            problems.append("wifi.psk: must be 8 to 63 characters (or 64 hex digits)")
        if psk and not all(" " <= ch <= "~" for ch in psk):
            problems.append("wifi.psk: only printable ASCII characters (WPA passphrases allow no others)")
        if not COUNTRY_RE.match(country):
            problems.append(f"wifi.country: {country!r} is not a two-letter country code (e.g. 'SA')")

    pin_hash = get.str("admin", "pin_hash")
    if pin_hash and pinhash.problem(pin_hash):
        problems.append(f"admin.pin_hash: {pinhash.problem(pin_hash)}")
    signer = get.str("admin", "signing_public_key").lower()
    if signer and not re.fullmatch(r"[0-9a-f]{64}", signer):
        problems.append("admin.signing_public_key: must be an Ed25519 public key, 64 hex digits")

    settings = data.get("settings", {})
    if isinstance(settings, dict):
        try:
            config.build([(f"{path.name} [settings]", settings)])
        except ConfigError as e:
            problems.extend(getattr(e, "problems", None) or [str(e)])
    if reprovision is not None:
        if not isinstance(reprovision.get("device_id"), str) or not reprovision.get("device_id"):
            problems.append("reprovision.device_id: missing (the device this file is for)")
        if not isinstance(reprovision.get("sequence"), int) or reprovision.get("sequence", 0) < 1:
            problems.append("reprovision.sequence: missing or not a positive integer")

    if problems:
        raise ProvisioningError(f"{path.name} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return ProvisionFile(path=path, raw=raw, server_url=url, ca_pem=ca_pem, enrolment_token=token,
                         site=get.str("device", "site"), door=get.str("device", "door"), timezone=tz,
                         language=language, wifi_ssid=ssid, wifi_psk=psk,
                         wifi_country=country, admin_pin_hash=pin_hash, signing_public_key=signer,
                         server_key_sha256=server_key_sha256,
                         settings=settings if isinstance(settings, dict) else {}, reprovision=reprovision)


def _ca(get, boot_dir, problems):
    ca_file, ca_inline = get.str("server", "ca_file"), get.str("server", "ca_pem")
    if ca_file and ca_inline:
        problems.append("server.ca_file and server.ca_pem: give one of the two, not both")
        return ""
    pem = ca_inline
    if ca_file:
        where = Path(ca_file) if Path(ca_file).is_absolute() else Path(boot_dir) / ca_file
        try:
            pem = where.read_text()
        except (OSError, UnicodeDecodeError, ValueError):  # ValueError: a NUL in the name
            problems.append(f"server.ca_file: {ca_file!r} is not a readable file on the boot partition")
            return ""
    if pem:
        try:
            from cryptography import x509

            certs = x509.load_pem_x509_certificates(pem.encode())
        except ValueError:
            certs = []
        if not certs:
            problems.append("server.ca_file/ca_pem: not a PEM certificate (BEGIN CERTIFICATE ... END CERTIFICATE)")
            return ""
    return pem


class _Getter:
    """Typed access to ``data[table][key]`` that records problems instead of raising."""

    def __init__(self, data, problems):
        self.data, self.problems = data, problems

    def _value(self, table, key, default, required):
        section = self.data.get(table)
        if not isinstance(section, dict) or key not in section:
            if required:
                self.problems.append(f"{table}.{key}: missing")
            return default
        return section[key]

    def str(self, table, key, *, default="", required=False):
        value = self._value(table, key, default, required)
        if not isinstance(value, str):
            self.problems.append(f"{table}.{key}: expected text in quotes, got {value!r}")
            return default
        return value.strip()

    def int(self, table, key, *, default=0):
        value = self._value(table, key, default, False)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{table}.{key}: expected a whole number, got {value!r}")
            return default
        return value


# --- signatures ----------------------------------------------------------------------------------

def signature_path(path):
    path = Path(path)
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign(raw, private_key):
    """The .sig file content for provisioning bytes ``raw`` (an admin tool and tests use this)."""
    return base64.b64encode(private_key.sign(raw)).decode() + "\n"


def verify_signature(path, raw, signers):
    """Return the hex key that signed ``raw`` (from its .sig file); ProvisioningError otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig_path = signature_path(path)
    if not signers:
        raise ProvisioningError("this kiosk has no re-provisioning key (admin.signing_public_key was not "
                                "set at first provisioning): it cannot accept a changed file; re-flash it")
    try:
        signature = base64.b64decode(sig_path.read_text().strip(), validate=True)
    except FileNotFoundError:
        raise ProvisioningError(f"the kiosk is already provisioned: a changed file needs its signature "
                                f"{sig_path.name} next to it") from None
    except (ValueError, OSError):
        raise ProvisioningError(f"{sig_path.name}: not a base64 signature") from None
    for signer in signers:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer)).verify(signature, raw)
            return signer
        except (InvalidSignature, ValueError):
            continue
    raise ProvisioningError(f"{sig_path.name}: the signature does not match the file or a trusted key")


# --- wiping --------------------------------------------------------------------------------------

def without_secrets(raw, *, note):
    """The file's text with the token and Wi-Fi password lines replaced by a comment."""
    text = raw.decode("utf-8")
    pattern = re.compile(r'^(\s*)(%s)\s*=.*$' % "|".join(SECRET_KEYS), re.M)
    wiped = pattern.sub(lambda m: f"{m.group(1)}# {m.group(2)}: erased {note}", text)
    parsed = tomllib.loads(wiped)
    if any(key in table for table in parsed.values() if isinstance(table, dict) for key in SECRET_KEYS):
        raise ProvisioningError("could not erase the secrets from the provisioning file (unusual layout)")
    return wiped
