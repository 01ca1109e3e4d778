"""Gallery: add/remove/search agree with a brute-force reference; model refusal; loading from storage."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kiosk.errors import KioskError, ModelMismatchError
from kiosk.models import gallery_scan
from kiosk.models.gallery import Gallery, normalize
from kiosk.storage import db, people, seal

DIM = 8


def brute_force(reference, query, k):
    """Best score per person over a plain dict of person -> list of vectors."""
    q = normalize(query)
    best = {p: max(float(normalize(v) @ q) for v in vs) for p, vs in reference.items() if vs}
    return sorted(best.items(), key=lambda item: -item[1])[:k]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 9), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("remove"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("search"), st.integers(1, 4), st.integers(0, 2**32 - 1)),
    ),
    max_size=60)


# a stored vector is the int8 code of the unit vector (step 1/127 at 8 dimensions) scaled to unit
# length: each element within half a step of the original before the rescaling, about one step
# after it, so its score against a unit query moves by at most this
QUANTIZATION_TOLERANCE = np.sqrt(DIM) / 127


@settings(max_examples=120, deadline=None)
@given(operations, st.sampled_from([1, 1024]))
def test_gallery_matches_brute_force(ops, scan_rows):
    """Search agrees exactly with brute force over the stored vectors, with the scan model (scan_rows=1) or without."""
    gallery = Gallery("m1", DIM, capacity=1, scan_rows=scan_rows)
    reference = {}
    for op, a, seed in ops:
        rng = np.random.default_rng(seed)
        if op == "add":
            vector = rng.standard_normal(DIM).astype(np.float32) + 0.01
            gallery.add(f"p{a}", vector, model_id="m1")
            reference.setdefault(f"p{a}", []).append(vector)
        elif op == "remove":
            assert gallery.remove(f"p{a}") == len(reference.pop(f"p{a}", []))
        else:
            query = rng.standard_normal(DIM).astype(np.float32) + 0.01
            stored = {person: list(gallery.templates_of(person)) for person in reference}
            got = gallery.search(query, k=a)
            want = brute_force(stored, query, a)
            assert [m.score for m in got] == pytest.approx([s for _, s in want], abs=1e-5)
            for match in got:  # each returned identity is scored by its own best template
                assert match.score == pytest.approx(dict(brute_force(stored, query, 99))[match.person_id], abs=1e-5)
                original = dict(brute_force(reference, query, 99))[match.person_id]
                assert match.score == pytest.approx(original, abs=QUANTIZATION_TOLERANCE)
        assert len(gallery) == sum(len(v) for v in reference.values())
        assert gallery.people_count == len(reference)
    for person, vectors in reference.items():
        stored = gallery.templates_of(person)
        expected = np.array([normalize(v) for v in vectors])
        assert stored.shape == expected.shape
        assert np.abs(np.sort(stored, axis=0) - np.sort(expected, axis=0)).max() <= 1 / 127


def test_best_per_identity_makes_second_best_another_person():
    gallery = Gallery("m1", 3)
    gallery.add("alice", [1, 0, 0], model_id="m1")
    gallery.add("alice", [0.99, 0.1, 0], model_id="m1")  # a second, near-identical template
    gallery.add("bob", [0, 1, 0], model_id="m1")
    first, second = gallery.search([1, 0.05, 0], k=2)
    assert first.person_id == "alice" and second.person_id == "bob"
    assert first.score > 0.99 and second.score < 0.1


def test_refuses_vectors_of_another_model_or_size():
    gallery = Gallery("sface-int8-v2", 4)
    with pytest.raises(ModelMismatchError) as caught:
        gallery.add("alice", [1, 0, 0, 0], model_id="mobilefacenet-v1")
    assert isinstance(caught.value, KioskError) and isinstance(caught.value, ValueError)
    assert "mobilefacenet-v1" in str(caught.value)
    with pytest.raises(ModelMismatchError):
        gallery.add("alice", [1, 0, 0], model_id="sface-int8-v2")
    with pytest.raises(ModelMismatchError):
        gallery.search([1, 0, 0])
    with pytest.raises(ValueError):
        gallery.add("alice", [0, 0, 0, 0], model_id="sface-int8-v2")
    assert len(gallery) == 0


def test_grows_geometrically_and_keeps_rows_contiguous():
    gallery = Gallery("m", 4, capacity=2)
    capacities = set()
    for i in range(100):
        gallery.add(f"p{i}", np.eye(4)[i % 4] + 0.01 * i, model_id="m")
        capacities.add(gallery.capacity)
    assert len(capacities) < 15  # not one reallocation per add
    assert gallery.remove("p0") == 1 and len(gallery) == 99
    assert gallery.search(np.eye(4)[0] + 0.0, k=1)[0].person_id != "p0"
    assert gallery.search([1, 0, 0, 0], k=200)[-1].person_id in {f"p{i}" for i in range(1, 100)}


def test_loads_from_storage(tmp_path):
    database = db.open_db(":memory:")
    key = seal.DataKey.create(tmp_path / "data.key")
    people.upsert_people(database, [{"person_id": "alice"}, {"person_id": "bob"}, {"person_id": "carol", "active": 0}])
    rng = np.random.default_rng(1)
    vectors = {name: rng.standard_normal(16).astype(np.float32) for name in ("alice", "bob", "carol")}
    for name, vector in vectors.items():
        people.add_face_template(database, key, name, "sface-int8-v2", vector)
    people.add_face_template(database, key, "alice", "mobilefacenet-v1", rng.standard_normal(16))
    gallery = Gallery.load(database, key, "sface-int8-v2")
    assert gallery.dim == 16 and len(gallery) == 2 and "carol" not in gallery  # inactive people are not loaded
    best = gallery.search(vectors["bob"], k=2)
    assert best[0].person_id == "bob" and best[0].score == pytest.approx(1.0, abs=1e-4)  # int8 codes
    empty = Gallery.load(database, key, "other-model", dim=16)
    assert len(empty) == 0
    with pytest.raises(ValueError):
        Gallery.load(database, key, "other-model")


def test_scan_finds_what_brute_force_finds_among_near_ties():
    """3,000 templates within ~0.005 of each other: the coarse scan's int8 error reorders them, re-scoring must not."""
    rng = np.random.default_rng(5)
    dim = 64
    centre = normalize(rng.standard_normal(dim))
    vectors = centre + 0.008 * rng.standard_normal((3000, dim)).astype(np.float32)
    ids = [f"person-{i % 1500}" for i in range(3000)]  # two templates each
    gallery = Gallery("m", dim, scan_rows=1)
    gallery.add_many(ids, vectors, model_id="m")
    stored = {person: gallery.templates_of(person) for person in set(ids)}
    people_ids = sorted(stored)
    matrix = np.stack([stored[p] for p in people_ids])  # (people, 2, dim)
    coarse_differs = 0
    for seed in range(300):
        query = normalize(centre + 0.008 * np.random.default_rng(seed).standard_normal(dim).astype(np.float32))
        best = (matrix @ query).max(axis=1)  # brute force: each person's best stored template
        order = np.argsort(-best)[:5]
        got = gallery.search(query, k=5)
        assert [m.score for m in got] == pytest.approx(best[order].tolist(), abs=1e-5)
        for match in got:  # the same people, up to ties within float rounding
            assert best[people_ids.index(match.person_id)] == pytest.approx(match.score, abs=1e-5)
        coarse_differs += int(np.argmax(gallery._scan.scores(query)) != np.argmax(gallery.scores(query)))
    assert coarse_differs > 0  # the case is hard: the coarse order alone would have been wrong


