"""Gallery near-ties decided from the float32 templates: the bound, the exact rank-1, hostile sources, storage."""

import itertools
import logging

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kiosk.models import gallery_exact, gallery_scan
from kiosk.models.gallery import Gallery, normalize
from kiosk.storage import db, people, seal

DIM = 32


def code_score(vector, query, step):
    """A row's score as the gallery computes it: the query against the int8 code of the unit vector."""
    code = gallery_scan.quantize(normalize(vector)[None], step)[0].astype(np.float32)
    return float(code @ query / np.linalg.norm(code))


def flipped_tie(dim=DIM):
    """``(query, a, b)``: a beats b in float32, and their int8 codes rank them the other way round.

    The first seed that gives one (about 1 in 100 pairs of vectors at the same distance from
    the query): such near-ties are what the exact re-score is for.
    """
    step = gallery_scan.step_for(dim)
    for seed in itertools.count():
        rng = np.random.default_rng(seed)
        query = normalize(rng.standard_normal(dim))
        a, b = (normalize(query + 0.8 * normalize(rng.standard_normal(dim))) for _ in range(2))
        if a @ query < b @ query:
            a, b = b, a
        if code_score(a, query, step) < code_score(b, query, step):
            return query, a, b


def tie_gallery(**options):
    """A gallery of the flipped tie's two people and 40 others far from the query."""
    query, a, b = flipped_tie()
    rng = np.random.default_rng(99)
    originals = {"alice": [a], "bob": [b]}
    originals.update({f"other-{i}": [normalize(rng.standard_normal(DIM)) - 0.5 * query] for i in range(40)})
    gallery = Gallery("m", DIM, **options)
    for person, vectors in originals.items():
        gallery.add_many([person] * len(vectors), np.array(vectors), model_id="m")
    return gallery, query, originals


def dict_source(originals, asked=None):
    def source(person_ids):
        if asked is not None:
            asked.append(sorted(person_ids))
        return [(person, vector) for person in person_ids for vector in originals[person]]
    return source


def test_the_codes_alone_swap_the_tie():
    """The case the rest of this file relies on: without a source, rank-1 is the codes' (bob), not float32's (alice)."""
    gallery, query, _ = tie_gallery(scan_rows=1)
    assert [m.person_id for m in gallery.search(query, k=2)] == ["bob", "alice"]
    assert gallery.exact_rescores == 0


@pytest.mark.parametrize("scan_rows", [1, 1024])
def test_a_near_tie_is_decided_by_the_float32_templates_of_just_its_people(scan_rows):
    gallery, query, originals = tie_gallery(scan_rows=scan_rows)
    asked = []
    gallery.exact_source = dict_source(originals, asked)
    first, second = gallery.search(query, k=2)
    assert (first.person_id, second.person_id) == ("alice", "bob")
    assert first.score == pytest.approx(float(originals["alice"][0] @ query), abs=1e-6)  # float32 scores
    assert second.score == pytest.approx(float(originals["bob"][0] @ query), abs=1e-6)
    assert asked == [["alice", "bob"]] and gallery.exact_rescores == 1 and gallery.exact_fallbacks == 0
    # a clear winner needs no source
    gallery.search(originals["other-3"][0], k=2)
    assert len(asked) == 1


def test_every_rows_float32_score_is_inside_its_bound():
    """|q.v - code_score * step|c|| <= the largest measured |v - step c|, clipped elements included.

    Random queries, and the worst ones: a query along a row's own rounding error moves that
    row's score by the whole error, so the bound is reached (nothing tighter holds for every query).
    """
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 128)).astype(np.float32)
    vectors[:50, 0] += 40.0  # one element past the code's range (+-127 steps): clipped
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    step = gallery_scan.step_for(128)
    codes = gallery_scan.quantize(units, step)
    errors = gallery_exact.code_errors(units, codes, step)
    assert errors[:50].min() > 10 * errors[50:].max()  # the clipped rows err far more, and are counted
    norms = gallery_scan.row_norms(codes)
    for clipped in (True, False):
        rows = slice(0, None) if clipped else slice(50, None)
        error = float(errors[rows].max()) + gallery_exact.FLOAT_MARGIN
        worst = int(np.argmax(errors[rows]))
        along_error = units[rows][worst] - step * codes[rows][worst]
        queries = np.vstack([rng.standard_normal((40, 128)), along_error, -along_error]).astype(np.float32)
        for query in queries:
            query = normalize(query)
            scores = (codes[rows].astype(np.float32) @ query) / norms[rows]
            low, high = gallery_exact.bounds(scores, step * norms[rows], error)
            exact = units[rows] @ query
            assert np.all(low <= exact) and np.all(exact <= high)
        assert exact[worst] - low[worst] < 2 * gallery_exact.FLOAT_MARGIN  # the last query: reached


