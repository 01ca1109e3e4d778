"""Gallery: add/remove/search agree with a brute-force reference; model refusal; loading from storage."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kiosk.errors import KioskError, ModelMismatchError
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


@settings(max_examples=150, deadline=None)
@given(operations)
def test_gallery_matches_brute_force(ops):
    gallery = Gallery("m1", DIM, capacity=1)
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
            got = gallery.search(query, k=a)
            want = brute_force(reference, query, a)
            assert [round(m.score, 5) for m in got] == [round(s, 5) for _, s in want]
            for match in got:  # each returned identity is scored by its own best template
                assert match.score == pytest.approx(dict(brute_force(reference, query, 99))[match.person_id], abs=1e-5)
        assert len(gallery) == sum(len(v) for v in reference.values())
        assert gallery.people_count == len(reference)
    for person, vectors in reference.items():
        stored = gallery.templates_of(person)
        expected = np.array([normalize(v) for v in vectors])
        assert sorted(map(tuple, np.round(stored, 5))) == sorted(map(tuple, np.round(expected, 5)))


def test_best_per_identity_makes_second_best_another_person():
    gallery = Gallery("m1", 3)
    gallery.add("alice", [1, 0, 0], model_id="m1")
    gallery.add("alice", [0.99, 0.1, 0], model_id="m1")  # a second, near-identical template
    gallery.add("bob", [0, 1, 0], model_id="m1")
    first, second = gallery.search([1, 0.05, 0], k=2)
    assert first.person_id == "alice" and second.person_id == "bob"
    assert first.score > 0.99 and second.score < 0.1


def test_refuses_vectors_of_another_model_or_size():
    gallery = Gallery("sface-int8-v1", 4)
    with pytest.raises(ModelMismatchError) as caught:
        gallery.add("alice", [1, 0, 0, 0], model_id="mobilefacenet-v1")
    assert isinstance(caught.value, KioskError) and isinstance(caught.value, ValueError)
    assert "mobilefacenet-v1" in str(caught.value)
    with pytest.raises(ModelMismatchError):
        gallery.add("alice", [1, 0, 0], model_id="sface-int8-v1")
    with pytest.raises(ModelMismatchError):
        gallery.search([1, 0, 0])
    with pytest.raises(ValueError):
        gallery.add("alice", [0, 0, 0, 0], model_id="sface-int8-v1")
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
        people.add_face_template(database, key, name, "sface-int8-v1", vector)
    people.add_face_template(database, key, "alice", "mobilefacenet-v1", rng.standard_normal(16))
    gallery = Gallery.load(database, key, "sface-int8-v1")
    assert gallery.dim == 16 and len(gallery) == 2 and "carol" not in gallery  # inactive people are not loaded
    best = gallery.search(vectors["bob"], k=2)
    assert best[0].person_id == "bob" and best[0].score == pytest.approx(1.0, abs=1e-5)
    empty = Gallery.load(database, key, "other-model", dim=16)
    assert len(empty) == 0
    with pytest.raises(ValueError):
        Gallery.load(database, key, "other-model")
