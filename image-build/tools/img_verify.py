"""Check a built kiosk image without mounting it; every problem is reported, not just the first."""

import hashlib
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

import img_boot
import img_ext4
import img_stage

REQUIRED_BOOT_FILES = ("config.txt", "cmdline.txt", "kiosk-provision.toml.example")
REQUIRED_CONFIG = {"enable_uart": "1", ("dtparam", "watchdog"): "watchdog=on"}
# enabled units (kiosk-provision-request.service has no [Install]: its path unit starts it)
UNITS = ("kiosk.service", "kiosk-firstboot.service", "kiosk-setup.service", "kiosk-provision-request.path")
REQUIRED_FILES = (
    "/etc/systemd/journald.conf.d/90-kiosk.conf",
    "/etc/systemd/system.conf.d/90-kiosk-watchdog.conf",
    "/etc/udev/rules.d/99-kiosk.rules",
    "/usr/lib/sysusers.d/kiosk.conf",
    "/usr/lib/tmpfiles.d/kiosk.conf",
    "/etc/kiosk/build-info",
    "/opt/kiosk/libexec/kiosk-setup",
    "/opt/kiosk/venv/pyvenv.cfg",
    "/opt/kiosk/venv/bin/kiosk",
    "/opt/kiosk/apt-packages.txt",
    "/opt/kiosk/share/kiosk-provision.toml.example",
)
# Things that must never be in an image every device is flashed from.
FORBIDDEN_FILES = (
    "/etc/kiosk/kiosk.toml",          # a provisioned device's settings
    "/etc/kiosk/device.key",          # the device's identity key
    "/etc/kiosk/data.key",            # the template sealing key
    "/etc/kiosk/registration.json",
    "/var/lib/kiosk/kiosk.db",
)
FORBIDDEN_BOOT_FILES = ("kiosk-provision.toml", "kiosk-provision.toml.done")
# A header followed by a base64 body: a key. The header alone is a string constant in ssh-keygen
# or in cryptography's sources, and must not count.
PRIVATE_KEY_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}")
TOKEN_RE = re.compile(rb'enrolment_token\s*=\s*"([^"]*)"')
PLACEHOLDER_TOKENS = {b"", b"PASTE-THE-ONE-TIME-TOKEN-HERE"}
SSH_HOST_KEY_RE = re.compile(r"^/etc/ssh/ssh_host_.*_key$")
# Private keys that are public knowledge and ship in the base OS itself: GnuTLS's FIPS self-test
# keys, compiled into libgnutls.so.30 (libgnutls30 3.7.9, Debian 12 and Raspberry Pi OS
# Bookworm, pulled in by apt). The raw scan skips them; keyed by sha256 of the first 40 base64
# characters after the BEGIN line.
PUBLIC_TEST_KEYS = {
    "ac33b0d6f8f358d5bc4daf2dc4719157967a53b1bc7b7e10c0976a25ca632c19",  # GnuTLS self-test EC P-256
    "0ba1b8671a441db29c7ab08ded2915addca7c712d58012382a95dca2bb977a80",  # GnuTLS self-test RSA
    "4fa319eab6bb5b201abdb09c90c4e517657622833957016420f6cd858c1444d5",  # GnuTLS self-test DSA
    "fd8c3219fdfbdf0d1d2d9c790e1604e3cde6b26504128ff2c0464095d3b59d75",  # GnuTLS self-test GOST
    "9b077de168d7ad0ebe7bc0c85c794aa99c8f3dbb9ccaa8741aee4c33d4abb577",  # GnuTLS self-test GOST 2012-256
    "fead0c14dbce4ab6d0b97a2aa1b2de192578a6477178b2c2936ebfcf541888cb",  # GnuTLS self-test GOST 2012-512
}


