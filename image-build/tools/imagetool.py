#!/usr/bin/env python3
"""Steps of the kiosk image build and its verification (called by build.sh and verify.sh).

Standard library only: it runs with the build host's python3. Settings come from the
KIOSK_IMG_* environment that build.sh loads from kiosk-image.conf.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import img_boot  # noqa: E402
import img_ext4  # noqa: E402
import img_stage  # noqa: E402
import img_synthetic  # noqa: E402
import img_verify  # noqa: E402

USER_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")


def env(name):
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"imagetool: {name} is not set (run through build.sh, which loads kiosk-image.conf)")
    return value


def cmd_layout(args):
    boot, root = img_boot.boot_and_root(args.image, boot_start=int(os.environ.get("KIOSK_IMG_BOOT_START", 8192)))
    print(f"BOOT_OFFSET={boot.offset} BOOT_BYTES={boot.nbytes} ROOT_OFFSET={root.offset} ROOT_BYTES={root.nbytes}")


def cmd_grow(args):
    img_boot.grow_last_partition(args.image, args.mib << 20)


def cmd_boot(args):
    """config.txt (UART, watchdog, Bluetooth off), cmdline.txt (no serial console), the example."""
    boot, _ = img_boot.boot_and_root(args.image, boot_start=int(env("KIOSK_IMG_BOOT_START")))
    fat = img_boot.FatPartition(args.image, boot.offset)
    label = fat.label()
    if label != env("KIOSK_IMG_BOOT_LABEL"):
        sys.exit(f"imagetool: boot partition label is {label!r}, expected {env('KIOSK_IMG_BOOT_LABEL')!r}")
    lines = edit_boot_files(fat.read, fat.write)
    print(f"boot: config.txt += {' '.join(lines)}; cmdline.txt without serial console; example added")


def cmd_boot_dir(args):
    """The same edits on a boot directory (pi-gen: ${ROOTFS_DIR}/boot/firmware)."""
    root = Path(args.dir)

    def read(name):
        return (root / name).read_bytes() if (root / name).exists() else None

    def write(name, data):
        (root / name).write_bytes(data.encode() if isinstance(data, str) else data)

    lines = edit_boot_files(read, write)
    print(f"boot dir: config.txt += {' '.join(lines)}; cmdline.txt without serial console; example added")


def edit_boot_files(read, write):
    lines = []
    if env("KIOSK_IMG_ENABLE_UART") == "1":
        lines.append("enable_uart=1")
    if env("KIOSK_IMG_WATCHDOG") == "1":
        lines.append("dtparam=watchdog=on")
    if env("KIOSK_IMG_DISABLE_BT") == "1":
        lines.append("dtoverlay=disable-bt")
    config = read("config.txt")
    if config is None:
        sys.exit("imagetool: the boot partition has no config.txt: is this a Raspberry Pi OS image?")
    write("config.txt", img_boot.edit_config_txt(config.decode(), lines))
    cmdline = read("cmdline.txt")
    if cmdline is None:
        sys.exit("imagetool: the boot partition has no cmdline.txt")
    write("cmdline.txt", img_boot.edit_cmdline(
        cmdline.decode(), remove_serial_console=env("KIOSK_IMG_REMOVE_SERIAL_CONSOLE") == "1"))
    example = Path(env("KIOSK_IMG_REPO")) / "image-build" / "kiosk-provision.toml.example"
    write("kiosk-provision.toml.example", example.read_bytes())
    return lines


def cmd_stage_files(args):
    """Units, drop-ins, rules, overlay, docs and fonts (no venv): pi-gen copies these into its rootfs."""
    repo, stage = Path(env("KIOSK_IMG_REPO")), Path(args.stage)
    img_stage.stage_systemd(repo, stage)
    img_stage.stage_overlay(repo, stage)
    for extra in os.environ.get("KIOSK_IMG_EXTRA_OVERLAY", "").split():
        img_stage.copy_overlay(Path(extra), stage)
    img_stage.stage_docs(repo, stage, env("KIOSK_IMG_PREFIX"), env("KIOSK_IMG_APT_PACKAGES"), env("KIOSK_IMG_FONTS"))
    try:
        img_stage.stage_provisioning_keys(stage, os.environ.get("KIOSK_IMG_PROVISIONING_KEYS", ""))
    except ValueError as e:
        sys.exit(f"imagetool: {e}")


def cmd_stage(args):
    """Everything the kiosk adds to the root file system, under STAGE."""
    repo, stage = Path(env("KIOSK_IMG_REPO")), Path(args.stage)
    prefix = env("KIOSK_IMG_PREFIX")
    t0 = time.monotonic()
    cmd_stage_files(args)
    simulators = env("KIOSK_IMG_SIMULATORS") == "1"
    wheel = img_stage.build_wheel(repo, env("KIOSK_IMG_BUILD_PYTHON"), args.wheel_dir, simulators=simulators)
    deps = env("KIOSK_IMG_DEPS")
    img_stage.stage_venv(stage, prefix=prefix, build_python=env("KIOSK_IMG_BUILD_PYTHON"),
                         wheel_dir=args.wheel_dir, wheelhouse=env("KIOSK_IMG_WHEELHOUSE"), deps=deps,
                         platforms=env("KIOSK_IMG_PIP_PLATFORMS"), target_python=env("KIOSK_IMG_TARGET_PYTHON"),
                         pyver=env("KIOSK_IMG_TARGET_PYVER"), simulators=simulators)
    os_release = (img_ext4.read_file(args.root_image, "/usr/lib/os-release")
                  or img_ext4.read_file(args.root_image, "/etc/os-release") or b"").decode()
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.splitlines()
                   if line.startswith("PRETTY_NAME=")), "unknown")
    etc_kiosk = stage / "etc" / "kiosk"
    etc_kiosk.mkdir(parents=True, exist_ok=True)
    etc_kiosk.chmod(0o750)
    (etc_kiosk / "build-info").write_text(_build_info(repo, deps, pretty))
    (etc_kiosk / "build-info").chmod(0o644)
    print(f"stage: {wheel.name}{' + kiosk-sim' if simulators else ''}, dependencies: {deps}, base: {pretty} "
          f"({time.monotonic() - t0:.1f} s)")


def cmd_wheels(args):
    """Build the kiosk wheel (and kiosk-sim's when KIOSK_IMG_SIMULATORS=1) from a clean copy, for pi-gen."""
    simulators = env("KIOSK_IMG_SIMULATORS") == "1"
    wheel = img_stage.build_wheel(Path(env("KIOSK_IMG_REPO")), env("KIOSK_IMG_BUILD_PYTHON"), args.wheel_dir,
                                  simulators=simulators)
    print(f"wheels: {wheel.name}{' + kiosk-sim' if simulators else ''}")


def _build_info(repo, deps, base_os):
    return img_stage.build_info(version=os.environ.get("KIOSK_IMG_VERSION") or img_stage.package_version(repo),
                                commit=os.environ.get("KIOSK_IMG_COMMIT") or img_stage.git_commit(repo),
                                base_name=os.environ.get("KIOSK_IMG_BASE_NAME", ""), base_os=base_os, deps=deps)


def cmd_build_info(args):
    sys.stdout.write(_build_info(Path(env("KIOSK_IMG_REPO")), args.deps, os.environ.get("KIOSK_IMG_BASE_OS", "")))


def cmd_users(args):
    """Add the kiosk user and groups to the base's passwd/group/shadow with systemd-sysusers --root."""
    stage = Path(args.stage)
    with tempfile.TemporaryDirectory(prefix="kiosk-users-") as tmp:
        (Path(tmp) / "etc").mkdir()
        for path in USER_FILES:
            data = img_ext4.read_file(args.root_image, path)
            if data is None:
                sys.exit(f"imagetool: the base root file system has no {path}")
            (Path(tmp) / path.lstrip("/")).write_bytes(data)
        conf = Path(env("KIOSK_IMG_REPO")) / "systemd" / "sysusers.d" / "kiosk.conf"
        subprocess.run(["systemd-sysusers", f"--root={tmp}", str(conf)], check=True, capture_output=True)
        for path in USER_FILES:
            dest = stage / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / path.lstrip("/"), dest)
    group = (stage / "etc/group").read_text()
    gid = next(line.split(":")[2] for line in group.splitlines() if line.startswith("kiosk:"))
    print(f"KIOSK_GID={gid}")


