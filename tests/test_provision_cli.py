"""`kiosk provision` on the command line: a full run against the simulator, --check, --hash-pin."""

import subprocess
import sys

import pytest
from conftest import ROOT

from kiosk import config, provision_file

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402

EXAMPLE = ROOT / "image-build" / "kiosk-provision.toml.example"


def kiosk(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "provision", *args], capture_output=True, text=True,
                          input=stdin, cwd=ROOT)


def test_cli_provisions_against_the_simulator(tmp_path):
    boot, etc, state = tmp_path / "boot", tmp_path / "etc", tmp_path / "state"
    boot.mkdir()
    with ServerSimulator() as server:
        token = server.issue_enrolment_token()
        text = EXAMPLE.read_text().replace("https://kiosk-server.example.org", server.url)
        text = text.replace('ca_file = "kiosk-ca.pem"', "").replace("PASTE-THE-ONE-TIME-TOKEN-HERE", token)
        (boot / "kiosk-provision.toml").write_text(text)
        dirs = ["--boot-dir", str(boot), "--etc-dir", str(etc), "--state-dir", str(state)]
        result = kiosk(*dirs, "--console", str(tmp_path / "tty1"))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("registered: device kiosk-")
        assert len(server.devices()) == 1
        settings = config.check_file(etc / "kiosk" / "kiosk.toml")
        assert settings.sync.server_url == server.url
        assert token not in result.stdout + result.stderr
        # the unit runs it at every boot with a file present; without one it does nothing
        again = kiosk(*dirs)
        assert again.returncode == 0 and "nothing to do" in again.stdout
        assert len(server.devices()) == 1


def test_cli_unreachable_server_gives_up_after_max_attempts(tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    text = EXAMPLE.read_text().replace('ca_file = "kiosk-ca.pem"', "")
    text = text.replace("https://kiosk-server.example.org", "http://127.0.0.1:9").replace(
        "PASTE-THE-ONE-TIME-TOKEN-HERE", "some-token")
    (boot / "kiosk-provision.toml").write_text(text)
    result = kiosk("--boot-dir", str(boot), "--etc-dir", str(tmp_path / "etc"), "--state-dir", str(tmp_path / "s"),
                   "--max-attempts", "1", "--console", str(tmp_path / "tty1"))
    assert result.returncode == 2
    assert "could not be reached after 1 attempts" in result.stderr
    assert "Traceback" not in result.stderr
    assert "provisioning failed" in (tmp_path / "tty1").read_text()


def test_check_names_problems_and_accepts_a_good_file(tmp_path):
    good = tmp_path / "kiosk-provision.toml"
    good.write_text(EXAMPLE.read_text().replace('ca_file = "kiosk-ca.pem"', "").replace(
        "PASTE-THE-ONE-TIME-TOKEN-HERE", "tok"))
    result = kiosk("--check", "--file", str(good))
    assert result.returncode == 0 and "valid (first provisioning" in result.stdout
    # the example as shipped: the placeholder token and the CA file it names are missing
    result = kiosk("--check", "--file", str(EXAMPLE))
    assert result.returncode == 2
    assert "server.enrolment_token: still the example's placeholder" in result.stderr
    assert "server.ca_file: 'kiosk-ca.pem' is not a readable file" in result.stderr


@pytest.mark.parametrize("pin, ok", [("2468", True), ("12ab", False), ("12", False)])
def test_hash_pin(pin, ok):
    result = kiosk("--hash-pin", stdin=pin + "\n")
    assert (result.returncode == 0) == ok, result.stderr
    if ok:
        pin_hash = result.stdout.strip()
        assert provision_file.check_pin(pin, pin_hash) and not provision_file.check_pin("0000", pin_hash)
        assert pin not in pin_hash


def test_example_file_documents_every_key_the_parser_knows():
    text = EXAMPLE.read_text()
    for table, keys in provision_file.TABLES.items():
        if table == "reprovision":
            continue   # documented in docs/provisioning.md, not for a first file
        assert f"[{table}" in text, table
        for key in keys or ():
            assert key in text, f"{table}.{key} is not in the example"
