"""The whole model: shapes from the spec, flatten order, the cost, the fused training step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.model import (
    compute_cost,
    flatten_backward,
    flatten_forward,
    model_backward,
    model_forward,
    predict_logits,
    softmax_cross_entropy_backward,
    train_gradients,
)
from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, activation_shapes, param_shapes
from signs.tolerances import LOOP_VS_FAST_FLOAT32, LOOP_VS_FAST_FLOAT64, relative_error


def make(spec, m, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {name: (rng.standard_normal(shape) * 0.5).astype(dtype) for name, shape in param_shapes(spec).items()}
    X = rng.random((m,) + spec.input_shape).astype(dtype)
    Y = np.eye(spec.n_classes, dtype=dtype)[rng.integers(0, spec.n_classes, m)]
    return params, X, Y


@pytest.mark.parametrize("spec", [COURSE_MODEL, COURSE_MODEL.with_input(24, 40), COURSE_MODEL.with_input(9, 17)])
def test_activation_shapes_follow_the_spec(spec):
    params, X, _ = make(spec, 2)
    acts = model_forward(params, X, spec)
    assert tuple(acts) == ACTIVATION_NAMES
    assert {name: a.shape for name, a in acts.items()} == activation_shapes(spec, m=2)


def test_course_param_shapes():
    assert param_shapes(COURSE_MODEL) == {"W1": (4, 4, 3, 8), "W2": (2, 2, 8, 16), "W3": (64, 6), "b3": (6,)}


def test_layers_compose_as_documented():
    spec = COURSE_MODEL.with_input(72, 40)  # P1 (9, 5), P2 (3, 2): flatten orders differ
    params, X, _ = make(spec, 2, seed=1)
    a = model_forward(params, X, spec)
    np.testing.assert_array_equal(a["A1"], np.maximum(a["Z1"], 0))
    np.testing.assert_array_equal(a["A2"], np.maximum(a["Z2"], 0))
    # pool1 is 8x8 stride 8: P1 is the max of each 8x8 block of A1.
    np.testing.assert_array_equal(a["P1"], a["A1"].reshape(2, 9, 8, 5, 8, 8).max(axis=(2, 4)))
    # Flatten is NHWC order: feature (h * n_W + w) * n_C + c is P2[:, h, w, c], for every element.
    m, n_H, n_W, n_C = a["P2"].shape
    assert (n_H, n_W) == (3, 2)
    for h, w, c in np.ndindex(n_H, n_W, n_C):
        np.testing.assert_array_equal(a["F"][:, (h * n_W + w) * n_C + c], a["P2"][:, h, w, c])
    np.testing.assert_allclose(a["Z3"], a["F"] @ params["W3"] + params["b3"], rtol=1e-15)


def test_flatten_is_nhwc_order():
    P = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4)
    F = flatten_forward(P)
    assert F.shape == (2, 24)
    for n, h, w, c in np.ndindex(*P.shape):
        assert F[n, (h * 3 + w) * 4 + c] == P[n, h, w, c]
    np.testing.assert_array_equal(flatten_backward(F, P.shape), P)


def test_cost_matches_definition_with_soft_labels():
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((4, 6)) * 2
    Y = rng.dirichlet(np.ones(6), size=4)
    expected = 0.0
    for z, y in zip(Z, Y):
        log_norm = math.log(math.fsum(math.exp(v) for v in z))
        expected += math.fsum(-yj * (zj - log_norm) for zj, yj in zip(z, y))
    assert abs(compute_cost(Z, Y) - expected / 4) < 1e-14


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cost_is_stable_for_large_logits(dtype):
    Z = np.array([[1e4, 0, 0, 0, 0, -1e4], [-1e4, 1e4, 0, 0, 0, 0]], dtype=dtype)
    Y = np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=dtype)
    cost = compute_cost(Z, Y)
    assert cost.dtype == dtype and np.isfinite(cost)
    assert abs(float(cost) - 1e4) < 1e-3  # example 1: 0; example 2: 2e4; mean 1e4
    dZ = softmax_cross_entropy_backward(Z, Y)
    assert np.all(np.isfinite(dZ)) and dZ.dtype == dtype
    np.testing.assert_allclose(dZ, [[0, 0, 0, 0, 0, 0], [-0.5, 0.5, 0, 0, 0, 0]], atol=1e-7)


def test_cost_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r"Y: expected shape \(2, 6\)"):
        compute_cost(np.zeros((2, 6)), np.zeros((2, 5)))


@pytest.mark.parametrize("dtype, tol", [(np.float64, LOOP_VS_FAST_FLOAT64), (np.float32, LOOP_VS_FAST_FLOAT32)])
def test_training_step_equals_the_loop_layers(dtype, tol):
    """train_gradients (fast layers, dW1 gathered from one cell per pool1 window) against the
    course's loop layers, an independent path (24x40: pools pad, windows hold negatives)."""
    spec = COURSE_MODEL.with_input(24, 40)
    params, X, Y = make(spec, 2, dtype, seed=3)
    X -= dtype(0.5)  # inputs of both signs: some pool windows' maxima are negative
    acts = model_forward(params, X, spec, impl="loop")
    grads = model_backward(params, X, Y, acts, spec, impl="loop")
    cost, fused = train_gradients(params, X, Y, spec)
    assert cost.dtype == dtype and abs(cost - compute_cost(acts["Z3"], Y)) <= tol * abs(cost)
    assert set(fused) == {"dW1", "dW2", "dW3", "db3"}
    for name, g in fused.items():
        assert g.dtype == dtype, name
        assert relative_error(g, grads[name]) <= tol, name


