"""The face benchmark protocol (pairs, TAR/FAR, EER, rank-1) and `kiosk bench face` end to end."""

import json
import math

import numpy as np
import pytest

from kiosk import cli
from kiosk.bench import face_protocol as protocol

LABELS = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])


def test_genuine_pairs_are_all_same_person_pairs():
    pairs = protocol.genuine_pairs(LABELS)
    assert len(pairs) == 3 + 1 + 0 + 6
    assert all(LABELS[i] == LABELS[j] and i < j for i, j in pairs)


def test_impostor_sample_is_deterministic_distinct_and_cross_person():
    total = protocol.count_impostor_pairs(LABELS)
    assert total == 45 - 10
    every = protocol.impostor_pairs(LABELS, 0)
    assert len(every) == total
    sample = protocol.impostor_pairs(LABELS, 20, seed=7)
    again = protocol.impostor_pairs(LABELS, 20, seed=7)
    np.testing.assert_array_equal(sample, again)
    assert len({tuple(p) for p in sample}) == 20
    assert all(LABELS[i] != LABELS[j] and i < j for i, j in sample)
    assert len(protocol.impostor_pairs(LABELS, 1000)) == total


def test_failed_detections_score_minus_infinity():
    embeddings = np.eye(4, dtype=np.float32)
    found = np.array([True, True, False, True])
    scores = protocol.pair_scores(embeddings, found, np.array([[0, 1], [0, 2], [3, 3]]))
    assert scores[0] == 0.0 and scores[1] == -math.inf and scores[2] == 1.0


def test_tar_at_far_uses_the_score_that_at_most_far_impostors_exceed():
    impostor = np.linspace(0.0, 0.999, 1000)       # highest: 0.999, 0.998, ...
    genuine = np.array([0.5, 0.9975, 0.9985, 2.0])
    tar, threshold = protocol.tar_at_far(genuine, impostor, 1e-3)
    assert threshold == pytest.approx(0.998)       # only one impostor (0.999) passes
    assert tar == 0.5
    tar, threshold = protocol.tar_at_far(genuine, impostor, 1e-4)   # no impostor may pass
    assert threshold == pytest.approx(0.999) and tar == 0.25
    # failures (-inf) among genuine pairs are rejected at any threshold
    assert protocol.tar_at_far(np.array([-math.inf]), impostor, 1e-2)[0] == 0.0


def test_equal_error_rate():
    assert protocol.equal_error_rate(np.array([0.8, 0.9]), np.array([0.1, 0.2])) == 0.0
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)
    assert protocol.equal_error_rate(genuine, impostor) == pytest.approx(0.1587, abs=0.01)


def test_rank1_counts_missing_faces_as_misses():
    labels = np.array([0, 0, 1, 1, 2])
    embeddings = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=np.float32)
    found = np.ones(5, dtype=bool)
    assert protocol.rank1(embeddings, found, labels) == 1.0
    found[3] = False                       # a probe without a face
    assert protocol.rank1(embeddings, found, labels) == 0.5
    found[:] = True
    found[2] = False                       # person 1's enrolment image without a face
    assert protocol.rank1(embeddings, found, labels) == 0.5


def test_gallery_rank1_counts_probes_whose_int8_gallery_best_is_float32s():
    """A probe on a near-tie its codes rank the other way: decided from the float32 vectors, it agrees."""
    from kiosk.models import gallery_scan
    from kiosk.models.gallery import Gallery, normalize

    dim, step = 32, gallery_scan.step_for(32)
    for seed in range(10_000):  # the first near-tie the codes swap (about 1 pair in 100)
        rng = np.random.default_rng(seed)
        probe = normalize(rng.standard_normal(dim))
        a, b = (normalize(probe + 0.8 * normalize(rng.standard_normal(dim))) for _ in range(2))
        gallery = Gallery("m", dim, scan_rows=1)
        gallery.add_many(["a", "b"], np.array([a, b]), model_id="m")
        if (gallery.search(probe, k=1)[0].person_id == "a") != (a @ probe > b @ probe):
            break
    embeddings = np.array([a, b, probe, a + 0.01, b], dtype=np.float32)
    labels = np.array([0, 1, 0, 0, 1])
    found = np.array([True, True, True, True, False])  # a probe without a face is not searched
    got = protocol.gallery_rank1(embeddings, found, labels, "m")
    assert got == {"probes": 2, "rank1_equal_float32": 1.0, "exact_rescores": 1, "exact_rescore_rate": 0.5,
                   "exact_fallbacks": 0}