def test_a_flip_almost_as_wide_as_the_bound_is_still_decided_exactly():
    """The codes put b ahead by over 1.5x the rounding bound while float32 puts a ahead.

    Two rows can swap when their codes differ by up to twice the bound (one under-rated by it,
    the other over-rated); a near-tie window a quarter narrower than that misses this pair.

    Found among 20,000 seeded vectors near one query at 8 dimensions (coarse steps): the pair
    whose code scores are furthest the wrong way round.
    """
    dim = 8
    step = gallery_scan.step_for(dim)
    rng = np.random.default_rng(11)
    query = normalize(rng.standard_normal(dim))
    vectors = query + 0.5 * rng.standard_normal((20000, dim)).astype(np.float32)
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    codes = gallery_scan.quantize(units, step)
    centre = (codes.astype(np.float32) @ query) * step  # code score * code length
    exact = units @ query
    errors = gallery_exact.code_errors(units, codes, step)
    widest = None
    for a in np.argsort(centre - exact)[:300]:  # the rows their codes under-rate most
        below = np.flatnonzero(exact < exact[a])
        b = below[np.argmax(centre[below])]
        wrong_way = (centre[b] - centre[a]) / max(errors[a], errors[b])
        if widest is None or wrong_way > widest[0]:
            widest = (wrong_way, a, b)
    wrong_way, a, b = widest
    assert 1.5 < wrong_way <= 2.0  # past 2x it would not be a flip the bound allows
    originals = {"a": [vectors[a]], "b": [vectors[b]]}
    gallery = Gallery("m", dim)
    gallery.add_many(["a", "b"], vectors[[a, b]], model_id="m")
    assert gallery.search(query, k=1)[0].person_id == "b"  # the codes alone
    gallery.exact_source = dict_source(originals)
    assert gallery.search(query, k=1)[0].person_id == "a"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 1024]), st.sampled_from([0.05, 0.3]), st.integers(1, 3))
def test_rank1_is_the_float32_rank1(seed, scan_rows, spread, k):
    """People crowded around one face, 1-3 templates each: every query's best identity is float32's."""
    rng = np.random.default_rng(seed)
    centre = normalize(rng.standard_normal(DIM))
    owners = [f"p{i}" for i in range(60) for _ in range(int(rng.integers(1, 4)))]
    vectors = centre + spread * rng.standard_normal((len(owners), DIM)).astype(np.float32)
    originals = {}
    for person, vector in zip(owners, vectors):
        originals.setdefault(person, []).append(vector)
    gallery = Gallery("m", DIM, scan_rows=scan_rows, exact_source=dict_source(originals), exact_limit=1000)
    gallery.add_many(owners, vectors, model_id="m")
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query in centre + spread * rng.standard_normal((20, DIM)).astype(np.float32):
        query = normalize(query)
        exact = units @ query
        got = gallery.search(query, k=k)
        ranked = np.sort(exact)[::-1]
        if len(ranked) > 1 and ranked[0] - ranked[1] < 1e-6:
            continue  # a float32 tie: either answer is float32's
        assert got[0].person_id == owners[int(np.argmax(exact))]
    assert gallery.exact_fallbacks == 0


