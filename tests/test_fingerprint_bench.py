"""`kiosk bench fingerprint --dataset`: the FVC protocol through the driver and the simulator, on a small real set."""

import json

from kiosk import cli
from kiosk.bench import fingerprint_dataset


def test_fvc_pairs_follow_the_protocol():
    images = {"101": [1, 2, 3], "102": [1, 2, 3], "103": [1, 2, 3]}
    genuine, fvc, every = fingerprint_dataset.pairs(images)
    assert len(genuine) == 3 * 3 and len(fvc) == 3 and len(every) == 3 * 9
    assert all(a[0] == b[0] for a, b in genuine) and all(a[0] != b[0] for a, b in fvc + every)
    assert all(a[1] == b[1] == 1 for a, b in fvc)


def test_eer_is_where_false_rejects_meet_false_accepts():
    assert fingerprint_dataset.eer([50, 60, 70], [1, 2, 3]) == 0.0
    assert fingerprint_dataset.eer([10, 60], [20, 1]) == 0.5


def test_bench_on_real_images_prints_the_keys(tmp_path, datasets, capsys):
    folder = tmp_path / "FVC2002_DB1_B"  # three fingers the real matcher enrols, four impressions each
    folder.mkdir()
    for finger in ("104", "107", "108"):
        for n in range(1, 5):
            (folder / f"{finger}_{n}.tif").symlink_to(datasets / "fingers" / "FVC2002_DB1_B" / f"{finger}_{n}.tif")
    assert cli.main(["bench", "fingerprint", "--dataset", str(folder), "--model", "R503", "--repeat", "1",
                     "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"frr", "far", "eer", "search_ms", "verify_ms", "matcher"} <= set(figures)
    assert figures["genuine_pairs"] == 18 and figures["impostor_pairs_fvc"] == 3
    assert figures["far"] == 0 and figures["far_all"] == 0  # no other finger taken for one of these
    assert figures["frr"] < 0.5 and figures["library"] == 200
    assert figures["search_ms"] > 500 and figures["verify_ms"] > 500  # the timing model was on
    assert "bozorth3" in figures["matcher"]
