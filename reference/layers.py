"""The course's conv and pool layers (deeplearning.ai CNN course 4, week 1), written as loops.

Same names, signatures, return values and cache tuples as the course notebook
"Convolution model - Step by Step", so a learner's code runs unchanged after
``from reference import conv_forward, pool_forward, ...``:

- ``zero_pad(X, pad)``
- ``conv_single_step(a_slice_prev, W, b)``
- ``conv_forward(A_prev, W, b, hparameters) -> (Z, cache)``, ``cache = (A_prev, W, b, hparameters)``
- ``conv_backward(dZ, cache) -> (dA_prev, dW, db)``
- ``pool_forward(A_prev, hparameters, mode="max") -> (A, cache)``, ``cache = (A_prev, hparameters)``
- ``create_mask_from_window(x)``, ``distribute_value(dz, shape)``
- ``pool_backward(dA, cache, mode="max") -> dA_prev``

Layouts: activations NHWC ``(m, n_H, n_W, n_C)``; conv weights HWIO ``(f_h, f_w, n_C_prev, n_C)``;
conv bias ``(1, 1, 1, n_C)``. ``hparameters`` is ``{"stride": s, "pad": p}`` for conv and
``{"stride": s, "f": f}`` (optionally ``"pad": p``) for pool.

Where this differs from the notebook, it is only where the notebook's code is fragile:

- ``pad = 0`` works (the notebook's ``da_prev_pad[pad:-pad, pad:-pad]`` is empty when ``pad == 0``);
- non-square inputs and kernels work (the notebook does ``(f, f, n_C_prev, n_C) = W.shape``);
- ``pad`` may also be ``"same"`` (TensorFlow's asymmetric rule), ``"valid"`` or
  ``((top, bottom), (left, right))``; ``stride`` and the pool's ``f`` may be pairs ``(v, h)``;
- pools with padding follow TensorFlow: max-pool padding is ``-inf`` (it never wins) and
  average-pool divides by the number of *real* cells in the window;
- dtype is preserved: float32 in, float32 out (the notebook always allocated float64);
- bad arguments raise ``ValueError`` naming the argument, what was expected and what was got.

The vectorised equivalents live in :mod:`reference.fast_layers`.
"""

from __future__ import annotations

import numpy as np

from reference.padding import (
    Padding,
    check_stride,
    check_window,
    output_size,
    pad_spatial,
    resolve_padding,
)

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "POOL_MODES",
    "ConvGeometry",
    "PoolGeometry",
    "conv_geometry",
    "pool_geometry",
    "check_mode",
    "as_float_array",
    "check_upstream",
]

POOL_MODES = ("max", "average")


# --------------------------------------------------------------------------------------------
# Argument checking shared with reference.fast_layers
# --------------------------------------------------------------------------------------------


def as_float_array(x, name: str, ndim: int, layout: str) -> np.ndarray:
    """``x`` as a floating ndarray with ``ndim`` dims; integers become float64.

    ``layout`` (e.g. "(m, n_H, n_W, n_C)") is quoted in the error message.
    """
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims {layout}, got shape {arr.shape}")
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise ValueError(f"{name}: expected a real floating dtype (float32 or float64), got {arr.dtype}")
    return arr


def _check_hparameters(hparameters, required: tuple[str, ...]) -> None:
    if not isinstance(hparameters, dict):
        raise ValueError(f"hparameters: expected a dict with keys {list(required)}, got {type(hparameters).__name__}")
    missing = [key for key in required if key not in hparameters]
    if missing:
        raise ValueError(f"hparameters: expected keys {list(required)}, got {sorted(hparameters)} (missing {missing})")


def check_mode(mode) -> str:
    """``mode`` must be "max" or "average"."""
    if mode not in POOL_MODES:
        raise ValueError(f"mode: expected one of {list(POOL_MODES)}, got {mode!r}")
    return mode


