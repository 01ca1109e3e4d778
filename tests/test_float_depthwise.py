"""tools/float_depthwise.py: an int8 depthwise filter becomes the float32 it stood for, and XNNPACK takes the op.

A one-op model is built here with the TFLite schema (a DEPTHWISE_CONV_2D with a per-channel
int8 filter, as TensorFlow's dynamic-range quantiser writes it), run before and after the pass,
and compared with the convolution computed in numpy from ``value * scale``.
"""

import collections
import sys
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s
from ai_edge_litert.interpreter import Interpreter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import float_depthwise as fd  # noqa: E402  (a build tool of the source checkout)


def tensor(shape, type_, buffer, name, quant=None):
    t = s.TensorT(); t.shape = list(shape); t.type = type_; t.buffer = buffer; t.name = name; t.quantization = quant
    return t

def buffer(data=None):
    b = s.BufferT(); b.data = None if data is None else np.frombuffer(data, dtype=np.uint8); return b

def one_depthwise_op_model(values, scales, bias):
    q = s.QuantizationParametersT(); q.scale = list(map(float, scales)); q.zeroPoint = [0] * len(scales); q.quantizedDimension = 3
    c = len(scales)
    g = s.SubGraphT()
    g.tensors = [tensor([1, 5, 5, c], s.TensorType.FLOAT32, 0, "in"), tensor([1, 3, 3, c], s.TensorType.INT8, 1, "filter", q),
                 tensor([c], s.TensorType.FLOAT32, 2, "bias"), tensor([1, 5, 5, c], s.TensorType.FLOAT32, 0, "out")]
    g.inputs, g.outputs = [0], [3]
    options = s.DepthwiseConv2DOptionsT(); options.padding = s.Padding.SAME; options.strideW = options.strideH = 1
    options.depthMultiplier = 1; options.dilationWFactor = options.dilationHFactor = 1
    op = s.OperatorT(); op.opcodeIndex = 0; op.inputs = [0, 1, 2]; op.outputs = [3]
    op.builtinOptionsType = s.BuiltinOptions.DepthwiseConv2DOptions; op.builtinOptions = options
    g.operators = [op]
    code = s.OperatorCodeT(); code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.DEPTHWISE_CONV_2D; code.version = 6
    m = s.ModelT(); m.version = 3; m.operatorCodes = [code]; m.subgraphs = [g]
    m.buffers = [buffer(), buffer(values.astype(np.int8).tobytes()), buffer(bias.astype("<f4").tobytes())]
    b = flatbuffers.Builder(0); b.Finish(m.Pack(b), file_identifier=b"TFL3"); return bytes(b.Output())


def _run(content, x):
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    delegated = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())["DELEGATE"]
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0], delegated


def _depthwise_3x3_same(x, weights, bias):
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    rows, cols = x.shape[:2]
    return np.stack([np.stack([(padded[i:i + 3, j:j + 3] * weights).sum(axis=(0, 1)) for j in range(cols)])
                     for i in range(rows)]) + bias


def test_an_int8_depthwise_filter_becomes_its_float32_values_and_runs_in_xnnpack():
    rng = np.random.default_rng(0)
    values = rng.integers(-127, 128, (1, 3, 3, 4))
    scales = np.array([0.01, 0.02, 0.005, 0.03], np.float32)
    bias = np.array([0.1, -0.2, 0.0, 0.3], np.float32)
    content = one_depthwise_op_model(values, scales, bias)
    x = rng.uniform(-1, 1, (1, 5, 5, 4)).astype(np.float32)
    expected = _depthwise_3x3_same(x[0], (values * scales).astype(np.float32)[0], bias)

    before, delegated_before = _run(content, x)
    converted, changed = fd.float_depthwise(content)
    after, delegated_after = _run(converted, x)

    assert changed == 1
    assert delegated_before == 0 and delegated_after == 1  # the hybrid op stayed out of XNNPACK; now it is in
    np.testing.assert_allclose(after, expected, atol=1e-5)  # exactly the filter's float values
    assert np.abs(before - expected).max() < 0.1            # the same op, its input quantised on the fly
    model = s.ModelT.InitFromPackedBuf(bytearray(converted), 0)
    weights = model.subgraphs[0].tensors[1]
    assert weights.type == s.TensorType.FLOAT32 and weights.quantization is None
    assert fd.float_depthwise(converted)[1] == 0  # nothing left to change
