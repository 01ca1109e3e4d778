"""Person ids of a gallery, compactly: UTF-8 bytes in one numpy array, found through a sorted index.

A Python string plus a dict entry costs about 100 bytes per person, 10 MB at 100,000 people:
half the gallery's memory budget. Here a person is a small integer code whose id sits in one
fixed-width bytes array; lookups are a binary search through an argsort of that array
(``np.searchsorted`` with ``sorter``), rebuilt only after a person is added or freed. Freed codes
are reused. Not thread-safe: the gallery calls it under its lock.
"""

import logging

import numpy as np

log = logging.getLogger(__name__)

GROWTH = 1.5
MIN_CAPACITY = 64


def encode(person_ids):
    """Person ids as a numpy bytes array; refuses empty ids and ids with NUL characters."""
    raw = []
    for person_id in person_ids:
        text = str(person_id)
        if not text or "\x00" in text:
            raise ValueError("a person id must be non-empty text without NUL characters")
        raw.append(text.encode("utf-8"))
    return np.array(raw, dtype=bytes) if raw else np.zeros(0, dtype="S1")


class PersonIndex:
    """Codes for person ids (the gallery knows which rows hold which code)."""

    def __init__(self):
        self._ids = np.zeros(MIN_CAPACITY, dtype="S1")   # code -> UTF-8 id (b"" once freed)
        self._size = 0          # codes handed out so far (live or freed)
        self._free = []         # freed codes, reused first
        self._sorted = None     # argsort of _ids[:_size]; None after a change

    def __len__(self):
        return self._size - len(self._free)

    @property
    def nbytes(self):
        sorted_bytes = 0 if self._sorted is None else self._sorted.nbytes
        return self._ids.nbytes + sorted_bytes

    def person_id(self, code):
        return self._ids[code].decode("utf-8")

    def person_ids(self):
        """Every live id, decoded."""
        free = set(self._free)
        return [self._ids[code].decode("utf-8") for code in range(self._size) if code not in free]

    def code(self, person_id):
        """The code of one person id, or -1 if unknown."""
        try:
            keys = encode([person_id])
        except ValueError:
            return -1
        return int(self.lookup(keys)[0])

    def lookup(self, keys):
        """Codes of encoded ids (-1 where unknown)."""
        keys = np.asarray(keys)
        if self._size == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        ids = self._ids[:self._size]
        if self._sorted is None:
            self._sorted = np.argsort(ids, kind="stable").astype(np.int32)
        position = np.minimum(np.searchsorted(ids, keys, sorter=self._sorted), self._size - 1)
        candidate = self._sorted[position].astype(np.int64)
        return np.where(ids[candidate] == keys, candidate, -1)

    def acquire(self, keys):
        """Codes for encoded ids, one per key (new people get new or reused codes)."""
        if len(keys) == 0:
            return np.zeros(0, dtype=np.int32)
        unique, inverse = np.unique(keys, return_inverse=True)
        codes = self.lookup(unique)
        new = np.flatnonzero(codes < 0)
        if len(new):
            reused = [self._free.pop() for _ in range(min(len(self._free), len(new)))]
            fresh = list(range(self._size, self._size + len(new) - len(reused)))
            self._reserve(self._size + len(fresh))
            self._size += len(fresh)
            assigned = np.array(reused + fresh, dtype=np.int64)
            if unique.dtype.itemsize > self._ids.dtype.itemsize:
                self._ids = self._ids.astype(unique.dtype)
            self._ids[assigned] = unique[new]
            codes[new] = assigned
            self._sorted = None
        return codes[inverse].reshape(-1).astype(np.int32)

    def release(self, code):
        """Free ``code`` (its person has no templates left) for reuse."""
        self._ids[code] = b""
        self._free.append(int(code))
        self._sorted = None

    def clear(self):
        self.__init__()

    def _reserve(self, capacity):
        if capacity > len(self._ids):
            grown = max(capacity, int(len(self._ids) * GROWTH) + 1)
            ids = np.zeros(grown, dtype=self._ids.dtype)
            ids[:self._size] = self._ids[:self._size]
            self._ids = ids
