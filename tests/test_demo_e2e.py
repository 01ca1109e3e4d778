"""End to end: `kiosk demo` runs the product on its simulators and reports what happened."""

import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path, datasets):
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--people", "6",
                             "--datasets", str(datasets), "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "RECORDED Richard Myers: check-in" in out           # live, enrolled, performs the challenge
    assert "RECORDED Richard Myers: already recorded at" in out  # the duplicate punch
    assert "REFUSED printed photo of Richard_Myers" in out    # a photo of an enrolled person
    assert out.count("REFUSED") == 2                           # the unknown face and the printed photo
    assert "(by fingerprint)" in out and "unknown finger: refused" in out
    assert "wrong PIN refused first; then RECORDED" in out and "(by PIN)" in out
    assert "attendance recorded: 4; answered 'already recorded': 1" in out
    assert "door opened 5 times" in out
    assert "server holds 4 events from this device; outbox pending 0" in out
    assert "ATTLOG rows accepted by the ADMS server: 4" in out
    assert "self-test failures: none" in out
    # the demo's database is real: chain intact, templates sealed
    check = subprocess.run([sys.executable, "-m", "kiosk.cli", "db", "--db", str(tmp_path / "data" / "kiosk.db"),
                            "verify-chain"], capture_output=True, text=True)
    assert check.returncode == 0 and "chain ok: 4 events" in check.stdout
