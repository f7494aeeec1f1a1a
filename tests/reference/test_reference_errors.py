"""Bad arguments raise ValueError naming the argument, what was expected and what was got."""

from __future__ import annotations

import numpy as np
import pytest

from layer_impls import CONV_IMPLS, POOL_IMPLS
from reference import conv_forward_fast, pool_forward, pool_forward_fast, zero_pad

A = np.zeros((2, 5, 5, 3))
W = np.zeros((2, 2, 3, 4))
B = np.zeros((1, 1, 1, 4))
CONV = [forward for forward, _ in CONV_IMPLS]
POOL = [forward for forward, _ in POOL_IMPLS]


@pytest.mark.parametrize("forward", CONV)
@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((5, 5, 3)), W, B, {"stride": 1, "pad": 0}), r"A_prev: expected 4 dims \(m, n_H_prev, n_W_prev, n_C_prev\), got shape \(5, 5, 3\)"),
        ((A, np.zeros((2, 2, 3)), B, {"stride": 1, "pad": 0}), r"W: expected 4 dims \(f_h, f_w, n_C_prev, n_C\), got shape \(2, 2, 3\)"),
        ((A, np.zeros((2, 2, 2, 4)), B, {"stride": 1, "pad": 0}), r"W: expected n_C_prev = 3 input channels .* got W of shape \(2, 2, 2, 4\)"),
        ((A, W, np.zeros((1, 1, 1, 3)), {"stride": 1, "pad": 0}), r"b: expected shape \(1, 1, 1, 4\)"),
        ((A, W, B, {"stride": 0, "pad": 0}), r"hparameters\['stride'\]: expected an integer >= 1, got 0"),
        ((A, W, B, {"stride": float("nan"), "pad": 0}), r"hparameters\['stride'\]: expected a finite integer"),
        ((A, W, B, {"stride": 1, "pad": "full"}), r"hparameters\['pad'\]: expected an int, 'same', 'valid'"),
        ((A, W, B, {"stride": 1, "pad": float("inf")}), r"hparameters\['pad'\]: expected a finite integer"),
        ((A, np.zeros((7, 7, 3, 4)), B, {"stride": 1, "pad": 0}), r"hparameters\['pad'\]: expected the window \(7, 7\) to fit"),
        ((A, W, B, {"stride": 1}), r"hparameters: expected keys \['stride', 'pad'\], got \['stride'\]"),
        ((A, W, B, [1, 0]), r"hparameters: expected a dict"),
        ((A.astype(complex), W, B, {"stride": 1, "pad": 0}), r"A_prev: expected a real floating dtype"),
    ],
)
def test_conv_forward_errors(forward, args, match):
    with pytest.raises(ValueError, match=match):
        forward(*args)


@pytest.mark.parametrize("backward", [backward for _, backward in CONV_IMPLS])
def test_conv_backward_rejects_wrong_dZ_shape(backward):
    _, cache = conv_forward_fast(A, W, B, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=r"dZ: expected shape \(2, 4, 4, 4\) \(the forward output\), got \(2, 4, 4, 3\)"):
        backward(np.zeros((2, 4, 4, 3)), cache)


@pytest.mark.parametrize("forward", POOL)
@pytest.mark.parametrize(
    "hp, mode, match",
    [
        ({"stride": 1, "f": 2}, "min", r"mode: expected one of \['max', 'average'\], got 'min'"),
        ({"stride": 1, "f": 0}, "max", r"hparameters\['f'\]: expected an integer >= 1, got 0"),
        ({"stride": -2, "f": 2}, "max", r"hparameters\['stride'\]: expected an integer >= 1, got -2"),
        ({"stride": 1, "f": 6}, "max", r"hparameters\['pad'\]: expected the window \(6, 6\) to fit"),
        ({"stride": 1, "f": 2, "pad": "Same!"}, "max", r"hparameters\['pad'\]: expected an int, 'same', 'valid'"),
        ({"stride": 1, "f": 2, "pad": 2}, "max", r"hparameters\['pad'\]: expected every pooling window to hold at least one input cell"),
        ({"f": 2}, "max", r"hparameters: expected keys \['stride', 'f'\]"),
    ],
)
def test_pool_forward_errors(forward, hp, mode, match):
    with pytest.raises(ValueError, match=match):
        forward(A, hp, mode)


@pytest.mark.parametrize("backward", [backward for _, backward in POOL_IMPLS])
def test_pool_backward_errors(backward):
    P, cache = pool_forward_fast(A, {"stride": 1, "f": 2})
    with pytest.raises(ValueError, match=r"dA: expected 4 dims \(m, n_H, n_W, n_C\), got shape \(2, 4, 4\)"):
        backward(np.zeros((2, 4, 4)), cache)
    with pytest.raises(ValueError, match=r"dA: expected shape \(2, 4, 4, 3\) \(the forward output\), got \(2, 4, 4, 2\)"):
        backward(np.zeros((2, 4, 4, 2)), cache)
    with pytest.raises(ValueError, match="mode: expected one of"):
        backward(P, cache, mode="mean")


def test_pool_rejects_wrong_ndim():
    with pytest.raises(ValueError, match=r"A_prev: expected 4 dims .* got shape \(5, 5\)"):
        pool_forward(np.zeros((5, 5)), {"stride": 1, "f": 2})


def test_zero_pad_errors():
    with pytest.raises(ValueError, match=r"X: expected 4 dims"):
        zero_pad(np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match=r"pad: expected an integer >= 0, got -1"):
        zero_pad(np.zeros((1, 3, 3, 1)), -1)
    with pytest.raises(ValueError, match=r"pad: expected an int or \(\(top, bottom\), \(left, right\)\)"):
        zero_pad(np.zeros((1, 3, 3, 1)), "same")
