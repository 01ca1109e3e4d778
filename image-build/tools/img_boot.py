"""The partition table (sfdisk) and the FAT boot partition (mtools, at an offset in the image).

mtools reaches a partition inside the image file as ``IMAGE@@OFFSET``, so nothing is mounted
and nothing is copied out and back.
"""

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
FAT_TYPES = {"b", "c", "0b", "0c"}
LINUX_TYPE = "83"


class LayoutError(ValueError):
    """The image does not have the Raspberry Pi OS partition layout."""


@dataclass(frozen=True)
class Partition:
    number: int
    start: int   # sectors
    size: int    # sectors
    type: str

    @property
    def offset(self):
        return self.start * SECTOR

    @property
    def nbytes(self):
        return self.size * SECTOR


def read_table(image):
    """The MBR partition table of ``image`` as (label id, [Partition])."""
    result = subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True)
    if result.returncode != 0:
        raise LayoutError(f"{image}: no readable partition table ({result.stderr.strip()})")
    table = json.loads(result.stdout)["partitiontable"]
    if table.get("label") != "dos":
        raise LayoutError(f"{image}: partition table is {table.get('label')!r}, expected an MBR ('dos')")
    if table.get("sectorsize", SECTOR) != SECTOR:
        raise LayoutError(f"{image}: sector size {table['sectorsize']}, expected {SECTOR}")
    parts = []
    for i, p in enumerate(table.get("partitions", []), start=1):
        number = int(re.search(r"(\d+)$", p["node"]).group(1)) if "node" in p else i
        parts.append(Partition(number, int(p["start"]), int(p["size"]), p["type"].lower()))
    return table.get("id", ""), parts


def boot_and_root(image, *, boot_start=8192):
    """(boot, root) partitions of a Raspberry Pi OS image, checked; LayoutError names what is wrong."""
    _, parts = read_table(image)
    if len(parts) != 2:
        raise LayoutError(f"{image}: {len(parts)} partitions, expected 2 (boot FAT, root ext4)")
    boot, root = parts
    if boot.type not in FAT_TYPES:
        raise LayoutError(f"{image}: partition 1 has type {boot.type}, expected FAT32 (c)")
    if boot.start != boot_start:
        raise LayoutError(f"{image}: boot partition starts at sector {boot.start}, expected {boot_start}")
    if root.type != LINUX_TYPE:
        raise LayoutError(f"{image}: partition 2 has type {root.type}, expected Linux (83)")
    if root.start < boot.start + boot.size:
        raise LayoutError(f"{image}: root partition overlaps the boot partition")
    size = Path(image).stat().st_size
    if root.offset + root.nbytes > size:
        raise LayoutError(f"{image}: root partition runs past the end of the file")
    return boot, root


def grow_last_partition(image, extra_bytes):
    """Make the image file longer and let partition 2 fill it (sfdisk on the file)."""
    with open(image, "r+b") as f:
        f.truncate(Path(image).stat().st_size + extra_bytes)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "-N", "2", str(image)],
                   input=", +\n", text=True, check=True, capture_output=True)


class FatPartition:
    """Files on the FAT partition at ``offset`` bytes into ``image``, through mtools."""

    def __init__(self, image, offset):
        self.spec = f"{image}@@{offset}"

    def _run(self, *args, check=True, text=False):
        return subprocess.run(list(args), capture_output=True, check=check, text=text,
                              env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})

    def read(self, name):
        """Bytes of ``name`` (path on the partition), or None if missing."""
        result = self._run("mtype", "-i", self.spec, f"::{name}", check=False)
        return result.stdout if result.returncode == 0 else None

    def write(self, name, data):
        """Create or replace ``name`` with ``data`` (bytes or str)."""
        import tempfile

        data = data.encode() if isinstance(data, str) else data
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            self._run("mcopy", "-o", "-i", self.spec, tmp.name, f"::{name}")

    def names(self):
        """Every file path on the partition."""
        result = self._run("mdir", "-i", self.spec, "-b", "-/", "::", check=False, text=True)
        return sorted(line[3:] if line.startswith("::/") else line
                      for line in result.stdout.splitlines() if line.strip())

    def label(self):
        result = self._run("mlabel", "-s", "-i", self.spec, "::", text=True)
        m = re.search(r"Volume label is (.*)", result.stdout)
        return m.group(1).strip() if m else ""


def edit_config_txt(text, lines):
    """Make each ``key=value`` line of ``lines`` effective in config.txt, under [all].

    An existing line for the same key (dtparam/dtoverlay: the same parameter name) in the
    [all] section is replaced; otherwise a commented block is appended at the end, where
    [all] is re-opened so an earlier conditional section ([pi4], [cm4]) cannot swallow it.
    """
    out = text.splitlines()
    missing = []
    for line in lines:
        ident = _config_ident(line)
        section = "all"
        found = False
        for i, existing in enumerate(out):
            stripped = existing.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped[1:-1].lower()
            elif section == "all" and _config_ident(stripped) == ident:
                out[i] = line
                found = True
        if not found:
            missing.append(line)
    if missing:
        out += ["", "# Kiosk (image-build/build.sh): fingerprint UART, hardware watchdog", "[all]"] + missing
    return "\n".join(out).rstrip("\n") + "\n"


def _config_ident(line):
    line = line.split("#", 1)[0].strip()
    if "=" not in line:
        return None
    key, value = line.split("=", 1)
    key = key.strip()
    if key in ("dtparam", "dtoverlay"):
        return key, value.split("=", 1)[0].split(",", 1)[0].strip()
    return key


def effective_config(text):
    """{key or (dtparam, name): value} of the lines that apply to every board ([all] and unconditional)."""
    section = "all"
    found = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].lower()
            continue
        ident = _config_ident(line)
        if ident and section == "all":
            found[ident] = line.split("=", 1)[1].strip()
    return found


def edit_cmdline(text, *, remove_serial_console=True):
    """cmdline.txt with the kernel console taken off the UART (the fingerprint sensor is there)."""
    words = text.split()
    if remove_serial_console:
        words = [w for w in words if not re.fullmatch(r"console=(serial\d|ttyAMA\d|ttyS\d)(,\d+)?", w)]
    return " ".join(words) + "\n"