class ConvGeometry:
    """Everything a conv layer needs to know about its shapes, resolved once.

    Attributes
    ----------
    m, n_H_prev, n_W_prev, n_C_prev : input sizes (NHWC)
    f_h, f_w, n_C : kernel height, width and number of filters (HWIO)
    s_h, s_w : strides
    padding : ((top, bottom), (left, right))
    n_H, n_W : output spatial size
    dtype : result dtype (``np.result_type`` of the inputs)
    """

    def __init__(self, A_prev: np.ndarray, W: np.ndarray, b, hparameters: dict):
        self.m, self.n_H_prev, self.n_W_prev, self.n_C_prev = A_prev.shape
        self.f_h, self.f_w, n_C_prev_w, self.n_C = W.shape
        if n_C_prev_w != self.n_C_prev:
            raise ValueError(
                f"W: expected n_C_prev = {self.n_C_prev} input channels (A_prev has shape {A_prev.shape}), "
                f"got W of shape {W.shape}"
            )
        self.s_h, self.s_w = check_stride(hparameters["stride"], "hparameters['stride']")
        self.padding: Padding = resolve_padding(
            hparameters["pad"],
            (self.n_H_prev, self.n_W_prev),
            (self.f_h, self.f_w),
            (self.s_h, self.s_w),
            name="hparameters['pad']",
        )
        self.n_H, self.n_W = output_size(
            (self.n_H_prev, self.n_W_prev), (self.f_h, self.f_w), (self.s_h, self.s_w), self.padding
        )
        arrays = [A_prev, W] if b is None else [A_prev, W, b]
        self.dtype = np.result_type(*arrays)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.m, self.n_H, self.n_W, self.n_C)


def conv_geometry(A_prev, W, b, hparameters):
    """Validate conv arguments; return ``(A_prev, W, b, geometry)``.

    ``b`` may be ``None`` (no bias, as in the course model's conv layers) or hold ``n_C`` values,
    shape ``(1, 1, 1, n_C)`` (the course) or ``(n_C,)``; it is returned as ``(1, 1, 1, n_C)``.
    """
    A_prev = as_float_array(A_prev, "A_prev", 4, "(m, n_H_prev, n_W_prev, n_C_prev)")
    W = as_float_array(W, "W", 4, "(f_h, f_w, n_C_prev, n_C)")
    _check_hparameters(hparameters, ("stride", "pad"))
    if b is not None:
        b = np.asarray(b)
        if b.shape not in ((1, 1, 1, W.shape[3]), (W.shape[3],)):
            raise ValueError(f"b: expected shape (1, 1, 1, {W.shape[3]}) (one bias per filter) or None, got shape {b.shape}")
        if b.dtype.kind != "f":
            b = b.astype(np.float64)
        b = b.reshape(1, 1, 1, W.shape[3])
    geometry = ConvGeometry(A_prev, W, b, hparameters)
    return A_prev, W, b, geometry