@pytest.mark.parametrize("scan_rows", [1, 100_000])
def test_a_template_beyond_the_codes_range_neither_breaks_rank1_nor_makes_every_search_a_near_tie(scan_rows, caplog):
    """One clipped template (an element past +-127 steps) errs by ~0.45: its bound is its own, not every row's."""
    rng = np.random.default_rng(12)
    dim = 128
    vectors = rng.standard_normal((2000, dim)).astype(np.float32)
    outlier = rng.standard_normal(dim).astype(np.float32)
    outlier[0] = 40.0
    owners = [f"p{i}" for i in range(2000)] + ["outlier"]
    originals = {person: [vector] for person, vector in zip(owners, np.vstack([vectors, outlier]))}
    asked = []
    gallery = Gallery("m", dim, scan_rows=scan_rows, exact_source=dict_source(originals, asked))
    gallery.add_many(owners, np.vstack([vectors, outlier]), model_id="m")
    assert "beyond the codes' range" in caplog.text
    units = np.vstack([vectors, outlier]) / np.linalg.norm(np.vstack([vectors, outlier]), axis=1, keepdims=True)
    for row in range(40):  # clear matches: nobody near them, the outlier included
        query = normalize(vectors[row] + 0.3 * normalize(rng.standard_normal(dim)))
        assert gallery.search(query, k=2)[0].person_id == f"p{row}"
    assert asked == [] and gallery.exact_fallbacks == 0
    # the outlier itself, and queries between it and another person, still get float32's rank-1
    for other in range(40):
        query = normalize(units[-1] + units[other] * float(rng.uniform(0.5, 1.5)))
        assert gallery.search(query, k=1)[0].person_id == owners[int(np.argmax(units @ query))]
    assert gallery.exact_fallbacks == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 100_000]), st.integers(1, 4))
@example(seed=44, scan_rows=1, k=4)  # a clipped row the coarse scan ranks below rows left out
def test_with_templates_at_the_codes_edge_search_still_finds_what_brute_force_finds(seed, scan_rows, k):
    """Rows at the edge are always candidates and outside the norm range: no source, plain code scores, exact top-k.

    A clipped code is short (step * |code| well below 1), so its coarse score is too: bounding
    the rows left out with the norms of ordinary rows only is right because edge rows are never
    left out.
    """
    rng = np.random.default_rng(seed)
    dim = 64
    vectors = rng.standard_normal((1500, dim)).astype(np.float32)
    edge = rng.choice(1500, 6, replace=False)
    vectors[edge, rng.integers(0, dim, 6)] = rng.choice([-1, 1], 6) * rng.uniform(8, 60, 6)  # clipped elements
    owners = [f"p{i % 700}" for i in range(1500)]
    gallery = Gallery("m", dim, scan_rows=scan_rows)
    gallery.add_many(owners, vectors, model_id="m")
    stored = {person: gallery.templates_of(person) for person in set(owners)}
    people_ids = sorted(stored)
    for query in vectors[rng.choice(edge, 3)].tolist() + rng.standard_normal((5, dim)).tolist():
        query = normalize(query)
        best = {person: float((stored[person] @ query).max()) for person in people_ids}
        want = sorted(best.items(), key=lambda item: -item[1])[:k]
        got = gallery.search(query, k=k)
        assert [m.score for m in got] == pytest.approx([score for _, score in want], abs=1e-5)


def forged_winner(originals, query):
    """bob's template swapped for the query itself (score 1.0): a source trying to pick the winner."""
    return {**originals, "bob": [query]}


