"""The 1:N gallery: every enrolled face vector of one embedder model, as int8 codes.

100,000 people must fit in 20 MB on a Pi and be searched faster than a float32 scan, so a
template is kept as an int8 code of its L2-normalized vector in steps shared by every row
(``gallery_scan.step_for``: 128 bytes for a 128-d vector instead of 512); the stored vector is
the code scaled to unit length. A person id is kept once, as UTF-8 bytes in one numpy array with
a sorted index (no Python string or dict entry per person). A search has three steps:

1. the coarse scan (``kiosk/models/gallery_scan.py``): one TFLite int8 kernel call scores the
   query against every row (the kernel rounds the query to int8 too);
2. the best rows are re-scored with the float query against their codes, widening the set until
   no row left out could beat the k-th identity found (``gallery_scan.exact_at_most`` bounds a
   row's exact score by its coarse one). A person's score is their best template's;
3. with an ``exact_source`` (a callable giving the float32 templates of the person ids it is
   passed; ``Gallery.load`` reads the sealed ones from storage), a near-tie, where the codes'
   rounding could swap people, is decided by their float32 scores, so rank-1 is float32's
   (``kiosk/models/gallery_exact.py``: the bound that finds near-ties, and the checks on what
   the source answers).

So a returned score is the float query against the stored code, which is within a few
thousandths of the float32 cosine of the original vector (``docs/benchmarks.md``, Gallery),
or the float32 cosine itself for the people of a near-tie; ``templates_of`` returns the stored
vectors. Rows with an element at the codes' edge (+-127 steps, perhaps clipped) are candidates
of every search, outside the bounds of the others. Small galleries (fewer rows than
``scan_rows``) skip the model and score every row in numpy. Removing a template moves the last
row into its place (swap-remove); a change drops the scan model, which the next search rebuilds.

Every vector belongs to the gallery's embedder model: a vector from another model, or of
another size, is refused with ``ModelMismatchError`` (scores across models mean nothing).
"""

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from kiosk.errors import ModelMismatchError
from kiosk.models import gallery_exact, gallery_scan
from kiosk.models.person_index import encode, PersonIndex

log = logging.getLogger(__name__)

GROWTH = 1.5
MIN_CAPACITY = 64
SCAN_ROWS = 1024   # galleries with at least this many rows use the scan model
CANDIDATES = 16    # rows re-scored at first (at least 4 per identity asked for)
SAMPLE_STRIDE = 16  # best_rows reads its threshold from every 16th score
CHUNK_ROWS = 10_000  # rows looked over at a time for those at the codes' edge (no full-size temporary)


@dataclass(frozen=True)
class Match:
    """One identity in a search result: who, and the cosine score of their best template."""

    person_id: str
    score: float


