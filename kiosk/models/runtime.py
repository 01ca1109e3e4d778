"""Load TFLite models with whichever runtime is installed: ai_edge_litert or tflite_runtime.

The firmware depends on ai-edge-litert (XNNPACK's int8 kernels, numpy 2); tflite_runtime 2.14
still loads the float models but not the gallery's per-channel int8 scan (wrong results there).

A ``Model`` wraps one interpreter. Build it once per model per worker thread and reuse it for
every frame: an interpreter is not thread-safe, and building one costs milliseconds of setup.
"""

import importlib
import logging
from pathlib import Path

import numpy as np

from kiosk.errors import ModelError

log = logging.getLogger(__name__)

# module names in order of preference; each exposes ``Interpreter`` with the same API
RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def interpreter_class(*, runtime=None):
    """Return ``(Interpreter class, module name)`` of the requested or first installed runtime."""
    names = RUNTIMES if runtime is None else (runtime,)
    if runtime is not None and runtime not in RUNTIMES:
        raise ModelError(f"unknown TFLite runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    problems = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            problems.append(f"{name}: {e}")
            continue
        return module.Interpreter, name
    raise ModelError("no TFLite runtime installed (pip install tflite-runtime or ai-edge-litert): "
                     + "; ".join(problems))


def load_model(path, *, threads=1, runtime=None):
    """Load one .tflite file into a ready-to-run ``Model`` using ``threads`` CPU threads."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    return _load(path.name, {"model_path": str(path)}, threads=threads, runtime=runtime, delegates=True)


def load_model_bytes(content, *, name, threads=1, runtime=None, delegates=True):
    """Load a model held in memory (``bytes``); ``delegates=False`` runs the built-in kernels only.

    The built-in kernels read constant tensors in place from ``content``, where the XNNPACK
    delegate would repack them into a second copy: the gallery's scan uses that to keep one
    copy of its codes in memory.
    """
    return _load(name, {"model_content": bytes(content)}, threads=threads, runtime=runtime, delegates=delegates)


def _load(name, source, *, threads, runtime, delegates):
    interpreter_type, runtime_name = interpreter_class(runtime=runtime)
    options = {}
    if not delegates:
        module = importlib.import_module(runtime_name)
        options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = interpreter_type(**source, num_threads=int(threads), **options)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"cannot load {name} with {runtime_name}: {e}") from e
    log.debug("loaded %s with %s, %d thread(s)", name, runtime_name, threads)
    return Model(interpreter, name=name, runtime=runtime_name, threads=int(threads))


class Model:
    """One loaded interpreter with its input and output tensor details; not thread-safe."""

    def __init__(self, interpreter, *, name, runtime, threads):
        self.interpreter = interpreter
        self.name = name
        self.runtime = runtime
        self.threads = threads
        self.inputs = interpreter.get_input_details()
        self.outputs = interpreter.get_output_details()

    def input_shape(self, index=0):
        """Shape of input ``index`` as a tuple, e.g. ``(1, 128, 128, 3)``."""
        return tuple(int(n) for n in self.inputs[index]["shape"])

    def run(self, *arrays):
        """Feed one array per input, run, and return copies of all outputs in model order."""
        if len(arrays) != len(self.inputs):
            raise ModelError(f"{self.name} takes {len(self.inputs)} input(s), got {len(arrays)}")
        for detail, array in zip(self.inputs, arrays):
            self.interpreter.set_tensor(detail["index"], np.asarray(array, dtype=detail["dtype"]))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(detail["index"]).copy() for detail in self.outputs]

    def run_filled(self, fill):
        """Like ``run`` for a one-input model, with ``fill(array)`` writing the input where the runtime reads it.

        ``array`` is the input tensor itself without its batch axis (a view into the interpreter):
        no temporary input array and no copy through ``set_tensor``. ``fill`` must not keep it:
        the runtime refuses to run while a view into its buffers is alive.
        """
        if len(self.inputs) != 1:
            raise ModelError(f"{self.name} takes {len(self.inputs)} inputs; run_filled feeds one")
        fill(self.interpreter.tensor(self.inputs[0]["index"])()[0])
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(detail["index"]).copy() for detail in self.outputs]

    def output_by_name(self, outputs, name):
        """Pick the output array whose tensor name is ``name`` from a ``run`` result."""
        for detail, array in zip(self.outputs, outputs):
            if detail["name"] == name:
                return array
        raise ModelError(f"{self.name} has no output named {name!r}")

    def __repr__(self):
        return f"Model({self.name!r}, runtime={self.runtime!r}, threads={self.threads})"
