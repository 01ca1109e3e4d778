"""The SD-card image: built from the synthetic base without mounting, then verified; the
verifier itself is shown to catch what it is there to catch."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "image-build" / "tools"))
import img_boot  # noqa: E402
import img_ext4  # noqa: E402
import img_stage  # noqa: E402
import img_verify  # noqa: E402

TOOLS = ("sfdisk", "mtype", "mcopy", "mkfs.vfat", "mke2fs", "debugfs", "e2fsck", "resize2fs", "systemd-sysusers")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="image tools missing: scripts/install-system-deps.sh")
IMAGE_BUILD = ROOT / "image-build"
FLEET_PUBLIC_KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"   # a public key only


def build_env(**extra):
    env = {**os.environ, "KIOSK_IMG_DEPS": "none", "KIOSK_IMG_GROW_MB": "256",
           "KIOSK_IMG_PROVISIONING_KEYS": FLEET_PUBLIC_KEY, **extra}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(base, image) built by the documented commands; the build time is printed."""
    work = tmp_path_factory.mktemp("image")
    base, image = work / "base.img", work / "kiosk.img"
    subprocess.run([IMAGE_BUILD / "make-synthetic-base.sh", base], check=True, capture_output=True)
    t0 = time.monotonic()
    result = subprocess.run([IMAGE_BUILD / "build.sh", base, image], env=build_env(),
                            capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"\n  image build from the synthetic base: {elapsed:.1f} s")
    return base, image


def root_image(image, dest):
    _, root = img_boot.boot_and_root(image)
    subprocess.run(["dd", f"if={image}", f"of={dest}", "bs=4M", "iflag=skip_bytes,count_bytes",
                    f"skip={root.offset}", f"count={root.nbytes}", "status=none"], check=True)
    return dest


