"""The systemd units: systemd-analyze verify, what they reference exists, and the directives
that make the appliance restart, recover from hangs and stay sandboxed."""

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "image-build" / "tools"))
import img_stage  # noqa: E402

SYSTEMD = ROOT / "systemd"
UNITS = sorted(p.name for p in [*SYSTEMD.glob("*.service"), *SYSTEMD.glob("*.path")])
HOST_UNITS = Path("/usr/lib/systemd/system")
DEPENDENCY_KEYS = ("Wants", "Requires", "After", "Before", "Conflicts", "BindsTo", "PartOf", "WantedBy")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecReload")

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir(),
                                   reason="systemd-analyze missing: apt-get install systemd")


def directives(path):
    """[(section, key, value)] of a unit file, repeated keys included."""
    out, section = [], None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(path, key):
    return [v for _, k, v in directives(path) if k == key]


def executables(path):
    """Absolute paths of the programs a unit runs (Exec* lines, prefixes like '-' stripped)."""
    found = []
    for key in EXEC_KEYS:
        for value in values(path, key):
            found.append(value.lstrip("-@:+!").split()[0])
    return found


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory):
    """A minimal root: the distribution's units (Bookworm's systemd is this one), ours as the image
    installs them, and each program our units run as an executable stub at its path."""
    root = tmp_path_factory.mktemp("unitroot")
    shutil.copytree(HOST_UNITS, root / img_stage.UNIT_DIR, symlinks=True)
    img_stage.stage_systemd(ROOT, root)
    for unit in UNITS:
        for exe in executables(SYSTEMD / unit):
            stub = root / exe.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
    return root


@needs_systemd
@pytest.mark.parametrize("unit", UNITS)
def test_unit_passes_systemd_analyze_verify(unit_root, unit):
    result = subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}", unit],
                            capture_output=True, text=True)
    # verify exits 0 on unknown keys but warns: any output at all is a failure here
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_systemd
def test_verify_catches_a_misspelled_directive(unit_root):
    """The check above is meaningful: a typo in a directive name is reported."""
    broken = unit_root / img_stage.UNIT_DIR / "kiosk-typo.service"
    broken.write_text((SYSTEMD / "kiosk.service").read_text().replace("WatchdogSec=", "WatchdogSecs="))
    result = subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}", broken.name],
                            capture_output=True, text=True)
    broken.unlink()
    assert "Unknown key 'WatchdogSecs'" in result.stderr


@needs_systemd
@pytest.mark.parametrize("unit", UNITS)
def test_every_referenced_unit_exists(unit_root, unit):
    unit_dir = unit_root / img_stage.UNIT_DIR
    for key in DEPENDENCY_KEYS:
        for value in values(SYSTEMD / unit, key):
            for name in value.split():
                template = re.sub(r"@[^.]+\.", "@.", name)
                assert (unit_dir / name).exists() or (unit_dir / template).exists(), f"{unit}: {key}={name}"


@pytest.mark.parametrize("unit", UNITS)
def test_every_program_a_unit_runs_is_shipped(unit):
    """Each Exec* program is built by the image (venv) or shipped in the overlay."""
    overlay = ROOT / "image-build" / "overlay"
    for exe in executables(SYSTEMD / unit):
        if exe == "/opt/kiosk/venv/bin/kiosk":
            cfg = configparser.ConfigParser()
            cfg.read(ROOT / "setup.cfg")
            assert "kiosk = kiosk.cli:main" in cfg["options.entry_points"]["console_scripts"]
        else:
            shipped = overlay / exe.lstrip("/")
            assert shipped.exists() and shipped.stat().st_mode & 0o111, f"{unit}: {exe} not in the overlay"


