"""Making provisioning codes on the technician's laptop or the server: key, payload, PNG, SVG, sheet.

Needs ``segno`` (setup.cfg extra ``tools``) to draw; the kiosk itself only reads codes. The
outputs carry an enrolment token, so they are written readable by their owner only.
"""

import html
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import provision_code
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

MAX_VALID_FOR_S = 90 * 86400.0
QR_ERROR_LEVEL = "m"        # 15 % of the code may be lost (a scratch, a glare spot) and still read
QR_SCALE = 8                 # pixels per module in the PNG: about 4 cm wide at 300 dpi for version 15
QR_BORDER = 4                # the quiet zone the QR standard asks for


@dataclass(frozen=True)
class MadeCode:
    """One code made from one provisioning file."""

    source: Path
    text: str = field(default="", repr=False)
    code_id: str = ""
    expires_at_s: float = 0.0
    label: str = ""
    png: Path | None = None
    svg: Path | None = None
    qr_version: int = 0
    left_out_pin: bool = False


def new_private_key(path):
    """Write a new fleet provisioning key (PKCS#8 PEM, mode 0600) at ``path``; return its public hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # never overwrite a fleet key
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    return public_hex(key)


def load_private_key(path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ProvisioningError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProvisioningError(f"{path}: not an Ed25519 key")
    return key


def public_hex(key):
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def payload_from_file(pf, *, now_s, valid_for_s, code_id=None, include_admin_pin=False):
    """The code payload for a checked first-provisioning file; what a code cannot carry is refused.

    The admin PIN hash (86 characters of scrypt) is left out unless asked for: it makes the code
    about 40 % denser, and a denser code is read from less far away (docs/benchmarks.md).
    """
    if pf.settings:
        raise ProvisioningError(f"{pf.path.name}: [settings] do not fit in a code; leave them to the server")
    if not 0 < valid_for_s <= MAX_VALID_FOR_S:
        raise ProvisioningError(f"valid for {valid_for_s:.0f} s: must be more than 0 and at most 90 days")
    payload = {"id": code_id or provision_code.new_code_id(), "exp": int(now_s + valid_for_s),
               "u": pf.server_url, "z": pf.timezone, "l": pf.language}
    if pf.reprovision is not None:      # a re-provisioning file: the code changes that kiosk (admin PIN asked)
        payload["dev"] = pf.reprovision["device_id"]
    else:
        payload["t"] = pf.enrolment_token
    optional = {"s": pf.site, "d": pf.door, "k": pf.server_key_sha256,
                "p": pf.admin_pin_hash if include_admin_pin else "", "rk": pf.signing_public_key}
    payload.update({key: value for key, value in optional.items() if value})
    if pf.ca_pem:
        payload["ca"] = provision_code.ca_fingerprint(pf.ca_pem)
    if pf.wifi_ssid:
        payload["w"] = [pf.wifi_ssid, pf.wifi_psk, pf.wifi_country]
    return payload


def make_codes(files, *, private_key, out_dir, now_s, valid_for_s, boot_dir=None, include_admin_pin=False):
    """Check each provisioning file, sign its code, and write NAME.png and NAME.svg under ``out_dir``."""
    from kiosk import provision_file

    segno = _segno()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for path in files:
        path = Path(path)
        pf = provision_file.load(path, boot_dir=boot_dir or path.parent)
        payload = payload_from_file(pf, now_s=now_s, valid_for_s=valid_for_s, include_admin_pin=include_admin_pin)
        if pf.admin_pin_hash and not include_admin_pin:
            log.warning("%s: admin.pin_hash left out of the code (--include-admin-pin carries it)", path.name)
        text = provision_code.encode(payload, private_key)
        qr = segno.make(text, error=QR_ERROR_LEVEL, micro=False)
        stem = f"{path.name.split('.')[0]}-{payload['id'][:8]}"
        png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
        for dest, kind in ((png, "png"), (svg, "svg")):
            qr.save(str(dest), kind=kind, scale=QR_SCALE, border=QR_BORDER)
            dest.chmod(0o600)
        label = " / ".join(part for part in (pf.site, pf.door) if part) or pf.server_url
        log.info("made code %s for %s (QR version %s)", payload["id"], label, qr.version)
        made.append(MadeCode(source=path, text=text, code_id=payload["id"], expires_at_s=payload["exp"],
                             label=label, png=png, svg=svg, qr_version=qr.version, left_out_pin=bool(
                                 pf.admin_pin_hash and not include_admin_pin)))
    return made


def write_sheet(made, dest, *, title="Kiosk provisioning codes"):
    """One printable HTML page with every code, its label, id and expiry (no token in clear)."""
    import time

    segno = _segno()
    cells = []
    for code in made:
        qr = segno.make(code.text, error=QR_ERROR_LEVEL, micro=False)
        expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(code.expires_at_s))
        cells.append(f'<figure>{qr.svg_inline(scale=4, border=QR_BORDER)}<figcaption><b>{html.escape(code.label)}'
                     f'</b><br>code {code.code_id[:8]} &middot; valid until {expiry}<br>'
                     f'{html.escape(code.source.name)}</figcaption></figure>')
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}figure{display:inline-block;margin:8mm;text-align:center;"
            "page-break-inside:avoid}svg{width:60mm;height:60mm}</style>"
            f"<h1>{html.escape(title)}</h1><p>Each code works once, on one kiosk, until its date. "
            "Show it to the kiosk's camera on the provisioning screen. Destroy this sheet after use: "
            "each code carries a one-time enrolment token.</p>" + "".join(cells))
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, page.encode())
    finally:
        os.close(fd)
    return Path(dest)


def _segno():
    try:
        import segno
    except ImportError:
        raise ProvisioningError("drawing QR codes needs segno: pip install 'kiosk[tools]'") from None
    return segno
