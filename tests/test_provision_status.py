"""The provisioning screen's model, driven by real provisioning runs against the simulators (headless)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import code_maker, provision, provision_by_code, provision_status
from kiosk import provision_code as pc
from kiosk.clock import FakeClock
from kiosk.errors import ProvisioningError, UntrustedAnswerError
from kiosk.sync.client import ServerUnavailableError

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402

EXAMPLE = ROOT / "image-build" / "kiosk-provision.toml.example"


@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


class Recorder:
    """The show port a touchscreen will implement: records every screen."""

    def __init__(self):
        self.shown = []

    def __call__(self, screen, **data):
        json.dumps(data)            # the screen data must be JSON-safe (the status file writes it)
        assert screen in provision_status.SCREENS
        self.shown.append((screen, data))

    def names(self):
        return [name for name, _ in self.shown]


def kiosk_dirs(tmp_path, key=None):
    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    paths.boot_dir.mkdir()
    paths.kiosk_etc.mkdir(parents=True)
    if key is not None:
        paths.provisioning_keys.write_text(code_maker.public_hex(key) + "\n")
    return paths


def make_code(server, key, *, clock, **over):
    payload = {"id": pc.new_code_id(), "exp": int(clock.time()) + 3600, "u": server.url,
               "t": server.issue_enrolment_token(), "s": "HQ", "d": "North", "z": "UTC", "l": "en", **over}
    return pc.encode(payload, key)


def status_console(recorder):
    return provision_status.StatusConsole(provision_status.ProvisioningStatus(recorder))


def test_tls_failure_is_named_with_its_remedy_and_the_outage_then_success(server, tmp_path):
    key, clock, recorder = Ed25519PrivateKey.generate(), FakeClock(), Recorder()
    paths = kiosk_dirs(tmp_path, key)
    # no CA in the code: the server's self-signed certificate fails TLS verification; then it is given
    console = status_console(recorder)
    with pytest.raises(ProvisioningError):
        provision_by_code.provision_code(make_code(server, key, clock=clock), paths=paths, console=console,
                                         clock=clock, sleep=lambda s: None, max_attempts=2, timeout_s=5.0)
    retry = next(data for name, data in recorder.shown if name == "provision_registering" and data["reason"])
    assert retry["reason"] == "tls" and "certificate" in retry["remedy"] and retry["retry_in_s"] > 0
    assert recorder.names()[-1] == "provision_failed"

    (paths.boot_dir / "kiosk-ca.pem").write_text(Path(server.ca_file).read_text())
    ca = pc.ca_fingerprint(Path(server.ca_file).read_text())
    server.set_fault("outage")
    try:
        def sleep(_seconds):
            server.clear_fault()
        recorder.shown.clear()
        console = status_console(recorder)
        provision_by_code.provision_code(make_code(server, key, clock=clock, ca=ca), paths=paths, console=console,
                                         clock=clock, sleep=sleep, timeout_s=5.0)
    finally:
        server.clear_fault()
    console.finish()
    reasons = [data["reason"] for name, data in recorder.shown if name == "provision_registering"]
    assert reasons == [None, "server_down", None]
    network = next(data for name, data in recorder.shown if name == "provision_network")
    assert recorder.names().index("provision_network") < recorder.names().index("provision_registering")
    assert network["server_url"] == server.url and isinstance(network["interfaces"], list)
    assert recorder.shown[-1] == ("provision_done", {"device_id": recorder.shown[-1][1]["device_id"],
                                                     "site": "HQ", "door": "North", "problems": []})


def test_forged_and_expired_codes_show_the_refused_screen(server, tmp_path):
    key, clock, recorder = Ed25519PrivateKey.generate(), FakeClock(), Recorder()
    paths = kiosk_dirs(tmp_path, key)
    status = provision_status.ProvisioningStatus(recorder)
    console = provision_status.StatusConsole(status)
    for text, reason in ((make_code(server, Ed25519PrivateKey.generate(), clock=clock), "bad_signature"),
                         (make_code(server, key, clock=clock, exp=int(clock.time())), "expired")):
        with pytest.raises(pc.CodeRefusedError):
            provision_by_code.provision_code(text, paths=paths, console=console, clock=clock)
        assert recorder.shown[-1] == ("provision_refused", {"source": "code", "reason": reason,
                                                            "remedy": pc.REMEDIES[reason]})
    status.waiting()      # back to waiting: the screen remembers why the last code was refused
    assert recorder.shown[-1][1]["last_refusal"]["reason"] == "expired"


@pytest.mark.parametrize("error, reason", [
    (ProvisioningError("the server refused registration: token_used"), "bad_token"),
    (UntrustedAnswerError("answer refused: key"), "untrusted"),
    (ServerUnavailableError("TLS verification of https://x failed: CERTIFICATE_VERIFY_FAILED"), "tls"),
    (ServerUnavailableError("POST /register: ConnectionError: NameResolutionError: Failed to resolve"), "dns"),
    (ServerUnavailableError("POST /register: ConnectionError: Connection refused"), "server_down"),
])
def test_retry_reasons(error, reason):
    assert provision_status.classify_registration_error(error) == (reason, provision_status.RETRY_REASONS[reason])


def kiosk(*args):
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "provision", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_headless_first_boot_waits_then_a_file_provisions_and_the_self_test_names_a_missing_sensor(tmp_path):
    paths = kiosk_dirs(tmp_path)
    status_file = tmp_path / "status.json"
    dirs = ["--boot-dir", str(paths.boot_dir), "--etc-dir", str(paths.etc_dir), "--state-dir", str(paths.state_dir),
            "--status-file", str(status_file)]
    first = kiosk(*dirs)
    assert first.returncode == 0 and "nothing to do" in first.stdout
    waiting = json.loads(status_file.read_text())
    assert waiting["screen"] == "provision_waiting" and waiting["ways"] == ["file"]   # no key baked: no codes

    with ServerSimulator() as server:
        text = EXAMPLE.read_text().replace("https://kiosk-server.example.org", server.url)
        text = text.replace('ca_file = "kiosk-ca.pem"', "").replace("PASTE-THE-ONE-TIME-TOKEN-HERE",
                                                                    server.issue_enrolment_token())
        (paths.boot_dir / "kiosk-provision.toml").write_text(text)
        result = kiosk(*dirs, "--self-test", "sim", "--sim-fault", "sensor:silence")
    assert result.returncode == 0, result.stderr
    final = json.loads(status_file.read_text())
    assert final["screen"] == "provision_done"
    assert final["history"][-3:] == ["provision_registering", "provision_self_test", "provision_done"]
    problem, = final["problems"]                          # the done screen still names what to fix
    assert problem["name"] == "fingerprint" and "does not answer" in problem["detail"] and "UART" in problem["remedy"]
    assert "failed: fingerprint" in result.stdout        # the doctor's table is printed too


def test_self_test_screen_lists_each_check_with_a_remedy_for_failures():
    from kiosk import doctor

    recorder = Recorder()
    report = doctor.Report([doctor.CheckResult("camera", doctor.PASS, "30 fps", "never shown on a pass"),
                            doctor.CheckResult("fingerprint", doctor.FAIL, "does not answer", "check the UART")])
    provision_status.ProvisioningStatus(recorder).self_test(report)
    screen, data = recorder.shown[-1]
    assert screen == "provision_self_test" and data["ok"] is False and data["failed"] == ["fingerprint"]
    assert data["checks"][0]["remedy"] == "" and data["checks"][1]["remedy"] == "check the UART"


def scan_env(tmp_path, code_text):
    import os

    (tmp_path / "code.txt").write_text(code_text)
    toml = tmp_path / "kiosk.toml"
    toml.write_text(f'[camera]\nwidth = 1280\nheight = 720\nscenario = "code_paper:code_file={tmp_path / "code.txt"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["KIOSK_CONFIG"] = str(toml)
    return env


def test_the_camera_reads_a_signed_code_and_the_kiosk_registers(tmp_path):
    key = Ed25519PrivateKey.generate()
    paths = kiosk_dirs(tmp_path, key)
    status_file = tmp_path / "status.json"
    with ServerSimulator() as server:
        env = scan_env(tmp_path, make_code(server, key, clock=FakeClock(start=__import__("time").time())))
        result = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(paths.boot_dir), "--etc-dir",
             str(paths.etc_dir), "--state-dir", str(paths.state_dir), "--status-file", str(status_file),
             "--scan-camera", "sim", "--scan-timeout-s", "60"], capture_output=True, text=True, env=env,
            cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith("registered: device kiosk-")
        assert len(server.devices()) == 1
    status = json.loads(status_file.read_text())
    assert status["screen"] == "provision_done" and status["history"][0] == "provision_waiting"


def test_the_camera_shows_a_forged_code_and_the_screen_says_why(tmp_path):
    key = Ed25519PrivateKey.generate()
    paths = kiosk_dirs(tmp_path, key)
    status_file = tmp_path / "status.json"
    forged = pc.encode({"id": pc.new_code_id(), "exp": 4_000_000_000, "u": "https://127.0.0.1:9",
                        "t": "stolen-looking-token"}, Ed25519PrivateKey.generate())
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(paths.boot_dir), "--etc-dir",
         str(paths.etc_dir), "--state-dir", str(paths.state_dir), "--status-file", str(status_file),
         "--scan-camera", "sim", "--scan-timeout-s", "8"], capture_output=True, text=True,
        env=scan_env(tmp_path, forged), cwd=ROOT, timeout=120)
    assert result.returncode == 1 and "no accepted code" in result.stdout
    status = json.loads(status_file.read_text())
    assert status["screen"] == "provision_refused" and status["reason"] == "bad_signature"
    assert not paths.registration_file.exists()