class PoolGeometry:
    """Shapes of a pool layer, resolved once (see :class:`ConvGeometry` for the names)."""

    def __init__(self, A_prev: np.ndarray, hparameters: dict):
        self.m, self.n_H_prev, self.n_W_prev, self.n_C = A_prev.shape
        self.f_h, self.f_w = check_window(hparameters["f"], "hparameters['f']")
        self.s_h, self.s_w = check_stride(hparameters["stride"], "hparameters['stride']")
        self.padding: Padding = resolve_padding(
            hparameters.get("pad", 0),
            (self.n_H_prev, self.n_W_prev),
            (self.f_h, self.f_w),
            (self.s_h, self.s_w),
            name="hparameters['pad']",
        )
        self.n_H, self.n_W = output_size(
            (self.n_H_prev, self.n_W_prev), (self.f_h, self.f_w), (self.s_h, self.s_w), self.padding
        )
        self._check_no_empty_window()
        self.dtype = A_prev.dtype

    def _check_no_empty_window(self) -> None:
        """Every window must hold at least one real cell (TF's SAME always does)."""
        (top, _), (left, _) = self.padding
        for axis, before, f, s, n_in, n_out in (
            ("vertical", top, self.f_h, self.s_h, self.n_H_prev, self.n_H),
            ("horizontal", left, self.f_w, self.s_w, self.n_W_prev, self.n_W),
        ):
            first_ok = before < f  # the first window ends past the leading padding
            last_ok = (n_out - 1) * s < before + n_in  # the last window starts before the trailing padding
            if not (first_ok and last_ok):
                raise ValueError(
                    f"hparameters['pad']: expected every pooling window to hold at least one input cell, "
                    f"got {axis} padding {self.padding} with window {f} and stride {s} on {n_in} cells"
                )

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.m, self.n_H, self.n_W, self.n_C)

    @property
    def is_padded(self) -> bool:
        return any(v for side in self.padding for v in side)

    def real_counts(self) -> np.ndarray:
        """Number of real (non-padding) cells in each window, shape ``(n_H, n_W)``, int64."""
        (top, _), (left, _) = self.padding

        def counts_1d(n_out, s, f, before, n_in):
            start = np.arange(n_out) * s - before  # window start in input coordinates
            return np.minimum(start + f, n_in) - np.maximum(start, 0)

        rows = counts_1d(self.n_H, self.s_h, self.f_h, top, self.n_H_prev)
        cols = counts_1d(self.n_W, self.s_w, self.f_w, left, self.n_W_prev)
        return np.outer(rows, cols)


def pool_geometry(A_prev, hparameters):
    """Validate pool arguments; return ``(A_prev, geometry)``."""
    A_prev = as_float_array(A_prev, "A_prev", 4, "(m, n_H_prev, n_W_prev, n_C_prev)")
    _check_hparameters(hparameters, ("stride", "f"))
    return A_prev, PoolGeometry(A_prev, hparameters)


def check_upstream(d, expected_shape, name: str, layout: str) -> np.ndarray:
    """An upstream gradient ``d`` as a float array of exactly the forward output's shape."""
    d = as_float_array(d, name, 4, layout)
    if d.shape != tuple(expected_shape):
        raise ValueError(f"{name}: expected shape {tuple(expected_shape)} (the forward output), got {d.shape}")
    return d


# --------------------------------------------------------------------------------------------
# The course API
# --------------------------------------------------------------------------------------------


def zero_pad(X, pad):
    """Pad the height and width of every image of ``X`` with zeros.

    Parameters
    ----------
    X : ndarray (m, n_H, n_W, n_C)
    pad : int or ((top, bottom), (left, right))
        Zeros added on each side (an int pads all four sides alike, as in the course).

    Returns
    -------
    X_pad : ndarray (m, n_H + top + bottom, n_W + left + right, n_C), dtype of ``X``.
    """
    X = as_float_array(X, "X", 4, "(m, n_H, n_W, n_C)")
    if isinstance(pad, str):
        raise ValueError(
            f"pad: expected an int or ((top, bottom), (left, right)) (zero_pad has no kernel to resolve "
            f"'same'/'valid'; use resolve_padding), got {pad!r}"
        )
    # A 1x1 window with stride 1 always fits, so this only validates the amounts.
    padding = resolve_padding(pad, X.shape[1:3], (1, 1), (1, 1), name="pad")
    X_pad = pad_spatial(X, padding, 0)
    return X_pad.copy() if X_pad is X else X_pad


def conv_single_step(a_slice_prev, W, b):
    """One filter applied at one position: ``sum(a_slice_prev * W) + b``.

    Parameters
    ----------
    a_slice_prev : ndarray (f_h, f_w, n_C_prev)
    W : ndarray (f_h, f_w, n_C_prev)
    b : ndarray (1, 1, 1) (or any single value)

    Returns
    -------
    Z : NumPy scalar of the inputs' dtype.
    """
    s = np.multiply(a_slice_prev, W)
    Z = np.sum(s)
    # The course wrote ``Z + float(b)``; ``b.item()`` is the same value without NumPy 2's warning
    # for float() of an array, and stays a weak Python float so float32 stays float32.
    return Z + np.asarray(b).item()


