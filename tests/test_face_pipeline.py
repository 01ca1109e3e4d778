"""The face pipeline on real photos: it finds faces, and the same person scores above strangers."""

import numpy as np
import pytest

from kiosk import config
from kiosk.errors import ModelError
from kiosk.models.embedder import load_embedder
from kiosk.models.pipeline import FacePipeline

# four people with several photos each (shared/datasets/faces/lfw150), two photos per person
PEOPLE = ("Abdullah_Gul", "Alan_Greenspan", "Bill_Gates", "Ana_Palacio")


def _rgb(path):
    import cv2

    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.fixture(scope="module")
def photos(datasets):
    root = datasets / "faces" / "lfw150"
    found = {}
    for person in PEOPLE:
        files = sorted((root / person).glob("*.jpg"))
        assert len(files) >= 2, f"{person} needs 2 photos in {root}"
        found[person] = [_rgb(f) for f in files[:2]]
    return found


@pytest.fixture(scope="module")
def pipeline():
    return FacePipeline.from_settings(config.build([]).face, threads=1)


def _embeddings(pipeline, photos):
    result = {}
    for person, images in photos.items():
        result[person] = []
        for image in images:
            faces = pipeline.process(image)
            assert len(faces) == 1, f"no face found for {person}"
            result[person].append(faces[0].embedding)
    return result


def _check_separation(embeddings):
    genuine = [float(a @ b) for a, b in embeddings.values()]
    people = list(embeddings)
    impostor = [float(embeddings[p][i] @ embeddings[q][j])
                for x, p in enumerate(people) for q in people[x + 1:] for i in (0, 1) for j in (0, 1)]
    assert min(genuine) > max(impostor), (genuine, impostor)


def test_default_pipeline_finds_faces_and_separates_people(pipeline, photos):
    assert pipeline.model_id == config.build([]).face.embedder
    face = pipeline.process(photos["Bill_Gates"][0])[0]
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (128,)
    assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-5
    assert face.points.shape == (5, 2) and face.landmarks is not None
    assert face.crop.shape == (112, 112, 3)
    assert set(face.timings_ms) == {"detect", "landmarks", "embed", "total"}
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= 150 and 0 <= y0 < y1 <= 150
    _check_separation(_embeddings(pipeline, photos))


def test_detector_alignment_and_mobilefacenet_also_separate(photos):
    pipeline = FacePipeline(embedder="mobilefacenet-v1", align_source="detector", threads=1)
    assert pipeline.landmarker is None
    face = pipeline.process(photos["Alan_Greenspan"][0])[0]
    assert face.points.shape == (4, 2) and face.embedding.shape == (192,)
    _check_separation(_embeddings(pipeline, photos))


def test_the_face_nearest_the_centre_is_taken(pipeline, photos):
    gates, greenspan = photos["Bill_Gates"][0], photos["Alan_Greenspan"][0]
    canvas = np.full((200, 450, 3), 100, dtype=np.uint8)
    canvas[25:175, 0:150] = gates          # at the left edge
    canvas[25:175, 150:300] = greenspan    # in the middle
    centre = pipeline.process(canvas)
    everyone = pipeline.process(canvas, all_faces=True)
    assert len(centre) == 1 and len(everyone) == 2
    reference = pipeline.process(greenspan)[0].embedding
    assert float(centre[0].embedding @ reference) > 0.8


def test_no_face_gives_an_empty_list(pipeline):
    rng = np.random.default_rng(1)
    assert pipeline.process(np.full((200, 200, 3), 30, dtype=np.uint8)) == []
    assert pipeline.process(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) == []


def test_unknown_ids_are_model_errors():
    with pytest.raises(ModelError):
        load_embedder("facenet-512")
    with pytest.raises(ModelError):
        FacePipeline(detector="yunet")
    with pytest.raises(ModelError):
        FacePipeline(align_source="eyes")
