"""The 1:N gallery: every enrolled face vector of one embedder model in one normalized matrix.

Rows are L2-normalized float32 vectors in one contiguous ``(capacity, dim)`` array, so a search
is one matrix-vector product (cosine similarity) plus a partial sort. The matrix grows
geometrically; removing a template moves the last row into its place (swap-remove), so neither
adding nor removing rebuilds anything. A person may have several templates; ``search`` ranks
identities by their best template, so "the second-best identity" is another person, never a
second photo of the best one.

Every vector belongs to the gallery's embedder model: a vector from another model, or of
another size, is refused with ``ModelMismatchError`` (scores across models mean nothing).
"""

import logging
import threading
from dataclasses import dataclass

import numpy as np

from kiosk.errors import ModelMismatchError

log = logging.getLogger(__name__)

GROWTH = 1.5
MIN_CAPACITY = 64


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

    def __init__(self, model_id, dim, *, capacity=MIN_CAPACITY):
        if int(dim) < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.model_id = str(model_id)
        self.dim = int(dim)
        capacity = max(int(capacity), 1)
        self._matrix = np.zeros((capacity, self.dim), dtype=np.float32)
        self._codes = np.zeros(capacity, dtype=np.int32)   # row -> person code
        self._count = 0
        # person code <-> person id; a numpy code per row keeps 100,000 people cheap in memory
        self._person_ids = []  # code -> person id (None once freed)
        self._code_of = {}     # person id -> code
        self._templates = []   # code -> number of rows
        self._free_codes = []
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
    def load(cls, database, key, model_id, *, dim=None):
        """Build the gallery of ``model_id`` from the sealed templates in storage (see ``from_templates``)."""
        # models read storage only here, at start; storage knows nothing of models
        from kiosk.storage import people

        gallery = cls.from_templates(model_id, people.face_templates(database, key, model_id), dim=dim)
        log.info("gallery %s: %d templates of %d people loaded", model_id, len(gallery), gallery.people_count)
        return gallery

    # --- size -----------------------------------------------------------------------------

    def __len__(self):
        return self._count

    @property
    def people_count(self):
        """Number of distinct people with at least one template."""
        return len(self._code_of)

    @property
    def capacity(self):
        return self._matrix.shape[0]

    @property
    def nbytes(self):
        """Bytes held by the vector matrix (its whole capacity)."""
        return self._matrix.nbytes

    def __contains__(self, person_id):
        return person_id in self._code_of

    def templates_of(self, person_id):
        """Copies of one person's normalized vectors ``(n, dim)`` (empty if unknown)."""
        with self._lock:
            code = self._code_of.get(person_id)
            if code is None:
                return np.zeros((0, self.dim), dtype=np.float32)
            return self._matrix[:self._count][self._codes[:self._count] == code].copy()

    def reserve(self, capacity):
        """Make room for at least ``capacity`` templates in one step."""
        with self._lock:
            if capacity > self._matrix.shape[0]:
                grown = np.zeros((int(capacity), self.dim), dtype=np.float32)
                grown[:self._count] = self._matrix[:self._count]
                codes = np.zeros(int(capacity), dtype=np.int32)
                codes[:self._count] = self._codes[:self._count]
                self._matrix, self._codes = grown, codes

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
        person_ids = [str(p) for p in person_ids]
        vectors = self._check(vectors, model_id)
        if len(person_ids) != len(vectors):
            raise ValueError(f"{len(person_ids)} person ids for {len(vectors)} vectors")
        with self._lock:
            needed = self._count + len(vectors)
            if needed > self._matrix.shape[0]:
                self.reserve(max(needed, int(self._matrix.shape[0] * GROWTH) + 1, MIN_CAPACITY))
            self._matrix[self._count:needed] = vectors
            self._codes[self._count:needed] = [self._code_for(person_id) for person_id in person_ids]
            self._count = needed
            return self._count

    def _code_for(self, person_id):
        code = self._code_of.get(person_id)
        if code is None:
            if self._free_codes:
                code = self._free_codes.pop()
                self._person_ids[code] = person_id
                self._templates[code] = 0
            else:
                code = len(self._person_ids)
                self._person_ids.append(person_id)
                self._templates.append(0)
            self._code_of[person_id] = code
        self._templates[code] += 1
        return code

    def remove(self, person_id):
        """Remove every template of ``person_id``; returns how many were removed."""
        with self._lock:
            code = self._code_of.pop(person_id, None)
            if code is None:
                return 0
            rows = np.flatnonzero(self._codes[:self._count] == code)
            # highest rows first, so a row still to be removed is never the one moved into place
            for row in rows[::-1]:
                last = self._count - 1
                if row != last:
                    self._matrix[row] = self._matrix[last]
                    self._codes[row] = self._codes[last]
                self._count = last
            self._person_ids[code] = None
            self._templates[code] = 0
            self._free_codes.append(code)
            return len(rows)

    def clear(self):
        """Remove everything (the capacity is kept)."""
        with self._lock:
            self._count = 0
            self._person_ids, self._code_of, self._templates, self._free_codes = [], {}, [], []

    # --- search ---------------------------------------------------------------------------

    def scores(self, query):
        """Cosine score of the query against every template row (a copy, row order)."""
        query = normalize(query)
        if len(query) != self.dim:
            raise ModelMismatchError(f"query of size {len(query)} for the {self.model_id!r} gallery of size {self.dim}")
        with self._lock:
            return self._matrix[:self._count] @ query

    def search(self, query, k=2):
        """The ``k`` best identities for a query vector, best first, each scored by its best template.

        Exact: the best rows are taken with a partial sort, widening until they hold ``k``
        distinct people (or every row), which always contains each of the top-k identities'
        best template.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        with self._lock:
            scores = self.scores(query)
            codes = self._codes
            count = len(scores)
            if count == 0:
                return []
            take = min(count, 4 * k)
            while True:
                if take < count:
                    top = np.argpartition(-scores, take - 1)[:take]
                else:
                    top = np.arange(count)
                best = {}
                for row in top[np.argsort(-scores[top], kind="stable")]:
                    code = int(codes[row])
                    if code not in best:
                        best[code] = float(scores[row])
                if len(best) >= k or take >= count:
                    break
                take = min(count, take * 4)
            ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
            return [Match(self._person_ids[code], score) for code, score in ranked]
