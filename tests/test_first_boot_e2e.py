"""First boot end to end under `kiosk run --backend sim` (kiosk.commands.run.run_kiosk, as the CLI runs it).

A blank kiosk (no registration) shows the provisioning screen; the camera simulator shows a
code (a scenario with ``code_file``), or a provisioning file is on the simulated boot partition;
the kiosk registers with the server simulator over TLS on 127.0.0.1, shows the doctor's checks,
then its home screen. Attacks first: a forged code, an expired one and a reused one are each
refused with their reason on screen and register nothing. Provisioning runs on a FakeClock
(code expiry, registration backoff and the screens' hold are fake time); the camera and the
simulators run live, so each wait is bounded by a generous limit, never a sleep.
"""

import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import code_maker, config, first_boot, provision
from kiosk import provision_code as pc
from kiosk.clock import FakeClock
from kiosk.commands.run import run_kiosk
from kiosk.device_ports import HeadlessScreen

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim.server import ServerSimulator  # noqa: E402

WAIT_S = 120.0    # a bound on a hung kiosk, not a speed target


@pytest.fixture(scope="module")
def server():
    with ServerSimulator(tls=True) as srv:
        yield srv


class Blank:
    """A kiosk as flashed: the fleet key baked in, the server's CA on the boot partition, nothing else."""

    def __init__(self, tmp_path, server):
        self.server = server
        self.fleet_key = Ed25519PrivateKey.generate()
        self.clock = FakeClock(start=__import__("time").time())
        self.paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc",
                                     state_dir=tmp_path / "state", result_dir=tmp_path / "results")
        self.paths.boot_dir.mkdir()
        self.paths.kiosk_etc.mkdir(parents=True)
        self.paths.provisioning_keys.write_text(code_maker.public_hex(self.fleet_key) + "\n")
        self.ca_pem = Path(server.ca_file).read_text()
        (self.paths.boot_dir / "kiosk-ca.pem").write_text(self.ca_pem)
        self.code_file = tmp_path / "code.txt"
        self.screen = HeadlessScreen()
        self.shown = []
        self.cond = threading.Condition()
        self.screen.listeners.append(self._seen)
        self.stop = threading.Event()
        self.kiosk = None
        self.error = None
        self.on_sleep = None

    def _seen(self, screen, data):
        with self.cond:
            self.shown.append((screen, dict(data)))
            self.cond.notify_all()

    def code(self, *, signer=None, expires_in_s=3600, **fields):
        payload = {"id": pc.new_code_id(), "exp": int(self.clock.time() + expires_in_s), "u": self.server.url,
                   "t": self.server.issue_enrolment_token(), "s": "HQ", "d": "North", "z": "UTC", "l": "en",
                   "ca": pc.ca_fingerprint(self.ca_pem), **fields}
        return pc.encode(payload, signer or self.fleet_key)

    def show_code(self, text):
        self.code_file.write_text(text)
        return f"code_phone:code_file={self.code_file}"

    def settings(self, scenario):
        return config.build([("test", {"hardware": {"backend": "sim"}, "camera": {"scenario": scenario},
                                       "storage": {"data_dir": str(self.paths.state_dir)},
                                       "ui": {"display": "headless"}, "sync": {"interval_s": 0.5}})])

    def sleep(self, seconds):
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.clock.sleep(seconds)

    def start(self, scenario, *, faults=(), **admin):
        options = first_boot.Options(paths=self.paths, hold_s=1.0)

        def ready(kiosk, sims):      # the kiosk's own screen from here on: listen to it too
            self.kiosk, self.sims = kiosk, sims
            kiosk.screen.listeners.append(self._seen)
            if kiosk.screen.current is not None:
                self._seen(*kiosk.screen.current)

        def body():
            try:
                run_kiosk(self.settings(scenario), first_boot=options, stop_event=self.stop, sim_faults=faults,
                          on_ready=ready, screen=self.screen, clock=self.clock, sleep=self.sleep, **admin)
            except BaseException as e:
                self.error = e
            finally:
                with self.cond:
                    self.cond.notify_all()

        self.thread = threading.Thread(target=body, name="kiosk-run", daemon=True)
        self.thread.start()
        return self

    def wait_for(self, screen, *, since=0, where=lambda data: True):
        """The first (index, data) of ``screen`` shown after ``since`` that satisfies ``where``."""
        def found():
            for index, (name, data) in enumerate(self.shown[since:], start=since):
                if name == screen and where(data):
                    return index, data
            return None

        with self.cond:
            self.cond.wait_for(lambda: found() or self.error is not None or not self.thread.is_alive(),
                               timeout=WAIT_S)
            result = found()
        assert result, f"no {screen}; error {self.error!r}; shown: {[s for s, _ in self.shown[-12:]]}"
        return result

    def home(self):
        """Wait for the kiosk's own home screen (attendance) after provisioning."""
        return self.wait_for("attendance_idle")

    def close(self):
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def blank(tmp_path, server):
    kiosk = Blank(tmp_path, server)
    yield kiosk
    kiosk.stop.set()
    if hasattr(kiosk, "thread"):
        kiosk.thread.join(WAIT_S)


