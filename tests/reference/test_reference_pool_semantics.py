"""Pooling semantics that differ between conventions: padding, tie-breaking."""

from __future__ import annotations

import numpy as np
import pytest

from reference import (
    create_mask_from_window,
    pool_backward,
    pool_backward_fast,
    pool_forward,
    pool_forward_fast,
)
from reference.model import train_gradients, model_backward, model_forward
from reference.spec import COURSE_MODEL, param_shapes


@pytest.mark.parametrize("forward", [pool_forward, pool_forward_fast])
def test_same_max_pool_never_picks_padding(forward):
    A = -1.0 - np.arange(1 * 3 * 3 * 1, dtype=np.float64).reshape(1, 3, 3, 1)  # all negative
    P, _ = forward(A, {"stride": 2, "f": 2, "pad": "same"})  # 3 -> 2 outputs: padding at bottom/right
    # Zero padding would make the last row/column windows return 0.
    np.testing.assert_array_equal(P[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])


@pytest.mark.parametrize("forward", [pool_forward, pool_forward_fast])
def test_same_average_pool_divides_by_real_cells(forward):
    A = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    P, _ = forward(A, {"stride": 2, "f": 2, "pad": "same"}, mode="average")
    # Windows: [1 2; 4 5] -> 3, [3; 6] -> 4.5, [7 8] -> 7.5, [9] -> 9 (TensorFlow's values).
    np.testing.assert_array_equal(P[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


@pytest.mark.parametrize("backward", [pool_backward, pool_backward_fast])
def test_same_average_pool_backward_spreads_over_real_cells(backward):
    A = np.zeros((1, 3, 3, 1))
    hp = {"stride": 2, "f": 2, "pad": "same"}
    _, cache = pool_forward(A, hp, mode="average")
    dP = np.array([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 2, 2, 1)
    dA = backward(dP, cache, mode="average")
    np.testing.assert_allclose(dA[0, :, :, 0], [[0.25, 0.25, 1.0], [0.25, 0.25, 1.0], [2.0, 2.0, 8.0]], rtol=1e-15)


def test_tie_rules_course_all_maxima_fast_first_maximum():
    window = np.array([[1.0, 3.0], [3.0, 2.0]])
    np.testing.assert_array_equal(create_mask_from_window(window), [[False, True], [True, False]])
    A = window.reshape(1, 2, 2, 1)
    hp = {"stride": 2, "f": 2}
    _, cache = pool_forward(A, hp)
    dP = np.full((1, 1, 1, 1), 0.7)
    course = pool_backward(dP, cache)[0, :, :, 0]
    fast = pool_backward_fast(dP, cache)[0, :, :, 0]
    np.testing.assert_array_equal(course, [[0.0, 0.7], [0.7, 0.0]])  # every tied maximum
    np.testing.assert_array_equal(fast, [[0.0, 0.7], [0.0, 0.0]])  # the first, row-major (TF, PyTorch)


@pytest.mark.parametrize("f, stride, pad", [(2, 2, 0), (3, 1, "same"), (3, 2, "same"), (2, 3, 0)])
def test_fast_first_maximum_in_row_major_order(f, stride, pad):
    """Tiled (stride == f) and general paths both pick the first maximum; checked per window."""
    rng = np.random.default_rng(9)
    A = rng.integers(0, 2, size=(2, 7, 7, 3)).astype(np.float64)  # 7: stride-2 tiles leave a cropped edge
    hp = {"stride": stride, "f": f, "pad": pad}
    P, cache = pool_forward_fast(A, hp)
    dP = rng.uniform(1, 2, size=P.shape)
    dA = pool_backward_fast(dP, cache)
    from reference.padding import resolve_padding

    (top, _), (left, _) = resolve_padding(pad, (7, 7), (f, f), (stride, stride))
    expected = np.zeros_like(A)
    for n, h, w, c in np.ndindex(P.shape):
        best = None
        for i in range(f):
            for j in range(f):
                r, q = h * stride - top + i, w * stride - left + j
                if 0 <= r < 7 and 0 <= q < 7 and (best is None or A[n, r, q, c] > A[n, best[0], best[1], c]):
                    best = (r, q)
        expected[n, best[0], best[1], c] += dP[n, h, w, c]
    np.testing.assert_allclose(dA, expected, rtol=1e-15)


def test_model_paths_agree_on_images_with_flat_regions():
    """Saturated image regions make exact ties in conv1's output: the fused training step and
    model_backward must still pick the same (first) maxima."""
    spec = COURSE_MODEL.with_input(32, 32)
    rng = np.random.default_rng(12)
    params = {name: rng.standard_normal(shape) * 0.3 for name, shape in param_shapes(spec).items()}
    X = rng.random((3, 32, 32, 3))
    X[:, 4:20, 2:30, :] = 1.0  # a flat patch: identical receptive fields, identical Z1 values
    Y = np.eye(6)[[0, 3, 5]]
    grads = model_backward(params, X, Y, model_forward(params, X, spec), spec)
    _, fused = train_gradients(params, X, Y, spec)
    for name in fused:
        np.testing.assert_allclose(fused[name], grads[name], rtol=1e-12, atol=1e-15)


def test_training_step_with_overlapping_and_padded_pools():
    """train_gradients' sparse dW1 also holds when pool windows overlap (a cell can be the
    maximum of several windows) or are padded."""
    from reference.spec import ModelSpec, PoolSpec

    spec = ModelSpec(input_shape=(11, 13, 3), pool1=PoolSpec("pool1", window=3, stride=2), pool2=PoolSpec("pool2", window=2, stride=2))
    rng = np.random.default_rng(13)
    params = {name: rng.standard_normal(shape) * 0.3 for name, shape in param_shapes(spec).items()}
    X = rng.random((3, 11, 13, 3))
    X[:, :5, :5, :] = 0.5  # ties as well
    Y = np.eye(6)[[1, 2, 4]]
    grads = model_backward(params, X, Y, model_forward(params, X, spec), spec)
    _, fused = train_gradients(params, X, Y, spec)
    for name in fused:
        np.testing.assert_allclose(fused[name], grads[name], rtol=1e-12, atol=1e-15)
