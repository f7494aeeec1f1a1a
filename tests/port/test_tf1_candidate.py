"""The legacy TF1 candidate: the course's own TF1 file, unedited, against the NumPy reference.

Runs examples/ports/course_tf1.py (tf.placeholder, tf.get_variable, tf.contrib.layers, tf.nn.max_pool
...) through signs.port.tf1_candidate on the course-exact weights and the course's vectors (batch 2),
and checks the adapter's contract: activations, cost, every gradient and TF1 Adam steps equal the
reference; broken legacy files differ; bad files are one-line errors; TensorFlow is left untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from reference.adam import Adam
from reference.init import course_init
from reference.model import forward_backward
from reference.spec import ACTIVATION_NAMES, PARAM_NAMES
from signs.tolerances import adam_tolerance, parity_tolerance, relative_error
from signs.verify.options import course_vectors

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ports" / "course_tf1.py"
DTYPES = (np.float64, np.float32)


@pytest.fixture(scope="module")
def candidate():
    from signs.port.tf1_candidate import load_tf1_candidate

    return load_tf1_candidate(EXAMPLE)


@pytest.fixture(scope="module")
def inputs():
    return course_vectors(2)


@pytest.fixture(scope="module")
def reference(inputs):
    """Ground truth: the float64 NumPy reference on the course-exact weights (activations, cost, grads)."""
    return forward_backward(course_init(dtype=np.float64), inputs.X, inputs.Y)


@pytest.fixture(scope="module")
def runs(candidate, inputs):
    """dtype -> the example's CandidateRun on the course-exact weights."""
    return {dtype: candidate.run(course_init(dtype=dtype), inputs.X, inputs.Y, dtype) for dtype in DTYPES}


def _write_variant(tmp_path: Path, old: str, new: str, name: str = "variant.py") -> Path:
    """A copy of the example with ``old`` replaced by ``new`` (which must occur exactly once)."""
    source = EXAMPLE.read_text()
    assert source.count(old) == 1, old
    path = tmp_path / name
    path.write_text(source.replace(old, new))
    return path


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_course_example_equals_the_reference(runs, reference, dtype):
    run = runs[dtype]
    assert [p.name for p in run.params] == list(PARAM_NAMES)
    assert [p.use_order for p in run.params] == [0, 1, 2, 3]
    checks = {"Z3": (run.output, reference["Z3"]), "cost": (run.loss, reference["cost"]),
              "dX": (run.input_grad, reference["dX"])}
    checks.update({"d" + name: (run.param_grads[name], reference["d" + name]) for name in PARAM_NAMES})
    for name, (got, expected) in checks.items():
        if name != "cost":  # CandidateRun.loss is a Python float
            assert got.dtype == dtype, name  # a float64 run really ran in float64
        assert relative_error(got, expected) <= parity_tolerance(name, dtype), name


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_captured_tensors_hold_every_activation(runs, reference, dtype):
    captured = runs[dtype].captured
    for name in ACTIVATION_NAMES:
        matches = [c.label for c in captured if c.array.shape == reference[name].shape
                   and relative_error(c.array, reference[name]) <= parity_tolerance(name, dtype)]
        assert matches, name
    layouts = {c.label: c.layout for c in captured}
    assert layouts["Conv2D:0"] == "NHWC" and layouts["Flatten/Reshape:0"] == "flat"
    assert [c.label for c in captured][:3] == ["Conv2D:0", "Relu:0", "MaxPool:0"]  # graph order


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_steps_equal_reference_tf1_adam(candidate, dtype):
    batches = [(b.X.astype(dtype), b.Y.astype(dtype)) for b in (course_vectors(2, seed) for seed in (1, 2, 3))]
    steps = candidate.steps(course_init(dtype=dtype), batches, dtype)
    params, adam = course_init(dtype=dtype), Adam()
    for k, (X, Y) in enumerate(batches):
        grads = forward_backward(params, X, Y)
        assert relative_error(steps.losses[k], grads["cost"]) <= parity_tolerance("cost", dtype)
        adam.step(params, {name: grads["d" + name] for name in PARAM_NAMES})
        for name in PARAM_NAMES:
            assert relative_error(steps.params_after[k][name], params[name]) <= adam_tolerance(dtype), (k, name)