def test_one_person_with_many_best_templates_does_not_hide_the_second():
    """Person A's 200 templates outscore everyone: k=2 must widen past them to find B."""
    rng = np.random.default_rng(6)
    dim = 32
    target = normalize(rng.standard_normal(dim))
    a = target + 0.01 * rng.standard_normal((200, dim)).astype(np.float32)
    b = target + 0.1 * rng.standard_normal((1, dim)).astype(np.float32)
    others = rng.standard_normal((2000, dim)).astype(np.float32)
    gallery = Gallery("m", dim, scan_rows=1)
    gallery.add_many(["a"] * 200 + ["b"] + [f"o{i}" for i in range(2000)], np.vstack([a, b, others]), model_id="m")
    first, second = gallery.search(target, k=2)
    assert first.person_id == "a" and second.person_id == "b"
    assert second.score == pytest.approx(float(gallery.templates_of("b")[0] @ target), abs=1e-5)


def test_changes_after_a_scan_are_seen_by_the_next_search():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    gallery = Gallery("m", 16, scan_rows=1000)
    gallery.add_many([f"p{i}" for i in range(2000)], vectors, model_id="m")
    assert gallery.search(vectors[3], k=1)[0].person_id == "p3"
    assert not gallery._codes.flags.writeable  # one copy of the codes: the scan model's
    assert gallery.remove("p3") == 1
    assert gallery.search(vectors[3], k=1)[0].person_id != "p3"
    gallery.add("new", vectors[3], model_id="m")
    assert gallery.search(vectors[3], k=1)[0].person_id == "new"
    assert "p3" not in gallery and "new" in gallery and gallery.people_count == 2000
    assert sorted(gallery.person_ids()) == sorted([f"p{i}" for i in range(2000) if i != 3] + ["new"])


