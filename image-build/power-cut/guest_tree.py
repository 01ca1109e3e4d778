"""The Python packages of the power-cut guest: what its two scripts import, and nothing compiled.

    python guest_tree.py DEST

Copies into DEST (the guest's dist-packages) every module of the ``kiosk`` package that the
guest's scripts (tests/helpers/write_events.py, guest_check.py) import, found by following
their imports from this checkout, and the pure-Python packages the storage code imports. A
module added to ``kiosk`` and imported by the storage code comes along without editing a list.
Run by make-guest.sh; tests/test_power_cut_guest.py runs the scripts from such a tree.
"""

import importlib.util
import modulefinder
import shutil
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPTS = (REPO / "tests" / "helpers" / "write_events.py", HERE / "guest_check.py")
# pure-Python packages the storage code imports (sqlite-utils and what it imports)
PURE = ("sqlite_utils", "sqlite_fts4", "click", "click_default_group", "dateutil", "pluggy", "tabulate")


def kiosk_modules():
    """The files (relative to the checkout) of the ``kiosk`` modules the guest's scripts import."""
    # the checkout and the standard library only: the kiosk package must come from this tree
    stdlib = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib")}
    finder = modulefinder.ModuleFinder(path=[str(REPO)] + [p for p in sys.path if p in stdlib
                                                            or p.endswith("lib-dynload")])
    for script in SCRIPTS:
        finder.run_script(str(script))
    files = set()
    for name, module in finder.modules.items():
        if (name == "kiosk" or name.startswith("kiosk.")) and module.__file__:
            files.add(Path(module.__file__).resolve().relative_to(REPO))
    return sorted(files)


def pure_packages():
    """Where each of ``PURE`` is installed for this Python (a package folder or a module file)."""
    found = []
    for name in PURE:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"guest_tree: {name} is not installed for {sys.executable}")
        origin = Path(spec.origin)
        found.append(origin.parent if origin.name == "__init__.py" else origin)
    return found


def build(dest):
    """Fill ``dest``; returns the kiosk files copied (relative paths)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for source in pure_packages():
        target = dest / source.name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(source, target)
    files = kiosk_modules()
    for relative in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    return files


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: guest_tree.py DEST")
    for relative in build(sys.argv[1]):
        print(relative)
