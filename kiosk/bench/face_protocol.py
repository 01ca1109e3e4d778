"""The face-verification protocol shared by `kiosk bench face` and the dlib peer script.

Numpy only, so a peer pipeline in another environment uses exactly the same images, pairs
and metrics. The protocol (shared/datasets/README.md, issue 4):
- a folder of per-person sub-folders; images sorted by name within each person;
- every genuine pair (same person, i < j) and a deterministic sample of impostor pairs;
- an image without a detected face keeps its place: all its pairs score ``-inf``
  (a failure, never a skip);
- TAR at FAR 1e-2/1e-3/1e-4 (threshold = the score that at most that share of impostor pairs
  exceed), EER, and rank-1 identification with each person's first image enrolled and the
  rest as probes.
"""

import math
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".tif", ".tiff")
FARS = ("1e-2", "1e-3", "1e-4")
DEFAULT_IMPOSTORS = 20_000
DEFAULT_SEED = 4


def list_dataset(root, *, people=0):
    """``(names, files, labels)``: person names, image paths and each image's person index.

    ``people`` > 0 keeps only the first that many people (sorted by folder name).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    names, files, labels = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            continue
        names.append(folder.name)
        files.extend(images)
        labels.extend([len(names) - 1] * len(images))
        if people and len(names) >= people:
            break
    return names, files, np.asarray(labels, dtype=np.int64)


def genuine_pairs(labels):
    """Every same-person pair ``(i, j)`` with i < j, as an ``(M, 2)`` array in order."""
    labels = np.asarray(labels)
    pairs = []
    for person in np.unique(labels):
        idx = np.flatnonzero(labels == person)
        if len(idx) > 1:
            i, j = np.triu_indices(len(idx), 1)
            pairs.append(np.stack([idx[i], idx[j]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def count_impostor_pairs(labels):
    """How many different-person pairs the labels allow."""
    counts = np.bincount(np.asarray(labels))
    n = int(counts.sum())
    return (n * (n - 1) - int((counts * (counts - 1)).sum())) // 2


def impostor_pairs(labels, count=DEFAULT_IMPOSTORS, *, seed=DEFAULT_SEED):
    """A deterministic sample of ``count`` distinct different-person pairs ``(i, j)``, i < j, sorted.

    ``count`` 0 (or more than exist) gives all of them.
    """
    labels = np.asarray(labels)
    total = count_impostor_pairs(labels)
    if count <= 0 or count >= total:
        i, j = np.triu_indices(len(labels), 1)
        keep = labels[i] != labels[j]
        return np.stack([i[keep], j[keep]], axis=1)
    rng = np.random.default_rng(seed)
    chosen = set()
    n = len(labels)
    while len(chosen) < count:
        draw = rng.integers(0, n, size=(2 * (count - len(chosen)) + 16, 2))
        a, b = draw.min(axis=1), draw.max(axis=1)
        for x, y in zip(a[labels[a] != labels[b]], b[labels[a] != labels[b]]):
            chosen.add((int(x), int(y)))
            if len(chosen) == count:
                break
    return np.array(sorted(chosen), dtype=np.int64)


def pair_scores(embeddings, found, pairs, *, metric="cosine"):
    """Similarity per pair; ``-inf`` where either image had no face.

    ``cosine``: dot product of unit vectors (our embedders); ``euclidean``: minus the distance
    (dlib's face descriptors, compared by distance in face_recognition).
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    found = np.asarray(found, dtype=bool)
    if len(pairs) == 0:
        return np.zeros(0)
    a, b = pairs[:, 0], pairs[:, 1]
    if metric == "cosine":
        scores = np.einsum("ij,ij->i", embeddings[a], embeddings[b]).astype(np.float64)
    elif metric == "euclidean":
        scores = -np.linalg.norm(embeddings[a] - embeddings[b], axis=1).astype(np.float64)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    scores[~(found[a] & found[b])] = -np.inf
    return scores


def threshold_at_far(impostor, far):
    """The score threshold (accept when score > threshold) that at most ``far`` of impostors pass."""
    ordered = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    if len(ordered) == 0:
        return math.inf
    allowed = int(math.floor(far * len(ordered) + 1e-9))
    return float(ordered[allowed]) if allowed < len(ordered) else -math.inf


def tar_at_far(genuine, impostor, far):
    """``(TAR, threshold)``: the share of genuine pairs accepted at that FAR's threshold."""
    threshold = threshold_at_far(impostor, far)
    genuine = np.asarray(genuine, dtype=np.float64)
    tar = float((genuine > threshold).mean()) if len(genuine) else math.nan
    return tar, threshold


def equal_error_rate(genuine, impostor):
    """EER: where the false-accept and false-reject rates meet (their mean at the closest point)."""
    genuine = np.sort(np.asarray(genuine, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    if len(genuine) == 0 or len(impostor) == 0:
        return math.nan
    candidates = np.unique(np.concatenate([genuine, impostor, [math.inf]]))
    # accept when score >= t: FAR = impostors >= t, FRR = genuine < t
    far = 1.0 - np.searchsorted(impostor, candidates, side="left") / len(impostor)
    frr = np.searchsorted(genuine, candidates, side="left") / len(genuine)
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2.0)


def _protocol_arrays(embeddings, found, labels):
    """The inputs as arrays, and each person's first image index (their enrolment image) by label."""
    labels = np.asarray(labels)
    first = {}
    for index, person in enumerate(labels):
        first.setdefault(int(person), index)
    return np.asarray(embeddings, dtype=np.float32), np.asarray(found, dtype=bool), labels, first


def rank1(embeddings, found, labels, *, metric="cosine"):
    """Rank-1 identification rate: first image of each person enrolled, the others probes.

    A probe without a face, or whose person's enrolment image had no face, counts as a miss.
    """
    embeddings, found, labels, first = _protocol_arrays(embeddings, found, labels)
    enrolment = set(first.values())
    enrolled = [index for index in sorted(enrolment) if found[index]]
    probes = [index for index in range(len(labels)) if index not in enrolment]
    if not probes:
        return math.nan
    if not enrolled:
        return 0.0
    gallery = embeddings[enrolled]
    gallery_labels = labels[enrolled]
    hits = 0
    for index in probes:
        if not found[index]:
            continue
        if metric == "cosine":
            best = int(np.argmax(gallery @ embeddings[index]))
        else:
            best = int(np.argmin(np.linalg.norm(gallery - embeddings[index], axis=1)))
        hits += int(gallery_labels[best] == labels[index])
    return hits / len(probes)


def gallery_rank1(embeddings, found, labels, model_id):
    """The rank-1 probes searched through the kiosk's int8 gallery, against exact float32 search.

    The enrolment images (each person's first, with a face) go into a ``Gallery`` searched
    through its scan model; its ``exact_source`` is their float32 vectors, as the sealed
    templates are in the kiosk. Returns ``probes``, ``rank1_equal_float32`` (share of probes
    whose best identity is the float32 one), ``exact_rescores`` (probes where a near-tie asked
    the source), ``exact_rescore_rate`` and ``exact_fallbacks``.
    """
    from kiosk.models.gallery import Gallery

    embeddings, found, labels, first = _protocol_arrays(embeddings, found, labels)
    enrolment = set(first.values())
    enrolled = [index for index in sorted(enrolment) if found[index]]
    probes = [index for index in range(len(labels)) if index not in enrolment and found[index]]
    if not enrolled or not probes:
        return {"probes": 0, "rank1_equal_float32": None, "exact_rescores": 0, "exact_rescore_rate": None,
                "exact_fallbacks": 0}
    names = [f"person-{labels[index]}" for index in enrolled]
    originals = dict(zip(names, embeddings[enrolled]))
    gallery = Gallery(model_id, embeddings.shape[1], scan_rows=1,
                      exact_source=lambda ids: [(person, originals[person]) for person in ids])
    gallery.add_many(names, embeddings[enrolled], model_id=model_id)
    matrix = embeddings[enrolled] / np.linalg.norm(embeddings[enrolled], axis=1, keepdims=True)
    equal = 0
    for index in probes:
        probe = embeddings[index] / np.linalg.norm(embeddings[index])
        equal += gallery.search(probe, k=2)[0].person_id == names[int(np.argmax(matrix @ probe))]
    return {"probes": len(probes), "rank1_equal_float32": equal / len(probes),
            "exact_rescores": gallery.exact_rescores, "exact_rescore_rate": gallery.exact_rescores / len(probes),
            "exact_fallbacks": gallery.exact_fallbacks}


def latency_summary(timings):
    """``{stage: {"median": ms, "p95": ms}}`` from a list of per-image ``{stage: ms}`` dicts."""
    stages = {}
    for row in timings:
        for stage, ms in row.items():
            stages.setdefault(stage, []).append(ms)
    return {stage: {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
            for stage, v in stages.items()}


def evaluate(embeddings, found, labels, *, impostors=DEFAULT_IMPOSTORS, seed=DEFAULT_SEED, metric="cosine"):
    """All accuracy figures of the protocol, plus the pair scores (for threshold calibration)."""
    found = np.asarray(found, dtype=bool)
    genuine = pair_scores(embeddings, found, genuine_pairs(labels), metric=metric)
    impostor = pair_scores(embeddings, found, impostor_pairs(labels, impostors, seed=seed), metric=metric)
    tar, thresholds = {}, {}
    for far in FARS:
        tar[far], thresholds[far] = tar_at_far(genuine, impostor, float(far))
    return {
        "images": int(len(labels)),
        "people": int(len(np.unique(labels))),
        "detect_fail_rate": float(1.0 - found.mean()) if len(found) else math.nan,
        "genuine_pairs": int(len(genuine)),
        "impostor_pairs": int(len(impostor)),
        "tar_at_far": tar,
        "threshold_at_far": thresholds,
        "eer": equal_error_rate(genuine, impostor),
        "rank1": rank1(embeddings, found, labels, metric=metric),
    }, genuine, impostor
