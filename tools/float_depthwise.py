#!/usr/bin/env python3
"""Turn a dynamic-range int8 TFLite model's depthwise filters back into float32, so XNNPACK runs it whole.

XNNPACK (the CPU delegate of ai-edge-litert) runs dynamic-range int8 CONV_2D and
FULLY_CONNECTED ops (int8 weights, activations quantised on the fly) but has no such kernel
for DEPTHWISE_CONV_2D: each int8 depthwise op stays on TFLite's built-in hybrid kernel and
cuts the delegated graph in two. SFace's 13 depthwise ops split it into 12 partitions and
the model ran in 8.4 ms at one thread here; with float32 depthwise filters it is one
partition and runs in 4.6 ms. The depthwise filters are small (9 weights per channel), so
the file grows by about 0.2 MB.

Each int8 filter becomes ``value * scale`` of its channel (the same numbers the hybrid
kernel multiplied by), and loses its quantisation parameters; nothing else changes. Needs
``flatbuffers`` and the TFLite schema module that ai-edge-litert ships. Deterministic.

    python3 tools/float_depthwise.py IN.tflite OUT.tflite
"""

import argparse
import sys
from pathlib import Path

import numpy as np

DEPTHWISE = "DEPTHWISE_CONV_2D"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def op_names(model, schema):
    """The builtin operator name of each operator of the first subgraph."""
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    codes = model.operatorCodes
    return [names[max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in model.subgraphs[0].operators]


def int8_depthwise_filters(model, schema):
    """Indices of the tensors that are int8 filters of depthwise ops (first subgraph)."""
    graph = model.subgraphs[0]
    return [op.inputs[1] for op, name in zip(graph.operators, op_names(model, schema))
            if name == DEPTHWISE and graph.tensors[op.inputs[1]].type == schema.TensorType.INT8]


def float_depthwise(content):
    """``(new model bytes, filters changed)`` for the bytes of a .tflite model."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    graph = model.subgraphs[0]
    filters = int8_depthwise_filters(model, schema)
    users = {}
    for tensor in graph.tensors:
        users[tensor.buffer] = users.get(tensor.buffer, 0) + 1
    for index in filters:
        tensor = graph.tensors[index]
        if users[tensor.buffer] != 1:  # a shared buffer would change another tensor too
            raise ValueError(f"tensor {index}: its buffer {tensor.buffer} is shared")
        quant = tensor.quantization
        values = np.frombuffer(bytes(bytearray(model.buffers[tensor.buffer].data)), dtype=np.int8)
        values = values.reshape(tensor.shape).astype(np.float32)
        scale = np.asarray(quant.scale, dtype=np.float32)
        zero = np.asarray(quant.zeroPoint if quant.zeroPoint is not None else [0], dtype=np.float32)
        if np.any(zero != 0):
            raise ValueError(f"tensor {index}: dynamic-range filters are symmetric, this one has a zero point")
        if scale.size > 1:
            shape = [1] * values.ndim
            shape[quant.quantizedDimension] = -1
            scale = scale.reshape(shape)
        weights = (values * scale).astype("<f4")
        model.buffers[tensor.buffer].data = np.frombuffer(weights.tobytes(), dtype=np.uint8)
        tensor.type = schema.TensorType.FLOAT32
        tensor.quantization = None
    builder = flatbuffers.Builder(len(content) + (1 << 20))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), len(filters)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a dynamic-range int8 .tflite")
    parser.add_argument("out", help="where to write the model with float32 depthwise filters")
    args = parser.parse_args(argv)
    content, changed = float_depthwise(Path(args.source).read_bytes())
    Path(args.out).write_bytes(content)
    print(f"{args.out}: {changed} depthwise filter(s) made float32, {len(content) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
