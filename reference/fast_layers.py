"""Vectorised conv and pool layers: the course API, fast.

Same signatures, return values and cache tuples as the loop versions in :mod:`reference.layers`:

========================================================  ===================================
fast                                                      loop (course)
========================================================  ===================================
``conv_forward_fast(A_prev, W, b, hparameters)``          ``conv_forward``
``conv_backward_fast(dZ, cache)``                         ``conv_backward``
``pool_forward_fast(A_prev, hparameters, mode="max")``    ``pool_forward``
``pool_backward_fast(dA, cache, mode="max")``             ``pool_backward``
========================================================  ===================================

so the caches are interchangeable (``conv_backward(dZ, cache_from_conv_forward_fast)`` works).
Padding forms, validation and dtype rules are those of the loop versions (float32 in, float32
out; no silent upcast).

How it is fast
--------------
- Convolution is im2col + BLAS matmul. The patch matrix is copied from a strided view
  (``sliding_window_view``) a few images at a time (about ``CHUNK_ROWS`` rows), so each block
  stays in cache and BLAS sees well-shaped products (one huge skinny matmul is several times
  slower with OpenBLAS). With few input channels (conv1's RGB) the patches are taken from a
  channel-major copy of the input, so the copy moves whole image rows rather than runs of
  ``f_w * n_C_prev`` values (``_choose_layout``).
- The input gradient (col2im) is one matmul per block, ``W (K, n_C) @ dZ.T``, then one add per
  kernel offset into a channel-major accumulator; for stride 1 each add is a single contiguous
  run per image (see ``_col2im_stride1``). No ``np.add.at``, no loop over pixels.
- Every conv matmul is issued as a stack of GEMMs small enough for OpenBLAS to run each on the
  calling thread (:mod:`reference.gemm`): these products are thin, threading them gains little,
  and on a busy machine each threaded call's barrier cost milliseconds (30x slower steps).
- Pooling reduces over the window one offset at a time, height first, so every ufunc call runs
  over long contiguous rows.
- Max-pool backward, when windows tile the input (stride == window, the course model's case),
  compares the input with the repeated pooled maximum in one pass and repairs only the windows
  that hold a tie; other geometries use an argmax over the windows.
- For the training step, :func:`max_pool_first_positions` and :func:`conv_weight_grad_sparse`
  compute a conv's ``dW`` from the one cell per pooling window that receives a gradient (when
  the pool's windows tile the conv output, as in the course model, :mod:`reference.fused` does
  conv1 -> relu -> pool1 block by block instead, on :mod:`reference.gemm`'s block workers).

One deliberate difference from the course
-----------------------------------------
Max-pool backward routes each window's gradient to the *first* maximum of the window in
row-major order (as TensorFlow's ``MaxPoolGrad`` and PyTorch's ``max_pool2d`` do). The course's
``create_mask_from_window`` (used by the loop ``pool_backward``) gives the full gradient to
*every* tied maximum. Without ties the two agree exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from reference.layers import (
    ConvGeometry,
    PoolGeometry,
    check_upstream,
    check_mode,
    conv_geometry,
    pool_geometry,
)
from reference.gemm import matmul_cols, matmul_long_inner, matmul_rows
from reference.padding import pad_spatial

__all__ = [
    "conv_forward_fast",
    "conv_backward_fast",
    "pool_forward_fast",
    "pool_backward_fast",
    "conv_forward_padded",
    "conv_backward_padded",
    "max_pool_padded",
    "max_pool_backward_padded",
    "max_pool_first_positions",
    "pool_windows",
    "planar_windows",
    "first_max_index",
    "conv_weight_grad_sparse",
    "CHUNK_ROWS",
]

# Rows of the im2col matrix built at a time. ~8k rows x 48 columns of float32 is 1.5 MiB: the
# block and its matmul output stay in L2/L3, which is what makes the matmul fast.
CHUNK_ROWS = 8192


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


def _patches(A_pad: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Read-only view of every receptive field, ``(m, n_H, n_W, f_h, f_w, n_C_prev)``.

    The last three axes are in HWIO kernel order, so a row of the im2col matrix lines up with
    ``W.reshape(f_h * f_w * n_C_prev, n_C)``.
    """
    # sliding_window_view gives (m, H', W', n_C_prev, f_h, f_w): every stride-1 window position.
    windows = sliding_window_view(A_pad, (g.f_h, g.f_w), axis=(1, 2))
    windows = windows[:, : (g.n_H - 1) * g.s_h + 1 : g.s_h, : (g.n_W - 1) * g.s_w + 1 : g.s_w]
    # (m, n_H, n_W, n_C_prev, f_h, f_w) -> (m, n_H, n_W, f_h, f_w, n_C_prev)
    return windows.transpose(0, 1, 2, 4, 5, 3)


