"""End to end: `kiosk demo` runs the product on its simulators and reports what happened."""

import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path, datasets):
    screens = tmp_path / "screens"
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--people", "6", "--headless",
                             "--datasets", str(datasets), "--workdir", str(tmp_path), "--screens", str(screens)],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    step = {int(part.split("]", 1)[0]): part for part in out.split("\n[")[1:]}
    faces = next(text for text in step.values() if text.startswith("7] Attendance by face") or "Attendance by face" in text)
    assert "RECORDED Richard Myers: check-in" in faces                # live, enrolled, performs the challenge
    assert "RECORDED Richard Myers: already recorded at" in out       # the duplicate punch
    unknown = next(text for text in step.values() if "An unknown person" in text)
    assert "REFUSED" in unknown and "RECORDED" not in unknown
    assert "REFUSED printed photo of Richard_Myers" in out            # a photo of an enrolled person
    assert "a wrong admin PIN refused, the right one opens the admin menu" in out
    assert "emp-kiosk-1 saved" in out                                 # enrolled at the kiosk, through the flows
    assert "(by fingerprint)" in out and "unknown finger: refused" in out
    assert "wrong PIN refused first; then RECORDED" in out and "(by PIN)" in out
    assert "attendance recorded: 3; answered 'already recorded': 1" in out
    assert "door opened 4 times" in out
    assert "server holds 3 events from this device; outbox pending 0" in out
    assert "ATTLOG rows accepted by the ADMS server: 3" in out
    assert "self-test failures: none" in out and "check(s) failed" not in out  # the doctor passed every check
    # the citizen services, each completed at the kiosk and applied by the server simulator
    for service in ("account", "fingerprints", "activation", "mobile_change"):
        assert f"DONE {service}: reference " in out and f"server applied it: {service} for ID " in out, service
    assert "server applied it: fingerprints for ID 1*******24; captured finger:" in out
    assert "matched by the server against the record" in out          # the mobile change's face check
    assert "citizen services completed and applied by the server: 4 of 4" in out
    # a picture of every screen in both languages, and of the screens this run showed
    from kiosk.ui.registry import SCREENS

    pictures = {p.name for p in screens.glob("*.png")}
    assert all(any(n.startswith(f"{name}-") and n.endswith(f"-{lang}.png") for n in pictures)
               for name in SCREENS for lang in ("ar", "en"))
    assert "run-result-en.png" in pictures and "run-enrol_done-ar.png" in pictures
    assert "run-service_done-en.png" in pictures and "run-service_credentials-ar.png" in pictures
    assert "layout faults: none" in out
    # the demo's database is real: chain intact, templates sealed
    check = subprocess.run([sys.executable, "-m", "kiosk.cli", "db", "--db", str(tmp_path / "data" / "kiosk.db"),
                            "verify-chain"], capture_output=True, text=True)
    assert check.returncode == 0 and "chain ok: 3 events" in check.stdout