def test_built_image_passes_verification(built):
    _, image = built
    result = subprocess.run([IMAGE_BUILD / "verify.sh", image], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("OK")
    assert "FAIL" not in result.stdout


def test_layout_and_boot_partition(built):
    base, image = built
    boot, root = img_boot.boot_and_root(image)
    base_boot, base_root = img_boot.boot_and_root(base)
    assert boot == base_boot                       # the boot partition is edited in place
    assert root.start == base_root.start and root.size == base_root.size + 256 * 2048
    fat = img_boot.FatPartition(image, boot.offset)
    config = fat.read("config.txt").decode()
    effective = img_boot.effective_config(config)
    assert effective["enable_uart"] == "1"
    assert effective[("dtparam", "watchdog")] == "watchdog=on"
    assert effective[("dtoverlay", "disable-bt")] == "disable-bt"
    assert "[cm4]\n# Enable host mode" in config and "otg_mode=1" in config   # base lines kept
    cmdline = fat.read("cmdline.txt").decode()
    assert "console=serial0" not in cmdline and "console=tty1" in cmdline and "root=PARTUUID=" in cmdline
    example = fat.read("kiosk-provision.toml.example")
    assert example == (IMAGE_BUILD / "kiosk-provision.toml.example").read_bytes()


def test_root_contents_units_enabled_user_and_stamp(built, tmp_path):
    _, image = built
    rootimg = root_image(image, tmp_path / "root.img")
    img_ext4.fsck(rootimg)
    for unit in ("kiosk.service", "kiosk-firstboot.service", "kiosk-setup.service", "kiosk-provision-request.path"):
        shipped = img_ext4.read_file(rootimg, f"/usr/lib/systemd/system/{unit}")
        assert shipped == (ROOT / "systemd" / unit).read_bytes()
        assert img_ext4.read_link(rootimg, f"/etc/systemd/system/multi-user.target.wants/{unit}") == \
            f"/usr/lib/systemd/system/{unit}"
    helper = "kiosk-provision-request.service"     # shipped, started by its path unit only
    assert img_ext4.read_file(rootimg, f"/usr/lib/systemd/system/{helper}") == (ROOT / "systemd" / helper).read_bytes()
    assert img_ext4.read_link(rootimg, f"/etc/systemd/system/multi-user.target.wants/{helper}") is None
    passwd = img_ext4.read_file(rootimg, "/etc/passwd").decode()
    assert "kiosk:x:" in passwd and "root:x:0:0:root:/root:/bin/bash" in passwd   # base users kept
    shadow_stat = img_ext4.stat_path(rootimg, "/etc/shadow")
    assert shadow_stat[1] == 0o640                 # replaced files keep their mode
    etc_kiosk = img_ext4.stat_path(rootimg, "/etc/kiosk")
    kiosk_gid = next(int(line.split(":")[2]) for line in img_ext4.read_file(rootimg, "/etc/group").decode()
                     .splitlines() if line.startswith("kiosk:"))
    assert etc_kiosk[0] == "directory" and etc_kiosk[1] == 0o750 and etc_kiosk[3] == kiosk_gid
    info = img_stage.parse_build_info(img_ext4.read_file(rootimg, "/etc/kiosk/build-info").decode())
    assert info["KIOSK_VERSION"] == img_stage.package_version(ROOT)
    assert info["KIOSK_COMMIT"] == img_stage.git_commit(ROOT)
    assert info["KIOSK_BASE_OS"] == "Debian GNU/Linux 12 (bookworm)"
    # the venv: the kiosk's own code, byte-compiled, linked to the system Python
    assert img_ext4.read_link(rootimg, "/opt/kiosk/venv/bin/python3") == "/usr/bin/python3"
    cfg = img_ext4.read_file(rootimg, "/opt/kiosk/venv/pyvenv.cfg").decode()
    assert "include-system-site-packages = true" in cfg
    site = "/opt/kiosk/venv/lib/python3.11/site-packages"
    assert img_ext4.read_file(rootimg, f"{site}/kiosk/cli.py") == (ROOT / "kiosk" / "cli.py").read_bytes()
    assert img_ext4.stat_path(rootimg, f"{site}/kiosk/__pycache__/cli.cpython-311.pyc") is not None
    # no simulators unless asked for (KIOSK_IMG_SIMULATORS=1)
    for absent in (f"{site}/kiosk_sim", f"{site}/kiosk_sim_bench", f"{site}/kiosk/bench/sync.py",
                   "/opt/kiosk/venv/bin/kiosk-sim"):
        assert img_ext4.stat_path(rootimg, absent) is None, absent
    assert img_ext4.stat_path(rootimg, f"{site}/kiosk/bench/gallery.py") is not None
    assert img_ext4.stat_path(rootimg, "/usr/share/fonts/truetype/kiosk/DejaVuSans.ttf") is not None
    keys = img_ext4.read_file(rootimg, "/etc/kiosk/provisioning-keys").decode()
    assert FLEET_PUBLIC_KEY in keys.splitlines()                    # KIOSK_IMG_PROVISIONING_KEYS baked in


def test_units_verify_against_the_built_root_and_their_programs_exist(built, tmp_path):
    """systemd-analyze verify --root on the image's own tree: the units, everything they
    reference, and the programs they run (through the launcher's #! to the system Python)."""
    _, image = built
    rootimg = root_image(image, tmp_path / "root.img")
    tree = tmp_path / "tree"
    tree.mkdir()
    for top in ("/usr", "/etc", "/opt"):
        img_ext4.dump_tree(rootimg, top, tree)
    for link in ("bin", "sbin", "lib"):
        (tree / link).symlink_to(f"usr/{link}")
    for unit in ("kiosk.service", "kiosk-firstboot.service", "kiosk-setup.service", "kiosk-provision-request.path",
                 "kiosk-provision-request.service"):
        result = subprocess.run(["systemd-analyze", "verify", f"--root={tree}", unit], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr.strip(), f"{unit}: {result.stderr}"
    launcher = (tree / "opt/kiosk/venv/bin/kiosk").read_text().splitlines()[0]
    interpreter = tree / launcher[2:].lstrip("/")
    resolved = interpreter
    while resolved.is_symlink():
        target = os.readlink(resolved)
        resolved = (tree / target.lstrip("/")) if target.startswith("/") else resolved.parent / target
    assert resolved.is_file() and os.access(resolved, os.X_OK), f"{launcher} does not resolve in the image"


def test_verify_catches_baked_secrets_and_missing_settings(built, tmp_path):
    _, image = built
    bad = tmp_path / "bad.img"
    shutil.copyfile(image, bad)
    boot, root = img_boot.boot_and_root(bad)
    fat = img_boot.FatPartition(bad, boot.offset)
    fat.write("kiosk-provision.toml", '[server]\nenrolment_token = "tok-12345"\n')
    config = fat.read("config.txt").decode().replace("dtparam=watchdog=on", "#dtparam=watchdog=on")
    fat.write("config.txt", config)
    rootimg = root_image(bad, tmp_path / "root.img")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    stage = tmp_path / "stage"
    (stage / "etc/kiosk").mkdir(parents=True)
    (stage / "etc/kiosk/device.key").write_bytes(pem)
    (stage / "opt/kiosk").mkdir(parents=True)
    (stage / "opt/kiosk/left-over.toml").write_text('enrolment_token = "abc-real-token"\n')
    img_ext4.apply_tree(rootimg, stage)
    subprocess.run(["dd", f"if={rootimg}", f"of={bad}", "bs=4M", "oflag=seek_bytes", f"seek={root.offset}",
                    "conv=notrunc", "status=none"], check=True)
    problems, _ = img_verify.verify(bad)
    text = "\n".join(problems)
    assert "kiosk-provision.toml must not be in an image" in text
    assert "dtparam=watchdog=on is not set" in text
    assert "/etc/kiosk/device.key is in the image" in text
    assert "/etc/kiosk/device.key: contains a PEM private key" in text
    assert "/opt/kiosk/left-over.toml: contains an enrolment token" in text
    assert "raw bytes contain a PEM private key" in text


def test_build_refuses_a_base_with_another_layout(tmp_path):
    odd = tmp_path / "odd.img"
    with open(odd, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["sfdisk", "--quiet", str(odd)], input="label: dos\nstart=2048, size=100000, type=c\n",
                   text=True, check=True)
    result = subprocess.run([IMAGE_BUILD / "build.sh", odd, tmp_path / "out.img"], env=build_env(),
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "1 partitions, expected 2" in result.stderr
    assert not (tmp_path / "out.img").exists()


def test_config_txt_edit_replaces_keeps_and_is_idempotent():
    base = "dtparam=audio=on\nenable_uart=0\n[cm4]\notg_mode=1\nenable_uart=0\n[all]\n"
    once = img_boot.edit_config_txt(base, ["enable_uart=1", "dtparam=watchdog=on"])
    assert img_boot.edit_config_txt(once, ["enable_uart=1", "dtparam=watchdog=on"]) == once
    effective = img_boot.effective_config(once)
    assert effective["enable_uart"] == "1" and effective[("dtparam", "audio")] == "audio=on"
    assert "[cm4]\notg_mode=1\nenable_uart=0\n" in once      # a board-specific line is left alone
    assert once.rstrip().endswith("[all]\ndtparam=watchdog=on")


def test_cmdline_edit_removes_only_the_serial_console():
    text = "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootwait console=ttyAMA0\n"
    assert img_boot.edit_cmdline(text) == "console=tty1 root=PARTUUID=1-02 rootwait\n"