@pytest.mark.parametrize(
    "old, new",
    [
        ('Z1 = tf.nn.conv2d(X, W1, strides=[1, 1, 1, 1], padding="SAME")',
         'Z1 = tf.nn.conv2d(X, W1, strides=[1, 1, 1, 1], padding="VALID")'),
        ("fully_connected(P2, 6, activation_fn=None)", "fully_connected(P2, 6)"),  # contrib's default: ReLU
    ],
    ids=["conv1-valid", "dense-relu"],
)
def test_broken_legacy_file_gives_a_run_that_differs(tmp_path, inputs, reference, old, new):
    from signs.port.tf1_candidate import load_tf1_candidate

    run = load_tf1_candidate(_write_variant(tmp_path, old, new)).run(course_init(dtype=np.float64), inputs.X, inputs.Y, np.float64)
    assert relative_error(run.output, reference["Z3"]) > 1e-3


def test_without_compute_cost_the_default_loss_is_the_mean_cross_entropy(tmp_path, inputs, reference):
    from signs.port.tf1_candidate import load_tf1_candidate

    path = _write_variant(tmp_path, "def compute_cost(Z3, Y):", "def course_cost(Z3, Y):")
    run = load_tf1_candidate(path).run(course_init(dtype=np.float64), inputs.X, inputs.Y, np.float64)
    assert run.settings["loss"] == "softmax cross-entropy, mean"
    assert relative_error(run.loss, reference["cost"]) <= parity_tolerance("cost", np.float64)


def test_file_without_forward_propagation_is_a_one_line_error(tmp_path):
    from signs.port.tf1_candidate import load_tf1_candidate

    path = _write_variant(tmp_path, "def forward_propagation(X, parameters):", "def forward(X, parameters):", "noforward.py")
    with pytest.raises(ValueError, match="noforward.py.*forward_propagation") as error:
        load_tf1_candidate(path)
    assert "\n" not in str(error.value)


def test_forward_propagation_that_raises_is_a_one_line_error(tmp_path, inputs):
    from signs.port.tf1_candidate import load_tf1_candidate

    path = _write_variant(tmp_path, 'W2 = parameters["W2"]', 'W2 = parameters["W7"]', "raises.py")
    with pytest.raises(ValueError, match=r"forward_propagation.*raises.py.*KeyError") as error:
        load_tf1_candidate(path).run(course_init(dtype=np.float64), inputs.X, inputs.Y, np.float64)
    assert "\n" not in str(error.value)


def test_params_of_the_wrong_shape_or_name_are_rejected(candidate, inputs):
    params = course_init(dtype=np.float64)
    with pytest.raises(ValueError, match=r"params\['W3'\]: expected shape \(64, 6\)"):
        candidate.run({**params, "W3": params["W3"].T}, inputs.X, inputs.Y, np.float64)
    with pytest.raises(ValueError, match=r"unknown \['b1'\]"):
        candidate.run({**params, "b1": np.zeros(8)}, inputs.X, inputs.Y, np.float64)


def test_neighbour_imports_work_and_leave_no_trace(tmp_path, inputs, reference, runs):
    """The file imports a neighbour that itself uses TF1 names; sys.path/sys.modules are restored."""
    from signs.port.tf1_candidate import load_tf1_candidate

    (tmp_path / "cnn_layers.py").write_text(
        "import tensorflow as tf\n\n\ndef conv_same(X, W):\n"
        "    return tf.nn.conv2d(X, W, strides=[1, 1, 1, 1], padding='SAME')\n"
    )
    path = _write_variant(tmp_path, "import tensorflow as tf\n", "import tensorflow as tf\nfrom cnn_layers import conv_same\n")
    path.write_text(path.read_text().replace('Z1 = tf.nn.conv2d(X, W1, strides=[1, 1, 1, 1], padding="SAME")', "Z1 = conv_same(X, W1)"))
    path_before, modules_before = list(sys.path), set(sys.modules)
    run = load_tf1_candidate(path).run(course_init(dtype=np.float64), inputs.X, inputs.Y, np.float64)
    assert relative_error(run.output, reference["Z3"]) <= parity_tolerance("Z3", np.float64)
    assert sys.path == path_before
    assert {"cnn_layers", "variant"}.isdisjoint(set(sys.modules) - modules_before)


