"""CONV -> RELU -> MAXPOOL for the training step, fused block by block.

The training step needs conv1's output only through its pool: ``P1 = maxpool(relu(Z1))``
forward, and backward only ``dW1``, to which each pool window sends its gradient through one cell
(its first maximum). So, when the pool windows tile the conv output exactly (stride == window, no
padding: the course model's 8x8/8 pool over 64x64), each block of a few images is taken through

    pad (channel-major) -> im2col -> Z^T = W^T @ cols -> cells regrouped window by window
    -> argmax per window -> the window maxima, and the receptive field under each first maximum

while the block's im2col matrix is in cache, and neither ``Z1`` nor ``A1`` (8 MiB each for a
batch of 64) is ever written. ``relu(max(Z)) == max(relu(Z))``, and where that is positive the
first maximum of ``Z`` is the first maximum of ``relu(Z)``; where it is not, the window sends no
gradient. The backward (:func:`conv_relu_pool_weight_grad`) is then one small product per block
and channel: ``dW[..., o] = sum over windows of dP * (P > 0) * field``.

Blocks run on :func:`reference.gemm.map_blocks`'s threads; every block's arithmetic and the
order in which the blocks' ``dW`` are summed are fixed, so results do not depend on the number of
workers. :func:`reference.model.train_gradients` uses this path when :func:`can_fuse` holds and
the general one (``model_backward``'s sparse ``dW1``) otherwise; tests hold them equal, and
``model_forward`` computes ``Z1`` with this module's products (``Z_out``) so that both paths see
the same bits.
"""

from __future__ import annotations

import numpy as np

from reference.fast_layers import planar_windows
from reference.gemm import map_blocks, matmul_cols, scratch
from reference.layers import ConvGeometry, PoolGeometry

__all__ = ["IMAGES_PER_BLOCK", "can_fuse", "conv_relu_pool_forward", "conv_relu_pool_weight_grad"]

# Images per forward block: 2 images of 64x64 with a 4x4x3 kernel make a 48 x 8192 im2col block
# (1.5 MiB of float32), which stays in L2/L3 with its product.
IMAGES_PER_BLOCK = 2


def can_fuse(conv: ConvGeometry, pool: PoolGeometry) -> bool:
    """The pool's windows tile the conv output exactly: stride == window and no padding."""
    return (
        pool.s_h == pool.f_h
        and pool.s_w == pool.f_w
        and pool.padding == ((0, 0), (0, 0))
        and pool.n_H * pool.f_h == conv.n_H
        and pool.n_W * pool.f_w == conv.n_W
    )