def test_loop_model_equals_fast_model():
    spec = COURSE_MODEL.with_input(16, 16)
    params, X, Y = make(spec, 2, seed=4)
    fast = model_forward(params, X, spec)
    loop = model_forward(params, X, spec, impl="loop")
    for name in ACTIVATION_NAMES:
        assert relative_error(fast[name], loop[name]) <= LOOP_VS_FAST_FLOAT64, name
    g_fast = model_backward(params, X, Y, fast, spec)
    g_loop = model_backward(params, X, Y, loop, spec, impl="loop")
    for name in GRADIENT_NAMES:
        assert relative_error(g_fast[name], g_loop[name]) <= LOOP_VS_FAST_FLOAT64, name


def test_dX_optional():
    spec = COURSE_MODEL.with_input(16, 16)
    params, X, Y = make(spec, 2, seed=5)
    acts = model_forward(params, X, spec)
    full = model_backward(params, X, Y, acts, spec)
    lean = model_backward(params, X, Y, acts, spec, need_dX=False)
    assert "dX" in full and full["dX"].shape == X.shape and "dX" not in lean
    for name in lean:
        assert relative_error(lean[name], full[name]) <= LOOP_VS_FAST_FLOAT64


def test_route_hook_runs_after_each_max_pool_backward_before_its_relu():
    spec = COURSE_MODEL.with_input(16, 16)
    params, X, Y = make(spec, 2, seed=5)
    acts = model_forward(params, X, spec)
    plain = model_backward(params, X, Y, acts, spec)
    calls = []

    def route(pool, dP, dA):
        calls.append((pool.name, dP.shape, dA.shape))
        if pool is spec.pool1:
            dA[...] = 0  # pool1 sends nothing back: no dW1, no dX; dW2 untouched

    routed = model_backward(params, X, Y, acts, spec, route=route)
    assert calls == [("pool2", acts["P2"].shape, acts["A2"].shape), ("pool1", acts["P1"].shape, acts["A1"].shape)]
    assert not routed["dW1"].any() and not routed["dX"].any() and plain["dW1"].any()
    for name in ("dW2", "dW3", "db3"):
        np.testing.assert_array_equal(routed[name], plain[name], err_msg=name)


def test_float32_everywhere():
    params, X, Y = make(COURSE_MODEL, 2, np.float32, seed=6)
    acts = model_forward(params, X)
    assert all(a.dtype == np.float32 for a in acts.values())
    assert all(g.dtype == np.float32 for g in model_backward(params, X, Y, acts).values())
    assert predict_logits(params, X).dtype == np.float32


def test_input_validation():
    params, X, Y = make(COURSE_MODEL, 2)
    with pytest.raises(ValueError, match=r"X: expected a NumPy array of shape \(m, 64, 64, 3\)"):
        model_forward(params, X[:, :32])
    with pytest.raises(ValueError, match=r"X: expected dtype float64 \(the params' dtype\), got float32"):
        model_forward(params, X.astype(np.float32))
    with pytest.raises(ValueError, match=r"params\['W2'\]: expected shape \(2, 2, 8, 16\), got \(2, 2, 8, 8\)"):
        model_forward(dict(params, W2=np.zeros((2, 2, 8, 8))), X)
    with pytest.raises(ValueError, match=r"params: expected keys"):
        model_forward({k: v for k, v in params.items() if k != "b3"}, X)
    with pytest.raises(ValueError, match=r"params: expected one dtype for every array"):
        model_forward(dict(params, b3=params["b3"].astype(np.float32)), X)
    with pytest.raises(ValueError, match=r"Y: expected a NumPy array of shape \(2, 6\)"):
        train_gradients(params, X, Y[:1])
    with pytest.raises(ValueError, match=r"impl: expected one of"):
        model_forward(params, X, impl="gpu")
