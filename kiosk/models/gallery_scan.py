"""The gallery's coarse scan: int8 codes times a float query in one TFLite FULLY_CONNECTED op.

numpy has no fast int8 matrix-vector product (its integer loops run 2-3 times slower than the
float32 BLAS call they would replace), but every TFLite runtime has a "hybrid" fully connected
kernel: float32 input, int8 weights with one scale per output row, float32 output, run with
SIMD integer dot products. So the scan is a one-op model written here, in memory, around the
gallery's codes: query ``[1, dim]`` float32 -> weights ``[rows, dim]`` int8 -> scores
``[1, rows]`` float32. Every row shares one step (``step_for``): a per-row scale would cost a
float scale and an int64 zero point per row in the model, and the kernel's copies of them,
about 2 MB at 100,000 rows. The kernel also rounds the query to int8 (one scale for the vector),
so a coarse score is only near the row's true score; ``exact_at_most`` bounds how far, and
``Gallery.search`` re-scores the best rows with the float query.

The model is loaded with the built-in kernels only (``delegates=False``): they read the codes in
place from the model bytes, where XNNPACK would keep a second, repacked copy. The codes live only
inside the model bytes (``CodeScan.codes`` is a read-only view of them), so the gallery holds
one copy.

Format facts (TFLite flatbuffer schema, version 3): file identifier ``TFL3``; table field slots
as numbered in the schema; tensor type INT8 = 9, FLOAT32 = 0; builtin operator
FULLY_CONNECTED = 9; builtin options FullyConnectedOptions = 8.
"""

import logging
import flatbuffers
import numpy as np

from kiosk.models.runtime import load_model_bytes

log = logging.getLogger(__name__)

FLOAT32, INT8 = 0, 9
FULLY_CONNECTED = 9
FULLY_CONNECTED_OPTIONS = 8
ALIGN = 16  # the codes' start in the file, for the kernel's vector loads


def _int_vector(builder, values):
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependInt32(int(value))
    return builder.EndVector()


def _table_vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _byte_vector(builder, raw):
    builder.StartVector(1, len(raw), ALIGN)
    builder.head -= len(raw)
    builder.Bytes[builder.head:builder.head + len(raw)] = raw
    builder.vectorNumElems = len(raw)
    return builder.EndVector()


def _tensor(builder, shape, tensor_type, buffer, name, quantization=None):
    name = builder.CreateString(name)
    shape = _int_vector(builder, shape)
    builder.StartObject(5)
    builder.PrependUOffsetTRelativeSlot(0, shape, 0)
    builder.PrependInt8Slot(1, tensor_type, 0)
    builder.PrependUint32Slot(2, buffer, 0)
    builder.PrependUOffsetTRelativeSlot(3, name, 0)
    if quantization is not None:
        builder.PrependUOffsetTRelativeSlot(4, quantization, 0)
    return builder.EndObject()


def build_scan_model(codes, step):
    """``(model bytes, offset of the codes in them)``: a float query against int8 ``codes`` times ``step``."""
    codes = np.ascontiguousarray(codes, dtype=np.int8)
    rows, dim = codes.shape
    builder = flatbuffers.Builder(codes.nbytes + 8 * rows + 4096)
    weights = _byte_vector(builder, memoryview(codes).cast("B"))
    builder.StartObject(3)
    builder.PrependUOffsetTRelativeSlot(0, weights, 0)
    weights_buffer = builder.EndObject()
    builder.StartObject(3)
    empty_buffer = builder.EndObject()
    # buffer 0 is empty by convention; 1 query, 2 codes, 3 scores
    buffers = _table_vector(builder, [empty_buffer, empty_buffer, weights_buffer, empty_buffer])
    scale = builder.CreateNumpyVector(np.array([float(step)], dtype="<f4"))
    zero_point = builder.CreateNumpyVector(np.zeros(1, dtype="<i8"))
    builder.StartObject(7)
    builder.PrependUOffsetTRelativeSlot(2, scale, 0)
    builder.PrependUOffsetTRelativeSlot(3, zero_point, 0)
    quantization = builder.EndObject()
    tensors = _table_vector(builder, [
        _tensor(builder, [1, dim], FLOAT32, 1, "query"),
        _tensor(builder, [rows, dim], INT8, 2, "codes", quantization),
        _tensor(builder, [1, rows], FLOAT32, 3, "scores"),
    ])
    builder.StartObject(4)
    options = builder.EndObject()  # FullyConnectedOptions: no activation, default weights format
    inputs, outputs = _int_vector(builder, [0, 1, -1]), _int_vector(builder, [2])  # -1: no bias
    builder.StartObject(5)
    builder.PrependUint32Slot(0, 0, 0)
    builder.PrependUOffsetTRelativeSlot(1, inputs, 0)
    builder.PrependUOffsetTRelativeSlot(2, outputs, 0)
    builder.PrependUint8Slot(3, FULLY_CONNECTED_OPTIONS, 0)
    builder.PrependUOffsetTRelativeSlot(4, options, 0)
    operator = builder.EndObject()
    operators = _table_vector(builder, [operator])
    graph_inputs, graph_outputs = _int_vector(builder, [0]), _int_vector(builder, [2])
    builder.StartObject(5)
    builder.PrependUOffsetTRelativeSlot(0, tensors, 0)
    builder.PrependUOffsetTRelativeSlot(1, graph_inputs, 0)
    builder.PrependUOffsetTRelativeSlot(2, graph_outputs, 0)
    builder.PrependUOffsetTRelativeSlot(3, operators, 0)
    subgraph = builder.EndObject()
    builder.StartObject(4)
    builder.PrependInt8Slot(0, FULLY_CONNECTED, 0)   # deprecated_builtin_code (fits below 127)
    builder.PrependInt32Slot(2, 1, 1)
    builder.PrependInt32Slot(3, FULLY_CONNECTED, 0)  # builtin_code
    operator_code = builder.EndObject()
    operator_codes, subgraphs = _table_vector(builder, [operator_code]), _table_vector(builder, [subgraph])
    description = builder.CreateString("kiosk gallery scan")
    builder.StartObject(8)
    builder.PrependUint32Slot(0, 3, 0)
    builder.PrependUOffsetTRelativeSlot(1, operator_codes, 0)
    builder.PrependUOffsetTRelativeSlot(2, subgraphs, 0)
    builder.PrependUOffsetTRelativeSlot(3, description, 0)
    builder.PrependUOffsetTRelativeSlot(4, buffers, 0)
    model = builder.EndObject()
    builder.Finish(model, file_identifier=b"TFL3")
    # flatbuffer offsets count from the buffer's end; a vector's data follows its uint32 length
    start = builder.Head()
    codes_at = len(builder.Bytes) - weights - start + 4
    content = bytes(builder.Bytes[start:])
    del builder
    return content, codes_at