def verify(image, *, boot_start=8192, boot_label="bootfs", root_label="rootfs"):
    """Return (problems, facts): lists of strings; no problems means the image is good."""
    problems, facts = [], []
    try:
        boot, root = img_boot.boot_and_root(image, boot_start=boot_start)
    except img_boot.LayoutError as e:
        return [str(e)], facts
    facts.append(f"partitions: boot FAT at {boot.start} ({boot.nbytes >> 20} MiB), "
                 f"root ext4 at {root.start} ({root.nbytes >> 20} MiB)")
    problems += _check_boot(img_boot.FatPartition(image, boot.offset), boot_label, facts)
    with tempfile.TemporaryDirectory(prefix="kiosk-verify-") as tmp:
        rootimg = Path(tmp) / "root.img"
        subprocess.run(["dd", f"if={image}", f"of={rootimg}", "bs=4M", "iflag=skip_bytes,count_bytes",
                        f"skip={root.offset}", f"count={root.nbytes}", "conv=sparse", "status=none"], check=True)
        problems += _check_root(rootimg, root_label, Path(tmp), facts)
        problems += _scan_raw(image, boot, root)
    return problems, facts


def _check_boot(fat, label, facts):
    problems = []
    if fat.label() != label:
        problems.append(f"boot partition label is {fat.label()!r}, expected {label!r}")
    names = fat.names()
    for name in REQUIRED_BOOT_FILES:
        if name not in names:
            problems.append(f"boot partition: {name} missing")
    for name in FORBIDDEN_BOOT_FILES:
        if name in names:
            problems.append(f"boot partition: {name} must not be in an image (it carries a device's token)")
    config = (fat.read("config.txt") or b"").decode("utf-8", "replace")
    effective = img_boot.effective_config(config)
    for key, value in REQUIRED_CONFIG.items():
        if effective.get(key) != value:
            shown = "=".join(key) if isinstance(key, tuple) else key
            problems.append(f"config.txt: {shown}={value.split('=')[-1]} is not set for all boards "
                            f"(found {effective.get(key)!r})")
    cmdline = (fat.read("cmdline.txt") or b"").decode("utf-8", "replace")
    if re.search(r"console=(serial\d|ttyAMA\d|ttyS\d)", cmdline):
        problems.append("cmdline.txt: the kernel console is still on the UART the fingerprint sensor uses")
    if "root=" not in cmdline:
        problems.append("cmdline.txt: no root= (the image would not boot)")
    example = fat.read("kiosk-provision.toml.example") or b""
    problems += _check_example(example)
    facts.append(f"boot files: {len(names)}")
    return problems


def _check_example(data):
    import tomllib

    try:
        parsed = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return [f"kiosk-provision.toml.example is not valid TOML: {e}"]
    comments = sum(1 for line in data.decode().splitlines() if line.lstrip().startswith("#"))
    problems = []
    if comments < 10:
        problems.append("kiosk-provision.toml.example has almost no comments: it is the technician's guide")
    if "server" not in parsed or "device" not in parsed:
        problems.append("kiosk-provision.toml.example lacks the [server] or [device] table")
    return problems


