"""Packaging: the firmware wheel holds `kiosk` only; the simulators and their benchmarks are kiosk-sim.

Both wheels are built by the image build's own step (from a clean copy of the tree) and
their contents read; between them they hold every module of the source tree, each once.
"""

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from kiosk.commands import bench

SIM_BENCH_FILES = {f"{name}.py" for name in bench.SIM_BENCHES + bench.SIM_BENCH_HELPERS}


def _cfg(path):
    parsed = configparser.ConfigParser()
    parsed.read(path)
    return parsed


def _listed(parsed):
    return set(parsed["options"]["packages"].split()), set(parsed["options"].get("py_modules", "").split())


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """``{"kiosk": ZipFile, "kiosk-sim": ZipFile}`` built offline the way the image builds them.

    ``imagetool.py wheels`` (called by pi-gen's stage; build.sh calls the same ``build_wheel``)
    builds from a clean copy of the tree, so no build files land in the checkout.
    """
    out = tmp_path_factory.mktemp("packaging") / "wheels"
    env = dict(os.environ, KIOSK_IMG_REPO=str(ROOT), KIOSK_IMG_BUILD_PYTHON=sys.executable, KIOSK_IMG_SIMULATORS="1")
    subprocess.run([sys.executable, str(ROOT / "image-build" / "tools" / "imagetool.py"), "wheels", str(out)],
                   check=True, env=env, capture_output=True)
    found = {}
    for path in out.glob("*.whl"):
        name = path.name.split("-")[0].replace("_", "-")
        found[name] = zipfile.ZipFile(path)
    assert set(found) == {"kiosk", "kiosk-sim"}
    return found


def _names(wheel):
    return [n for n in wheel.namelist() if ".dist-info/" not in n]


def _dist_file(wheel, suffix):
    name = next(n for n in wheel.namelist() if n.endswith(f".dist-info/{suffix}"))
    return wheel.read(name).decode()


def test_firmware_wheel_installs_kiosk_only(wheels):
    firmware = wheels["kiosk"]
    names = _names(firmware)
    assert {n.split("/")[0] for n in names} == {"kiosk"}
    assert not [n for n in names if n.startswith("kiosk/bench/") and Path(n).name in SIM_BENCH_FILES]
    for kept in ("kiosk/bench/face.py", "kiosk/bench/gallery.py", "kiosk/bench/face_protocol.py",
                 "kiosk/models/gallery_scan.py", "kiosk/models/assets/MODELS.md", "kiosk/sync/openapi.json"):
        assert kept in names
    assert not any("kiosk_sim" in n for n in names)
    metadata = _dist_file(firmware, "METADATA")
    assert "sdnotify" not in metadata and "tflite-runtime" not in metadata and "faiss" not in metadata.split(
        'extra == "dev"')[0]
    assert "Requires-Dist: ai-edge-litert==2.1.6" in metadata
    scripts = _dist_file(firmware, "entry_points.txt")
    assert "kiosk = kiosk.cli:main" in scripts and "kiosk-sim" not in scripts


def test_simulator_wheel_holds_the_simulators_and_their_benchmarks(wheels):
    sim = wheels["kiosk-sim"]
    names = set(_names(sim))
    assert {n.split("/")[0] for n in names} == {"kiosk_sim", "kiosk_sim_bench"}
    assert {"kiosk_sim/cli.py", "kiosk_sim/server.py", "kiosk_sim/r30x.py"} <= names
    assert {Path(n).name for n in names if n.startswith("kiosk_sim_bench/")} == SIM_BENCH_FILES | {"__init__.py"}
    data = {str(p.relative_to(ROOT / "hw-sim")) for p in (ROOT / "hw-sim" / "kiosk_sim" / "data").glob("*")
            if p.is_file()}
    assert data <= names
    assert "kiosk-sim = kiosk_sim.cli:main" in _dist_file(sim, "entry_points.txt")
    assert "Requires-Dist: kiosk" in _dist_file(sim, "METADATA")


def test_every_source_module_ships_in_exactly_one_wheel(wheels):
    shipped = [n for n in _names(wheels["kiosk"]) + _names(wheels["kiosk-sim"]) if n.endswith(".py")]
    # a kiosk_sim_bench module is the file of kiosk/bench/ with the same name
    as_source = sorted(n.replace("kiosk_sim_bench/", "kiosk/bench/") for n in shipped
                       if n != "kiosk_sim_bench/__init__.py")
    source = sorted([str(p.relative_to(ROOT)) for p in (ROOT / "kiosk").rglob("*.py")] +
                    [str(p.relative_to(ROOT / "hw-sim")) for p in (ROOT / "hw-sim" / "kiosk_sim").rglob("*.py")])
    assert as_source == source


def test_setup_cfgs_list_every_package():
    firmware_packages, firmware_modules = _listed(_cfg(ROOT / "setup.cfg"))
    sim_packages, sim_modules = _listed(_cfg(ROOT / "hw-sim" / "setup.cfg"))
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kiosk").rglob("__init__.py")}
    on_disk |= {".".join(p.parent.relative_to(ROOT / "hw-sim").parts) for p in (ROOT / "hw-sim").rglob("__init__.py")}
    module_packages = {m.rsplit(".", 1)[0] for m in firmware_modules}
    assert on_disk == firmware_packages | module_packages | sim_packages
    assert {m.rsplit(".", 1)[1] for m in sim_modules} == set(bench.SIM_BENCHES + bench.SIM_BENCH_HELPERS)


BLOCKER = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    blocked = ("kiosk_sim", "kiosk_sim_bench") + tuple("kiosk.bench." + n for n in {names!r})
    def find_spec(self, name, path=None, target=None):
        if name in self.blocked or name.startswith(("kiosk_sim.", "kiosk_sim_bench.")):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
from kiosk import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["bench", "sync", "--events", "10", "--no-tls"], ["bench", "attendance"]])
def test_a_simulator_bench_without_the_simulators_says_how_to_install_them(argv):
    """As installed from the firmware wheel alone: the simulator-backed benches say what to install."""
    code = BLOCKER.format(names=bench.SIM_BENCHES)
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "pip install ./hw-sim" in done.stderr and "make test" in done.stderr
    assert "Traceback" not in done.stderr
    listed = subprocess.run([sys.executable, "-c", code, "bench", "--help"], capture_output=True, text=True)
    assert listed.returncode == 0 and "gallery" in listed.stdout and "sync" in listed.stdout