def conv_forward(A_prev, W, b, hparameters):
    """Forward convolution (loops, as in the course).

    Parameters
    ----------
    A_prev : ndarray (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray (f_h, f_w, n_C_prev, n_C)
    b : ndarray (1, 1, 1, n_C), or None for no bias
    hparameters : dict
        ``{"stride": s, "pad": p}``; ``s`` int or ``(s_h, s_w)``; ``p`` int, "same", "valid" or
        ``((top, bottom), (left, right))``.

    Returns
    -------
    Z : ndarray (m, n_H, n_W, n_C), ``n_H = floor((n_H_prev + top + bottom - f_h) / s_h) + 1``.
    cache : (A_prev, W, b, hparameters), for :func:`conv_backward`.
    """
    A_prev, W, b_arr, g = conv_geometry(A_prev, W, b, hparameters)
    b_arr = np.zeros((1, 1, 1, g.n_C), dtype=g.dtype) if b_arr is None else b_arr
    Z = np.zeros(g.output_shape, dtype=g.dtype)
    A_prev_pad = pad_spatial(A_prev, g.padding, 0)
    for i in range(g.m):
        a_prev_pad = A_prev_pad[i]
        for h in range(g.n_H):
            vert_start = h * g.s_h
            vert_end = vert_start + g.f_h
            for w in range(g.n_W):
                horiz_start = w * g.s_w
                horiz_end = horiz_start + g.f_w
                a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(g.n_C):
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b_arr[:, :, :, c])
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def conv_backward(dZ, cache):
    """Backward convolution (loops, as in the course, with the stride applied).

    Parameters
    ----------
    dZ : ndarray (m, n_H, n_W, n_C), gradient of the cost with respect to ``Z``.
    cache : (A_prev, W, b, hparameters) from :func:`conv_forward`.

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
    (top, bottom), (left, right) = g.padding
    A_prev_pad = pad_spatial(A_prev, g.padding, 0)
    dA_prev_pad = np.zeros(
        (g.m, g.n_H_prev + top + bottom, g.n_W_prev + left + right, g.n_C_prev), dtype=dtype
    )
    dW = np.zeros(W.shape, dtype=dtype)
    db = np.zeros((1, 1, 1, g.n_C), dtype=dtype)
    for i in range(g.m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(g.n_H):
            vert_start = h * g.s_h
            vert_end = vert_start + g.f_h
            for w in range(g.n_W):
                horiz_start = w * g.s_w
                horiz_end = horiz_start + g.f_w
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(g.n_C):
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    # Crop with explicit bounds: the course's [pad:-pad] is empty when pad == 0.
    dA_prev = dA_prev_pad[:, top : top + g.n_H_prev, left : left + g.n_W_prev, :].copy()
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    """Forward pooling (loops, as in the course).

    Parameters
    ----------
    A_prev : ndarray (m, n_H_prev, n_W_prev, n_C)
    hparameters : dict
        ``{"stride": s, "f": f}`` and optionally ``"pad"`` (int, "same", "valid" or
        ``((top, bottom), (left, right))``). With padding, max-pool pads with ``-inf`` and
        average-pool divides by the number of real cells in each window (TensorFlow's SAME rule).
    mode : "max" or "average"

    Returns
    -------
    A : ndarray (m, n_H, n_W, n_C), dtype of ``A_prev``.
    cache : (A_prev, hparameters), for :func:`pool_backward`.
    """
    check_mode(mode)
    A_prev, g = pool_geometry(A_prev, hparameters)
    fill = -np.inf if mode == "max" else 0
    A_prev_pad = pad_spatial(A_prev, g.padding, fill)
    counts = g.real_counts()
    A = np.zeros(g.output_shape, dtype=g.dtype)
    for i in range(g.m):
        for h in range(g.n_H):
            vert_start = h * g.s_h
            vert_end = vert_start + g.f_h
            for w in range(g.n_W):
                horiz_start = w * g.s_w
                horiz_end = horiz_start + g.f_w
                for c in range(g.n_C):
                    a_prev_slice = A_prev_pad[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    else:
                        # np.mean when the window holds no padding; else the mean of its real cells.
                        A[i, h, w, c] = np.sum(a_prev_slice) / int(counts[h, w])
    cache = (A_prev, hparameters)
    return A, cache


def create_mask_from_window(x):
    """Mask of the maximum of ``x``: ``x == max(x)``.

    Parameters
    ----------
    x : ndarray (f_h, f_w)

    Returns
    -------
    mask : bool ndarray (f_h, f_w), True at *every* entry equal to the maximum.

    Notes
    -----
    This is the course's rule: on a tie, every tied entry gets the full upstream gradient. The
    vectorised :func:`reference.fast_layers.pool_backward_fast` instead routes the gradient to the
    *first* maximum in row-major window order, as TensorFlow and PyTorch do; the two agree
    whenever each window has a single maximum.
    """
    x = np.asarray(x)
    return x == np.max(x)


def distribute_value(dz, shape, count=None):
    """Spread ``dz`` evenly over a window of ``shape``.

    Parameters
    ----------
    dz : scalar
    shape : (n_H, n_W)
    count : int, optional
        Number of real (non-padding) cells the forward average divided by; defaults to
        ``n_H * n_W`` (the course's rule, no padding).

    Returns
    -------
    a : ndarray ``shape`` filled with ``dz / count``; dtype of ``dz`` if it is a NumPy float,
    float64 otherwise.
    """
    (n_H, n_W) = shape
    count = n_H * n_W if count is None else count
    dtype = dz.dtype if isinstance(dz, (np.floating, np.ndarray)) and dz.dtype.kind == "f" else np.float64
    average = dz / count
    return np.full((n_H, n_W), average, dtype=dtype)


def pool_backward(dA, cache, mode="max"):
    """Backward pooling (loops, as in the course, with the stride applied).

    Parameters
    ----------
    dA : ndarray (m, n_H, n_W, n_C), gradient of the cost with respect to the pool output.
    cache : (A_prev, hparameters) from :func:`pool_forward`.
    mode : "max" or "average"

    Returns
    -------
    dA_prev : ndarray (m, n_H_prev, n_W_prev, n_C)

    Notes
    -----
    Max mode uses :func:`create_mask_from_window`: every tied maximum receives the gradient.
    """
    check_mode(mode)
    (A_prev, hparameters) = cache
    A_prev, g = pool_geometry(A_prev, hparameters)
    dA = check_upstream(dA, g.output_shape, "dA", "(m, n_H, n_W, n_C)")
    dtype = np.result_type(g.dtype, dA.dtype)
    (top, bottom), (left, right) = g.padding
    A_prev_pad = pad_spatial(A_prev, g.padding, -np.inf)  # only read in max mode
    counts = g.real_counts()
    window = g.f_h * g.f_w
    dA_prev_pad = np.zeros((g.m, g.n_H_prev + top + bottom, g.n_W_prev + left + right, g.n_C), dtype=dtype)
    for i in range(g.m):
        a_prev = A_prev_pad[i]
        for h in range(g.n_H):
            vert_start = h * g.s_h
            vert_end = vert_start + g.f_h
            for w in range(g.n_W):
                horiz_start = w * g.s_w
                horiz_end = horiz_start + g.f_w
                for c in range(g.n_C):
                    if mode == "max":
                        a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]
                        mask = create_mask_from_window(a_prev_slice)
                        dA_prev_pad[i, vert_start:vert_end, horiz_start:horiz_end, c] += np.multiply(mask, dA[i, h, w, c])
                    else:
                        da = dA[i, h, w, c]
                        count = int(counts[h, w])
                        dA_prev_pad[i, vert_start:vert_end, horiz_start:horiz_end, c] += distribute_value(
                            da, (g.f_h, g.f_w), None if count == window else count
                        )
    return dA_prev_pad[:, top : top + g.n_H_prev, left : left + g.n_W_prev, :].copy()
