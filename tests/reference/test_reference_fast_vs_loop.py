"""The vectorised layers against the course's loops, and both against a direct definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from layer_impls import CONV_IMPLS, POOL_IMPLS
from signs.tolerances import LOOP_VS_FAST_FLOAT32, LOOP_VS_FAST_FLOAT64, relative_error

(conv_forward, conv_backward), (conv_forward_fast, conv_backward_fast) = CONV_IMPLS
(pool_forward, pool_backward), (pool_forward_fast, pool_backward_fast) = POOL_IMPLS

PADS = [0, 1, 2, "same", "valid", ((1, 0), (2, 1))]


def conv_cases():
    """Seeded geometries: kernels 1..5 (odd and even, non-square), strides 1..3, every pad form."""
    rng = np.random.default_rng(20240601)
    cases = []
    for k, (f_h, pad) in enumerate(itertools.product([1, 2, 3, 4, 5], PADS)):
        f_w = int(rng.integers(1, 6))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        n_H, n_W = int(rng.integers(max(f_h, 2), 9)), int(rng.integers(max(f_w, 2), 9))
        cases.append((k, (2, n_H, n_W, int(rng.integers(1, 4))), (f_h, f_w), int(rng.integers(1, 4)), stride, pad))
    return cases


def pool_cases():
    rng = np.random.default_rng(7)
    cases = []
    for k, (f_h, pad) in enumerate(itertools.product([1, 2, 3, 4, 5], PADS)):
        f_w = int(rng.integers(1, 6))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        n_H, n_W = int(rng.integers(max(f_h, 2), 9)), int(rng.integers(max(f_w, 2), 9))
        if pad not in ("same", "valid", 0):
            pad = "same"  # explicit pool padding is tested below; SAME never makes an empty window
        cases.append((k, (2, n_H, n_W, 2), (f_h, f_w), stride, pad))
    return cases


def direct_padding(pad, input_hw, kernel_hw, stride_hw):
    """((top, bottom), (left, right)) written from TensorFlow's documentation, not from
    reference.padding (the code under test): SAME gives ``n_out = ceil(n / s)`` and pads
    ``max((n_out - 1) * s + f - n, 0)`` cells, the odd one at the bottom/right."""
    if isinstance(pad, tuple):
        return pad
    if pad == "valid":
        return ((0, 0), (0, 0))
    if pad == "same":
        amounts = []
        for n, f, s in zip(input_hw, kernel_hw, stride_hw):
            total = max((-(-n // s) - 1) * s + f - n, 0)
            amounts.append((total // 2, total - total // 2))
        return tuple(amounts)
    return ((pad, pad), (pad, pad))


def direct_output_size(input_hw, kernel_hw, stride_hw, padding):
    """Windows that fit along each axis: ``floor((n + before + after - f) / s) + 1``."""
    return tuple((n + sum(p) - f) // s + 1 for n, f, s, p in zip(input_hw, kernel_hw, stride_hw, padding))


def conv_direct(A, W, b, stride, padding):
    """Z[n, h, w, o] = b[o] + sum A[n, h*s_h - top + i, w*s_w - left + j, c] W[i, j, c, o] over
    in-range input cells: the definition, no padded copy, no im2col."""
    (top, bottom), (left, right) = padding
    f_h, f_w, _, n_C = W.shape
    n_H, n_W = direct_output_size(A.shape[1:3], (f_h, f_w), stride, padding)
    Z = np.zeros((A.shape[0], n_H, n_W, n_C)) + b.reshape(-1)
    for h, w, i, j in itertools.product(range(n_H), range(n_W), range(f_h), range(f_w)):
        r, c = h * stride[0] - top + i, w * stride[1] - left + j
        if 0 <= r < A.shape[1] and 0 <= c < A.shape[2]:
            Z[:, h, w, :] += A[:, r, c, :] @ W[i, j]
    return Z


def pool_direct(A, f, stride, padding, mode):
    """Max / mean over the in-range cells of each window (TensorFlow's SAME semantics)."""
    (top, _), (left, _) = padding
    n_H, n_W = direct_output_size(A.shape[1:3], f, stride, padding)
    out = np.zeros((A.shape[0], n_H, n_W, A.shape[3]))
    for h, w in itertools.product(range(n_H), range(n_W)):
        r0, c0 = h * stride[0] - top, w * stride[1] - left
        window = A[:, max(r0, 0) : r0 + f[0], max(c0, 0) : c0 + f[1], :]
        out[:, h, w] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("k, shape, kernel, n_C, stride, pad", conv_cases())
def test_conv_fast_equals_loop_and_definition(k, shape, kernel, n_C, stride, pad):
    rng = np.random.default_rng(1000 + k)
    A = rng.standard_normal(shape)
    W = rng.standard_normal(kernel + (shape[3], n_C))
    b = rng.standard_normal((1, 1, 1, n_C))
    hp = {"stride": stride, "pad": pad}
    Z, cache = conv_forward(A, W, b, hp)
    Z_fast, cache_fast = conv_forward_fast(A, W, b, hp)
    padding = direct_padding(pad, shape[1:3], kernel, stride)
    assert relative_error(Z, conv_direct(A, W, b, stride, padding)) <= LOOP_VS_FAST_FLOAT64
    assert relative_error(Z, Z_fast) <= LOOP_VS_FAST_FLOAT64
    dZ = rng.standard_normal(Z.shape)
    for name, loop, fast in zip(("dA_prev", "dW", "db"), conv_backward(dZ, cache), conv_backward_fast(dZ, cache_fast)):
        assert loop.shape == fast.shape, name
        assert relative_error(loop, fast) <= LOOP_VS_FAST_FLOAT64, name


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("k, shape, f, stride, pad", pool_cases())
def test_pool_fast_equals_loop_and_definition(k, shape, f, stride, pad, mode):
    rng = np.random.default_rng(2000 + k)
    A = rng.standard_normal(shape)  # continuous: no ties, so both backward rules agree
    hp = {"stride": stride, "f": f, "pad": pad}
    P, cache = pool_forward(A, hp, mode)
    P_fast, _ = pool_forward_fast(A, hp, mode)
    padding = direct_padding(pad, shape[1:3], f, stride)
    assert relative_error(P, pool_direct(A, f, stride, padding, mode)) <= LOOP_VS_FAST_FLOAT64
    assert relative_error(P, P_fast) <= LOOP_VS_FAST_FLOAT64
    dP = rng.standard_normal(P.shape)
    assert relative_error(pool_backward(dP, cache, mode), pool_backward_fast(dP, cache, mode)) <= LOOP_VS_FAST_FLOAT64


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride, pad", [((2, 2), (2, 2), 0), ((3, 2), (1, 2), "same"), ((4, 4), (4, 4), "same"), ((2, 3), (3, 3), ((1, 0), (1, 1)))])
def test_pool_forward_with_ties(f, stride, pad, mode):
    rng = np.random.default_rng(5)
    A = rng.integers(-2, 2, size=(2, 7, 9, 3)).astype(np.float64)  # many ties in every window
    hp = {"stride": stride, "f": f, "pad": pad}
    assert relative_error(pool_forward(A, hp, mode)[0], pool_forward_fast(A, hp, mode)[0]) <= LOOP_VS_FAST_FLOAT64


@pytest.mark.parametrize("f, stride", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (3, 2))])
def test_max_pool_backward_with_ties_agrees_on_untied_windows(f, stride):
    """Loop (all tied maxima) and fast (first maximum) differ only in windows holding a tie."""
    rng = np.random.default_rng(11)
    A = rng.integers(0, 3, size=(2, 6, 7, 2)).astype(np.float64)
    hp = {"stride": stride, "f": f, "pad": "same"}
    P, cache = pool_forward(A, hp)
    dP = rng.integers(1, 9, size=P.shape).astype(np.float64)  # integers: sums are exact
    tied = _tied_windows(A, P, f, stride, direct_padding("same", A.shape[1:3], f, stride))
    assert tied.any() and not tied.all()  # the data hold both kinds of window
    untied_only = np.where(tied, 0.0, dP)
    # A tie-free window sends its whole gradient to its one maximum under both rules.
    np.testing.assert_array_equal(pool_backward(untied_only, cache), pool_backward_fast(untied_only, cache))
    # In tied windows the fast rule conserves the gradient; the course rule multiplies it by the
    # tie count, so the two differ.
    tied_only = np.where(tied, dP, 0.0)
    fast = pool_backward_fast(tied_only, cache)
    assert fast.sum() == tied_only.sum()
    assert not np.allclose(pool_backward(tied_only, cache), fast)