def test_person_ids_are_text_without_nul():
    gallery = Gallery("m", 4)
    with pytest.raises(ValueError):
        gallery.add("", [1, 0, 0, 0], model_id="m")
    with pytest.raises(ValueError):
        gallery.add("a\x00", [1, 0, 0, 0], model_id="m")
    gallery.add("تجربة-١", [1, 0, 0, 0], model_id="m")  # any other text is fine, stored as UTF-8
    assert gallery.search([1, 0, 0, 0], k=1)[0].person_id == "تجربة-١"
    assert "a" not in gallery and "" not in gallery


def test_coarse_scores_bound_the_exact_scores():
    rng = np.random.default_rng(8)
    vectors = rng.standard_normal((500, 128)).astype(np.float32)
    step = gallery_scan.step_for(128)
    codes = gallery_scan.quantize(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), step)
    norms = gallery_scan.row_norms(codes) * step
    scan = gallery_scan.CodeScan(codes, step)
    assert np.array_equal(scan.codes, codes)
    slack = []
    for query in rng.standard_normal((50, 128)).astype(np.float32):
        query = normalize(query)
        exact = (codes.astype(np.float32) @ query) / gallery_scan.row_norms(codes)
        at_most = gallery_scan.exact_at_most(scan.scores(query), query_bound=gallery_scan.query_error_bound(query),
                                             norm_low=float(norms.min()), norm_high=float(norms.max()))
        assert np.all(exact <= at_most)
        slack.append(float((at_most - exact).min()))
    assert min(slack) < 0.01  # the bound is not uselessly loose


@pytest.mark.parametrize("count,take", [(10, 3), (100_000, 16), (100_000, 64), (100_000, 5000), (50_000, 50_000)])
def test_best_rows_are_the_highest_scores(count, take):
    from kiosk.models.gallery import best_rows

    rng = np.random.default_rng(count + take)
    for scores in (rng.standard_normal(count).astype(np.float32),
                   np.round(rng.standard_normal(count), 2).astype(np.float32),  # many ties
                   np.sort(rng.standard_normal(count)).astype(np.float32)):     # sorted: a strided sample is skewed
        rows = best_rows(scores, take)
        assert len(rows) == min(take, count) and len(set(rows.tolist())) == len(rows)
        assert scores[rows].min() >= np.sort(scores)[::-1][min(take, count) - 1]