def test_list_dataset(tmp_path):
    for person, count in (("b_person", 2), ("a_person", 1), ("empty", 0)):
        (tmp_path / person).mkdir()
        for i in range(count):
            (tmp_path / person / f"{person}_{i:04d}.jpg").write_bytes(b"")
    (tmp_path / "b_person" / "notes.txt").write_text("not an image")
    names, files, labels = protocol.list_dataset(tmp_path)
    assert names == ["a_person", "b_person"]
    assert [f.name for f in files] == ["a_person_0000.jpg", "b_person_0000.jpg", "b_person_0001.jpg"]
    assert labels.tolist() == [0, 1, 1]
    assert protocol.list_dataset(tmp_path, people=1)[0] == ["a_person"]


def test_bench_face_runs_end_to_end_and_prints_json(datasets, tmp_path, capsys):
    source = datasets / "faces" / "lfw150"
    for person in sorted(p for p in source.iterdir() if p.is_dir())[:5]:
        (tmp_path / person.name).symlink_to(person)
    scores = tmp_path / "scores.npz"
    code = cli.main(["bench", "face", "--dataset", str(tmp_path), "--json", "--threads", "1,2",
                     "--latency-images", "3", "--impostors", "0", "--scores", str(scores)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    for key in ("images", "detect_fail_rate", "tar_at_far", "eer", "rank1", "latency_ms", "model"):
        assert key in result
    assert set(result["tar_at_far"]) == {"1e-2", "1e-3", "1e-4"}
    assert set(result["latency_ms"]) == {"detect", "landmarks", "embed", "total"}
    assert all(v > 0 for v in result["latency_ms"].values())
    assert set(result["latency"]) == {"1", "2"}
    assert result["cpu_ms"] == result["latency"]["1"]["cpu_total"]["median"] > 0  # CPU time per face, beside wall
    assert result["images"] == sum(len(list(p.iterdir())) for p in tmp_path.iterdir() if p.is_dir())
    assert result["model"] == "sface-int8-v2"  # the face.embedder default
    assert 0.0 <= result["detect_fail_rate"] <= 1.0 and 0.0 <= result["rank1"] <= 1.0
    holds = result["target"]["holds"]
    assert holds["dlib_speed_ratio"] is None and holds["met"] is False  # no peer run: never "met"
    assert holds["rank1"] == (result["rank1"] >= 0.99) and holds["total_ms"] == (result["latency_ms"]["total"] <= 12)
    assert set(result["load_average"]) == {"before", "after"}
    through = result["gallery"]  # the same probes through the int8 gallery
    assert through["probes"] == result["images"] - result["people"] and through["rank1_equal_float32"] == 1.0
    assert "images" in captured.err      # progress goes to stderr
    saved = np.load(scores)
    assert len(saved["genuine"]) == result["genuine_pairs"]
    assert len(saved["impostor"]) == result["impostor_pairs"]
    np.testing.assert_allclose(np.sort(saved["impostor_all"]), np.sort(saved["impostor"]))  # --impostors 0


def test_bench_face_reports_a_missing_folder(tmp_path, capsys):
    assert cli.main(["bench", "face", "--dataset", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_face_target_verdict_needs_every_figure_and_the_peer():
    from kiosk.bench.face import verdict

    good = {"latency_ms": {"total": 11.0}, "detect_fail_rate": 0.0, "tar_at_far": {"1e-3": 0.985, "1e-4": 0.975},
            "rank1": 0.995, "dlib_speed_ratio": 8.5}
    assert verdict(good)["holds"]["met"] is True
    for key, bad in (("latency_ms", {"total": 12.5}), ("detect_fail_rate", 0.01), ("rank1", 0.98),
                     ("tar_at_far", {"1e-3": 0.985, "1e-4": 0.96}), ("dlib_speed_ratio", 7.9)):
        assert verdict({**good, key: bad})["holds"]["met"] is False, key
    assert verdict({**good, "dlib_speed_ratio": None})["holds"]["met"] is False
