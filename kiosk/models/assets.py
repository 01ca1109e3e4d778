"""Paths of the shipped model files and their sha256 check against ``assets/MODELS.md``.

MODELS.md is the record of where each file came from and under which terms; its "Checksums"
table is also what ``verify()`` compares the files with, so the doctor and the tests use the
same source of truth as the humans reading it.
"""

import hashlib
import logging
import re
from pathlib import Path

from kiosk.errors import ModelError

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
MODELS_MD = ASSETS_DIR / "MODELS.md"

# model id -> file name (ids are what settings and stored templates refer to)
FILES = {
    "blazeface_short": "face_detection_short_range.tflite",
    "blazeface_full": "face_detection_full_range.tflite",
    "face_landmark": "face_landmark.tflite",
    "sface-fp16-v1": "sface_2021dec_fp16.tflite",
    "sface-int8-v2": "sface_2021dec_int8.tflite",
    "mobilefacenet-v1": "MobileFaceNet.tflite",
    "face_anti_spoofing": "FaceAntiSpoofing.tflite",
    "campplus-fp16-v1": "campplus_cn_en_common_fp16.tflite",
}

_CHECKSUM_ROW = re.compile(r"^\|\s*`?([\w.-]+\.tflite)`?\s*\|\s*`?([0-9a-f]{64})`?\s*\|", re.MULTILINE)


def path(name):
    """Absolute path of a model file given its file name or model id (existence not checked)."""
    return ASSETS_DIR / FILES.get(name, name)


def expected_checksums(models_md=MODELS_MD):
    """``{file name: sha256 hex}`` from the Checksums table of MODELS.md."""
    try:
        text = Path(models_md).read_text(encoding="utf-8")
    except OSError as e:
        raise ModelError(f"cannot read {models_md}: {e}") from e
    return dict(_CHECKSUM_ROW.findall(text))


def sha256(file_path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(file_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_built(file_path, name, *, models_md=MODELS_MD):
    """A freshly built model file against MODELS.md's row for ``name``: ``(ok, message)`` (the conversion tools)."""
    expected = expected_checksums(models_md).get(name)
    actual = sha256(file_path)
    if expected is None:
        return False, f"{name} is not listed in MODELS.md; its sha256 is {actual}"
    if expected != actual:
        return False, f"{file_path}: sha256 {actual} differs from MODELS.md ({expected})"
    return True, f"{file_path}: sha256 matches MODELS.md"


def verify(names=None, *, assets_dir=ASSETS_DIR, models_md=MODELS_MD):
    """Check model files against MODELS.md; returns ``{file name: problem or "ok"}``.

    ``names`` (file names or model ids) defaults to every file MODELS.md lists plus every
    .tflite in the folder, so an unlisted file is reported too.
    """
    expected = expected_checksums(models_md)
    assets_dir = Path(assets_dir)
    if names is None:
        files = sorted(set(expected) | {p.name for p in assets_dir.glob("*.tflite")})
    else:
        files = [FILES.get(n, n) for n in names]
    report = {}
    for name in files:
        file_path = assets_dir / name
        if name not in expected:
            report[name] = "not listed in MODELS.md"
        elif not file_path.is_file():
            report[name] = "missing"
        elif sha256(file_path) != expected[name]:
            report[name] = "sha256 mismatch"
        else:
            report[name] = "ok"
    return report


def require(name):
    """Path of a model file after checking its sha256; raises ModelError when it does not match."""
    file_name = FILES.get(name, name)
    problem = verify([file_name])[file_name]
    if problem != "ok":
        raise ModelError(f"model {file_name}: {problem}")
    return path(file_name)
