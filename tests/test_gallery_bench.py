"""`kiosk bench gallery`: its figures per size, and its exact source reading the float32 vectors from disk."""

import json
import tempfile

import numpy as np

from kiosk import cli
from kiosk.bench import gallery as bench


def test_file_source_reads_the_rows_of_the_asked_people():
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((50, 16)).astype(np.float32)
    with tempfile.TemporaryFile() as file:
        file.write(vectors.tobytes())
        file.flush()
        got = bench.file_source(file, 16)(["person-0000041", "person-0000003"])
    assert [person for person, _ in got] == ["person-0000041", "person-0000003"]
    assert np.array_equal(got[0][1], vectors[41]) and np.array_equal(got[1][1], vectors[3])


def test_bench_gallery_reports_rank1_equality_and_the_exact_rescore_rate(capsys):
    code = cli.main(["bench", "gallery", "--sizes", "3000", "--queries", "30", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    figures = json.loads(captured.out)["sizes"]["3000"]
    assert figures["templates"] == 3000 and figures["queries"] == 30
    assert figures["rank1_equal_float32"] == 1.0
    assert 0.0 <= figures["exact_rescore_rate"] <= 1.0 and figures["exact_fallbacks"] == 0
    assert figures["search_ms"] > 0 and figures["search_with_source_ms"] > 0 < figures["search_without_source_ms"] and figures["memory_mb"] >= 0