def cmd_apply(args):
    owners = {"/etc/kiosk": (0, args.kiosk_gid)}
    count = img_ext4.apply_tree(args.root_image, args.stage, replace_keep_owner=USER_FILES, owners=owners)
    print(f"root: {count} debugfs commands applied")


def cmd_verify(args):
    problems, facts = img_verify.verify(args.image, boot_start=int(os.environ.get("KIOSK_IMG_BOOT_START", 8192)),
                                        boot_label=os.environ.get("KIOSK_IMG_BOOT_LABEL", "bootfs"),
                                        root_label=os.environ.get("KIOSK_IMG_ROOT_LABEL", "rootfs"))
    for fact in facts:
        print(f"  {fact}")
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{args.image}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_synthetic(args):
    img_synthetic.make(args.out)
    print(f"{args.out}: synthetic Raspberry Pi OS-like base (boot FAT32 'bootfs' at 8192, ext4 'rootfs')")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="imagetool", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layout", help="print partition offsets as shell variables")
    p.add_argument("image")
    p.set_defaults(func=cmd_layout)
    p = sub.add_parser("grow", help="grow the image and its root partition")
    p.add_argument("image")
    p.add_argument("mib", type=int)
    p.set_defaults(func=cmd_grow)
    p = sub.add_parser("boot", help="edit the boot partition in place (mtools)")
    p.add_argument("image")
    p.set_defaults(func=cmd_boot)
    p = sub.add_parser("stage", help="assemble the files the kiosk adds to the root file system")
    p.add_argument("root_image")
    p.add_argument("stage")
    p.add_argument("wheel_dir")
    p.set_defaults(func=cmd_stage)
    p = sub.add_parser("stage-files", help="units, drop-ins, overlay, docs, fonts only (for pi-gen)")
    p.add_argument("stage")
    p.set_defaults(func=cmd_stage_files)
    p = sub.add_parser("wheels", help="build the kiosk wheel(s) from a clean copy of the tree (for pi-gen)")
    p.add_argument("wheel_dir")
    p.set_defaults(func=cmd_wheels)
    p = sub.add_parser("boot-dir", help="edit config.txt/cmdline.txt in a boot directory (for pi-gen)")
    p.add_argument("dir")
    p.set_defaults(func=cmd_boot_dir)
    p = sub.add_parser("build-info", help="print /etc/kiosk/build-info for this checkout")
    p.add_argument("deps")
    p.set_defaults(func=cmd_build_info)
    p = sub.add_parser("users", help="add the kiosk user/groups (systemd-sysusers --root)")
    p.add_argument("root_image")
    p.add_argument("stage")
    p.set_defaults(func=cmd_users)
    p = sub.add_parser("apply", help="write the stage into the root file-system image (debugfs)")
    p.add_argument("root_image")
    p.add_argument("stage")
    p.add_argument("kiosk_gid", type=int)
    p.set_defaults(func=cmd_apply)
    p = sub.add_parser("verify", help="check a built image; exit 1 with every problem listed")
    p.add_argument("image")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("synthetic-base", help="write the small synthetic base image used in CI")
    p.add_argument("out")
    p.set_defaults(func=cmd_synthetic)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (img_boot.LayoutError, img_ext4.Ext4Error, FileNotFoundError, ValueError) as e:
        print(f"imagetool {args.command}: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        print(f"imagetool {args.command}: {' '.join(map(str, e.cmd))} failed ({e.returncode}) {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
