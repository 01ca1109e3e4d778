"""End to end: `kiosk demo` runs the product on its simulators and reports what happened."""

import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path, datasets):
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--people", "6",
                             "--datasets", str(datasets), "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "ACCEPTED Richard_Myers" in out               # live person who performs the challenge
    assert out.count("REFUSED") == 2                     # still person and printed photo
    assert "unknown finger: refused" in out
    assert "server holds 3 events from this device; outbox pending 0" in out
    assert "ATTLOG rows accepted by the ADMS server: 3" in out
    assert "self-test failures: none" in out
    # the demo's database is real: chain intact, templates sealed
    check = subprocess.run([sys.executable, "-m", "kiosk.cli", "db", "--db", str(tmp_path / "data" / "kiosk.db"),
                            "verify-chain"], capture_output=True, text=True)
    assert check.returncode == 0 and "chain ok: 3 events" in check.stdout