def _check_root(rootimg, label, tmp, facts):
    problems = []
    try:
        img_ext4.fsck(rootimg)
    except img_ext4.Ext4Error as e:
        problems.append(f"root file system is not clean: {e}")
    if img_ext4.label(rootimg) != label:
        problems.append(f"root partition label is {img_ext4.label(rootimg)!r}, expected {label!r}")
    for unit in UNITS:
        unit_path = f"/{img_stage.UNIT_DIR}/{unit}"
        if img_ext4.stat_path(rootimg, unit_path) is None:
            problems.append(f"{unit_path} missing")
        link = img_ext4.read_link(rootimg, f"/{img_stage.WANTS_DIR}/{unit}")
        if link != unit_path:
            problems.append(f"{unit} is not enabled (multi-user.target.wants link is {link!r})")
    for path in REQUIRED_FILES:
        if img_ext4.stat_path(rootimg, path) is None:
            problems.append(f"{path} missing")
    for path in FORBIDDEN_FILES:
        if img_ext4.stat_path(rootimg, path) is not None:
            problems.append(f"{path} is in the image: it is per-device and must be made on the device")
    launcher = img_ext4.read_file(rootimg, "/opt/kiosk/venv/bin/kiosk") or b""
    if not launcher.startswith(b"#!/opt/kiosk/venv/bin/python3"):
        problems.append("/opt/kiosk/venv/bin/kiosk does not run the venv's Python")
    info = img_stage.parse_build_info((img_ext4.read_file(rootimg, "/etc/kiosk/build-info") or b"").decode())
    for key in ("KIOSK_VERSION", "KIOSK_COMMIT", "KIOSK_BUILD_TIME"):
        if not info.get(key):
            problems.append(f"/etc/kiosk/build-info has no {key}")
    facts.append(f"build: version {info.get('KIOSK_VERSION')} commit {info.get('KIOSK_COMMIT')} "
                 f"dependencies {info.get('KIOSK_DEPS')}")
    passwd = (img_ext4.read_file(rootimg, "/etc/passwd") or b"").decode()
    user = [line.split(":") for line in passwd.splitlines() if line.startswith("kiosk:")]
    if not user:
        problems.append("/etc/passwd has no kiosk user")
    elif not user[0][6].endswith("nologin"):
        problems.append("the kiosk user has a login shell")
    shadow = (img_ext4.read_file(rootimg, "/etc/shadow") or b"").decode()
    for line in shadow.splitlines():
        name, _, rest = line.partition(":")
        if name == "kiosk" and not rest.startswith(("!", "*")):
            problems.append("the kiosk user has a password (appliances have no default passwords)")
    group = (img_ext4.read_file(rootimg, "/etc/group") or b"").decode()
    for name in ("video", "dialout", "gpio", "input", "render"):
        members = [line.split(":")[3].split(",") for line in group.splitlines() if line.startswith(name + ":")]
        if not members or "kiosk" not in members[0]:
            problems.append(f"the kiosk user is not in group {name}")
    problems += _scan_files(rootimg, tmp)
    return problems


def _scan_files(rootimg, tmp):
    """Unpacked scan of what the build added (and /etc): private keys, tokens, SSH host keys."""
    problems = []
    for top in ("/opt/kiosk", "/etc"):
        if img_ext4.stat_path(rootimg, top) is None:
            continue
        dumped = img_ext4.dump_tree(rootimg, top, tmp / "scan")
        for path in dumped.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            rel = top + "/" + str(path.relative_to(dumped))
            if SSH_HOST_KEY_RE.match(rel):
                problems.append(f"{rel}: SSH host keys baked into the image would be shared by every device")
            for name, data in _contents(path):
                where = rel if name is None else f"{rel}!{name}"
                if PRIVATE_KEY_RE.search(data):
                    problems.append(f"{where}: contains a PEM private key")
                for token in TOKEN_RE.findall(data):
                    if token not in PLACEHOLDER_TOKENS:
                        problems.append(f"{where}: contains an enrolment token")
    return problems


def _contents(path):
    data = path.read_bytes()
    yield None, data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.file_size < 50 << 20:
                    yield info.filename, z.read(info)


def _public_test_key(match):
    body = re.split(rb"\r?\n", match, maxsplit=1)[1][:40]
    return hashlib.sha256(body).hexdigest() in PUBLIC_TEST_KEYS


def _scan_raw(image, boot, root, chunk=16 << 20):
    """Raw scan of both partitions, free blocks included: a deleted key still counts."""
    problems = []
    with open(image, "rb") as f:
        for part in (boot, root):
            f.seek(part.offset)
            left, tail = part.nbytes, b""
            while left > 0:
                block = f.read(min(chunk, left))
                if not block:
                    break
                left -= len(block)
                data = tail + block
                m = next((m for m in PRIVATE_KEY_RE.finditer(data) if not _public_test_key(m.group(0))), None)
                if m:
                    problems.append(f"partition {part.number}: raw bytes contain a PEM private key header "
                                    f"({m.group(0).decode()})")
                    break
                tail = data[-64:]
    return problems
