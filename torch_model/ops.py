"""TensorFlow-semantics conv and pool ops for PyTorch, the layout permutes, and a TF32 switch.

Padding API (every op below): ``padding`` is one of

* ``"same"`` / ``"SAME"``: TensorFlow SAME. Output length ``ceil(n / s)``; the total padding
  ``max(0, (ceil(n / s) - 1) * s + f - n)`` is split ``before = total // 2``, ``after = total -
  before``, so an odd total puts the extra row at the bottom and the extra column at the right.
* ``"valid"`` / ``"VALID"``: no padding.
* an ``int`` ``p``: ``p`` rows/columns on every side.
* explicit ``((top, bottom), (left, right))``.

The padding arithmetic is :func:`reference.padding.resolve_padding`'s: one SAME rule for every backend.

``kernel``/``window`` and ``stride`` are an ``int`` or an ``(h, w)`` pair, so non-square kernels
work. The NCHW functions (``conv2d``, ``max_pool2d``, ``avg_pool2d``) are what the model runs; the
``*_nhwc`` wrappers take canonical layouts (NHWC activations, HWIO kernels) for the layer sweeps.

Layout permutes are written once here and used everywhere else in ``torch_model``:

* activations NHWC (m, n_H, n_W, n_C)  <->  NCHW (m, n_C, n_H, n_W)
* conv kernels HWIO (f_h, f_w, n_C_prev, n_C)  <->  OIHW (n_C, n_C_prev, f_h, f_w)
* dense kernel canonical (n_in, n_out)  <->  torch ``nn.Linear.weight`` (n_out, n_in)
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference.padding import as_pair, resolve_padding

__all__ = [
    "Padding",
    "nhwc_to_nchw",
    "nchw_to_nhwc",
    "hwio_to_oihw",
    "oihw_to_hwio",
    "dense_kernel_to_torch",
    "dense_kernel_from_torch",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "conv2d_nhwc",
    "max_pool2d_nhwc",
    "avg_pool2d_nhwc",
    "TFConv2d",
    "TFMaxPool2d",
    "FlattenNHWC",
    "no_tf32",
]

PadPair = tuple[int, int]
Padding = Union[str, int, tuple[PadPair, PadPair]]
IntPair = Union[int, tuple[int, int]]


# ----------------------------------------------------------------------------- layout permutes
def nhwc_to_nchw(x: Tensor) -> Tensor:
    """NHWC (m, n_H, n_W, n_C) -> NCHW (m, n_C, n_H, n_W), a view (no copy).

    A contiguous NHWC tensor viewed this way is exactly PyTorch's ``channels_last`` memory format.
    """
    return x.permute(0, 3, 1, 2)


def nchw_to_nhwc(x: Tensor) -> Tensor:
    """NCHW (m, n_C, n_H, n_W) -> NHWC (m, n_H, n_W, n_C), a view (no copy)."""
    return x.permute(0, 2, 3, 1)


def hwio_to_oihw(w: Tensor) -> Tensor:
    """Conv kernel HWIO (f_h, f_w, n_C_prev, n_C) -> OIHW (n_C, n_C_prev, f_h, f_w), a view."""
    return w.permute(3, 2, 0, 1)


def oihw_to_hwio(w: Tensor) -> Tensor:
    """Conv kernel OIHW (n_C, n_C_prev, f_h, f_w) -> HWIO (f_h, f_w, n_C_prev, n_C), a view."""
    return w.permute(2, 3, 1, 0)


def dense_kernel_to_torch(w: Tensor) -> Tensor:
    """Dense kernel canonical (n_in, n_out) -> ``nn.Linear.weight`` (n_out, n_in), a view."""
    return w.t()


def dense_kernel_from_torch(w: Tensor) -> Tensor:
    """``nn.Linear.weight`` (n_out, n_in) -> canonical dense kernel (n_in, n_out), a view."""
    return w.t()


# ----------------------------------------------------------------------------- padding
def _check_nchw(x: Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: expected 4 dims (m, n_C, n_H, n_W), got shape {tuple(x.shape)}")


# ----------------------------------------------------------------------------- conv
def conv2d(x: Tensor, w: Tensor, stride: IntPair = 1, padding: Padding = "same") -> Tensor:
    """Bias-free 2-D convolution (cross-correlation, as TensorFlow's) with TF padding semantics.

    Parameters
    ----------
    x : Tensor (m, n_C_prev, n_H, n_W), NCHW (any memory format)
    w : Tensor (n_C, n_C_prev, f_h, f_w), OIHW
    stride : int or (s_h, s_w)
    padding : see the module docstring.

    Returns
    -------
    Tensor (m, n_C, n_H_out, n_W_out), NCHW.
    """
    _check_nchw(x, "x")
    if w.dim() != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w: expected OIHW (n_C, {x.shape[1]}, f_h, f_w), got shape {tuple(w.shape)}"
        )
    stride = as_pair(stride, "stride")
    kernel = (int(w.shape[2]), int(w.shape[3]))
    (top, bottom), (left, right) = resolve_padding(padding, (x.shape[2], x.shape[3]), kernel, stride, "padding")
    if top == bottom and left == right:  # symmetric (always so for odd kernels): pad inside the conv
        return F.conv2d(x, w, stride=stride, padding=(top, left))
    # Asymmetric (even kernels): the symmetric part inside the conv, only the extra row/column
    # (bottom/right for SAME) via F.pad. Over-padding symmetrically and cropping the output
    # instead avoids this copy but measured 1.5-2x slower (non-contiguous Z1 downstream).
    sym_h, sym_w = min(top, bottom), min(left, right)
    x = F.pad(x, (left - sym_w, right - sym_w, top - sym_h, bottom - sym_h))
    return F.conv2d(x, w, stride=stride, padding=(sym_h, sym_w))


# ----------------------------------------------------------------------------- pooling
def _torch_pool_size(n: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output length of PyTorch's pooling (aten ``pooling_output_shape``, dilation 1)."""
    span = n + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= n + pad:
        out -= 1  # PyTorch drops a last window that would start in the right padding
    return out


def _native_pool_args(
    size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    pads: tuple[PadPair, PadPair],
) -> tuple[tuple[int, int], bool] | None:
    """(padding, ceil_mode) with which PyTorch's pool computes exactly the TF windows, or None.

    PyTorch pads symmetrically by ``padding`` and, with ``ceil_mode``, adds a clipped window at
    the end; padded cells never count (max: -inf, avg: ``count_include_pad=False``). Window ``i``
    of both covers rows ``i * s - top .. i * s - top + f - 1``, so the results agree exactly
    when the window starts and counts agree, which this checks.
    """
    begin = (pads[0][0], pads[1][0])
    if any(2 * p > k for p, k in zip(begin, kernel)):
        return None  # PyTorch refuses padding > kernel / 2
    for ceil_mode in (False, True):
        ok = True
        for n, f, s, (before, after), p in zip(size, kernel, stride, pads, begin):
            want = (n + before + after - f) // s + 1
            ok = ok and _torch_pool_size(n, f, s, p, ceil_mode) == want
        if ok:
            return begin, ceil_mode
    return None


def _pool_setup(
    x: Tensor, window: IntPair, stride: IntPair | None, padding: Padding
) -> tuple[tuple[int, int], tuple[int, int], tuple[PadPair, PadPair]]:
    _check_nchw(x, "x")
    kernel = as_pair(window, "window")
    strides = kernel if stride is None else as_pair(stride, "stride")
    pads = resolve_padding(padding, (x.shape[2], x.shape[3]), kernel, strides, "padding")
    if any(p >= k for pair, k in zip(pads, kernel) for p in pair):
        raise ValueError(f"padding: expected less than the window {kernel} on every side, got {pads}")
    return kernel, strides, pads


def max_pool2d(x: Tensor, window: IntPair, stride: IntPair | None = None,
               padding: Padding = "same") -> Tensor:
    """Max-pool with TF padding semantics: padded cells are -inf, so they never win.

    Parameters
    ----------
    x : Tensor (m, n_C, n_H, n_W), NCHW
    window : int or (f_h, f_w);  stride : int or (s_h, s_w), default ``window``
    padding : see the module docstring (each pad must be smaller than the window).

    Returns
    -------
    Tensor (m, n_C, n_H_out, n_W_out), NCHW.
    """
    kernel, strides, pads = _pool_setup(x, window, stride, padding)
    native = _native_pool_args((x.shape[2], x.shape[3]), kernel, strides, pads)
    if native is not None:  # no padded copy: PyTorch's implicit padding is already -inf
        return F.max_pool2d(x, kernel, strides, padding=native[0], ceil_mode=native[1])
    (top, bottom), (left, right) = pads
    x = F.pad(x, (left, right, top, bottom), value=-math.inf)
    return F.max_pool2d(x, kernel, strides)


def avg_pool2d(x: Tensor, window: IntPair, stride: IntPair | None = None,
               padding: Padding = "same") -> Tensor:
    """Average-pool with TF padding semantics: each window divides by its count of real cells.

    Shapes and arguments as :func:`max_pool2d`.
    """
    kernel, strides, pads = _pool_setup(x, window, stride, padding)
    native = _native_pool_args((x.shape[2], x.shape[3]), kernel, strides, pads)
    if native is not None:
        return F.avg_pool2d(x, kernel, strides, padding=native[0], ceil_mode=native[1],
                            count_include_pad=False)
    # Window sums over a zero-padded copy, divided by window sums of a mask of real cells.
    (top, bottom), (left, right) = pads
    spec = (left, right, top, bottom)
    sums = F.avg_pool2d(F.pad(x, spec), kernel, strides, divisor_override=1)
    real = x.new_ones((1, 1, x.shape[2], x.shape[3]))
    counts = F.avg_pool2d(F.pad(real, spec), kernel, strides, divisor_override=1)
    return sums / counts


# ----------------------------------------------------------------------------- NHWC wrappers
def conv2d_nhwc(x: Tensor, w: Tensor, stride: IntPair = 1, padding: Padding = "same") -> Tensor:
    """:func:`conv2d` in canonical layouts: x NHWC (m, n_H, n_W, n_C_prev), w HWIO
    (f_h, f_w, n_C_prev, n_C); returns NHWC (m, n_H_out, n_W_out, n_C)."""
    if x.dim() != 4 or w.dim() != 4:
        raise ValueError(f"x, w: expected 4 dims (NHWC, HWIO), got {tuple(x.shape)}, {tuple(w.shape)}")
    # The permuted HWIO view is not contiguous; torch's slow_conv2d backward (float64 on CPU)
    # requires a contiguous weight for grad_weight, so materialise it once here.
    return nchw_to_nhwc(conv2d(nhwc_to_nchw(x), hwio_to_oihw(w).contiguous(), stride, padding))


def max_pool2d_nhwc(x: Tensor, window: IntPair, stride: IntPair | None = None,
                    padding: Padding = "same") -> Tensor:
    """:func:`max_pool2d` on NHWC (m, n_H, n_W, n_C); returns NHWC."""
    if x.dim() != 4:
        raise ValueError(f"x: expected 4 dims (m, n_H, n_W, n_C), got shape {tuple(x.shape)}")
    return nchw_to_nhwc(max_pool2d(nhwc_to_nchw(x), window, stride, padding))


def avg_pool2d_nhwc(x: Tensor, window: IntPair, stride: IntPair | None = None,
                    padding: Padding = "same") -> Tensor:
    """:func:`avg_pool2d` on NHWC (m, n_H, n_W, n_C); returns NHWC."""
    if x.dim() != 4:
        raise ValueError(f"x: expected 4 dims (m, n_H, n_W, n_C), got shape {tuple(x.shape)}")
    return nchw_to_nhwc(avg_pool2d(nhwc_to_nchw(x), window, stride, padding))


# ----------------------------------------------------------------------------- modules
class TFConv2d(nn.Module):
    """Bias-free conv layer with TF padding; ``weight`` is OIHW (out, in, f_h, f_w)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Padding = "same", *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        f_h, f_w = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = padding
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, f_h, f_w, dtype=dtype, device=device))
        nn.init.xavier_uniform_(self.weight)  # glorot-uniform, TF's xavier_initializer

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.stride, self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, f_h, f_w = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size=({f_h}, {f_w}), stride={self.stride}, padding={self.padding!r}, bias=False"


class TFMaxPool2d(nn.Module):
    """Max-pool layer with TF padding (see :func:`max_pool2d`)."""

    def __init__(self, window: IntPair, stride: IntPair | None = None, padding: Padding = "same") -> None:
        super().__init__()
        self.window, self.stride, self.padding = window, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.window, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"window={self.window}, stride={self.stride}, padding={self.padding!r}"


class FlattenNHWC(nn.Module):
    """NCHW (m, C, H, W) -> (m, H * W * C) in NHWC order, the row order of the canonical dense kernel.

    This is the one place the model permutes P2 to (m, H, W, C) before flattening, so row
    ``(h * W + w) * C + c`` of the canonical W3 multiplies P2[:, h, w, c].
    """

    def forward(self, x: Tensor) -> Tensor:
        return nchw_to_nhwc(x).flatten(1)


# ----------------------------------------------------------------------------- precision
@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Full float32 matmuls and cuDNN convolutions (TF32 off) inside the block; restores after.

    Verification must run in IEEE float32: TF32 (Ampere and later GPUs) keeps only 10 mantissa
    bits. Uses ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``:
    in PyTorch 2.13 these still work without a warning and keep the newer ``fp32_precision`` flags
    consistent, whereas setting the new flags makes the legacy getters raise. No effect on CPU.
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32, cudnn.allow_tf32 = False, False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved
