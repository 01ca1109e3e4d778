"""`kiosk provision make-key` / `make-code` on a laptop, then the code's PNG provisions a kiosk."""

import os
import stat
import subprocess
import sys

from conftest import ROOT

from kiosk import code_maker, code_reader, config, provision_code

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402

EXAMPLE = ROOT / "image-build" / "kiosk-provision.toml.example"


def kiosk(*args):
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "provision", *args], capture_output=True, text=True,
                          cwd=ROOT)


def provisioning_file(path, *, url, token, site="Head office"):
    text = EXAMPLE.read_text().replace("https://kiosk-server.example.org", url)
    text = text.replace('ca_file = "kiosk-ca.pem"', "").replace("PASTE-THE-ONE-TIME-TOKEN-HERE", token)
    path.write_text(text.replace('site = "Head office"', f'site = "{site}"'))
    return path


def test_make_key_refuses_to_overwrite_and_prints_the_public_half(tmp_path):
    result = kiosk("make-key", str(tmp_path / "fleet.key"))
    assert result.returncode == 0, result.stderr
    public = result.stdout.split("KIOSK_IMG_PROVISIONING_KEYS=")[1].strip()
    assert public == code_maker.public_hex(code_maker.load_private_key(tmp_path / "fleet.key"))
    assert stat.S_IMODE(os.stat(tmp_path / "fleet.key").st_mode) == 0o600
    again = kiosk("make-key", str(tmp_path / "fleet.key"))
    assert again.returncode == 1 and "never overwritten" in again.stderr


def test_codes_from_files_provision_kiosks_through_the_camera_reader(tmp_path):
    kiosk("make-key", str(tmp_path / "fleet.key"))
    public = code_maker.public_hex(code_maker.load_private_key(tmp_path / "fleet.key"))
    with ServerSimulator() as server:
        tokens = [server.issue_enrolment_token() for _ in range(2)]
        files = [provisioning_file(tmp_path / f"kiosk-{n}.toml", url=server.url, token=token, site=f"Site {n}")
                 for n, token in enumerate(tokens)]
        made = kiosk("make-code", "--key", str(tmp_path / "fleet.key"), "--out", str(tmp_path / "codes"),
                     *map(str, files))
        assert made.returncode == 0, made.stderr
        pngs = sorted((tmp_path / "codes").glob("*.png"))
        assert len(pngs) == 2 and len(list((tmp_path / "codes").glob("*.svg"))) == 2
        assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in pngs)
        sheet = (tmp_path / "codes" / "sheet.html").read_text()
        assert "Site 0" in sheet and "Site 1" in sheet and sheet.count("<svg") == 2
        assert not any(token in sheet or token in made.stdout for token in tokens)
        # the PNG read back by OpenCV verifies with the fleet's public key
        text = code_reader.read_image_file(pngs[0])
        code = provision_code.decode(text, public_keys=[public], now_s=provision_code_now())
        assert code.payload["t"] in tokens

        # a kiosk with the key baked in provisions from the picture
        boot, etc, state = tmp_path / "boot", tmp_path / "etc", tmp_path / "state"
        boot.mkdir()
        (etc / "kiosk").mkdir(parents=True)
        (etc / "kiosk" / "provisioning-keys").write_text(public + "\n")
        dirs = ["--boot-dir", str(boot), "--etc-dir", str(etc), "--state-dir", str(state)]
        result = kiosk(*dirs, "--code-image", str(pngs[0]))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("registered from a code: device kiosk-")
        assert config.check_file(etc / "kiosk" / "kiosk.toml").sync.server_url == server.url
        assert len(server.devices()) == 1
        # the same picture again: refused as reused, with the reason on one line
        again = kiosk(*dirs, "--code-image", str(pngs[0]))
        assert again.returncode != 0 and "(reused)" in again.stderr and "Traceback" not in again.stderr


def test_a_reprovisioning_code_from_a_file_needs_the_admin_pin(tmp_path):
    from kiosk import pinhash

    kiosk("make-key", str(tmp_path / "fleet.key"))
    public = code_maker.public_hex(code_maker.load_private_key(tmp_path / "fleet.key"))
    boot, etc, state = tmp_path / "boot", tmp_path / "etc", tmp_path / "state"
    boot.mkdir()
    (etc / "kiosk").mkdir(parents=True)
    (etc / "kiosk" / "provisioning-keys").write_text(public + "\n")
    dirs = ["--boot-dir", str(boot), "--etc-dir", str(etc), "--state-dir", str(state)]
    with ServerSimulator() as server:
        first = provisioning_file(tmp_path / "first.toml", url=server.url, token=server.issue_enrolment_token())
        first.write_text(first.read_text().replace('pin_hash = ""', f'pin_hash = "{pinhash.hash_pin("8642")}"'))
        kiosk("make-code", "--key", str(tmp_path / "fleet.key"), "--out", str(tmp_path / "c1"),
              "--include-admin-pin", str(first))
        registered = kiosk(*dirs, "--code-image", str(next((tmp_path / "c1").glob("*.png"))))
        assert registered.returncode == 0, registered.stderr
        device_id = registered.stdout.split("device ")[1].strip()

        move = provisioning_file(tmp_path / "move.toml", url=server.url, token="unused", site="Branch 9")
        text = move.read_text().replace('enrolment_token = "unused"', "")
        move.write_text(text + f'\n[reprovision]\ndevice_id = "{device_id}"\nsequence = 1\n')
        made = kiosk("make-code", "--key", str(tmp_path / "fleet.key"), "--out", str(tmp_path / "c2"), str(move))
        assert made.returncode == 0, made.stderr
        png = str(next((tmp_path / "c2").glob("*.png")))
        wrong = subprocess.run([sys.executable, "-m", "kiosk.cli", "provision", *dirs, "--code-image", png,
                                "--admin-pin-stdin"], input="1111\n", capture_output=True, text=True, cwd=ROOT)
        assert wrong.returncode != 0 and "(admin_pin)" in wrong.stderr
        right = subprocess.run([sys.executable, "-m", "kiosk.cli", "provision", *dirs, "--code-image", png,
                                "--admin-pin-stdin"], input="8642\n", capture_output=True, text=True, cwd=ROOT)
        assert right.returncode == 0, right.stderr
        assert right.stdout.startswith(f"reprovisioned from a code: device {device_id}")
        assert '"Branch 9"' in (etc / "kiosk" / "registration.json").read_text()


def test_a_code_from_another_fleet_is_refused_on_the_command_line(tmp_path):
    kiosk("make-key", str(tmp_path / "ours.key"))
    kiosk("make-key", str(tmp_path / "theirs.key"))
    ours = code_maker.public_hex(code_maker.load_private_key(tmp_path / "ours.key"))
    path = provisioning_file(tmp_path / "k.toml", url="https://127.0.0.1:9", token="some-token-123")
    assert kiosk("make-code", "--key", str(tmp_path / "theirs.key"), "--out", str(tmp_path / "c"),
                 str(path)).returncode == 0
    (tmp_path / "etc" / "kiosk").mkdir(parents=True)
    (tmp_path / "etc" / "kiosk" / "provisioning-keys").write_text(ours + "\n")
    result = kiosk("--boot-dir", str(tmp_path), "--etc-dir", str(tmp_path / "etc"), "--state-dir",
                   str(tmp_path / "s"), "--code-image", str(next((tmp_path / "c").glob("*.png"))))
    assert result.returncode != 0 and "(bad_signature)" in result.stderr
    assert not (tmp_path / "etc" / "kiosk" / "registration.json").exists()


def test_make_code_refuses_what_a_code_cannot_carry(tmp_path):
    kiosk("make-key", str(tmp_path / "fleet.key"))
    path = provisioning_file(tmp_path / "k.toml", url="https://127.0.0.1:9", token="some-token-123")
    path.write_text(path.read_text() + "\n[settings.ui]\nlanguage = \"en\"\n")
    result = kiosk("make-code", "--key", str(tmp_path / "fleet.key"), "--out", str(tmp_path / "c"), str(path))
    assert result.returncode != 0 and "[settings] do not fit" in result.stderr
    too_long = kiosk("make-code", "--key", str(tmp_path / "fleet.key"), "--out", str(tmp_path / "c"),
                     "--valid-for-s", str(91 * 86400), str(path))
    assert too_long.returncode != 0


def provision_code_now():
    import time

    return time.time()