def step_for(dim):
    """The code step of unit vectors of ``dim`` elements: peak / 127, the peak at 6 standard deviations.

    An element of a random unit vector has standard deviation 1 / sqrt(dim); 6 of them is
    exceeded about once in 10^9 elements, and an element beyond is clipped to +-127 steps (the
    stored vector is then a little further from the original, and still scored exactly).
    """
    return min(1.0, 6.0 / np.sqrt(dim)) / 127.0


def quantize(vectors, step):
    """int8 codes of unit vectors in steps of ``step`` (rounded, clipped to +-127)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.clip(np.rint(vectors / np.float32(step)), -127, 127).astype(np.int8)


def row_norms(codes):
    """Euclidean norms of int8 code rows (as float32)."""
    codes = codes.astype(np.float32)
    return np.sqrt(np.einsum("ij,ij->i", codes, codes))


def query_error_bound(query):
    """Norm of the kernel's rounding error on the query (with a margin for float rounding).

    The kernel rounds the query to int8 with one scale (peak / 127); an element halfway between
    two steps is off by half a step whichever way it is rounded, so the norm is known exactly.
    """
    query = np.asarray(query, dtype=np.float32)
    scale = float(np.abs(query).max()) / 127.0
    if scale == 0.0:
        return 1e-5
    error = query - np.rint(query / scale) * scale
    return float(np.linalg.norm(error)) * 1.001 + 1e-5


def exact_at_most(coarse, *, query_bound, norm_low, norm_high):
    """The highest exact score a row with coarse score ``coarse`` can have.

    A row's exact score is ``code . query / |code|``; its coarse score is ``step * code . q'``
    with ``q' = query + error``. So ``exact = coarse / n - code . error / |code|`` with
    ``n = step * |code|`` in ``[norm_low, norm_high]``, and ``|code . error| / |code| <= |error|``.
    """
    coarse = np.asarray(coarse, dtype=np.float64)
    return np.where(coarse >= 0, coarse / norm_low, coarse / norm_high) + query_bound + 1e-6


class CodeScan:
    """A loaded scan model over fixed codes; ``scores(query)`` gives one coarse score per row; not thread-safe."""

    def __init__(self, codes, step, *, threads=1):
        codes = np.ascontiguousarray(codes, dtype=np.int8)
        self.rows, self.dim = codes.shape
        content, codes_at = build_scan_model(codes, step)
        self._model = load_model_bytes(content, name="gallery-scan", threads=threads, delegates=False)
        # a read-only view of the model's own copy (the gallery keeps no other)
        self.codes = np.frombuffer(content, dtype=np.int8, count=self.rows * self.dim, offset=codes_at)
        self.codes = self.codes.reshape(self.rows, self.dim)
        self._input = self._model.inputs[0]["index"]
        self._output = self._model.outputs[0]["index"]
        self._interpreter = self._model.interpreter

    def scores(self, query):
        """Coarse scores of a float32 ``(dim,)`` query against every row (a view, valid until the next call)."""
        self._interpreter.set_tensor(self._input, np.asarray(query, dtype=np.float32).reshape(1, self.dim))
        self._interpreter.invoke()
        return self._interpreter.tensor(self._output)()[0]