def test_real_tensorflow_is_not_modified(tmp_path, inputs):
    import builtins

    import tensorflow as tf

    from signs.port.tf1_candidate import load_tf1_candidate

    before = {name: hasattr(tf, name) for name in ("placeholder", "get_variable", "contrib", "Session", "set_random_seed")}
    import_before = builtins.__import__
    candidate = load_tf1_candidate(_write_variant(tmp_path, "import math\n", "import math\n", "fresh.py"))
    candidate.run(course_init(dtype=np.float64), inputs.X, inputs.Y, np.float64)
    assert {name: hasattr(tf, name) for name in before} == before
    assert sys.modules["tensorflow"] is tf and builtins.__import__ is import_before
    assert tf.executing_eagerly() and tf.float32 == tf.as_dtype("float32")
    assert candidate.module.tf is candidate.namespace and candidate.module.tf is not tf


def test_float64_run_widens_the_files_float32_requests(tmp_path, inputs, reference):
    """A file creating its own variable (get_variable's float32 default) and tf.float32 constants runs
    in float64; the variable is reported by its TF name and set from params."""
    from signs.port.tf1_candidate import load_tf1_candidate

    path = _write_variant(
        tmp_path, "    A1 = tf.nn.relu(Z1)\n",
        "    b1 = tf.get_variable('b1', [8], initializer=tf.zeros_initializer())\n"
        "    Z1 = Z1 * tf.constant(1.0) + tf.cast(b1, tf.float32)\n    A1 = tf.nn.relu(Z1)\n",
        "conv_bias.py",
    )
    candidate = load_tf1_candidate(path)
    params = {**course_init(dtype=np.float64), "b1": np.zeros(8)}
    run = candidate.run(params, inputs.X, inputs.Y, np.float64)
    assert [(p.name, p.use_order) for p in run.params] == [("W1", 0), ("W2", 2), ("b1", 1), ("W3", 3), ("b3", 4)]
    assert run.param_grads["b1"].dtype == np.float64
    for name in PARAM_NAMES:
        assert relative_error(run.param_grads[name], reference["d" + name]) <= parity_tolerance("d" + name, np.float64)
    shifted = candidate.run({**params, "b1": np.full(8, 0.5)}, inputs.X, inputs.Y, np.float64)
    assert relative_error(shifted.output, reference["Z3"]) > 1e-3  # b1 is really set from params


def test_the_files_own_initial_weights_are_the_courses(candidate):
    """initialize_parameters (set_random_seed(1), xavier_initializer(seed=0)) and fully_connected's
    seed-less initializer reproduce the course's initial weights bit for bit."""
    own, expected = candidate.initial_params(), course_init()
    assert sorted(own) == sorted(PARAM_NAMES)
    for name in PARAM_NAMES:
        assert own[name].dtype == np.float32 and own[name].tobytes() == expected[name].tobytes(), name


def test_unimportable_or_missing_file_is_a_one_line_error(tmp_path):
    from signs.port.tf1_candidate import load_tf1_candidate

    path = _write_variant(tmp_path, "import math\n", "import math\nimport no_such_module_here\n", "brokenimport.py")
    with pytest.raises(ValueError, match=r"importing .*brokenimport.py.* raised ModuleNotFoundError") as error:
        load_tf1_candidate(path)
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="absent.py"):
        load_tf1_candidate(tmp_path / "absent.py")