HOSTILE = {
    "raises": lambda originals, query: lambda ids: (_ for _ in ()).throw(RuntimeError(f"leak {query[0]!r}")),
    "returns None": lambda originals, query: lambda ids: None,
    "returns nothing": lambda originals, query: lambda ids: [],
    "misses a person": lambda originals, query: lambda ids: [(p, v) for p in ids if p != "bob" for v in originals[p]],
    "another size": lambda originals, query: lambda ids: [(p, np.append(v, 0.1)) for p in ids for v in originals[p]],
    "not finite": lambda originals, query: lambda ids: [(p, v * np.nan) for p in ids for v in originals[p]],
    "infinite": lambda originals, query: lambda ids: [(p, v * np.inf) for p in ids for v in originals[p]],
    "zero": lambda originals, query: lambda ids: [(p, 0 * v) for p in ids for v in originals[p]],
    "a person not asked for": lambda originals, query: lambda ids: (
        [(p, v) for p in ids for v in originals[p]] + [("other-1", originals["other-1"][0])]),
    "a forged template": lambda originals, query: dict_source(forged_winner(originals, query)),
    "a template the gallery lacks": lambda originals, query: lambda ids: (
        [(p, v) for p in ids for v in originals[p]] + [("bob", query)]),
    "a duplicate beyond the rows": lambda originals, query: lambda ids: (
        [(p, v) for p in ids for v in originals[p]] + [("bob", originals["bob"][0])]),
    "never ends": lambda originals, query: lambda ids: itertools.repeat(("alice", originals["alice"][0])),
    "not pairs": lambda originals, query: lambda ids: ["alice", "bob"],
    "ids not text": lambda originals, query: lambda ids: [(p.encode(), v) for p in ids for v in originals[p]],
    "text vectors": lambda originals, query: lambda ids: [(p, "0.1 0.2") for p in ids],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_or_broken_source_falls_back_to_the_code_scores(kind, caplog):
    gallery, query, originals = tie_gallery(scan_rows=1)
    reference = gallery.search(query, k=2)  # no source: the codes decide
    gallery.exact_source = HOSTILE[kind](originals, query)
    with caplog.at_level(logging.DEBUG):
        got = gallery.search(query, k=2)
    assert got == reference
    assert gallery.exact_rescores == 1 and gallery.exact_fallbacks == 1
    assert "leak" not in caplog.text  # nothing the source said reaches the log
    gallery.exact_source = dict_source(originals)  # the next search with a good source is exact again
    assert gallery.search(query, k=1)[0].person_id == "alice"


def test_more_people_in_a_tie_than_the_limit_are_left_to_the_codes_without_asking():
    gallery, query, originals = tie_gallery(scan_rows=1, exact_limit=1)
    asked = []
    gallery.exact_source = dict_source(originals, asked)
    assert gallery.search(query, k=1)[0].person_id == "bob"
    assert asked == [] and gallery.exact_fallbacks == 1 and gallery.exact_rescores == 0


def test_the_stored_gallery_decides_near_ties_from_the_sealed_templates(tmp_path):
    query, a, b = flipped_tie()
    database = db.open_db(str(tmp_path / "kiosk.db"))
    key = seal.DataKey.create(tmp_path / "data.key")
    rng = np.random.default_rng(4)
    people.upsert_people(database, [{"person_id": p} for p in ("alice", "bob", "carol", "dave")] +
                         [{"person_id": "erin", "active": 0}])
    people.add_face_template(database, key, "alice", "m", a * 3.0)  # stored as the embedder gave it
    people.add_face_template(database, key, "bob", "m", b)
    people.add_face_template(database, key, "carol", "m", rng.standard_normal(DIM))
    people.add_face_template(database, key, "carol", "other-model", rng.standard_normal(DIM))
    people.add_face_template(database, key, "erin", "m", rng.standard_normal(DIM))
    gallery = Gallery.load(database, key, "m")
    assert gallery.search(query, k=1)[0].person_id == "alice" and gallery.exact_rescores == 1
    assert Gallery.load(database, key, "m", exact=False).search(query, k=1)[0].person_id == "bob"
    # the source: only the asked, active people's templates of that model, unsealed
    got = people.face_templates_of(database, key, "m", ["carol", "bob", "erin", "nobody"])
    assert sorted(p for p, _ in got) == ["bob", "carol"]
    assert np.array_equal(dict(got)["bob"], b.astype(np.float32))
    assert people.face_templates_of(database, key, "m", []) == []
    # a near-tie reads by person, never every template of the model, however many people it asks for
    statements = []
    database.conn.set_trace_callback(statements.append)
    people.face_templates_of(database, key, "m", [f"person-{i}" for i in range(2 * people.IDS_PER_QUERY + 1)])
    database.conn.set_trace_callback(None)
    reads = [sql for sql in statements if sql.startswith("SELECT t.person_id")]
    assert len(reads) == 3  # in chunks of IDS_PER_QUERY ids
    for sql in reads:
        plan = " ".join(str(tuple(row)) for row in database.execute("EXPLAIN QUERY PLAN " + sql))
        assert "face_templates_person" in plan and "face_templates_model" not in plan, plan


def test_the_kiosks_face_engine_decides_near_ties_from_its_database(tmp_path):
    """app.build_face_engine: the gallery it loads reads near-ties' templates through the connection it was given."""
    from kiosk import app, config

    settings = config.build([])
    database = db.open_db(str(tmp_path / "kiosk.db"))
    key = seal.DataKey.create(tmp_path / "data.key")
    model_id = settings.face.embedder
    query, a, b = flipped_tie(dim=128)
    people.upsert_people(database, [{"person_id": "alice"}, {"person_id": "bob"}])
    people.add_face_template(database, key, "alice", model_id, a)
    people.add_face_template(database, key, "bob", model_id, b)
    engine = app.build_face_engine(settings, database, key)
    assert engine.gallery.search(query, k=1)[0].person_id == "alice" and engine.gallery.exact_rescores == 1