def assert_nothing_registered(blank, devices_before):
    assert not blank.paths.registration_file.exists() and not blank.paths.settings_file.exists()
    assert len(blank.server.devices()) == devices_before


# --- attacks first ---------------------------------------------------------------------------

def test_a_forged_code_is_refused_on_screen_and_registers_nothing(blank, server):
    before = len(server.devices())
    forged = blank.code(signer=Ed25519PrivateKey.generate())       # a stranger's key
    blank.start(blank.show_code(forged))
    blank.wait_for("provision_waiting")
    _, data = blank.wait_for("provision_refused")
    assert (data["source"], data["reason"]) == ("code", "bad_signature")
    assert data["remedy"] == pc.REMEDIES["bad_signature"]
    blank.close()
    assert blank.error is None and blank.kiosk is None
    assert_nothing_registered(blank, before)


def test_an_expired_code_is_refused_on_screen(blank, server):
    before = len(server.devices())
    blank.start(blank.show_code(blank.code(expires_in_s=-60)))
    _, data = blank.wait_for("provision_refused")
    assert (data["reason"], data["remedy"]) == ("expired", pc.REMEDIES["expired"])
    blank.close()
    assert_nothing_registered(blank, before)


def test_a_code_already_used_on_this_kiosk_is_refused(blank, server):
    text = blank.code()
    used = pc.UsedCodes(blank.paths.used_codes)      # kept through decommissioning, as on a re-flashed card
    code = pc.decode(text, public_keys=[code_maker.public_hex(blank.fleet_key)], now_s=blank.clock.time())
    used.remember(code.code_id, expires_at_s=code.expires_at_s, now_s=blank.clock.time())
    before = len(server.devices())
    blank.start(blank.show_code(text))
    _, data = blank.wait_for("provision_refused")
    assert data["reason"] == "reused"
    blank.close()
    assert_nothing_registered(blank, before)


# --- the technician's paths ------------------------------------------------------------------

def test_a_signed_code_provisions_then_self_test_then_home(blank, server):
    blank.start(blank.show_code(blank.code()))
    waiting, data = blank.wait_for("provision_waiting")
    assert data["ways"] == ["file", "code"] and data["file"].endswith("kiosk-provision.toml")
    blank.wait_for("provision_registering", since=waiting)
    test_at, test = blank.wait_for("provision_self_test", since=waiting)
    by_name = {c["name"]: c for c in test["checks"]}
    # each part the kiosk has was checked; a warning (a slow frame rate on a loaded machine) is no failure
    assert {"camera", "fingerprint", "gpio", "database", "keys"} <= set(by_name)
    assert by_name["camera"]["status"] != "fail" and by_name["fingerprint"]["status"] != "fail", test["checks"]
    _, done = blank.wait_for("provision_done", since=test_at)
    home, _ = blank.home()
    assert home > test_at
    device_id = done["device_id"]
    assert (done["site"], done["door"]) == ("HQ", "North")
    assert device_id in [d["device_id"] for d in server.devices()]
    assert config.load(blank.paths.settings_file).sync.device_id == device_id
    assert blank.kiosk is not None
    blank.close()
    assert blank.error is None


def test_a_provisioning_file_provisions_then_home(blank, server):
    text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
    text = text.replace("https://kiosk-server.example.org", server.url)
    text = text.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", server.issue_enrolment_token())
    (blank.paths.boot_dir / "kiosk-provision.toml").write_text(text)
    blank.start("no_face")
    _, done = blank.wait_for("provision_done")
    blank.home()
    assert done["device_id"] in [d["device_id"] for d in server.devices()]
    assert not (blank.paths.boot_dir / "kiosk-provision.toml").exists()     # token wiped: renamed .done
    blank.close()
    assert blank.error is None


def test_server_unreachable_says_why_and_the_remedy_then_registers_when_back(blank, server):
    looked = []

    def between_attempts(_seconds):
        screen, data = blank.screen.current
        looked.append((screen, data.get("reason"), data.get("remedy"), data.get("retry_in_s")))
        server.clear_fault()

    blank.on_sleep = between_attempts
    server.set_fault("outage")
    try:
        blank.start(blank.show_code(blank.code()))
        _, done = blank.wait_for("provision_done")
    finally:
        server.clear_fault()
    screen, reason, remedy, retry_in_s = looked[0]
    assert (screen, reason) == ("provision_registering", "server_down")
    assert remedy.startswith("The server does not answer") and retry_in_s > 0
    blank.home()
    assert done["device_id"] in [d["device_id"] for d in server.devices()]
    blank.close()