def _tied_windows(A, P, f, stride, padding):
    """bool (m, n_H, n_W, n_C): the window's maximum occurs more than once among its real cells."""
    (top, _), (left, _) = padding
    tied = np.zeros(P.shape, dtype=bool)
    for n, h, w, c in np.ndindex(*P.shape):
        r0, c0 = h * stride[0] - top, w * stride[1] - left
        window = A[n, max(r0, 0) : r0 + f[0], max(c0, 0) : c0 + f[1], c]
        tied[n, h, w, c] = np.count_nonzero(window == P[n, h, w, c]) > 1
    return tied


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_layers_keep_dtype(dtype):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((2, 6, 5, 3)).astype(dtype)
    W = rng.standard_normal((3, 2, 3, 4)).astype(dtype)
    b = rng.standard_normal((1, 1, 1, 4)).astype(dtype)
    for forward, backward in CONV_IMPLS:
        Z, cache = forward(A, W, b, {"stride": 2, "pad": "same"})
        assert Z.dtype == dtype
        assert all(g.dtype == dtype for g in backward(Z, cache))
    for mode in ("max", "average"):
        for forward, backward in POOL_IMPLS:
            P, cache = forward(A, {"stride": 2, "f": 3, "pad": "same"}, mode)
            assert P.dtype == dtype
            assert backward(P, cache, mode).dtype == dtype


