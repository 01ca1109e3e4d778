"""The image build writes the fleet's provisioning public keys, and refuses anything else."""

import sys

import pytest
from conftest import ROOT

from kiosk import provision_code

sys.path.insert(0, str(ROOT / "image-build" / "tools"))
import img_stage  # noqa: E402

KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"


def test_keys_are_written_where_the_kiosk_reads_them(tmp_path):
    dest = img_stage.stage_provisioning_keys(tmp_path, f"{KEY.upper()}  {'ab' * 32}")
    assert dest == tmp_path / "etc" / "kiosk" / "provisioning-keys"
    assert provision_code.load_public_keys(dest) == [KEY, "ab" * 32]


def test_no_keys_no_file(tmp_path):
    assert img_stage.stage_provisioning_keys(tmp_path, "  ") is None
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("junk", ["abc", KEY + "00", "-----BEGIN PRIVATE KEY-----"])
def test_anything_but_public_keys_stops_the_build(tmp_path, junk):
    with pytest.raises(ValueError, match="KIOSK_IMG_PROVISIONING_KEYS"):
        img_stage.stage_provisioning_keys(tmp_path, junk)