def test_kiosk_service_watchdog_restart_and_sandboxing():
    unit = SYSTEMD / "kiosk.service"
    d = {k: v for _, k, v in directives(unit)}
    # notify + watchdog: an app whose threads stop is killed and restarted
    assert d["Type"] == "notify"
    assert d["NotifyAccess"] == "main"
    assert 5 <= _seconds(d["WatchdogSec"]) <= 120
    # restart forever, but with start limits (and a reboot when they are hit)
    assert d["Restart"] == "always"
    assert _seconds(d["RestartSec"]) >= 1
    assert _seconds(d["StartLimitIntervalSec"]) > 0 and int(d["StartLimitBurst"]) >= 2
    assert d["StartLimitAction"] == "reboot"
    # who it runs as
    assert d["User"] == "kiosk"
    assert {"video", "dialout", "gpio", "input"} <= set(d["SupplementaryGroups"].split())
    # sandboxing
    assert d["ProtectSystem"] == "strict"
    assert d["StateDirectory"] == "kiosk"  # /var/lib/kiosk, writable under ProtectSystem=strict
    assert d["PrivateTmp"] == "yes" and d["NoNewPrivileges"] == "yes" and d["ProtectHome"] == "yes"
    assert d["CapabilityBoundingSet"] == ""
    assert d["DevicePolicy"] == "closed"
    allowed = {v.split()[0] for v in values(unit, "DeviceAllow")}
    camera = {"char-video4linux", "char-media", "char-dma_heap"}
    serial = {"char-ttyAMA", "char-ttyS", "char-ttyUSB"}
    gpio = {"char-gpiochip", "char-gpiomem"}
    assert camera | serial | gpio <= allowed
    assert d["SyslogIdentifier"] == "kiosk"
    assert d["ConditionPathExists"] == "/etc/kiosk/kiosk.toml"


def test_provision_request_helper_watches_the_apps_spool_and_runs_apply_request_as_root_sandboxed():
    """The path unit watches the spool the app files into; the helper writes where the app reads."""
    from kiosk import provision
    from kiosk.cli import build_parser
    from kiosk.commands.provision import REFUSED_EXIT

    paths = provision.Paths()
    watch = {k: v for _, k, v in directives(SYSTEMD / "kiosk-provision-request.path")}
    assert watch["DirectoryNotEmpty"] == str(paths.request_dir)
    assert watch["Unit"] == "kiosk-provision-request.service" and watch["WantedBy"] == "multi-user.target"
    assert int(watch["TriggerLimitBurst"]) >= 1
    spool = [line.split() for line in (SYSTEMD / "tmpfiles.d" / "kiosk.conf").read_text().splitlines()
             if line.startswith("d ") and line.split()[1] == str(paths.request_dir)]
    assert spool == [["d", str(paths.request_dir), "0700", "kiosk", "kiosk", "-"]]    # the app's to write
    unit = SYSTEMD / "kiosk-provision-request.service"
    d = {k: v for _, k, v in directives(unit)}
    assert d["Type"] == "oneshot" and "User" not in d                   # root: it writes /etc/kiosk
    assert "Install" not in {section for section, _, _ in directives(unit)}    # only the path unit starts it
    command = d["ExecStart"].split()
    assert command[1:3] == ["provision", "apply-request"]
    build_parser().parse_args(command[1:])
    assert int(d["SuccessExitStatus"]) == REFUSED_EXIT                  # a refused request is not a failure
    assert f"/var/lib/{d['StateDirectory']}" == str(paths.result_dir)   # root's directory, where the app reads
    assert d["ProtectSystem"] == "strict" and d["PrivateDevices"] == "yes" and d["NoNewPrivileges"] == "yes"
    assert set(d["ReadWritePaths"].split()) == {"/etc", "/var/lib/kiosk", "-/boot/firmware"}
    assert "CAP_SYS_ADMIN" not in d["CapabilityBoundingSet"] and d["CapabilityBoundingSet"]
    assert d["SystemCallFilter"] == "@system-service"


def test_firstboot_runs_before_the_kiosk_while_unregistered_or_with_a_provisioning_file():
    unit = SYSTEMD / "kiosk-firstboot.service"
    d = {k: v for _, k, v in directives(unit)}
    assert d["Type"] == "oneshot"
    assert "kiosk.service" in " ".join(values(unit, "Before"))
    assert sorted(values(unit, "ConditionPathExists")) == ["|!/etc/kiosk/registration.json",
                                                           "|/boot/firmware/kiosk-provision.toml"]
    assert "kiosk-firstboot.service" in " ".join(values(SYSTEMD / "kiosk.service", "After"))
    command = d["ExecStart"].split()
    assert command[1:3] == ["provision", "--console"]
    # the provisioning screen on the display, the camera reading codes until one is accepted, the self-test
    assert {"--screen", "--scan-camera", "--self-test"} <= set(command)
    assert command[command.index("--scan-timeout-s") + 1] == "0"
    assert "QT_QPA_PLATFORM=eglfs" in " ".join(values(unit, "Environment"))
    # the options the unit passes are ones `kiosk provision` accepts
    from kiosk.cli import build_parser

    build_parser().parse_args(command[1:])


