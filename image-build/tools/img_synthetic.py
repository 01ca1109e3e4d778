"""A small synthetic stand-in for the Raspberry Pi OS Lite (Bookworm, arm64) image, for CI.

Same layout as the real one: MBR, FAT32 boot partition labelled ``bootfs`` at sector 8192,
ext4 root labelled ``rootfs`` after it; the boot files the build edits (config.txt,
cmdline.txt) with Bookworm's contents; a usr-merged root with Bookworm's os-release, users
and groups, and systemd's own units (copied from the build host's systemd 252, the version
Bookworm ships) so ``systemd-analyze verify`` can resolve every dependency. The kernel,
firmware and binaries are placeholders: this image builds and verifies, it does not boot.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DISK_ID = "0x5e3da3da"
BOOT_START = 8192
CONFIG_TXT = """\
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
"""
CMDLINE_TXT = ("console=serial0,115200 console=tty1 root=PARTUUID=5e3da3da-02 rootfstype=ext4 "
               "fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")
OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""
PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
systemd-timesync:x:996:996:systemd Time Synchronization:/:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
dialout:x:20:
video:x:44:
plugdev:x:46:
users:x:100:
nogroup:x:65534:
systemd-journal:x:999:
systemd-network:x:998:
input:x:101:
render:x:105:
netdev:x:106:
messagebus:x:107:
gpio:x:993:
i2c:x:994:
spi:x:995:
systemd-timesync:x:996:
"""
BOOT_PLACEHOLDERS = ("kernel8.img", "kernel_2712.img", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb",
                     "start4.elf", "fixup4.dat", "initramfs8", "overlays/README", "overlays/disable-bt.dtbo")
ROOT_STUBS = ("usr/bin/python3.11", "usr/bin/bash", "usr/bin/dash", "usr/sbin/nologin", "usr/bin/apt-get",
              "usr/bin/dpkg-query", "usr/bin/nmcli", "usr/lib/systemd/systemd",
              "usr/lib/raspberrypi-sys-mods/firstboot", "usr/bin/systemd-sysusers")


def make(out, *, boot_mib=64, root_mib=128, host_units="/usr/lib/systemd/system"):
    """Write the synthetic base image to ``out``."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="kiosk-synth-") as tmp:
        tmp = Path(tmp)
        boot_img, root_img = tmp / "boot.img", tmp / "root.img"
        _make_boot(boot_img, boot_mib, tmp / "bootfiles")
        _make_root(root_img, root_mib, tmp / "rootfs", Path(host_units))
        boot_sectors, root_sectors = boot_mib * 2048, root_mib * 2048
        root_start = BOOT_START + boot_sectors
        total = (root_start + root_sectors) * 512
        with open(out, "wb") as f:
            f.truncate(total)
        layout = (f"label: dos\nlabel-id: {DISK_ID}\nunit: sectors\n\n"
                  f"start={BOOT_START}, size={boot_sectors}, type=c\n"
                  f"start={root_start}, size={root_sectors}, type=83\n")
        subprocess.run(["sfdisk", "--quiet", str(out)], input=layout, text=True, check=True)
        for img, start in ((boot_img, BOOT_START), (root_img, root_start)):
            subprocess.run(["dd", f"if={img}", f"of={out}", "bs=4M", "oflag=seek_bytes", f"seek={start * 512}",
                            "conv=notrunc,sparse", "status=none"], check=True)
    return out


def _make_boot(img, mib, files):
    files.mkdir()
    (files / "config.txt").write_text(CONFIG_TXT)
    (files / "cmdline.txt").write_text(CMDLINE_TXT)
    (files / "issue.txt").write_text("Raspberry Pi reference 2024-11-19 (synthetic CI base, does not boot)\n")
    for name in BOOT_PLACEHOLDERS:
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_text(f"synthetic placeholder for {name}\n")
    with open(img, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mkfs.vfat", "-F", "32", "-s", "1", "-n", "bootfs", str(img)], check=True,
                   capture_output=True)
    subprocess.run(["mcopy", "-s", "-i", str(img)] + [str(p) for p in sorted(files.iterdir())] + ["::"],
                   check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def _make_root(img, mib, tree, host_units):
    for d in ("usr/bin", "usr/sbin", "usr/lib", "etc/systemd/system/getty.target.wants", "var/lib", "var/log",
              "boot/firmware", "home", "root", "tmp", "dev", "proc", "sys", "run", "opt"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (tree / link).symlink_to(target)
    (tree / "usr/lib/os-release").write_text(OS_RELEASE)
    (tree / "etc/os-release").symlink_to("../usr/lib/os-release")
    (tree / "etc/debian_version").write_text("12.8\n")
    (tree / "etc/hostname").write_text("raspberrypi\n")
    (tree / "etc/fstab").write_text("proc /proc proc defaults 0 0\n"
                                    "PARTUUID=5e3da3da-01 /boot/firmware vfat defaults 0 2\n"
                                    "PARTUUID=5e3da3da-02 / ext4 defaults,noatime 0 1\n")
    (tree / "etc/passwd").write_text(PASSWD)
    (tree / "etc/group").write_text(GROUP)
    shadow = "".join(f"{line.split(':')[0]}:*:19000:0:99999:7:::\n" for line in PASSWD.splitlines())
    gshadow = "".join(f"{line.split(':')[0]}:*::\n" for line in GROUP.splitlines())
    (tree / "etc/shadow").write_text(shadow)
    (tree / "etc/gshadow").write_text(gshadow)
    for name in ("shadow", "gshadow"):
        (tree / "etc" / name).chmod(0o640)
    for stub in ROOT_STUBS:
        path = tree / stub
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\necho 'synthetic CI base: placeholder binary' >&2\nexit 1\n")
        path.chmod(0o755)
    (tree / "usr/bin/python3").symlink_to("python3.11")
    (tree / "usr/bin/sh").symlink_to("dash")
    if host_units.is_dir():
        shutil.copytree(host_units, tree / "usr/lib/systemd/system", symlinks=True)
    (tree / "etc/systemd/system/getty.target.wants/getty@tty1.service").symlink_to(
        "/usr/lib/systemd/system/getty@.service")
    with open(img, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "rootfs", "-E", "root_owner=0:0", "-d", str(tree),
                    str(img)], check=True)
