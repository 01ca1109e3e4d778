"""The provisioning screens in the kiosk window, fed by the real status model through the queued Qt signal.

Provisioning runs on a worker thread (as `kiosk provision` runs it under the screen) against the
server simulator; at each state it stops at a checkpoint until this thread has seen the window
draw that state, so every screen is checked as drawn, in order: waiting -> refused (a forged code)
-> registering with a retry reason -> self-test with a failed check and its remedy -> done.
"""

import queue
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("PyQt5")

from conftest import ROOT  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from PyQt5.QtWidgets import QLabel  # noqa: E402

from kiosk import code_maker, config, doctor, provision, provision_by_code, provision_status  # noqa: E402
from kiosk import provision_code as pc  # noqa: E402
from kiosk.clock import FakeClock  # noqa: E402
from kiosk.device_ports import HeadlessScreen  # noqa: E402
from kiosk.ui import i18n  # noqa: E402
from kiosk.ui.bridge import QtScreen  # noqa: E402
from kiosk.ui.provision_window import Port  # noqa: E402
from kiosk.ui.screenshots import NoCamera  # noqa: E402
from kiosk.ui.window import KioskWindow, Options, ScreenLink  # noqa: E402

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402

STEP_TIMEOUT_S = 60.0   # a bound on a hung worker, not a speed target


def texts(window):
    """objectName -> text of every visible label on the window's current screen."""
    return {w.objectName(): w.text() for w in window.screen.findChildren(QLabel) if w.isVisibleTo(window)}


class Worker:
    """Runs provisioning on its own thread; ``checkpoint(name)`` stops it until the test has looked."""

    def __init__(self):
        self.reached = queue.Queue()
        self.go = threading.Event()
        self.error = None

    def checkpoint(self, name):
        self.go.clear()
        self.reached.put(name)
        if not self.go.wait(STEP_TIMEOUT_S):
            raise TimeoutError(f"the test never looked at {name}")

    def start(self, body):
        def run():
            try:
                body()
            except BaseException as e:
                self.error = e
                self.reached.put("error")
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()


def test_provisioning_drives_the_window_through_each_state(qapp, qtbot, tmp_path):
    key, clock = Ed25519PrivateKey.generate(), FakeClock(start=__import__("time").time())
    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    paths.boot_dir.mkdir()
    paths.kiosk_etc.mkdir(parents=True)
    paths.provisioning_keys.write_text(code_maker.public_hex(key) + "\n")
    window = KioskWindow(post=lambda *a, **k: None, clock=FakeClock(), camera=NoCamera(), size=(1024, 600),
                         options=Options(language="en"))
    window.setFixedSize(1024, 600)
    window.show()
    qt_screen = QtScreen(HeadlessScreen())
    link = ScreenLink(qt_screen, window)   # noqa: F841 (kept alive for the test)
    status = provision_status.ProvisioningStatus(Port(qt_screen), ways=["file", "code"],
                                                 file_path=str(paths.boot_dir / "kiosk-provision.toml"))
    console = provision_status.StatusConsole(status)
    worker = Worker()

    with ServerSimulator(tls=True) as server:
        (paths.boot_dir / "kiosk-ca.pem").write_text(Path(server.ca_file).read_text())

        def code(signer):
            return pc.encode({"id": pc.new_code_id(), "exp": int(clock.time()) + 3600, "u": server.url,
                              "t": server.issue_enrolment_token(), "s": "HQ", "d": "North", "z": "UTC", "l": "en",
                              "ca": pc.ca_fingerprint(Path(server.ca_file).read_text())}, signer)

        def between_attempts(_seconds):
            worker.checkpoint("provision_registering")   # the retry screen is up: look, then let it through
            server.clear_fault()

        def body():
            status.waiting()
            worker.checkpoint("provision_waiting")
            with pytest.raises(pc.CodeRefusedError):     # signed by a key this kiosk does not trust
                provision_by_code.provision_code(code(Ed25519PrivateKey.generate()), paths=paths, console=console,
                                                 clock=clock)
            worker.checkpoint("provision_refused")
            server.set_fault("outage")
            provision_by_code.provision_code(code(key), paths=paths, console=console, clock=clock,
                                             sleep=between_attempts, timeout_s=5.0)
            server.set_fault("outage")                   # the self-test finds the server gone again
            settings = config.load(paths.settings_file)
            report = doctor.run_checks(settings, only=("disk", "server"), require_server=True)
            console.status.self_test(report)
            worker.checkpoint("provision_self_test")
            console.status.done(**console.finished)
            worker.checkpoint("provision_done")

        def look(expected):
            reached = worker.reached.get(timeout=STEP_TIMEOUT_S)
            assert reached == expected, worker.error
            qtbot.waitUntil(lambda: window.screen is not None and window.screen.name == expected,
                            timeout=int(STEP_TIMEOUT_S * 1000))
            return texts(window)

        try:
            worker.start(body)
            shown = look("provision_waiting")
            assert "signed provisioning code" in shown["way_code"] and "kiosk-provision.toml" in shown["way_file"]
            worker.go.set()

            shown = look("provision_refused")
            assert shown["source"] == "The provisioning code was refused"
            assert "Signed by another key" in shown["reason"] and shown["remedy"] == pc.REMEDIES["bad_signature"]
            window.switch_language()                     # the same refusal, in Arabic
            assert texts(window)["remedy"] == i18n.table("ar")["provision_remedy.bad_signature"]
            window.switch_language()
            worker.go.set()

            shown = look("provision_registering")
            assert shown["reason"] == "The server does not answer"
            assert shown["remedy"] == provision_status.RETRY_REASONS["server_down"]
            assert shown["attempt"] == "Attempt 1" and shown["retry_in"].startswith("Next try in")
            worker.go.set()

            shown = look("provision_self_test")
            assert shown["verdict"] == "Checks failed: 1"
            assert "pass" in shown["status_disk"] and "fail" in shown["status_server"]
            assert shown["remedy_server"].startswith("check the network and sync.server_url")
            worker.go.set()

            shown = look("provision_done")
            assert console.finished["device_id"] in shown["device"] and "HQ" in shown["where"]
            assert shown["problem_server"] == "Server" and shown["remedy_server"].startswith("check the network")
            worker.go.set()
            worker.thread.join(STEP_TIMEOUT_S)
            assert worker.error is None and not worker.thread.is_alive()
            assert len(server.devices()) == 1
        finally:
            worker.go.set()
            server.clear_fault()
            window.close()


def test_kiosk_provision_opens_the_screen_and_still_writes_the_status_file(tmp_path):
    """`kiosk provision --screen window` (offscreen Qt here): the window runs the loop, provisioning its thread."""
    import os
    import subprocess

    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    paths.boot_dir.mkdir()
    paths.kiosk_etc.mkdir(parents=True)
    status_file = tmp_path / "status.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    with ServerSimulator() as server:
        text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
        text = text.replace("https://kiosk-server.example.org", server.url).replace('ca_file = "kiosk-ca.pem"', "")
        (paths.boot_dir / "kiosk-provision.toml").write_text(
            text.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", server.issue_enrolment_token()))
        result = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(paths.boot_dir), "--etc-dir",
             str(paths.etc_dir), "--state-dir", str(paths.state_dir), "--status-file", str(status_file),
             "--screen", "window", "--screen-hold-s", "0"], capture_output=True, text=True, env=env, cwd=ROOT,
            timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(server.devices()) == 1
    assert "provisioning screen: window" in result.stderr
    import json

    final = json.loads(status_file.read_text())
    assert final["screen"] == "provision_done" and final["history"][-2:] == ["provision_registering",
                                                                           "provision_done"]