def test_float32_fast_close_to_float64_loop():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 8, 7, 3))
    W = rng.standard_normal((4, 4, 3, 5))
    hp = {"stride": 1, "pad": "same"}
    Z, cache = conv_forward(A, W, None, hp)
    Z32, cache32 = conv_forward_fast(A.astype(np.float32), W.astype(np.float32), None, hp)
    assert relative_error(Z, Z32) <= LOOP_VS_FAST_FLOAT32
    dZ = rng.standard_normal(Z.shape)
    for loop, fast in zip(conv_backward(dZ, cache), conv_backward_fast(dZ.astype(np.float32), cache32)):
        assert relative_error(loop, fast) <= LOOP_VS_FAST_FLOAT32


def test_caches_are_interchangeable():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((2, 5, 5, 2))
    W = rng.standard_normal((2, 2, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    Z, cache = conv_forward(A, W, b, {"stride": 1, "pad": 0})
    dZ = rng.standard_normal(Z.shape)
    for loop, fast in zip(conv_backward(dZ, cache), conv_backward_fast(dZ, cache)):
        assert relative_error(loop, fast) <= LOOP_VS_FAST_FLOAT64
    P, pcache = pool_forward_fast(A, {"stride": 2, "f": 2})
    assert relative_error(pool_backward(P, pcache), pool_backward_fast(P, pcache)) <= LOOP_VS_FAST_FLOAT64


def test_pad_zero_crop_is_not_empty():
    """The notebook's ``[pad:-pad]`` crop returns an empty array when pad == 0."""
    rng = np.random.default_rng(8)
    A = rng.standard_normal((1, 4, 3, 2))
    W = rng.standard_normal((2, 3, 2, 2))  # non-square kernel
    Z, cache = conv_forward(A, W, None, {"stride": 1, "pad": 0})
    dA, dW, db = conv_backward(np.ones_like(Z) * rng.standard_normal(Z.shape), cache)
    assert Z.shape == (1, 3, 1, 2) and dA.shape == A.shape and np.count_nonzero(dA) == dA.size


@pytest.mark.parametrize("layout", ["nhwc", "planar"])
@pytest.mark.parametrize("shape, kernel, stride, pad", [((2, 9, 11, 1), (3, 2), (1, 1), "same"), ((2, 7, 6, 3), (2, 3), (2, 3), 1), ((1, 5, 12, 2), (1, 4), (3, 1), ((2, 0), (1, 1)))])
def test_both_im2col_layouts_equal_loop(layout, shape, kernel, stride, pad):
    """The vectorised conv picks an im2col layout by shape; both must be right everywhere."""
    from reference.fast_layers import conv_backward_padded, conv_forward_padded
    from reference.layers import conv_geometry
    from reference.padding import pad_spatial

    rng = np.random.default_rng(sum(shape) + stride[0])
    A = rng.standard_normal(shape)
    W = rng.standard_normal(kernel + (shape[3], 4))
    hp = {"stride": stride, "pad": pad}
    Z, cache = conv_forward(A, W, None, hp)
    dZ = rng.standard_normal(Z.shape)
    dA, dW, _ = conv_backward(dZ, cache)
    _, _, _, g = conv_geometry(A, W, None, hp)
    A_pad = pad_spatial(A, g.padding, 0)
    assert relative_error(conv_forward_padded(A_pad, W, g, layout=layout), Z) <= LOOP_VS_FAST_FLOAT64
    dA_fast, dW_fast = conv_backward_padded(dZ, A_pad, W, g, layout=layout)
    assert relative_error(dA_fast, dA) <= LOOP_VS_FAST_FLOAT64
    assert relative_error(dW_fast, dW) <= LOOP_VS_FAST_FLOAT64


@pytest.mark.parametrize("chunk_rows, gemm_size", [(8192, 65536 * 4), (1000, 5000)])
def test_blocked_gemms_equal_loop(monkeypatch, chunk_rows, gemm_size):
    """Image blocks, stacked sub-GEMMs and their remainders (sizes forced small) change nothing."""
    import reference.fast_layers as fast_layers
    import reference.gemm as gemm

    monkeypatch.setattr(fast_layers, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(gemm, "SINGLE_THREAD_GEMM", gemm_size)
    rng = np.random.default_rng(21)
    A = rng.standard_normal((3, 30, 26, 3))
    W = rng.standard_normal((4, 4, 3, 8))
    for hp in ({"stride": 1, "pad": "same"}, {"stride": 2, "pad": "valid"}):
        Z, cache = conv_forward(A, W, None, hp)
        Z_fast, _ = conv_forward_fast(A, W, None, hp)
        assert relative_error(Z, Z_fast) <= LOOP_VS_FAST_FLOAT64
        dZ = rng.standard_normal(Z.shape)
        for loop, fast in zip(conv_backward(dZ, cache), conv_backward_fast(dZ, cache)):
            assert relative_error(loop, fast) <= LOOP_VS_FAST_FLOAT64
