"""Model files match the sha256 recorded in MODELS.md; tampering is detected."""

import shutil

import pytest

from kiosk.errors import ModelError
from kiosk.models import assets


def test_every_shipped_model_matches_models_md():
    report = assets.verify()
    assert report and all(status == "ok" for status in report.values()), report


def test_every_model_id_is_documented():
    listed = assets.expected_checksums()
    for model_id, file_name in assets.FILES.items():
        assert file_name in listed, f"{model_id}: {file_name} missing from MODELS.md"
        assert assets.path(model_id).is_file()
    text = assets.MODELS_MD.read_text()
    for heading in ("Source", "License", "Input", "Output"):
        assert text.count(f"- {heading}") >= len(assets.FILES)


def test_tampered_missing_and_unlisted_files_are_reported(tmp_path):
    for name in ("face_detection_short_range.tflite", "face_landmark.tflite"):
        shutil.copyfile(assets.path(name), tmp_path / name)
    with open(tmp_path / "face_landmark.tflite", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    (tmp_path / "extra.tflite").write_bytes(b"x")
    report = assets.verify(assets_dir=tmp_path)
    assert report["face_detection_short_range.tflite"] == "ok"
    assert report["face_landmark.tflite"] == "sha256 mismatch"
    assert report["MobileFaceNet.tflite"] == "missing"
    assert report["extra.tflite"] == "not listed in MODELS.md"


def test_require_returns_the_path_or_raises():
    assert assets.require("blazeface_short") == assets.path("face_detection_short_range.tflite")
    with pytest.raises(ModelError):
        assets.require("no_such_model.tflite")


def test_a_built_model_file_is_checked_against_its_models_md_row(tmp_path):
    shipped = assets.path("sface_2021dec_fp16.tflite")
    ok, message = assets.check_built(shipped, "sface_2021dec_fp16.tflite")
    assert ok and "matches" in message
    rebuilt = tmp_path / "sface.tflite"
    rebuilt.write_bytes(shipped.read_bytes() + b"\0")
    ok, message = assets.check_built(rebuilt, "sface_2021dec_fp16.tflite")
    assert not ok and "differs" in message
    ok, message = assets.check_built(rebuilt, "not_a_model.tflite")
    assert not ok and "not listed" in message
