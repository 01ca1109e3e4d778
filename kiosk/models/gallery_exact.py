"""Near-ties of the int8 gallery, decided from the original float32 templates.

The gallery keeps each template ``v`` (a unit vector) only as an int8 code ``c``; a search
scores a row by ``q . c / |c|`` for a unit query ``q``. The float32 score ``q . v`` is within a
known distance of it: with ``n = step * |c|`` (the code's length) and ``e = v - step * c`` (the
rounding error, measured when the row is added),

    q . v = q . (step * c) + q . e = code_score * n + q . e,   and   |q . e| <= |q| |e| = |e|

(Cauchy-Schwarz), so ``q . v`` lies in ``code_score * n +- max |e|`` over the rows (``error``
below). This holds for every row since ``|e|`` is measured, not assumed; the gallery keeps one
maximum for ordinary rows and another for rows with an element at +-127 steps (perhaps clipped,
their error far larger), so one such row does not widen every row's bound. Two people whose intervals overlap the best lower bound can swap rank-1 under the
rounding: only then does the gallery ask its source for their float32 templates and rank them by
``q . v`` itself.

What the source answers is checked against what the gallery holds: each vector must be one of
the asked person's rows (its distance to ``step * c`` of one of their rows at most ``error``) and
every row of theirs must be answered. So a forged or stale answer can only pick scores inside the
intervals a true template could have; anything else (an unknown or missing person, another size,
a non-finite or zero vector, more vectors than rows, an exception) is refused and the code scores
decide, as they would without a source.
"""

import itertools
import logging

import numpy as np

from kiosk.errors import TemplateSourceError

log = logging.getLogger(__name__)

FLOAT_MARGIN = 1e-5   # float32 rounding in the code scores and in the measured errors
EXACT_LIMIT = 64      # most people one search asks the source for; beyond it the code scores decide


def code_errors(units, codes, step):
    """Euclidean distance of each unit vector (row) from its code times ``step``."""
    # one float32 temporary the size of the vectors (a gallery adds 10,000 rows at a time)
    difference = codes.astype(np.float32)
    difference *= np.float32(step)
    np.subtract(np.asarray(units, dtype=np.float32), difference, out=difference)
    return np.sqrt(np.einsum("ij,ij->i", difference, difference, dtype=np.float64))


def at_the_edge(codes):
    """Which code rows have an element at +-127 steps (so perhaps clipped: their error is not bounded by the step)."""
    return np.abs(codes).max(axis=1) >= 127


def bounds(scores, norms, error):
    """``(low, high)``: where each row's float32 score lies, given its code score, code length and error (one or per row)."""
    centre = np.asarray(scores, dtype=np.float64) * np.asarray(norms, dtype=np.float64)
    return centre - error, centre + error


def left_out_at_most(code_at_most, *, norm_low, norm_high, error):
    """The highest float32 score of a row whose code score is at most ``code_at_most``."""
    return max(code_at_most * norm_low, code_at_most * norm_high) + error


def exact_scores(query, wanted, answer, *, step, error):
    """Each wanted person's float32 score (their best template's), from the source's ``answer``.

    ``wanted`` maps person id -> int8 codes ``(rows, dim)`` of every row the gallery holds for
    them; ``answer`` is the source's iterable of ``(person_id, vector)``. Raises
    ``TemplateSourceError`` when the answer cannot be the templates behind those codes.
    """
    dim = len(query)
    expected = sum(len(codes) for codes in wanted.values())
    answered = {person: np.zeros(len(codes), dtype=bool) for person, codes in wanted.items()}
    best = {}
    # never read more than the rows asked for: a runaway answer is refused, not consumed
    items = list(itertools.islice(iter(answer), expected + 1))
    if len(items) > expected:
        raise TemplateSourceError("more vectors than rows")
    for item in items:
        person_id, vector = item
        if not isinstance(person_id, str) or person_id not in wanted:
            raise TemplateSourceError("a person not asked for")
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (dim,):
            raise TemplateSourceError("a vector of another size")
        norm = np.linalg.norm(vector)
        if not np.isfinite(norm) or norm <= 1e-12:
            raise TemplateSourceError("a non-finite or zero vector")
        unit = vector / norm
        # the same rows the bound was derived for: a vector further from every code of this
        # person than any stored row's rounding error is not one of their templates
        distances = np.linalg.norm(wanted[person_id].astype(np.float64) * float(step) - unit, axis=1)
        rows = distances <= error
        if not rows.any():
            raise TemplateSourceError("a vector that is none of the person's rows")
        answered[person_id] |= rows
        score = float(unit @ query)
        best[person_id] = max(best.get(person_id, -np.inf), score)
    if not all(rows.all() for rows in answered.values()):
        raise TemplateSourceError("a row without its template")
    return best


def decide(query, wanted, source, *, step, error):
    """``{person id: float32 score}`` of the ``wanted`` people from ``source``, or None if refused."""
    try:
        return exact_scores(query, wanted, source(sorted(wanted)), step=step, error=error)
    except TemplateSourceError as e:
        log.warning("exact re-score refused the template source's answer (%s): code scores decide", e)
    except Exception as e:  # noqa: BLE001 - a broken or hostile source must never break a search
        # the type only: a message could carry whatever the source put in it
        log.warning("exact re-score: the template source failed (%s): code scores decide", type(e).__name__)
    return None


def exact_first(ranked, exact, codes, k):
    """The ``k`` best ``(person_id, score)`` once a near-tie is decided: its float32 winner first, then by score.

    ``ranked`` holds the code-score ranking; ``exact`` the float32 scores of the people in the
    near-tie (who may not all be in ``ranked``); ``codes`` their person codes, which only break
    an exact tie. No one outside the near-tie can outscore its winner.
    """
    scores = dict(ranked)
    scores.update(exact)
    winner = max(exact, key=lambda person: (exact[person], -codes[person]))
    rest = sorted((person for person in scores if person != winner), key=lambda person: -scores[person])
    return [(person, scores[person]) for person in [winner] + rest[:k - 1]]