def _blocks(m: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of ``size`` images (the last may be shorter)."""
    return [(start, min(m, start + size)) for start in range(0, m, size)]


def _window_base_pixels(n: int, conv: ConvGeometry, pool: PoolGeometry) -> np.ndarray:
    """Flat pixel ``(n, h, w)`` of the top-left cell of every pool window of ``n`` images, in
    window order ``(n, oh, ow)``; int (n * n_H' * n_W',)."""
    image, oh, ow = np.indices((n, pool.n_H, pool.n_W)).reshape(3, -1)
    return (image * conv.n_H + oh * pool.f_h) * conv.n_W + ow * pool.f_w


def conv_relu_pool_forward(X: np.ndarray, W: np.ndarray, conv: ConvGeometry, pool: PoolGeometry, *,
                           Z_out: np.ndarray | None = None):
    """``relu(maxpool(conv(X, W)))`` (no conv bias), and what the weight gradient needs.

    Parameters
    ----------
    X : ndarray (m, n_H_prev, n_W_prev, n_C_prev) NHWC, dtype ``conv.dtype``
    W : ndarray (f_h, f_w, n_C_prev, n_C) HWIO
    conv : ConvGeometry of ``X`` and ``W``
    pool : PoolGeometry of the conv output, :func:`can_fuse` true
    Z_out : ndarray (m, n_H, n_W, n_C), optional
        Also write the conv output here, NHWC (``model_forward`` keeps it as ``Z1``, so that the
        training step and the forward pass compute conv1 with the same products, to the bit).

    Returns
    -------
    P : ndarray (m, n_H', n_W', n_C) NHWC, the pooled activations (``P1``)
    cache : (P, M_t, patches) for :func:`conv_relu_pool_weight_grad`; ``M_t`` the window maxima
        before the ReLU, channel-major (n_C, m, n_H', n_W'); ``patches`` (blocks, K, n_C,
        windows of a block): per block of images, the receptive field (rows ``(c, i, j)``) under
        the first maximum (row-major; ``argmax``, so a NaN counts as the maximum) of every window
        ``(n, oh, ow)`` of every channel (a last, shorter block fills only its first windows).
    """
    if not can_fuse(conv, pool):
        raise ValueError(f"pool: expected windows that tile the conv output (stride == window, no padding), got "
                         f"window ({pool.f_h}, {pool.f_w}), stride ({pool.s_h}, {pool.s_w}), padding {pool.padding}")
    m, C, K = conv.m, conv.n_C_prev, conv.f_h * conv.f_w * conv.n_C_prev
    window = pool.f_h * pool.f_w
    (top, bottom), (left, right) = conv.padding
    # Kernel rows in the channel-major patch order (c, i, j): HWIO (i, j, c, o) -> (o, c, i, j).
    W_t = np.ascontiguousarray(W.transpose(3, 2, 0, 1)).reshape(conv.n_C, K)
    M_t = np.empty((conv.n_C, m, pool.n_H, pool.n_W), dtype=conv.dtype)  # window maxima, channel-major
    blocks = _blocks(m, IMAGES_PER_BLOCK)
    windows_per_image = pool.n_H * pool.n_W
    # The field under each window's first maximum, per block: (blocks, K, o, windows of a block).
    patches = np.empty((len(blocks), K, conv.n_C, IMAGES_PER_BLOCK * windows_per_image), dtype=conv.dtype)
    base = _window_base_pixels(IMAGES_PER_BLOCK, conv, pool)
    ph, pw = np.divmod(np.arange(window), pool.f_w)
    cell_offset = ph * conv.n_W + pw  # window cell (ph, pw) -> pixels past the window's top-left
    window_starts = np.arange(conv.n_C * IMAGES_PER_BLOCK * windows_per_image) * window  # in by_window, flat

    def run_block(k):
        start, stop = blocks[k]
        n = stop - start
        pixels = n * conv.n_H * conv.n_W
        # Zero-padded and channel-major in one copy: (n, H, W, C) NHWC -> (C, n, H_pad, W_pad).
        # The im2col copy then moves whole image rows instead of runs of f_w * C values.
        planar = np.zeros((C, n, conv.n_H_prev + top + bottom, conv.n_W_prev + left + right), dtype=conv.dtype)
        planar[:, :, top : top + conv.n_H_prev, left : left + conv.n_W_prev] = X[start:stop].transpose(3, 0, 1, 2)
        view = planar_windows(planar, conv)
        cols = scratch("fused.cols", view.shape, conv.dtype)
        np.copyto(cols, view)
        cols = cols.reshape(K, pixels)
        Z_t = scratch("fused.Z_t", (conv.n_C, pixels), conv.dtype)  # (o, (n, h, w)), channel-major
        matmul_cols(W_t, cols, Z_t)
        # (o, n, oh, ph, ow, pw) -> (o, n, oh, ow, ph, pw): each pool window's cells in a row
        by_cell = Z_t.reshape(conv.n_C, n, pool.n_H, pool.f_h, pool.n_W, pool.f_w)
        by_window = scratch("fused.by_window", (conv.n_C, n, pool.n_H, pool.n_W, pool.f_h, pool.f_w), conv.dtype)
        np.copyto(by_window, by_cell.transpose(0, 1, 2, 4, 3, 5))
        by_window = by_window.reshape(conv.n_C, n * windows_per_image, window)
        first = by_window.argmax(axis=2)  # (o, windows): the first maximum, row-major in the window
        # A take at the argmax, not .max(): max over short rows costs twice argmax.
        maxima = np.take(by_window, window_starts[: first.size] + first.ravel())
        M_t[:, start:stop] = maxima.reshape(M_t[:, start:stop].shape)
        # The receptive field under each first maximum, while cols is in cache: (K, o, windows).
        under_first = base[: first.shape[1]] + cell_offset[first]
        np.take(cols, under_first, axis=1, out=patches[k, :, :, : first.shape[1]], mode="clip")
        if Z_out is not None:
            Z_out[start:stop] = by_cell.transpose(1, 2, 3, 4, 5, 0).reshape(Z_out[start:stop].shape)  # NHWC

    map_blocks(run_block, range(len(blocks)))
    # (o, n, oh, ow) channel-major -> (n, oh, ow, o) NHWC; then the ReLU (max commutes with it).
    P = np.ascontiguousarray(np.maximum(M_t.transpose(1, 2, 3, 0), np.zeros((), dtype=conv.dtype)))
    return P, (P, M_t, patches)


def _without_nonfinite_dead_fields(patches: np.ndarray, values: np.ndarray, M_t: np.ndarray) -> np.ndarray:
    """``patches`` with the fields of windows that send nothing zeroed where they could hold
    inf or NaN (their ``0 * inf`` would be NaN in ``dW``; the general path skips such windows).

    A field holds a non-finite input only if the conv output over it (the window's maximum) is
    not finite, so only windows with a non-finite maximum are looked at: usually none.
    """
    suspects = ~np.isfinite(M_t.reshape(values.shape))  # (o, windows)
    if not suspects.any():
        return patches
    o, window = np.nonzero(suspects & (values == 0))
    if o.size:
        patches = patches.copy()
        per_block = patches.shape[3]
        patches[window // per_block, :, o, window % per_block] = 0
    return patches


def conv_relu_pool_weight_grad(dP: np.ndarray, cache, conv: ConvGeometry, pool: PoolGeometry) -> np.ndarray:
    """``dW`` (f_h, f_w, n_C_prev, n_C) of :func:`conv_relu_pool_forward` for the gradient ``dP``
    of its output (m, n_H', n_W', n_C).

    Window ``(n, oh, ow)`` of channel ``o`` sends ``dP * (P > 0)`` to its first maximum, so
    ``dW[..., o] = sum over windows of that value times the field under the maximum``: per block,
    ``n_C`` products ``(K, windows) @ (windows,)``, summed in block order.
    """
    P, M_t, patches = cache
    K = conv.f_h * conv.f_w * conv.n_C_prev
    # Gradient reaching each window through the ReLU: (n, oh, ow, o) -> (o, n * oh * ow).
    values = np.where(P > 0, dP, np.zeros((), dtype=conv.dtype))
    values = np.ascontiguousarray(values.transpose(3, 0, 1, 2)).reshape(conv.n_C, -1)
    patches = _without_nonfinite_dead_fields(patches, values, M_t)
    dW_t = np.zeros((conv.n_C, K), dtype=conv.dtype)  # rows o, columns (c, i, j)
    per_block = patches.shape[3]
    for k, block in enumerate(patches):
        v = values[:, k * per_block : (k + 1) * per_block]
        # (K, o, w) -> (o, K, w) @ (o, w, 1): one matrix-vector product per channel
        dW_t += np.matmul(block[:, :, : v.shape[1]].transpose(1, 0, 2), v[:, :, None])[:, :, 0]
    # (o, c, i, j) -> HWIO (i, j, c, o)
    return np.ascontiguousarray(dW_t.reshape(conv.n_C, conv.n_C_prev, conv.f_h, conv.f_w).transpose(2, 3, 1, 0))
