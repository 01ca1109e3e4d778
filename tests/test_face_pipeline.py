"""The face pipeline on real photos: it finds faces, and the same person scores above strangers."""

import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk import config
from kiosk.errors import ModelError
from kiosk.models import assets
from kiosk.models.embedder import load_embedder
from kiosk.models.pipeline import FacePipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import float_depthwise  # noqa: E402  (a build tool of the source checkout)

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


def test_the_fp16_embedder_stays_selectable_and_agrees_with_the_default(pipeline, photos):
    face = config.build([("test", {"face": {"embedder": "sface-fp16-v1", "match_threshold": 0.56}})]).face
    fp16 = FacePipeline.from_settings(face, threads=1)
    assert fp16.model_id == "sface-fp16-v1" != pipeline.model_id
    for images in photos.values():
        for image in images:
            ours, theirs = pipeline.process(image)[0], fp16.process(image)[0]
            assert float(ours.embedding @ theirs.embedding) > 0.99  # the same SFace weights, int8 or fp16
    _check_separation(_embeddings(fp16, photos))


def test_the_default_embedder_runs_whole_in_xnnpack():
    """One delegated partition and no int8 depthwise filter (XNNPACK has no kernel for one: it would split the graph)."""
    from ai_edge_litert import schema_py_generated as schema

    model_id = config.build([]).face.embedder
    embedder = load_embedder(model_id)
    names = [op["op_name"] for op in embedder.model.interpreter._get_ops_details()]
    assert names.count("DELEGATE") == 1, names
    model = schema.ModelT.InitFromPackedBuf(bytearray(assets.path(model_id).read_bytes()), 0)
    assert float_depthwise.int8_depthwise_filters(model, schema) == []
    int8_weights = [t for t in model.subgraphs[0].tensors if t.type == schema.TensorType.INT8]
    assert len(int8_weights) >= 14  # the convolutions and the fully connected layer stay int8


def test_the_detector_runs_on_one_thread_and_the_mesh_and_embedder_on_face_threads():
    """An idle kiosk runs the detector all day: XNNPACK's second thread only cost CPU there (see DETECTOR_THREADS)."""
    settings = config.build([]).face
    assert settings.threads == 2 and settings.detector == "blazeface_short_then_full"
    pipeline = FacePipeline.from_settings(settings)
    assert [stage.model.threads for stage in pipeline.detector.stages] == [1, 1]
    assert pipeline.landmarker.model.threads == 2
    assert pipeline.embedder.model.threads == 2
