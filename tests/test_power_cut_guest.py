"""The power-cut guest's Python tree (image-build/power-cut/guest_tree.py) holds what its scripts import.

The power-cut test itself is slow (tests/test_power_cut_slow.py, an emulated arm64 machine) and
not in the default run, so a module the storage code starts importing would only show there, as
a guest that cannot start its writer. Here the guest's two scripts run on this machine's Python
with no site-packages, from a tree built by the same code that fills the guest: numpy (a Debian
package in the guest) is the one import taken from outside the tree.
"""

import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "image-build" / "power-cut"))
import guest_tree  # noqa: E402

RUN = """
import runpy, sys
sys.path[:0] = [{tree!r}, {numpy_home!r}]
sys.argv = {argv!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _numpy_home(tmp_path):
    """A folder holding only numpy, as the guest's dist-packages holds Debian's."""
    import numpy
    home = tmp_path / "numpy-only"
    home.mkdir()
    (home / "numpy").symlink_to(Path(numpy.__file__).parent)
    libs = Path(numpy.__file__).parent.parent / "numpy.libs"  # a wheel's bundled libraries
    if libs.is_dir():
        (home / "numpy.libs").symlink_to(libs)
    return home


def _run(tree, numpy_home, *argv):
    code = RUN.format(tree=str(tree), numpy_home=str(numpy_home), argv=[str(a) for a in argv])
    # -S: no site-packages, so neither the editable kiosk nor anything else installed is found
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120)


def test_the_guest_scripts_run_from_the_guest_tree_alone(tmp_path):
    tree = tmp_path / "dist-packages"
    files = guest_tree.build(tree)
    assert Path("kiosk/storage/db.py") in files and not any(f.suffix == ".so" for f in tree.rglob("*"))
    numpy_home = _numpy_home(tmp_path)
    database = tmp_path / "events.db"

    wrote = _run(tree, numpy_home, guest_tree.SCRIPTS[0], database, 5, "ev ")
    assert wrote.returncode == 0, wrote.stderr[-3000:]
    written = [line.split()[1:] for line in wrote.stdout.splitlines() if line.startswith("ev ")]
    assert [seq for seq, _ in written] == ["1", "2", "3", "4", "5"]

    checked = _run(tree, numpy_home, guest_tree.SCRIPTS[1], database, "@@PC ")
    assert checked.returncode == 0, checked.stderr[-3000:]
    stored = [line.split()[2:] for line in checked.stdout.splitlines() if line.startswith("@@PC stored ")]
    assert stored == written
    assert "@@PC check integrity=ok chain=ok:5 events=5" in checked.stdout


def test_the_tree_takes_kiosk_from_this_checkout_and_nothing_from_site_packages():
    site = {sysconfig.get_paths()[name] for name in ("purelib", "platlib")}
    files = guest_tree.kiosk_modules()
    assert all((ROOT / f).is_file() and f.parts[0] == "kiosk" for f in files)
    # the storage package's own modules, found by following imports rather than listed
    assert {Path("kiosk/storage/events.py"), Path("kiosk/storage/people.py"), Path("kiosk/files.py")} <= set(files)
    assert not any(str(ROOT / f).startswith(tuple(site)) for f in files)
