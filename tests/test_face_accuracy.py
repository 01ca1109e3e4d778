"""The face benchmark's accuracy thresholds, and the int8 gallery's rank-1 equal to float32, on real faces.

Real models on the shared LFW set (``faces/lfw150``, the face benchmark's set): a subset of
people in the default run, every person under ``slow``. The protocol is the benchmark's
(``kiosk/bench/face_protocol.py``): all genuine pairs, impostor pairs (all of them on the subset,
the benchmark's 20,000 seeded ones on the full set), detection failures as misses, rank-1 with
each person's first image enrolled and the others as probes.

On the subset a TAR at a FAR is only asserted when there are enough impostor pairs for that FAR
to mean something (``MIN_FALSE_ACCEPTS`` of them at least would pass): the subset is the first
people whose images give 10,000 impostor pairs (enough for FAR 1e-3), so TAR at 1e-4 is asserted
on the full set only (the benchmark's own protocol, whatever its pair count).
"""

import numpy as np
import pytest

from kiosk.bench import face_protocol as protocol
from kiosk.bench.face import run_images
from kiosk.models.gallery import Gallery
from kiosk.models.pipeline import FacePipeline

THRESHOLDS = {"1e-3": 0.98, "1e-4": 0.97}   # TAR at FAR (issue 13)
RANK1 = 0.99
MIN_FALSE_ACCEPTS = 10       # a FAR is measured over at least this many over its reciprocal pairs
SUBSET_PAIRS = 10_000        # impostor pairs of the default run's subset

SETS = [pytest.param("subset", id="subset"), pytest.param("full", id="full", marks=pytest.mark.slow)]


def subset_people(root):
    """The fewest first people whose images give ``SUBSET_PAIRS`` impostor pairs."""
    _, _, labels = protocol.list_dataset(root)
    labels = np.asarray(labels)
    for people in range(2, int(labels.max()) + 2):
        if protocol.count_impostor_pairs(labels[labels < people]) >= SUBSET_PAIRS:
            return people
    return 0


@pytest.fixture(scope="module", params=SETS)
def embedded(request, datasets):
    """``(people count or 0 for all, embeddings, found, labels, model id)`` of the benchmark's set through the kiosk's pipeline."""
    root = datasets / "faces" / "lfw150"
    people = subset_people(root) if request.param == "subset" else 0
    _, files, labels = protocol.list_dataset(root, people=people)
    pipeline = FacePipeline(threads=1)  # the default embedder, whatever it is
    embeddings, found, _ = run_images(pipeline, files)
    return people, embeddings, found, np.asarray(labels), pipeline.model_id


def test_accuracy_thresholds_hold(embedded):
    people, embeddings, found, labels, _ = embedded
    impostors = 0 if people else protocol.DEFAULT_IMPOSTORS  # every impostor pair of the subset
    result, _, _ = protocol.evaluate(embeddings, found, labels, impostors=impostors)
    assert result["detect_fail_rate"] == 0.0
    # the full set is the benchmark's protocol itself; a subset asserts only what it can measure
    measured = {far: least for far, least in THRESHOLDS.items()
                if not people or result["impostor_pairs"] * float(far) >= MIN_FALSE_ACCEPTS}
    assert "1e-3" in measured
    for far, least in measured.items():
        assert result["tar_at_far"][far] >= least, (far, result["tar_at_far"])
    assert result["rank1"] >= RANK1


def test_int8_gallery_gives_the_float32_rank1_on_every_probe(embedded):
    """Enrol each person's first image; every other image's best identity is the one exact float32 search finds.

    The gallery holds int8 codes only; its ``exact_source`` here is the enrolled float32
    vectors (in the kiosk: the sealed templates in storage). Where the codes' rounding could
    swap two people (on the full lfw150 set with ``sface-int8-v2``: person 6 at 0.29634 against
    person 71 at 0.29596 on one probe, which the codes alone rank the other way), the source
    decides, and the score returned is the float32 one.
    """
    _, embeddings, found, labels, model_id = embedded
    first = {}
    for index, person in enumerate(labels):
        first.setdefault(int(person), index)
    enrolled = sorted(first.values())
    probes = [i for i in range(len(labels)) if i not in set(enrolled) and found[i]]
    names = [f"person-{labels[i]}" for i in enrolled]
    originals = dict(zip(names, embeddings[enrolled]))
    asked = []

    def source(person_ids):
        asked.append(list(person_ids))
        return [(person, originals[person]) for person in person_ids]

    gallery = Gallery(model_id, embeddings.shape[1], scan_rows=1, exact_source=source)  # through the scan model
    gallery.add_many(names, embeddings[enrolled], model_id=model_id)
    matrix = embeddings[enrolled] / np.linalg.norm(embeddings[enrolled], axis=1, keepdims=True)
    correct = 0
    for index in probes:
        probe = embeddings[index] / np.linalg.norm(embeddings[index])
        exact = matrix @ probe
        rescored = len(asked)
        best = gallery.search(probe, k=2)
        assert best[0].person_id == names[int(np.argmax(exact))], index
        if len(asked) > rescored:  # decided from the float32 vectors: their score, not the codes'
            assert best[0].score == pytest.approx(float(exact.max()), abs=1e-5)
        assert best[0].score == pytest.approx(float(exact.max()), abs=0.01)
        correct += best[0].person_id == f"person-{labels[index]}"
    assert gallery.exact_fallbacks == 0
    assert all(1 < len(people) <= gallery.exact_limit for people in asked)  # only near-ties, a few people each
    assert correct / len(probes) >= RANK1  # rank-1 through the gallery, as the kiosk searches
