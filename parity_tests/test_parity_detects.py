"""The parity checks can fail, and when they do they name the right layer first.

Each test breaks exactly one thing in exactly one framework (a weight, one layer's forward output,
one layer's backward) and asserts that the report's first divergence is that layer, that every
quantity computed before it still agrees, and (with three backends) that the broken backend is the
one blamed.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from parity_helpers import DTYPES, cast, make_inputs, make_labels
from reference.spec import COURSE_MODEL
from signs.compare import DIVERGENCE_ORDER, compare_results, first_divergence
from signs.verify.forward import FORWARD_BACKWARD_NAMES, forward_backward_all

PERTURBATION = 1e-3


def run_report(backends, params, dtype, title=""):
    X, Y = make_inputs("random7"), make_labels("soft", 7, seed=9)
    results = forward_backward_all(backends, cast(params, dtype), X.astype(dtype), Y.astype(dtype))
    return compare_results(results, FORWARD_BACKWARD_NAMES, dtype, title=title)


def assert_first_divergence(report, expected: str, victim: str | None) -> None:
    divergence = first_divergence(report)
    assert divergence is not None, f"the perturbation was not detected\n{report.format_table()}"
    assert divergence.name == expected, f"{report.format_table()}\n{divergence.message()}"
    for name in DIVERGENCE_ORDER[: DIVERGENCE_ORDER.index(expected)]:
        for pair in report.pairs:
            assert report.comparisons[pair][name].ok, (name, pair)
    failing_pairs = {(c.ours, c.theirs) for c in divergence.failures}
    if victim is not None:
        assert all(victim in pair for pair in failing_pairs)
        assert all(pair in failing_pairs for pair in report.pairs if victim in pair)
        if len(report.backends) == 3:
            assert divergence.suspect == victim


def with_perturbed_weight(backend, name: str):
    """A backend that runs ``backend`` on params whose first ``name`` entry is off by 1e-3."""

    def forward_backward(params, X, Y, **kwargs):
        params = {k: v.copy() for k, v in params.items()}
        params[name].flat[0] += params[name].dtype.type(PERTURBATION)
        return backend.forward_backward(params, X, Y, **kwargs)

    return types.SimpleNamespace(NAME=backend.NAME, forward_backward=forward_backward)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("param, first", [("W1", "Z1"), ("W2", "Z2"), ("W3", "Z3"), ("b3", "Z3")])
def test_a_perturbed_weight_is_caught_at_its_layer(parity_backends, shared_weights, param, first,
                                                   dtype):
    victim = list(parity_backends)[-1]
    backends = dict(parity_backends)
    backends[victim] = with_perturbed_weight(parity_backends[victim], param)
    report = run_report(backends, shared_weights["glorot"], dtype)
    assert_first_divergence(report, first, victim)
    assert not report.ok and "first divergence: " + first in report.summary()


def test_torch_pool1_output_shifted_is_flagged_at_P1(parity_backends, shared_weights, monkeypatch):
    """Monkeypatch PyTorch's max-pool layer to add 1e-3 to pool1's output only."""
    if "torch" not in parity_backends:
        pytest.skip("torch backend unavailable")
    from torch_model import ops

    original = ops.TFMaxPool2d.forward

    def shifted(self, x):
        out = original(self, x)
        return out + PERTURBATION if self.window == COURSE_MODEL.pool1.window else out

    monkeypatch.setattr(ops.TFMaxPool2d, "forward", shifted)
    report = run_report(parity_backends, shared_weights["course"], np.float32)
    assert_first_divergence(report, "P1", "torch")


def test_tf_relu2_output_shifted_is_flagged_at_A2(parity_backends, shared_weights, monkeypatch):
    """Monkeypatch Keras' ReLU layer to add 1e-3 to relu2's output only."""
    if "tf" not in parity_backends:
        pytest.skip("tf backend unavailable")
    import keras

    original = keras.layers.ReLU.call

    def shifted(self, inputs):
        out = original(self, inputs)
        return out + PERTURBATION if self.name == "relu2" else out

    monkeypatch.setattr(keras.layers.ReLU, "call", shifted)
    report = run_report(parity_backends, shared_weights["course"], np.float64)
    assert_first_divergence(report, "A2", "tf")


def test_numpy_backward_only_error_is_flagged_at_dW2(parity_backends, shared_weights, monkeypatch):
    """Scale NumPy's relu2 backward by (1 + 1e-3): the forward pass, db3 and dW3 still agree, and
    dW2 (the first gradient computed from dZ2) is the first divergence."""
    if "numpy" not in parity_backends:
        pytest.skip("numpy backend unavailable")
    import reference.model

    original = reference.model.relu_backward
    z2_channels = COURSE_MODEL.conv2.filters

    def scaled(dA, Z):
        dZ = original(dA, Z)
        return dZ * dZ.dtype.type(1 + PERTURBATION) if Z.shape[-1] == z2_channels else dZ

    monkeypatch.setattr(reference.model, "relu_backward", scaled)
    report = run_report(parity_backends, shared_weights["trained"], np.float64)
    assert_first_divergence(report, "dW2", "numpy")
    # The forward quantities and the dense gradients are untouched; everything from dW2 on fails.
    failing = {c.name for c in report.failures()}
    assert failing == {"dW2", "dW1", "dX"}


def test_float32_noise_is_not_flagged(parity_backends, shared_weights):
    """The converse: without any perturbation nothing is flagged, in either dtype."""
    for dtype in DTYPES:
        report = run_report(parity_backends, shared_weights["glorot"], dtype)
        assert first_divergence(report) is None, report.format_table()