def planar_windows(planar: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Read-only view ``(C, f_h, f_w, m, n_H, n_W)`` of channel-major padded images ``planar``
    (C, m, H_pad, W_pad), C-contiguous: output pixel ``(h, w)``'s receptive field along the first
    three axes, pixels in image order. Its innermost axis walks along an image row, so copying it
    moves runs of ``n_W`` values (with stride 1) instead of the ``f_w * n_C_prev`` of :func:`_patches`.

    A strided ``np.ndarray`` over ``planar``'s memory (``sliding_window_view`` costs ~30 us of
    Python per call, a tenth of a 2-image block's copy in :mod:`reference.fused`).
    """
    C, m, _, _ = planar.shape
    s_c, s_m, s_r, s_x = planar.strides
    shape = (C, g.f_h, g.f_w, m, g.n_H, g.n_W)
    strides = (s_c, s_r, s_x, s_m, s_r * g.s_h, s_x * g.s_w)
    view = np.ndarray(shape, dtype=planar.dtype, buffer=planar, strides=strides)
    view.flags.writeable = False
    return view


def _planar_patches(A_pad: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """:func:`planar_windows` of a channel-major copy of the NHWC padded input."""
    # (m, H_pad, W_pad, C) NHWC -> (C, m, H_pad, W_pad) channel-major
    return planar_windows(np.ascontiguousarray(A_pad.transpose(3, 0, 1, 2)), g)


def _choose_layout(g: ConvGeometry) -> str:
    """"planar" when an image row is a longer contiguous run than a kernel row (few channels,
    e.g. the RGB input of conv1), else "nhwc"."""
    return "planar" if g.s_w == 1 and g.n_W > 2 * g.f_w * g.n_C_prev else "nhwc"


def _im2col_blocks(A_pad: np.ndarray, g: ConvGeometry, layout: str):
    """Yield ``(start, stop, cols)`` for image blocks of about ``CHUNK_ROWS`` output pixels.

    ``layout="nhwc"``: ``cols`` is ``(n * n_H * n_W, K)``, columns in HWIO order ``(i, j, c)``.
    ``layout="planar"``: ``cols`` is ``(K, n * n_H * n_W)``, rows in order ``(c, i, j)``.
    Either way one BLAS call per block uses it. One buffer is reused for every block (valid
    until the next block is yielded).
    """
    K = g.f_h * g.f_w * g.n_C_prev
    rows_per_image = g.n_H * g.n_W
    per_block = max(1, CHUNK_ROWS // max(1, rows_per_image))
    if layout == "planar":
        patches = _planar_patches(A_pad, g)  # (C, f_h, f_w, m, n_H, n_W)
        buffer = np.empty(K * per_block * rows_per_image, dtype=g.dtype)
    else:
        patches = _patches(A_pad, g)  # (m, n_H, n_W, f_h, f_w, C)
        buffer = np.empty((per_block,) + patches.shape[1:], dtype=g.dtype)
    for start, stop in _image_blocks(g.m, rows_per_image):
        n = stop - start
        if layout == "planar":
            cols = buffer[: K * n * rows_per_image].reshape(patches.shape[:3] + (n,) + patches.shape[4:])
            np.copyto(cols, patches[:, :, :, start:stop])
            yield start, stop, cols.reshape(K, n * rows_per_image)
        else:
            cols = buffer[:n]
            np.copyto(cols, patches[start:stop])
            yield start, stop, cols.reshape(n * rows_per_image, K)


def _image_blocks(m: int, rows_per_image: int):
    """``(start, stop)`` image ranges of about ``CHUNK_ROWS`` im2col rows each."""
    step = max(1, CHUNK_ROWS // max(1, rows_per_image))
    for start in range(0, m, step):
        yield start, min(m, start + step)


def _row_slices(g, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that kernel offset ``(i, j)`` touches."""
    return (
        slice(i, i + (g.n_H - 1) * g.s_h + 1, g.s_h),
        slice(j, j + (g.n_W - 1) * g.s_w + 1, g.s_w),
    )


def conv_forward_padded(A_pad: np.ndarray, W: np.ndarray, g: ConvGeometry, *, layout: str | None = None) -> np.ndarray:
    """Bias-free convolution of an already padded input: im2col blocks times the kernel matrix.

    Parameters
    ----------
    A_pad : ndarray (m, n_H_prev + top + bottom, n_W_prev + left + right, n_C_prev), dtype ``g.dtype``
    W : ndarray (f_h, f_w, n_C_prev, n_C), dtype ``g.dtype``
    g : ConvGeometry of the unpadded input
    layout : "nhwc", "planar" or None (choose the faster for these shapes)

    Returns
    -------
    Z : ndarray (m, n_H, n_W, n_C), dtype ``g.dtype``.
    """
    layout = layout or _choose_layout(g)
    K = g.f_h * g.f_w * g.n_C_prev
    rows_per_image = g.n_H * g.n_W
    Z = np.empty(g.output_shape, dtype=g.dtype)
    W_mat = W.reshape(K, g.n_C)  # HWIO rows (i, j, c) match the nhwc patch order
    if layout == "planar":
        # Kernel rows in the planar patch order (c, i, j): HWIO (i, j, c, o) -> (c, i, j, o).
        W_mat = np.ascontiguousarray(W.transpose(2, 0, 1, 3)).reshape(K, g.n_C)
    Z_rows = Z.reshape(-1, g.n_C)
    for start, stop, cols in _im2col_blocks(A_pad, g, layout):
        # planar cols are (K, pixels): BLAS reads the transpose in place.
        patch_rows = cols.T if layout == "planar" else cols
        matmul_rows(patch_rows, W_mat, Z_rows[start * rows_per_image : stop * rows_per_image])
    return Z


def conv_backward_padded(
    dZ: np.ndarray, A_pad: np.ndarray, W: np.ndarray, g: ConvGeometry, *, need_dA: bool = True, layout: str | None = None
):
    """Gradients of a bias-free convolution of an already padded input.

    Parameters
    ----------
    dZ : ndarray (m, n_H, n_W, n_C), dtype ``g.dtype``
    A_pad, W, g, layout : as for :func:`conv_forward_padded`
    need_dA : bool
        Skip the input gradient (a first layer's ``dX`` is not needed to train).

    Returns
    -------
    dA_prev : ndarray (m, n_H_prev, n_W_prev, n_C_prev), or None when ``need_dA`` is False
    dW : ndarray (f_h, f_w, n_C_prev, n_C)
    """
    layout = layout or _choose_layout(g)
    dtype = g.dtype
    K = g.f_h * g.f_w * g.n_C_prev
    rows_per_image = g.n_H * g.n_W
    dZ_rows = dZ.reshape(-1, g.n_C)
    dW_mat = np.zeros((K, g.n_C), dtype=dtype)
    for start, stop, cols in _im2col_blocks(A_pad, g, layout):
        # dW = patches^T @ dZ, accumulated block by block; planar cols are already (K, pixels).
        patch_cols = cols if layout == "planar" else cols.T
        dW_mat += matmul_long_inner(patch_cols, dZ_rows[start * rows_per_image : stop * rows_per_image])
    if layout == "planar":
        # rows (c, i, j) -> HWIO (i, j, c, o)
        dW_mat = dW_mat.reshape(g.n_C_prev, g.f_h, g.f_w, g.n_C).transpose(1, 2, 0, 3).reshape(K, g.n_C)
    dW = dW_mat.reshape(W.shape)
    if not need_dA:
        return None, dW
    if g.s_h == g.s_w == 1:
        dA_planar = _col2im_stride1(dZ, A_pad.shape, W, g)
    else:
        dA_planar = _col2im_strided(dZ, A_pad.shape, W, g)
    (top, _), (left, _) = g.padding
    # (n_C_prev, m, H_pad, W_pad) -> (m, n_H_prev, n_W_prev, n_C_prev): crop, then NHWC.
    cropped = dA_planar[:, :, top : top + g.n_H_prev, left : left + g.n_W_prev]
    return np.ascontiguousarray(cropped.transpose(1, 2, 3, 0)), dW


# The input gradient is accumulated channel-major, (n_C_prev, m, H_pad, W_pad): each kernel
# offset then adds whole image rows instead of runs of n_C_prev values; one transpose back to
# NHWC at the end. ``d_cols[(i, j, c), pixel] = sum_o W[i, j, c, o] dZ[pixel, o]`` is what an
# output pixel sends back through kernel offset (i, j) to input channel c (col2im).


def _col2im_stride1(dZ: np.ndarray, padded_shape, W: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Input gradient of a stride-1 convolution, ``(n_C_prev, m, H_pad, W_pad)``.

    ``dZ`` is first widened to the padded width with zero columns. Then, in an image flattened
    row by row, the cells that kernel offset (i, j) reaches from output rows 0..n_H-1 are one
    contiguous run starting at ``i * W_pad + j``: one add per offset and image block, over
    ``n_H * W_pad`` cells (the zero columns add nothing where the run wraps to the next row).
    """
    m, H_pad, W_pad, C = padded_shape
    K = g.f_h * g.f_w * C
    run = g.n_H * W_pad
    dZ_wide = np.zeros((g.m, g.n_H, W_pad, g.n_C), dtype=g.dtype)
    dZ_wide[:, :, : g.n_W] = dZ
    dZ_wide = dZ_wide.reshape(-1, g.n_C)
    # One spare row per image: the last offset's run ends f_w - 1 cells past the image.
    flat = np.zeros((C, m, (H_pad + 1) * W_pad), dtype=g.dtype)
    W_mat = W.reshape(K, g.n_C)  # rows (i, j, c): HWIO order
    per_block = max(1, CHUNK_ROWS // max(1, run))
    d_cols = np.empty(K * per_block * run, dtype=g.dtype)
    for start, stop in _image_blocks(m, run):
        n = stop - start
        out = d_cols[: K * n * run].reshape(K, n * run)
        matmul_cols(W_mat, dZ_wide[start * run : stop * run].T, out)
        by_offset = out.reshape(g.f_h, g.f_w, C, n, run)
        for i in range(g.f_h):
            for j in range(g.f_w):
                offset = i * W_pad + j
                flat[:, start:stop, offset : offset + run] += by_offset[i, j]
    return flat.reshape(C, m, H_pad + 1, W_pad)[:, :, :H_pad]


def _col2im_strided(dZ: np.ndarray, padded_shape, W: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Input gradient of a convolution of any stride, ``(n_C_prev, m, H_pad, W_pad)``."""
    m, H_pad, W_pad, C = padded_shape
    K = g.f_h * g.f_w * C
    rows_per_image = g.n_H * g.n_W
    dZ_rows = dZ.reshape(-1, g.n_C)
    dA_planar = np.zeros((C, m, H_pad, W_pad), dtype=g.dtype)
    W_mat = W.reshape(K, g.n_C)
    per_block = max(1, CHUNK_ROWS // max(1, rows_per_image))
    d_cols = np.empty(K * per_block * rows_per_image, dtype=g.dtype)
    for start, stop in _image_blocks(m, rows_per_image):
        n = stop - start
        out = d_cols[: K * n * rows_per_image].reshape(K, n * rows_per_image)
        matmul_cols(W_mat, dZ_rows[start * rows_per_image : stop * rows_per_image].T, out)
        by_offset = out.reshape(g.f_h, g.f_w, C, n, g.n_H, g.n_W)
        for i in range(g.f_h):
            for j in range(g.f_w):
                r, c = _row_slices(g, i, j)
                dA_planar[:, start:stop, r, c] += by_offset[i, j]
    return dA_planar


def conv_forward_fast(A_prev, W, b, hparameters):
    """Vectorised :func:`reference.layers.conv_forward` (im2col + matmul).

    Parameters
    ----------
    A_prev : ndarray (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray (f_h, f_w, n_C_prev, n_C)
    b : ndarray (1, 1, 1, n_C), or None for no bias
    hparameters : dict ``{"stride": s, "pad": p}`` (``p``: int, "same", "valid" or
        ``((top, bottom), (left, right))``)

    Returns
    -------
    Z : ndarray (m, n_H, n_W, n_C)
    cache : (A_prev, W, b, hparameters), the course's cache (interchangeable with the loop one).
    """
    A_prev, W_arr, b_arr, g = conv_geometry(A_prev, W, b, hparameters)
    A_pad = pad_spatial(A_prev.astype(g.dtype, copy=False), g.padding, 0)
    Z = conv_forward_padded(A_pad, W_arr.astype(g.dtype, copy=False), g)
    if b_arr is not None:
        Z += b_arr.astype(g.dtype, copy=False)
    return Z, (A_prev, W, b, hparameters)


def conv_backward_fast(dZ, cache):
    """Vectorised :func:`reference.layers.conv_backward`.

    Parameters
    ----------
    dZ : ndarray (m, n_H, n_W, n_C)
    cache : (A_prev, W, b, hparameters) from :func:`conv_forward_fast` or ``conv_forward``

    Returns
    -------
    dA_prev : ndarray (m, n_H_prev, n_W_prev, n_C_prev)
    dW : ndarray (f_h, f_w, n_C_prev, n_C)
    db : ndarray (1, 1, 1, n_C)
    """
    (A_prev, W, b, hparameters) = cache
    A_prev, W, _, g = conv_geometry(A_prev, W, b, hparameters)
    dZ = check_upstream(dZ, g.output_shape, "dZ", "(m, n_H, n_W, n_C)")
    dtype = np.result_type(g.dtype, dZ.dtype)
    g.dtype = dtype  # a float64 dZ on a float32 cache computes in float64 (no silent downcast)
    dZ = np.ascontiguousarray(dZ, dtype=dtype)
    A_pad = pad_spatial(A_prev.astype(dtype, copy=False), g.padding, 0)
    dA_prev, dW = conv_backward_padded(dZ, A_pad, W.astype(dtype, copy=False), g)
    # BLAS products with a ones vector: several times faster than .sum(axis=0) over a short last axis.
    dZ_rows = dZ.reshape(-1, g.n_C)
    db = matmul_long_inner(np.ones((1, dZ_rows.shape[0]), dtype=dtype), dZ_rows).reshape(1, 1, 1, g.n_C)
    return dA_prev, dW, db


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _window_reduce(A_pad: np.ndarray, g: PoolGeometry, ufunc) -> np.ndarray:
    """``ufunc``-reduce every pooling window of a padded input, ``(m, n_H, n_W, n_C)``.

    Separable: first over the window's rows (each call runs over whole contiguous image rows),
    then over its columns on the already ``f_h``-times smaller array.
    """
    r0, _ = _row_slices(g, 0, 0)
    rows = A_pad[:, r0].copy()  # (m, n_H, W_pad, n_C)
    for i in range(1, g.f_h):
        r, _ = _row_slices(g, i, 0)
        ufunc(rows, A_pad[:, r], out=rows)
    _, c0 = _row_slices(g, 0, 0)
    out = rows[:, :, c0].copy()  # (m, n_H, n_W, n_C)
    for j in range(1, g.f_w):
        _, c = _row_slices(g, 0, j)
        ufunc(out, rows[:, :, c], out=out)
    return out


def max_pool_padded(A_pad: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Max over every window of an input padded with ``-inf``; ``(m, n_H, n_W, n_C)``."""
    return _window_reduce(A_pad, g, np.maximum)


def _counts(g: PoolGeometry, dtype) -> np.ndarray:
    """Real cells per window as ``(1, n_H, n_W, 1)`` in ``dtype`` (broadcasts over NHWC)."""
    return g.real_counts().astype(dtype)[None, :, :, None]


def pool_forward_fast(A_prev, hparameters, mode="max"):
    """Vectorised :func:`reference.layers.pool_forward`.

    Parameters
    ----------
    A_prev : ndarray (m, n_H_prev, n_W_prev, n_C)
    hparameters : dict ``{"stride": s, "f": f}``, optionally ``"pad"``; with padding, max-pool
        pads with ``-inf`` and average-pool divides by the count of real cells (TensorFlow SAME).
    mode : "max" or "average"

    Returns
    -------
    A : ndarray (m, n_H, n_W, n_C)
    cache : (A_prev, hparameters)
    """
    check_mode(mode)
    A_prev, g = pool_geometry(A_prev, hparameters)
    if mode == "max":
        A = max_pool_padded(pad_spatial(A_prev, g.padding, -np.inf), g)
    else:
        A = _window_reduce(pad_spatial(A_prev, g.padding, 0), g, np.add)
        A /= _counts(g, g.dtype)
    return A, (A_prev, hparameters)


def pool_windows(A_pad: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Every pooling window of a padded input, its cells in row-major ``(i, j)`` order.

    The one place that lays windows out (max-pool backward, the sparse training step and the
    near-tie proof of ``signs.ties`` all read them from here).

    Parameters
    ----------
    A_pad : ndarray (m, H_pad, W_pad, n_C), the input padded as ``g.padding`` says
    g : PoolGeometry (any padding, stride and window; windows may overlap)

    Returns
    -------
    windows : ndarray (m, n_H, n_W, n_C, f_h * f_w); window ``(oh, ow)`` starts at padded row
        ``oh * s_h`` and column ``ow * s_w``. Cells past the last window are cropped.
    """
    m, n_C = A_pad.shape[0], A_pad.shape[3]
    # sliding_window_view gives (m, H', W', n_C, f_h, f_w): every stride-1 window position.
    windows = sliding_window_view(A_pad, (g.f_h, g.f_w), axis=(1, 2))
    windows = windows[:, : (g.n_H - 1) * g.s_h + 1 : g.s_h, : (g.n_W - 1) * g.s_w + 1 : g.s_w]
    return windows.reshape(m, g.n_H, g.n_W, n_C, g.f_h * g.f_w)


def first_max_index(A_pad: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Row-major index within its window of every window's first maximum, int (m, n_H, n_W, n_C).

    ``A_pad`` is the max pool's input padded with ``-inf`` (padding never wins).
    """
    return pool_windows(A_pad, g).argmax(axis=-1)  # argmax returns the first maximum


def _tiles(g: PoolGeometry) -> bool:
    """Windows tile the (cropped) padded input exactly: stride == window on both axes."""
    return g.s_h == g.f_h and g.s_w == g.f_w


def _first_max_mask_tiled(A_pad: np.ndarray, M: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Boolean mask of each window's first maximum (row-major), windows tiling the input.

    Returns
    -------
    mask : bool ndarray (m * n_H, f_h, n_W * f_w * n_C): rows ``h*f_h + i`` of image ``n`` at
        ``[n * n_H + h, i]``, columns ``(w*f_w + j) * n_C + c``, i.e. the cropped padded input in
        NHWC order.
    """
    m, n_H, n_W, n_C = M.shape
    H_c, W_c = n_H * g.f_h, n_W * g.f_w
    cropped = A_pad[:, :H_c, :W_c, :].reshape(m * n_H, g.f_h, W_c * n_C)
    # The window maximum repeated across the window's columns; broadcast across its rows.
    M_rep = np.repeat(M.reshape(m * n_H, n_W, 1, n_C), g.f_w, axis=2).reshape(m * n_H, 1, W_c * n_C)
    mask = cropped == M_rep
    if np.count_nonzero(mask) != M.size:  # some window holds a tie (or a NaN): keep its first max
        _keep_first_true(mask.reshape(m * n_H, g.f_h, n_W, g.f_w, n_C))
    return mask


def _keep_first_true(mask5: np.ndarray) -> None:
    """In place: in every window of ``mask5`` (rows, f_h, n_W, f_w, n_C) with several True
    entries keep only the first in row-major ``(i, j)`` order."""
    counts = mask5.sum(axis=(1, 3))  # (rows, n_W, n_C)
    r, w, c = np.nonzero(counts > 1)
    if r.size == 0:
        return
    f_h, f_w = mask5.shape[1], mask5.shape[3]
    windows = mask5[r, :, w, :, c].reshape(r.size, f_h * f_w)  # advanced indexing: (T, f_h, f_w)
    first = windows.argmax(axis=1)  # the first True
    fixed = np.zeros_like(windows)
    fixed[np.arange(r.size), first] = True
    mask5[r, :, w, :, c] = fixed.reshape(r.size, f_h, f_w)


def max_pool_backward_padded(A_pad: np.ndarray, M: np.ndarray, G: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Max-pool input gradient, first maximum of each window in row-major order.

    Parameters
    ----------
    A_pad : ndarray (m, H_pad, W_pad, n_C), the input padded with ``-inf``
    M : ndarray (m, n_H, n_W, n_C), the pooled maxima (``max_pool_padded(A_pad, g)``)
    G : ndarray (m, n_H, n_W, n_C), gradient with respect to the pool output
    g : PoolGeometry

    Returns
    -------
    dA_prev : ndarray (m, n_H_prev, n_W_prev, n_C), unpadded, dtype of ``G``.
    """
    m, n_H, n_W, n_C = M.shape
    (top, _), (left, _) = g.padding
    H_pad, W_pad = A_pad.shape[1:3]
    if _tiles(g):
        mask = _first_max_mask_tiled(A_pad, M, g)
        W_c = n_W * g.f_w
        G_rep = np.repeat(G.reshape(m * n_H, n_W, 1, n_C), g.f_w, axis=2).reshape(m * n_H, 1, W_c * n_C)
        d_tiles = np.multiply(mask, G_rep, dtype=G.dtype).reshape(m, n_H * g.f_h, W_c, n_C)
        if d_tiles.shape[1:3] == (H_pad, W_pad) == (g.n_H_prev, g.n_W_prev):
            return d_tiles  # no padding, nothing cropped: the common case
        dA_pad = np.zeros((m, H_pad, W_pad, n_C), dtype=G.dtype)
        dA_pad[:, : n_H * g.f_h, :W_c] = d_tiles
    else:
        first = first_max_index(A_pad, g)
        dA_pad = np.zeros((m, H_pad, W_pad, n_C), dtype=G.dtype)
        zero = np.zeros((), dtype=G.dtype)
        for i in range(g.f_h):
            for j in range(g.f_w):
                r, c = _row_slices(g, i, j)
                dA_pad[:, r, c, :] += np.where(first == i * g.f_w + j, G, zero)
    return dA_pad[:, top : top + g.n_H_prev, left : left + g.n_W_prev, :].copy()


def _average_pool_backward(dA: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Average-pool input gradient: each window's gradient over its count of real cells."""
    m = dA.shape[0]
    (top, bottom), (left, right) = g.padding
    H_pad, W_pad = g.n_H_prev + top + bottom, g.n_W_prev + left + right
    share = dA / _counts(g, dA.dtype)
    # Separable spread: down the window's rows first, then across its columns.
    rows = np.zeros((m, H_pad, g.n_W, g.n_C), dtype=dA.dtype)
    for i in range(g.f_h):
        r, _ = _row_slices(g, i, 0)
        rows[:, r] += share
    dA_pad = np.zeros((m, H_pad, W_pad, g.n_C), dtype=dA.dtype)
    for j in range(g.f_w):
        _, c = _row_slices(g, 0, j)
        dA_pad[:, :, c] += rows
    return dA_pad[:, top : top + g.n_H_prev, left : left + g.n_W_prev, :].copy()


def pool_backward_fast(dA, cache, mode="max"):
    """Vectorised :func:`reference.layers.pool_backward`.

    Parameters
    ----------
    dA : ndarray (m, n_H, n_W, n_C)
    cache : (A_prev, hparameters) from :func:`pool_forward_fast` or ``pool_forward``
    mode : "max" or "average"

    Returns
    -------
    dA_prev : ndarray (m, n_H_prev, n_W_prev, n_C)

    Notes
    -----
    Max mode sends each window's gradient to its *first* maximum in row-major window order (as
    TensorFlow and PyTorch do), whereas the course's ``create_mask_from_window`` (loop
    ``pool_backward``) sends it to every tied maximum.
    """
    check_mode(mode)
    (A_prev, hparameters) = cache
    A_prev, g = pool_geometry(A_prev, hparameters)
    dA = check_upstream(dA, g.output_shape, "dA", "(m, n_H, n_W, n_C)")
    dtype = np.result_type(g.dtype, dA.dtype)
    dA = np.ascontiguousarray(dA, dtype=dtype)
    if mode == "average":
        return _average_pool_backward(dA, g)
    A_pad = pad_spatial(A_prev.astype(dtype, copy=False), g.padding, -np.inf)
    M = max_pool_padded(A_pad, g)
    return max_pool_backward_padded(A_pad, M, dA, g)


# --------------------------------------------------------------------------------------------
# Sparse gradients for CONV -> RELU -> MAXPOOL (the training step)
# --------------------------------------------------------------------------------------------


def max_pool_first_positions(A_pad: np.ndarray, M: np.ndarray, g: PoolGeometry):
    """Where each window's gradient goes: its first maximum in row-major order.

    Parameters
    ----------
    A_pad : ndarray (m, H_pad, W_pad, n_C), the pool input padded with ``-inf``
    M : ndarray (m, n_H, n_W, n_C), ``max_pool_padded(A_pad, g)``
    g : PoolGeometry

    Returns
    -------
    window : int ndarray (T,), flat index into ``M`` (and into the pool-output gradient)
    n, row, col, c : int ndarrays (T,), the chosen cell in ``A_pad`` coordinates

    One entry per window, except windows whose maximum is NaN (none is chosen there, as the
    dense backward sends them no gradient either).
    """
    m, n_H, n_W, n_C = M.shape
    if _tiles(g):
        mask = _first_max_mask_tiled(A_pad, M, g)  # (m * n_H, f_h, n_W * f_w * n_C)
        # 1-D flatnonzero + divmod is several times faster than a 3-D np.nonzero.
        flat = np.flatnonzero(mask)
        a, rest = np.divmod(flat, mask.shape[1] * mask.shape[2])
        i, q = np.divmod(rest, mask.shape[2])
        n, oh = np.divmod(a, n_H)
        col, c = np.divmod(q, n_C)
        row = oh * g.f_h + i
        ow = col // g.f_w
    else:
        first = first_max_index(A_pad, g)
        n, oh, ow, c = (axis.ravel() for axis in np.indices(M.shape, sparse=False))
        keep = ~np.isnan(M.ravel())
        i, j = np.divmod(first.ravel(), g.f_w)
        n, oh, ow, c, i, j = (v[keep] for v in (n, oh, ow, c, i, j))
        row = oh * g.s_h + i
        col = ow * g.s_w + j
    window = ((n * n_H + oh) * n_W + ow) * n_C + c
    return window, n, row, col, c


def conv_weight_grad_sparse(A_pad: np.ndarray, g: ConvGeometry, n, h, w, c, values) -> np.ndarray:
    """``dW`` of a bias-free convolution whose output gradient is sparse.

    ``dZ`` is zero except ``dZ[n[k], h[k], w[k], c[k]] += values[k]`` (repeated positions add up),
    which is what a following RELU -> MAXPOOL sends back: one cell per pooling window. Then
    ``dW[..., c] = sum_k values[k] * patch(n[k], h[k], w[k])``, a gather of ``T`` patches and one
    ``(K, T) @ (T, n_C)`` product instead of an im2col of the whole input.

    Parameters
    ----------
    A_pad : ndarray (m, H_pad, W_pad, n_C_prev), the padded conv input
    g : ConvGeometry
    n, h, w, c : int ndarrays (T,), conv-output coordinates of the non-zero gradients
    values : ndarray (T,), the gradients, dtype ``g.dtype``

    Returns
    -------
    dW : ndarray (f_h, f_w, n_C_prev, n_C)
    """
    _, H_pad, W_pad, C = A_pad.shape
    # Gather from the flat input: patch k starts at element ((n*H_pad + h*s_h)*W_pad + w*s_w)*C
    # and its K elements sit at fixed offsets (i*W_pad + j)*C + ci in HWIO order.
    start = ((n * H_pad + h * g.s_h) * W_pad + w * g.s_w) * C
    i, j, ci = np.indices((g.f_h, g.f_w, C)).reshape(3, -1)
    offsets = (i * W_pad + j) * C + ci
    patches = np.take(np.ascontiguousarray(A_pad).reshape(-1), start[:, None] + offsets[None, :])  # (T, K)
    scatter = np.zeros((n.size, g.n_C), dtype=g.dtype)
    scatter[np.arange(n.size), c] = values
    return matmul_long_inner(patches.T, scatter).reshape(g.f_h, g.f_w, g.n_C_prev, g.n_C)
