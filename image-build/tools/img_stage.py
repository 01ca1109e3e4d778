"""Assemble the tree of files the kiosk adds to the root file system (the "stage").

The stage mirrors the target root: ``stage/usr/lib/systemd/system/kiosk.service`` lands at
``/usr/lib/systemd/system/kiosk.service``. Units come from ``systemd/``, static files from
``image-build/overlay/``, the kiosk itself as a virtual environment built from wheels.
"""

import configparser
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNIT_DIR = "usr/lib/systemd/system"
WANTS_DIR = "etc/systemd/system/multi-user.target.wants"
# Where each part of systemd/ goes in the image.
SYSTEMD_LAYOUT = {
    "journald.conf.d": "etc/systemd/journald.conf.d",
    "system.conf.d": "etc/systemd/system.conf.d",
    "udev": "etc/udev/rules.d",
    "sysusers.d": "usr/lib/sysusers.d",
    "tmpfiles.d": "usr/lib/tmpfiles.d",
}


def read_unit(path):
    """A unit file as a ConfigParser (repeated keys keep the last value; enough for [Install])."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string(Path(path).read_text())
    return parser


def stage_systemd(repo, stage):
    """Copy units and drop-ins into the stage and enable units wanted by multi-user.target."""
    src = Path(repo) / "systemd"
    units = sorted([*src.glob("*.service"), *src.glob("*.path")])
    (stage / UNIT_DIR).mkdir(parents=True, exist_ok=True)
    (stage / WANTS_DIR).mkdir(parents=True, exist_ok=True)
    for unit in units:
        _copy(unit, stage / UNIT_DIR / unit.name, 0o644)
        wanted_by = read_unit(unit).get("Install", "WantedBy", fallback="").split()
        if "multi-user.target" in wanted_by:
            link = stage / WANTS_DIR / unit.name
            link.unlink(missing_ok=True)
            link.symlink_to(f"/{UNIT_DIR}/{unit.name}")
    for part, dest in SYSTEMD_LAYOUT.items():
        for f in sorted((src / part).glob("*")):
            _copy(f, stage / dest / f.name, 0o644)
    return [u.name for u in units]


def stage_overlay(repo, stage):
    """Copy image-build/overlay/ keeping its permission bits."""
    copy_overlay(Path(repo) / "image-build" / "overlay", stage)


def copy_overlay(overlay, stage):
    """Copy the files under ``overlay`` into the stage at the same paths, keeping permission bits."""
    if not overlay.is_dir():
        raise FileNotFoundError(f"overlay directory {overlay} does not exist")
    for path in sorted(overlay.rglob("*")):
        if path.is_file():
            _copy(path, stage / path.relative_to(overlay), path.stat().st_mode & 0o777)


def stage_docs(repo, stage, prefix, apt_packages, fonts):
    """The technician's doc, the provisioning example, the apt list and the fonts."""
    root = Path(repo)
    share = stage / prefix.lstrip("/") / "share"
    doc = root / "docs" / "provisioning.md"
    if doc.exists():
        _copy(doc, share / "doc" / "provisioning.md", 0o644)
    _copy(root / "image-build" / "kiosk-provision.toml.example", share / "kiosk-provision.toml.example", 0o644)
    lines = ["# Raspberry Pi OS packages the kiosk uses from the system (kiosk-setup installs missing ones)"]
    (stage / prefix.lstrip("/") / "apt-packages.txt").write_text("\n".join(lines + apt_packages.split()) + "\n")
    for font in fonts.split():
        if Path(font).exists():
            _copy(Path(font), stage / "usr/share/fonts/truetype/kiosk" / Path(font).name, 0o644)
        else:
            raise FileNotFoundError(f"KIOSK_IMG_FONTS: {font} does not exist on the build host")