@pytest.mark.parametrize("unit", UNITS)
def test_every_directive_is_explained(unit):
    """Each directive (but Description/Documentation) sits in a block that opens with a comment."""
    lines = (SYSTEMD / unit).read_text().splitlines()
    explained = False
    for number, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("["):
            explained = False
        elif s.startswith("#"):
            explained = True
        elif s.split("=")[0] not in ("Description", "Documentation"):
            assert explained, f"{unit}:{number}: {s} has no comment saying why"


def test_hardware_watchdog_and_journal_limits():
    watchdog = configparser.ConfigParser()
    watchdog.read(SYSTEMD / "system.conf.d" / "90-kiosk-watchdog.conf")
    # the BCM2835 watchdog counts at most ~15 s
    assert 0 < _seconds(watchdog["Manager"]["RuntimeWatchdogSec"]) <= 15
    assert _seconds(watchdog["Manager"]["RebootWatchdogSec"]) > 0
    journal = configparser.ConfigParser()
    journal.read(SYSTEMD / "journald.conf.d" / "90-kiosk.conf")
    j = journal["Journal"]
    assert j["Storage"] == "persistent"
    assert _megabytes(j["SystemMaxUse"]) <= 500
    assert _megabytes(j["SystemKeepFree"]) >= 256
    assert _megabytes(j["RuntimeMaxUse"]) <= 64


def test_udev_rules_are_well_formed_and_use_the_kiosk_groups():
    groups = {line.split()[2] for line in (SYSTEMD / "sysusers.d" / "kiosk.conf").read_text().splitlines()
              if line.startswith("m ")}
    pair = re.compile(r'^(?:[A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|=|\+=|:=)\s*"[^"]*"$')
    seen = set()
    for number, line in enumerate((SYSTEMD / "udev" / "99-kiosk.rules").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        # commas separate keys, except inside a quoted value (mount options)
        parts = [p.strip() for p in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', line)]
        for part in parts:
            assert pair.match(part), f"99-kiosk.rules:{number}: cannot parse {part!r}"
        assert any("==" in p for p in parts), f"99-kiosk.rules:{number}: no match key"
        for part in parts:
            if part.startswith("GROUP="):
                seen.add(part.split('"')[1])
    assert seen <= groups, f"rules assign groups the kiosk user is not in: {seen - groups}"
    assert {"video", "dialout", "gpio", "input"} <= seen


def test_usb_sticks_are_mounted_where_the_export_page_looks_and_run_nothing():
    from kiosk.admin_pages import STICK_ROOTS

    rules = [line for line in (SYSTEMD / "udev" / "99-kiosk.rules").read_text().splitlines()
             if "systemd-mount" in line and not line.startswith("#")]
    assert len(rules) == 1 and 'ENV{ID_BUS}=="usb"' in rules[0] and 'ACTION=="add"' in rules[0]
    command = re.search(r'RUN\{program\}\+="([^"]+)"', rules[0]).group(1).split()
    options = next(a.split("=", 1)[1] for a in command if a.startswith("--options=")).split(",")
    assert {"nosuid", "nodev", "noexec"} <= set(options)
    mount_point = command[-1]
    assert any(mount_point.startswith(root + "/") for root in STICK_ROOTS), mount_point


@needs_systemd
def test_sandbox_exposure_score(unit_root, capsys):
    """systemd's own rating of the sandbox (0 = locked down, 10 = exposed); printed, and held under 3."""
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={unit_root}",
                             "--no-pager", "kiosk.service"], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for kiosk.service: ([\d.]+)", result.stdout + result.stderr)
    assert m, result.stdout[-2000:] + result.stderr
    with capsys.disabled():
        print(f"\n  systemd-analyze security kiosk.service: exposure {m.group(1)}")
    assert float(m.group(1)) < 3.0


def _seconds(text):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", text.strip())
    assert m, text
    return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1)


def _megabytes(text):
    m = re.fullmatch(r"(\d+)([KMG])", text.strip())
    assert m, text
    return int(m.group(1)) * {"K": 1 / 1024, "M": 1, "G": 1024}[m.group(2)]
