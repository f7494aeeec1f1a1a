"""Centred finite differences (float64) against every analytic backward.

Upstream gradients are random (never all ones). Inputs of non-smooth layers keep every ReLU
input and every pooling window's top-two gap far larger than the step h.
"""

from __future__ import annotations

import numpy as np
import pytest

from layer_impls import CONV_IMPLS, POOL_IMPLS
from reference.gradient_check import numerical_gradient, numerical_gradient_array, sample_indices
from reference.model import (
    compute_cost,
    dense_backward,
    dense_forward,
    model_backward,
    model_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy_backward,
    train_gradients,
)
from reference.spec import COURSE_MODEL, GRADIENT_NAMES, param_shapes
from signs.tolerances import GRADIENT_CHECK, relative_error


def spaced_values(rng, shape):
    """A random arrangement of values at least 0.05 apart: no near-ties for max-pool."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - size * 0.025 + rng.uniform(0, 0.01, size)).reshape(shape)


@pytest.mark.parametrize("forward, backward", CONV_IMPLS)
@pytest.mark.parametrize("stride, pad, kernel", [(1, "same", (3, 2)), (2, 1, (2, 2)), ((2, 1), ((1, 0), (0, 2)), (3, 3))])
def test_conv_gradients(forward, backward, stride, pad, kernel):
    rng = np.random.default_rng(31)
    A = rng.standard_normal((2, 5, 4, 2))
    W = rng.standard_normal(kernel + (2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad}
    Z, cache = forward(A, W, b, hp)
    dZ = rng.standard_normal(Z.shape)
    dA, dW, db = backward(dZ, cache)
    f = lambda: forward(A, W, b, hp)[0]
    assert relative_error(numerical_gradient_array(f, A, dZ), dA) <= GRADIENT_CHECK
    assert relative_error(numerical_gradient_array(f, W, dZ), dW) <= GRADIENT_CHECK
    assert relative_error(numerical_gradient_array(f, b, dZ), db) <= GRADIENT_CHECK


@pytest.mark.parametrize("forward, backward", POOL_IMPLS)
@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride, pad", [(2, 2, 0), (3, 2, "same"), ((2, 3), 1, "same"), (4, 4, "same")])
def test_pool_gradients(forward, backward, mode, f, stride, pad):
    rng = np.random.default_rng(32)
    A = spaced_values(rng, (2, 6, 5, 2))
    hp = {"stride": stride, "f": f, "pad": pad}
    P, cache = forward(A, hp, mode)
    dP = rng.standard_normal(P.shape)
    num = numerical_gradient_array(lambda: forward(A, hp, mode)[0], A, dP)
    assert relative_error(num, backward(dP, cache, mode)) <= GRADIENT_CHECK


def test_relu_gradient():
    rng = np.random.default_rng(33)
    Z = rng.standard_normal((3, 4, 5))
    Z[np.abs(Z) < 0.01] = 0.5  # stay away from the kink
    dA = rng.standard_normal(Z.shape)
    num = numerical_gradient_array(lambda: relu_forward(Z), Z, dA)
    assert relative_error(num, relu_backward(dA, Z)) <= GRADIENT_CHECK
    # The kink: gradient 0 at exactly 0 (TensorFlow and PyTorch).
    assert relu_backward(np.ones(3), np.array([-1.0, 0.0, 1.0])).tolist() == [0.0, 0.0, 1.0]


def test_dense_gradients():
    rng = np.random.default_rng(34)
    F = rng.standard_normal((4, 7))
    W = rng.standard_normal((7, 3))
    b = rng.standard_normal(3)
    dZ = rng.standard_normal((4, 3))
    dF, dW, db = dense_backward(dZ, F, W)
    f = lambda: dense_forward(F, W, b)
    assert relative_error(numerical_gradient_array(f, F, dZ), dF) <= GRADIENT_CHECK
    assert relative_error(numerical_gradient_array(f, W, dZ), dW) <= GRADIENT_CHECK
    assert relative_error(numerical_gradient_array(f, b, dZ), db) <= GRADIENT_CHECK


@pytest.mark.parametrize("labels", ["one_hot", "soft", "unnormalised"])
def test_softmax_cross_entropy_gradient(labels):
    rng = np.random.default_rng(35)
    Z = rng.standard_normal((5, 6)) * 3
    if labels == "one_hot":
        Y = np.eye(6)[rng.integers(0, 6, 5)]
    else:
        Y = rng.uniform(0.1, 1.0, (5, 6))
        if labels == "soft":
            Y /= Y.sum(axis=1, keepdims=True)
    num = numerical_gradient(lambda: compute_cost(Z, Y), Z)
    assert relative_error(num, softmax_cross_entropy_backward(Z, Y)) <= GRADIENT_CHECK


def _small_model(seed):
    spec = COURSE_MODEL.with_input(16, 16)
    rng = np.random.default_rng(seed)
    params = {name: rng.standard_normal(shape) * 0.5 for name, shape in param_shapes(spec).items()}
    X = rng.standard_normal((3, 16, 16, 3))
    Y = rng.dirichlet(np.ones(6), size=3)  # soft labels: every logit gets a gradient
    return spec, params, X, Y


def test_whole_model_gradients_every_parameter_and_input():
    spec, params, X, Y = _small_model(36)
    cost = lambda: compute_cost(model_forward(params, X, spec)["Z3"], Y)
    grads = model_backward(params, X, Y, model_forward(params, X, spec), spec)
    assert set(grads) == set(GRADIENT_NAMES)
    targets = dict(params, X=X)
    for k, (name, array) in enumerate(targets.items()):
        idx = sample_indices(array.shape, 25, seed=k)
        num = numerical_gradient(cost, array, indices=idx)
        analytic = np.array([grads["d" + name][i] for i in idx])
        assert np.any(analytic != 0), name  # the sample must exercise the gradient
        assert relative_error(num, analytic) <= GRADIENT_CHECK, name


def test_training_step_gradients():
    spec, params, X, Y = _small_model(37)
    cost = lambda: compute_cost(model_forward(params, X, spec)["Z3"], Y)
    _, grads = train_gradients(params, X, Y, spec)
    for k, name in enumerate(params):
        idx = sample_indices(params[name].shape, 25, seed=10 + k)
        num = numerical_gradient(cost, params[name], indices=idx)
        analytic = np.array([grads["d" + name][i] for i in idx])
        assert relative_error(num, analytic) <= GRADIENT_CHECK, name


def test_gradient_check_detects_a_wrong_gradient():
    """The check can fail: a transposed dense gradient is caught."""
    rng = np.random.default_rng(38)
    F, W, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    dZ = rng.standard_normal((3, 3))
    wrong = dense_backward(dZ, F, W)[1].T
    assert relative_error(numerical_gradient_array(lambda: dense_forward(F, W, b), W, dZ), wrong) > 1e-3


def test_numerical_gradient_requires_float64():
    with pytest.raises(ValueError, match="x: expected a float64 ndarray"):
        numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))
