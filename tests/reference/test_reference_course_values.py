"""The course notebook's printed results, reproduced by the loop layers (and the fast ones)."""

from __future__ import annotations

import numpy as np
import pytest

from reference import (
    conv_backward,
    conv_backward_fast,
    conv_forward,
    conv_forward_fast,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_backward_fast,
    pool_forward,
    pool_forward_fast,
    zero_pad,
)

# The notebook prints 12 significant digits for scalars and 8 decimals for arrays.
SCALAR_ATOL = 1e-10
ARRAY_ATOL = 5e-9


def test_zero_pad_shape_and_values():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = zero_pad(x, 2)
    assert x_pad.shape == (4, 7, 7, 2)
    np.testing.assert_array_equal(x_pad[1, 1], np.zeros((7, 2)))
    np.testing.assert_array_equal(x_pad[:, 2:5, 2:5, :], x)


def test_conv_single_step():
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    assert abs(conv_single_step(a_slice_prev, W, b) - (-6.99908945068)) < SCALAR_ATOL


def _conv_setup():
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    return A_prev, W, b, {"pad": 2, "stride": 2}


@pytest.mark.parametrize("forward", [conv_forward, conv_forward_fast])
def test_conv_forward(forward):
    A_prev, W, b, hparameters = _conv_setup()
    Z, cache = forward(A_prev, W, b, hparameters)
    assert Z.shape == (10, 4, 4, 8)
    assert abs(np.mean(Z) - 0.0489952035289) < SCALAR_ATOL
    expected = [-0.61490741, -6.7439236, -2.55153897, 1.75698377, 3.56208902, 0.53036437, 5.18531798, 8.75898442]
    np.testing.assert_allclose(Z[3, 2, 1], expected, rtol=0, atol=ARRAY_ATOL)
    cache_A, cache_W, cache_b, cache_hp = cache  # the course's cache tuple
    assert cache_A is A_prev and cache_W is W and cache_b is b and cache_hp is hparameters


@pytest.mark.parametrize("forward, backward", [(conv_forward, conv_backward), (conv_forward_fast, conv_backward_fast)])
def test_conv_backward(forward, backward):
    A_prev, W, b, hparameters = _conv_setup()
    Z, cache = forward(A_prev, W, b, hparameters)
    dA, dW, db = backward(Z, cache)
    assert (dA.shape, dW.shape, db.shape) == (A_prev.shape, W.shape, b.shape)
    assert abs(np.mean(dA) - 1.45243777754) < SCALAR_ATOL
    assert abs(np.mean(dW) - 1.72699145831) < SCALAR_ATOL
    assert abs(np.mean(db) - 7.83923256462) < SCALAR_ATOL


@pytest.mark.parametrize("forward", [pool_forward, pool_forward_fast])
def test_pool_forward(forward):
    np.random.seed(1)
    A_prev = np.random.randn(2, 4, 4, 3)
    hparameters = {"stride": 2, "f": 3}
    A, cache = forward(A_prev, hparameters)
    np.testing.assert_allclose(
        A, [[[[1.74481176, 0.86540763, 1.13376944]]], [[[1.13162939, 1.51981682, 2.18557541]]]], rtol=0, atol=ARRAY_ATOL
    )
    assert cache[0] is A_prev and cache[1] is hparameters
    A, _ = forward(A_prev, hparameters, mode="average")
    np.testing.assert_allclose(
        A, [[[[0.02105773, -0.20328806, -0.40389855]]], [[[-0.22154621, 0.51716526, 0.48155844]]]], rtol=0, atol=ARRAY_ATOL
    )


def test_create_mask_from_window_and_distribute_value():
    np.random.seed(1)
    x = np.random.randn(2, 3)
    mask = create_mask_from_window(x)
    np.testing.assert_array_equal(mask, [[True, False, False], [False, False, False]])
    np.testing.assert_array_equal(distribute_value(2, (2, 2)), [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("backward", [pool_backward, pool_backward_fast])
@pytest.mark.parametrize(
    "mode, expected",
    [
        ("max", [[0.0, 0.0], [5.05844394, -1.68282702], [0.0, 0.0]]),
        ("average", [[0.08485462, 0.2787552], [1.26461098, -0.25749373], [1.17975636, -0.53624893]]),
    ],
)
def test_pool_backward(backward, mode, expected):
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    hparameters = {"stride": 1, "f": 2}
    A, cache = pool_forward(A_prev, hparameters)
    dA = np.random.randn(5, 4, 2, 2)
    dA_prev = backward(dA, cache, mode=mode)
    # The notebook also prints "mean of dA = 0.145713902729", the mean of this test's own input
    # (the upstream dA), which checks nothing of the layer; its dA_prev[1, 1] is checked below.
    assert dA_prev.shape == A_prev.shape
    np.testing.assert_allclose(dA_prev[1, 1], expected, rtol=0, atol=ARRAY_ATOL)
    # Both modes conserve the upstream gradient's total here (no ties, no padding).
    assert abs(np.sum(dA_prev) - np.sum(dA)) < 1e-12