def normalize(vector):
    """The vector as a float32 unit vector; raises ValueError for zero or non-finite input."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm <= 1e-12:
        raise ValueError("a face vector must be finite and non-zero")
    return vector / norm


class Gallery:
    """Enrolled face vectors of one embedder model, searchable by cosine similarity; thread-safe."""

    def __init__(self, model_id, dim, *, capacity=MIN_CAPACITY, threads=1, scan_rows=SCAN_ROWS, exact_source=None,
                 exact_limit=gallery_exact.EXACT_LIMIT):
        if int(dim) < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.model_id = str(model_id)
        self.dim = int(dim)
        self.threads = int(threads)
        self.scan_rows = max(int(scan_rows), 1)
        capacity = max(int(capacity), 1)
        self._codes = np.zeros((capacity, self.dim), dtype=np.int8)  # row -> int8 code
        self.step = gallery_scan.step_for(self.dim)
        # range of step * |code| over the rows (about 1): what the coarse-to-exact bound needs;
        # widened on add, never narrowed on remove (a wider range is still a true bound). Rows at
        # the codes' edge (below) are left out of it: every search scores them
        self._norm_low, self._norm_high = 1.0, 1.0
        # largest |vector - step * code| of the rows: how far rounding moves a float32 score
        # (gallery_exact); widened on add, never narrowed on remove, like the norms. Rows with
        # an element at +-127 steps may be clipped, their error far larger: they are kept apart
        # (in a kiosk: none), so one such template does not widen the bound of every row
        self._code_error = 0.0
        self._clipped_error = 0.0
        self._has_edge = False     # whether such a row was ever added (until clear)
        self._clipped_rows = None  # row numbers of those, found again by the first search after a change
        # person ids -> [(person_id, float32 vector)] of their templates, for near-ties; or None
        self.exact_source = exact_source
        self.exact_limit = int(exact_limit)
        self.exact_rescores = 0   # searches that asked the source (near-ties)
        self.exact_fallbacks = 0  # of those and of near-ties past exact_limit: the code scores decided
        self._rows = np.zeros(capacity, dtype=np.int32)               # row -> person code
        self._count = 0
        self._people = PersonIndex()
        self._scan = None  # the scan model over the rows; None after a change
        self._lock = threading.RLock()

    @classmethod
    def from_templates(cls, model_id, templates, *, dim=None):
        """Build from ``[(person_id, vector)]`` (the shape ``people.face_templates`` returns).

        ``dim`` is the embedder's output size; when None it is taken from the first template
        (an empty list then gives an error, since the size cannot be known).
        """
        templates = list(templates)
        if dim is None:
            if not templates:
                raise ValueError(f"no {model_id} templates: pass dim= to build an empty gallery")
            dim = len(templates[0][1])
        dim = int(dim)
        gallery = cls(model_id, dim, capacity=max(len(templates), MIN_CAPACITY))
        if templates:
            vectors = np.array([np.asarray(vector, dtype=np.float32).reshape(-1) for _, vector in templates])
            if vectors.ndim != 2:
                raise ModelMismatchError(f"stored {model_id} templates have different sizes")
            gallery.add_many([person for person, _ in templates], vectors, model_id=model_id)
        return gallery

    @classmethod
    def load(cls, database, key, model_id, *, dim=None, exact=True):
        """Build the gallery of ``model_id`` from the sealed templates in storage (see ``from_templates``).

        With ``exact`` (the default) near-ties are decided from the same sealed templates, read
        through ``database`` when a search needs them (``people.face_templates_of``): pass the
        connection of the thread that will search.
        """
        # models read storage only here; storage knows nothing of models
        from functools import partial

        from kiosk.storage import people

        gallery = cls.from_templates(model_id, people.face_templates(database, key, model_id), dim=dim)
        release_free_memory()  # the decrypted templates and their list are gone: give their pages back
        if exact:
            gallery.exact_source = partial(people.face_templates_of, database, key, model_id)
        log.info("gallery %s: %d templates of %d people loaded", model_id, len(gallery), gallery.people_count)
        return gallery

    # --- size -----------------------------------------------------------------------------

    def __len__(self):
        return self._count

    @property
    def people_count(self):
        """Number of distinct people with at least one template."""
        return len(self._people)

    @property
    def capacity(self):
        return self._codes.shape[0]

    @property
    def nbytes(self):
        """Bytes held by the codes, the row owners and the person ids."""
        return self._codes.nbytes + self._rows.nbytes + self._people.nbytes

    def person_ids(self):
        """The ids of everyone with at least one template (no particular order)."""
        with self._lock:
            return self._people.person_ids()

    def __contains__(self, person_id):
        with self._lock:
            return self._people.code(person_id) >= 0

    def templates_of(self, person_id):
        """The stored vectors of one person ``(n, dim)``: codes scaled to unit length (empty if unknown)."""
        with self._lock:
            code = self._people.code(person_id)
            if code < 0:
                return np.zeros((0, self.dim), dtype=np.float32)
            rows = np.flatnonzero(self._rows[:self._count] == code)
            codes = self._codes[rows]
            return codes.astype(np.float32) / gallery_scan.row_norms(codes)[:, None]

    def reserve(self, capacity):
        """Make room for at least ``capacity`` templates in one step."""
        with self._lock:
            self._writable(int(capacity))

    def _writable(self, capacity=0):
        """Own, writable row arrays of at least ``capacity`` rows; drops the scan model."""
        self._clipped_rows = None  # rows are about to change
        if self._scan is not None:
            self._scan = None  # the codes were a read-only view of its model bytes
            self._codes = np.array(self._codes)
        capacity = max(capacity, self._count)
        if capacity > self._codes.shape[0] or not self._codes.flags.writeable:
            count = self._count
            codes = np.zeros((capacity, self.dim), dtype=np.int8)
            codes[:count] = self._codes[:count]
            rows = np.zeros(capacity, dtype=np.int32)
            rows[:count] = self._rows[:count]
            self._codes, self._rows = codes, rows

    # --- changes --------------------------------------------------------------------------

    def _check(self, vectors, model_id):
        if model_id != self.model_id:
            raise ModelMismatchError(f"face vector of model {model_id!r} offered to the {self.model_id!r} gallery")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"face vector of size {vectors.shape[-1] if vectors.ndim else 0} offered to "
                                     f"the {self.model_id!r} gallery of size {self.dim}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms <= 1e-12):
            raise ValueError("a face vector must be finite and non-zero")
        return vectors / norms

    def add(self, person_id, vector, *, model_id):
        """Add one template of ``person_id``, made by embedder ``model_id``; returns the template count."""
        return self.add_many([person_id], np.asarray(vector, dtype=np.float32).reshape(1, -1), model_id=model_id)

    def add_many(self, person_ids, vectors, *, model_id):
        """Add templates in bulk (one person id per row of ``vectors``); returns the template count."""
        keys = encode(person_ids)
        vectors = self._check(vectors, model_id)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} person ids for {len(vectors)} vectors")
        codes = gallery_scan.quantize(vectors, self.step)
        norms = gallery_scan.row_norms(codes) * self.step
        errors = gallery_exact.code_errors(vectors, codes, self.step)
        clipped = gallery_exact.at_the_edge(codes)
        if np.any(norms <= 0):
            raise ValueError("a face vector must be finite and non-zero")
        with self._lock:
            needed = self._count + len(vectors)
            if needed > self._codes.shape[0]:
                self._writable(max(needed, int(self._codes.shape[0] * GROWTH) + 1, MIN_CAPACITY))
            else:
                self._writable()
            self._codes[self._count:needed] = codes
            if not clipped.all():
                self._norm_low = min(self._norm_low, float(norms[~clipped].min()))
                self._norm_high = max(self._norm_high, float(norms[~clipped].max()))
                self._code_error = max(self._code_error, float(errors[~clipped].max()))
            if clipped.any():
                self._has_edge = True
                self._clipped_error = max(self._clipped_error, float(errors[clipped].max()))
                log.warning("gallery %s: %d template(s) beyond the codes' range: near-ties with them "
                            "are bounded apart", self.model_id, int(clipped.sum()))
            self._rows[self._count:needed] = self._people.acquire(keys)
            self._count = needed
            return self._count

    def remove(self, person_id):
        """Remove every template of ``person_id``; returns how many were removed."""
        with self._lock:
            code = self._people.code(person_id)
            if code < 0:
                return 0
            self._writable()
            rows = np.flatnonzero(self._rows[:self._count] == code)
            # highest rows first, so a row still to be removed is never the one moved into place
            for row in rows[::-1]:
                last = self._count - 1
                if row != last:
                    self._codes[row] = self._codes[last]
                    self._rows[row] = self._rows[last]
                self._count = last
            self._people.release(code)
            return len(rows)

    def clear(self):
        """Remove everything (the capacity is kept)."""
        with self._lock:
            self._writable()
            self._count = 0
            self._norm_low, self._norm_high = 1.0, 1.0
            self._code_error = self._clipped_error = 0.0
            self._has_edge = False
            self._people.clear()

    # --- search ---------------------------------------------------------------------------

    def _query(self, query):
        query = normalize(query)
        if len(query) != self.dim:
            raise ModelMismatchError(f"query of size {len(query)} for the {self.model_id!r} gallery of size {self.dim}")
        return query

    def _rescore(self, query, rows):
        codes = self._codes[rows].astype(np.float32)
        return (codes @ query) / np.sqrt(np.einsum("ij,ij->i", codes, codes))

    def scores(self, query):
        """Score of the query against every stored template row (row order)."""
        query = self._query(query)
        with self._lock:
            return self._rescore(query, np.arange(self._count))

    def search(self, query, k=2):
        """The ``k`` best identities for a query vector, best first, each scored by its best template.

        The best rows by coarse score are re-scored with the float query against their codes,
        widening until they hold ``k`` distinct people and no row left out could beat the k-th
        of them (a row's code score is bounded by its coarse one), or every row is taken.

        With an ``exact_source``, rank-1 is the float32 one: when people are so close that the
        codes' rounding could order them either way (``gallery_exact``), the source's float32
        templates of just those people decide, and their scores are float32 scores. Without
        one, or when its answer is refused, the code scores decide.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = self._query(query)
        with self._lock:
            count = self._count
            if count == 0:
                return []
            best, near = self._search_codes(query, k)
            matches = [Match(self._people.person_id(code), score) for code, score in best.items()]
            if near is None:
                return matches
            if len(near) > self.exact_limit:
                self.exact_fallbacks += 1
                log.debug("gallery %s: %d people in a near-tie, more than %d: code scores decide",
                          self.model_id, len(near), self.exact_limit)
                return matches
            wanted, codes = self._rows_of(near)
            error = self._code_error
            if any(gallery_exact.at_the_edge(rows).any() for rows in wanted.values()):
                error = max(error, self._clipped_error)
            error += gallery_exact.FLOAT_MARGIN
            self.exact_rescores += 1
        # the source reads storage: outside the lock, against the codes copied above
        exact = gallery_exact.decide(query, wanted, self.exact_source, step=self.step, error=error)
        if exact is None:
            with self._lock:
                self.exact_fallbacks += 1
            return matches
        ranked = gallery_exact.exact_first([(m.person_id, m.score) for m in matches], exact, codes, k)
        return [Match(person_id, score) for person_id, score in ranked]

    def _search_codes(self, query, k):
        """The k best people by code score ``{person code: score}``, and the person codes in a near-tie (or None)."""
        count = self._count
        if count < self.scan_rows:
            coarse = exact = self._rescore(query, np.arange(count))
            bound = None
        else:
            if self._scan is None:
                self._build_scan()
            coarse, exact, bound = self._scan.scores(query), None, gallery_scan.query_error_bound(query)
        error = self._code_error + gallery_exact.FLOAT_MARGIN
        # rows at the codes' edge are always candidates: their norms and errors are outside the
        # bounds that decide which rows can be left out
        edge = self._clipped() if self._has_edge else np.zeros(0, dtype=np.int64)
        take = min(count, max(4 * k, CANDIDATES))
        while True:
            picked = best_rows(coarse, take)
            top = np.union1d(picked, edge) if len(edge) else picked
            scores = exact[top] if exact is not None else self._rescore(query, top)
            order = np.argsort(-scores, kind="stable")
            best = {}
            for row, score in zip(top[order], scores[order]):
                code = int(self._rows[row])
                if code not in best:
                    best[code] = float(score)
                    if len(best) == k:
                        break
            if take >= count:
                break
            left_out_at_most = float(coarse[picked].min())
            if bound is not None:
                left_out_at_most = float(gallery_scan.exact_at_most(
                    left_out_at_most, query_bound=bound, norm_low=self._norm_low, norm_high=self._norm_high))
            if len(best) >= k and min(best.values()) >= left_out_at_most and (
                    self.exact_source is None or gallery_exact.left_out_at_most(
                        left_out_at_most, norm_low=self._norm_low, norm_high=self._norm_high, error=error)
                    < self._best_lower_bound(top[order], scores[order], error)):
                break
            take = min(count, take * 4)
        if self.exact_source is None:
            return best, None
        # everyone whose float32 score could reach the best lower bound (no row left out can)
        errors = error
        if len(edge):
            errors = np.where(gallery_exact.at_the_edge(self._codes[top]),
                              self._clipped_error + gallery_exact.FLOAT_MARGIN, error)
        low, high = gallery_exact.bounds(scores, self.step * gallery_scan.row_norms(self._codes[top]), errors)
        rows = top[high >= low.max()]
        if len(rows) < 2:
            return best, None
        near = set(self._rows[rows].tolist())
        return best, (near if len(near) > 1 else None)

    def _best_lower_bound(self, rows, scores, error):
        """The lowest float32 score the best of ``rows`` (ordered best first by code score) can have."""
        lower = -np.inf
        for row, score in zip(rows, scores):
            code = self._codes[row].astype(np.float32)
            edge = self._has_edge and bool(gallery_exact.at_the_edge(code[None])[0])
            row_error = self._clipped_error + gallery_exact.FLOAT_MARGIN if edge else error
            # plain floats: this runs on every search
            lower = max(lower, float(score) * self.step * math.sqrt(float(code @ code)) - row_error)
            if not edge:  # any row's lower bound bounds the best's: the first ordinary row's will do
                return lower
        return lower

    def _clipped(self):
        """Row numbers of the rows with an element at the codes' edge (cached until the next change)."""
        if self._clipped_rows is None:
            found = [start + np.flatnonzero(gallery_exact.at_the_edge(self._codes[start:start + CHUNK_ROWS]))
                     for start in range(0, self._count, CHUNK_ROWS)]
            self._clipped_rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        return self._clipped_rows

    def _rows_of(self, person_codes):
        """``({person_id: their codes}, {person_id: person code})``, copied, for the people given."""
        owners = self._rows[:self._count]
        wanted, codes = {}, {}
        for code in person_codes:
            person_id = self._people.person_id(code)
            wanted[person_id] = np.array(self._codes[np.flatnonzero(owners == code)])
            codes[person_id] = code
        return wanted, codes

    def _build_scan(self):
        count = self._count
        self._scan = gallery_scan.CodeScan(self._codes[:count], self.step, threads=self.threads)
        # keep one copy of the codes: the model's (read-only until the next change)
        self._codes = self._scan.codes
        self._rows = self._rows[:count].copy()
        release_free_memory()
        log.debug("gallery %s: scan model over %d rows", self.model_id, count)


def best_rows(scores, take):
    """Indices of the ``take`` highest scores (any order); all of them when ``take`` covers every row.

    A full ``argpartition`` of 100,000 scores costs about as much as the scan itself, so a
    threshold is first read from every 16th score: the rows at or above it (a few times ``take``)
    are partitioned instead. When too few rows reach it, the full partition is the fallback.
    """
    count = len(scores)
    if take >= count:
        return np.arange(count)
    if count >= SAMPLE_STRIDE * (take + 8) * 4:
        sample = scores[::SAMPLE_STRIDE]
        rank = take // SAMPLE_STRIDE + 2
        threshold = np.partition(sample, len(sample) - rank)[len(sample) - rank]
        candidates = np.flatnonzero(scores >= threshold)
        if len(candidates) >= take:
            chosen = np.argpartition(scores[candidates], len(candidates) - take)[len(candidates) - take:]
            return candidates[chosen]
    return np.argpartition(scores, count - take)[count - take:]


def release_free_memory():
    """Hand freed heap pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Building the codes and the scan model frees several times the gallery's size in temporary
    arrays; glibc keeps such memory in the process unless asked, which would count against a
    kiosk's resident memory for the rest of the day.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