def test_a_sensor_missing_at_self_test_is_named_with_its_remedy(blank, server):
    blank.start(blank.show_code(blank.code()), faults=[("sensor", "silence")])
    _, test = blank.wait_for("provision_self_test")
    assert "fingerprint" in test["failed"] and not test["ok"]
    finger = {c["name"]: c for c in test["checks"]}["fingerprint"]
    assert finger["status"] == "fail" and finger["remedy"]
    _, done = blank.wait_for("provision_done")
    assert [p["name"] for p in done["problems"]] == ["fingerprint"]
    assert done["problems"][0]["remedy"] == finger["remedy"]
    blank.home()                                      # the kiosk starts anyway: face and PIN still work
    blank.close()


def test_kiosk_run_cli_shows_the_provisioning_window_then_the_kiosk_window(tmp_path, server):
    """`kiosk run --backend sim` as a process, with a window (offscreen Qt): provisioning, then the kiosk."""
    import os
    import subprocess

    blank = Blank(tmp_path, server)
    scenario = blank.show_code(blank.code())
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(QT_QPA_PLATFORM="offscreen", KIOSK_UI__DISPLAY="window", KIOSK_CAMERA__SCENARIO=scenario,
               KIOSK_STORAGE__DATA_DIR=str(blank.paths.state_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--backend", "sim", "--boot-dir", str(blank.paths.boot_dir),
         "--etc-dir", str(blank.paths.etc_dir), "--hold-s", "0.5"], env=env, cwd=ROOT, stderr=subprocess.PIPE,
        text=True)
    timer = threading.Timer(WAIT_S, process.kill)    # a bound on a hung kiosk
    timer.start()
    lines = []
    try:
        for line in process.stderr:
            lines.append(line.rstrip())
            if "kiosk running" in line:
                process.terminate()
        assert process.wait() == 0, "\n".join(lines[-30:])
    finally:
        timer.cancel()
        process.kill()
    text = "\n".join(lines)
    assert "provisioning screen: window" in text and "touchscreen: window" in text
    assert text.index("first boot done") < text.index("kiosk running")
    device_id = config.load(blank.paths.settings_file).sync.device_id
    assert device_id in [d["device_id"] for d in server.devices()]


def test_a_camera_that_does_not_start_leaves_the_file_way(blank, server):
    """The camera unplugged from the start: the screen offers only the file, and a file still provisions."""
    blank.start(blank.show_code(blank.code()), faults=[("camera", "unplug")])
    at, data = blank.wait_for("provision_waiting", where=lambda d: d["ways"] == ["file"])
    text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
    text = text.replace("https://kiosk-server.example.org", server.url)
    (blank.paths.boot_dir / "kiosk-provision.toml").write_text(
        text.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", server.issue_enrolment_token()))
    _, done = blank.wait_for("provision_done", since=at)
    assert done["device_id"] in [d["device_id"] for d in server.devices()]
    blank.close()


def test_first_boot_only_on_a_kiosk_image_that_is_not_registered(tmp_path):
    paths = provision.Paths(boot_dir=tmp_path / "boot", etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    blank = config.build([])
    assert not first_boot.needs_provisioning(blank, paths)          # a laptop: no ETC_DIR/kiosk
    paths.boot_dir.mkdir()
    (paths.boot_dir / "kiosk-provision.toml").write_text("")
    assert first_boot.needs_provisioning(blank, paths)              # a file waits
    (paths.boot_dir / "kiosk-provision.toml").unlink()
    paths.kiosk_etc.mkdir(parents=True)
    assert first_boot.needs_provisioning(blank, paths)              # the image's folder
    assert not first_boot.needs_provisioning(blank.replace(sync={"device_id": "kiosk-1"}), paths)
    paths.registration_file.write_text("{}")
    assert not first_boot.needs_provisioning(blank, paths)


def test_kiosk_provision_as_the_first_boot_unit_runs_it(tmp_path, server):
    """The unit's options (--scan-camera auto --scan-timeout-s 0 --self-test auto): a waiting file is taken
    at once, and the self-test runs on the backend the provisioning file names (sim here)."""
    import json
    import os
    import subprocess

    blank = Blank(tmp_path, server)
    text = (ROOT / "image-build" / "kiosk-provision.toml.example").read_text()
    text = text.replace("https://kiosk-server.example.org", server.url)
    text = text.replace("PASTE-THE-ONE-TIME-TOKEN-HERE", server.issue_enrolment_token())
    (blank.paths.boot_dir / "kiosk-provision.toml").write_text(text + '\n[settings.hardware]\nbackend = "sim"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    status = tmp_path / "status.json"
    done = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "provision", "--boot-dir", str(blank.paths.boot_dir), "--etc-dir",
         str(blank.paths.etc_dir), "--state-dir", str(blank.paths.state_dir), "--screen", "headless",
         "--scan-camera", "auto", "--scan-timeout-s", "0", "--self-test", "auto", "--status-file", str(status)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    final = json.loads(status.read_text())
    assert final["screen"] == "provision_done" and "provision_self_test" in final["history"]
    assert "fingerprint sensor ready" in done.stderr              # the simulated sensor answered the self-test