def build_wheel(repo, build_python, out_dir, *, simulators=False):
    """Build the kiosk wheel (pure Python) with the build host's Python; return its path.

    ``simulators``: also build the kiosk-sim wheel from ``hw-sim/`` (for ``stage_venv``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # from a clean copy of the tree: setuptools reuses a build/ folder left by an earlier build in
    # a working copy, and would ship whatever stale modules it holds (the simulators, once)
    with tempfile.TemporaryDirectory(prefix="kiosk-wheel-") as scratch:
        tree = Path(scratch) / "tree"
        shutil.copytree(repo, tree, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "out", "__pycache__", ".hypothesis"))
        sources = [tree] + ([tree / "hw-sim"] if simulators else [])
        for source in sources:
            subprocess.run([build_python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(out_dir), str(source)], check=True)
    wheels = sorted(out_dir.glob("kiosk-[0-9]*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no kiosk wheel was built in {out_dir}")
    if simulators and not sorted(out_dir.glob("kiosk_sim-*.whl")):
        raise FileNotFoundError(f"no kiosk-sim wheel was built in {out_dir}")
    return wheels[-1]


def stage_venv(stage, *, prefix, build_python, wheel_dir, wheelhouse, deps, platforms,
               target_python, pyver, simulators=False):
    """Make the venv the device runs, for aarch64, without running anything on aarch64.

    A venv is a pyvenv.cfg, links to the system Python and a site-packages directory. Wheels
    are installed into it with ``pip install --target`` for the target's platform tags
    (installing a wheel only unpacks it, so the build host's architecture does not matter),
    from local directories only. ``deps``: "wheelhouse" installs every dependency from
    ``wheelhouse``; "none" installs the kiosk alone. ``simulators`` adds the kiosk-sim
    distribution (built by ``build_wheel(..., simulators=True)``); a production image has none.
    """
    venv = stage / prefix.lstrip("/") / "venv"
    venv_abs = f"{prefix}/venv"
    site = venv / "lib" / f"python{pyver}" / "site-packages"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    site.mkdir(parents=True, exist_ok=True)
    (venv / "lib64").unlink(missing_ok=True)
    (venv / "lib64").symlink_to("lib")
    for name in ("python", "python3", f"python{pyver}"):
        (venv / "bin" / name).unlink(missing_ok=True)
        (venv / "bin" / name).symlink_to(target_python)
    (venv / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(target_python)}\ninclude-system-site-packages = true\n"
        f"version = {pyver}\nexecutable = {target_python}\ncommand = {target_python} -m venv "
        f"--system-site-packages {venv_abs}\n")
    args = [build_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
            "--target", str(site), "--no-compile", "--only-binary=:all:", "--find-links", str(wheel_dir),
            "--python-version", pyver, "--implementation", "cp",
            "--abi", f"cp{pyver.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for tag in platforms.split():
        args += ["--platform", tag]
    if deps == "wheelhouse":
        if not Path(wheelhouse).is_dir():
            raise FileNotFoundError(
                f"KIOSK_IMG_WHEELHOUSE={wheelhouse} does not exist: run image-build/fetch-wheels.sh "
                "once (needs PyPI), or set KIOSK_IMG_DEPS=none to ship the kiosk without its dependencies")
        args += ["--find-links", str(wheelhouse)]
    elif deps == "none":
        args.append("--no-deps")
    else:
        raise ValueError(f"KIOSK_IMG_DEPS={deps!r}: expected 'wheelhouse' or 'none'")
    subprocess.run(args + ["kiosk"] + (["kiosk-sim"] if simulators else []), check=True)
    # Console scripts: pip wrote them for the build host's Python; point them at the venv's.
    scripts = site / "bin"
    for script in sorted(scripts.glob("*")) if scripts.is_dir() else []:
        lines = script.read_text().splitlines(keepends=True)
        if lines and lines[0].startswith("#!"):
            lines[0] = f"#!{venv_abs}/bin/python3\n"
        dest = venv / "bin" / script.name
        dest.write_text("".join(lines))
        dest.chmod(0o755)
    if scripts.is_dir():
        shutil.rmtree(scripts)
    _compile(site, build_python, pyver, f"{venv_abs}/lib/python{pyver}/site-packages")
    return venv


def _compile(site, build_python, pyver, target_site):
    """Precompile .pyc files: /opt is read-only to the service, so it could never write them.

    Only when the build Python has the target's version (bytecode is architecture-independent
    but version-specific); checked-hash pycs stay valid whatever mtimes the image gets.
    """
    version = subprocess.run([build_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if version != pyver:
        print(f"note: build Python is {version}, target {pyver}: not precompiling", file=sys.stderr)
        return False
    subprocess.run([build_python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "checked-hash",
                    "-s", str(site), "-p", target_site, str(site)], check=True)
    return True


def build_info(*, version, commit, base_name, base_os, deps, built_at=None):
    """Text of /etc/kiosk/build-info (KEY=value lines, shell- and Python-readable)."""
    built_at = built_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = {"KIOSK_VERSION": version, "KIOSK_COMMIT": commit, "KIOSK_BUILD_TIME": built_at,
              "KIOSK_BASE_IMAGE": base_name, "KIOSK_BASE_OS": base_os, "KIOSK_DEPS": deps}
    return "".join(f"{key}={_shell_quote(value)}\n" for key, value in fields.items())


def parse_build_info(text):
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value.strip("'")
    return out


def git_commit(repo):
    """`git describe --always --dirty` of the repo, or 'unknown' outside a git checkout."""
    result = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def package_version(repo):
    parser = configparser.ConfigParser()
    parser.read(Path(repo) / "setup.cfg")
    return parser["metadata"]["version"]


def stage_provisioning_keys(stage, keys):
    """/etc/kiosk/provisioning-keys: the fleet's public keys that may sign provisioning codes.

    ``keys`` is KIOSK_IMG_PROVISIONING_KEYS (hex Ed25519 public keys, space-separated); empty
    writes no file, and such an image accepts provisioning files only, no codes.
    """
    words = keys.split()
    bad = [w for w in words if len(w) != 64 or any(c not in "0123456789abcdefABCDEF" for c in w)]
    if bad:
        raise ValueError(f"KIOSK_IMG_PROVISIONING_KEYS: {bad[0][:20]!r} is not a 64-hex-digit Ed25519 public key")
    if not words:
        return None
    dest = stage / "etc" / "kiosk" / "provisioning-keys"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("# Public keys allowed to sign provisioning codes (KIOSK_IMG_PROVISIONING_KEYS at build)\n"
                    + "".join(w.lower() + "\n" for w in words))
    dest.chmod(0o644)
    return dest


def _shell_quote(value):
    value = str(value)
    return value if value and all(c.isalnum() or c in "-._:+/" for c in value) else "'" + value.replace("'", "") + "'"


def _copy(src, dest, mode):
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)
