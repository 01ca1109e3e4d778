"""The TFLite loader: picks tflite_runtime or ai_edge_litert, whichever is installed."""

import importlib.util

import numpy as np
import pytest

from kiosk.errors import ModelError
from kiosk.models import assets, runtime


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


INSTALLED = [name for name in runtime.RUNTIMES if _installed(name)]


def test_at_least_one_runtime_is_installed():
    assert INSTALLED, f"none of {runtime.RUNTIMES} is installed"


def test_default_is_the_first_installed_runtime_in_preference_order():
    cls, name = runtime.interpreter_class()
    assert name == INSTALLED[0]
    assert cls.__name__ == "Interpreter"


@pytest.mark.parametrize("name", runtime.RUNTIMES)
def test_each_runtime_loads_and_runs_a_model(name):
    if name not in INSTALLED:
        pytest.skip(f"{name} is not installed here")
    model = runtime.load_model(assets.path("blazeface_short"), threads=2, runtime=name)
    assert model.runtime == name and model.threads == 2
    assert model.input_shape() == (1, 128, 128, 3)
    boxes, scores = model.run(np.zeros((1, 128, 128, 3), dtype=np.float32))
    assert boxes.shape == (1, 896, 16) and scores.shape == (1, 896, 1)
    assert model.output_by_name([boxes, scores], "classificators") is scores


def test_an_absent_runtime_is_reported_not_silently_replaced():
    missing = [name for name in runtime.RUNTIMES if name not in INSTALLED]
    if not missing:
        pytest.skip("both runtimes are installed here")
    with pytest.raises(ModelError, match="no TFLite runtime"):
        runtime.interpreter_class(runtime=missing[0])


def test_unknown_runtime_and_missing_file_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="unknown TFLite runtime"):
        runtime.interpreter_class(runtime="tensorflow.lite")
    with pytest.raises(ModelError, match="missing"):
        runtime.load_model(tmp_path / "nothing.tflite")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="cannot load"):
        runtime.load_model(broken)


def test_run_checks_the_number_of_inputs():
    model = runtime.load_model(assets.path("blazeface_short"))
    with pytest.raises(ModelError):
        model.run()
