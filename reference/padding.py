"""Padding and window-size arithmetic shared by the loop and the vectorised layers.

Every padding form the layers accept is resolved here, once, to explicit amounts
``((top, bottom), (left, right))``:

``int p``
    ``p`` zeros on every side (the course's ``zero_pad`` convention).
``"valid"``
    No padding (case-insensitive, so TensorFlow's ``"VALID"`` works too).
``"same"``
    TensorFlow's rule, per spatial axis: ``n_out = ceil(n / s)`` and
    ``total = max(0, (n_out - 1) * s + f - n)``; the top/left side gets ``total // 2`` and the odd
    extra row/column goes to the bottom/right (unlike PyTorch's symmetric ``padding=``).
``((top, bottom), (left, right))``
    Explicit non-negative amounts.

All errors are ``ValueError`` naming the argument, what was expected and what was got.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "Padding",
    "as_pair",
    "check_stride",
    "check_window",
    "resolve_padding",
    "output_size",
    "same_output_size",
    "same_padding_1d",
    "pad_spatial",
]

# ((top, bottom), (left, right))
Padding = tuple[tuple[int, int], tuple[int, int]]


def _check_int(value, name: str, *, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum``; bools, floats, NaN and inf are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not math.isfinite(float(value)):
            raise ValueError(f"{name}: expected a finite integer >= {minimum}, got {value!r}")
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def as_pair(value, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as ``(vertical, horizontal)``, each >= ``minimum``.

    Used for strides and pool windows, which may be square (``2``) or not (``(2, 3)``).
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an integer or a pair (vertical, horizontal), got {value!r}")
        return (
            _check_int(value[0], f"{name}[0]", minimum=minimum),
            _check_int(value[1], f"{name}[1]", minimum=minimum),
        )
    v = _check_int(value, name, minimum=minimum)
    return (v, v)


def check_stride(stride, name: str = "stride") -> tuple[int, int]:
    """A positive stride (int or pair) as ``(s_h, s_w)``."""
    return as_pair(stride, name, minimum=1)


def check_window(f, name: str = "f") -> tuple[int, int]:
    """A positive window size (int or pair) as ``(f_h, f_w)``."""
    return as_pair(f, name, minimum=1)


def same_output_size(n: int, s: int) -> int:
    """TensorFlow SAME output length along one axis: ``ceil(n / s)``."""
    return -(-int(n) // int(s))


def same_padding_1d(n: int, f: int, s: int) -> tuple[int, int]:
    """TensorFlow SAME padding along one axis: ``(before, after)``, the extra cell after."""
    n_out = same_output_size(n, s)
    total = max(0, (n_out - 1) * s + f - n)
    return (total // 2, total - total // 2)


def _explicit_padding(pad, name: str) -> Padding:
    """Validate ``((top, bottom), (left, right))``."""
    ok = isinstance(pad, (tuple, list)) and len(pad) == 2
    ok = ok and all(isinstance(side, (tuple, list)) and len(side) == 2 for side in pad)
    if not ok:
        raise ValueError(
            f"{name}: expected an int, 'same', 'valid' or ((top, bottom), (left, right)), got {pad!r}"
        )
    (top, bottom), (left, right) = pad
    return (
        (_check_int(top, f"{name} top", minimum=0), _check_int(bottom, f"{name} bottom", minimum=0)),
        (_check_int(left, f"{name} left", minimum=0), _check_int(right, f"{name} right", minimum=0)),
    )


def resolve_padding(pad, input_hw, kernel_hw, stride_hw, name: str = "pad") -> Padding:
    """Resolve any accepted padding form to ``((top, bottom), (left, right))``.

    Parameters
    ----------
    pad : int, str or ((int, int), (int, int))
        ``p`` (all sides), ``"same"``, ``"valid"`` (any case), or explicit amounts.
    input_hw : (int, int)
        Spatial input size ``(n_H_prev, n_W_prev)``.
    kernel_hw : int or (int, int)
        Window size ``(f_h, f_w)``; may be non-square.
    stride_hw : int or (int, int)
        Stride ``(s_h, s_w)``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ((top, bottom), (left, right)) : explicit non-negative amounts.

    Raises
    ------
    ValueError
        Unknown string, negative or non-integer amounts, non-finite values, non-positive stride or
        window, or a window larger than the padded input.
    """
    n_H, n_W = (int(v) for v in input_hw)
    f_h, f_w = check_window(kernel_hw, "kernel size")
    s_h, s_w = check_stride(stride_hw)
    if isinstance(pad, str):
        form = pad.lower()
        if form == "valid":
            amounts: Padding = ((0, 0), (0, 0))
        elif form == "same":
            amounts = (same_padding_1d(n_H, f_h, s_h), same_padding_1d(n_W, f_w, s_w))
        else:
            raise ValueError(f"{name}: expected an int, 'same', 'valid' or ((top, bottom), (left, right)), got {pad!r}")
    elif isinstance(pad, (tuple, list)):
        amounts = _explicit_padding(pad, name)
    else:
        p = _check_int(pad, name, minimum=0)
        amounts = ((p, p), (p, p))
    (top, bottom), (left, right) = amounts
    if n_H + top + bottom < f_h or n_W + left + right < f_w:
        raise ValueError(
            f"{name}: expected the window ({f_h}, {f_w}) to fit the padded input "
            f"({n_H + top + bottom}, {n_W + left + right}) (input ({n_H}, {n_W}), padding {amounts}), "
            f"got a window larger than the padded input"
        )
    return amounts


def output_size(input_hw, kernel_hw, stride_hw, padding: Padding) -> tuple[int, int]:
    """Output ``(n_H, n_W)`` = ``floor((n + before + after - f) / s) + 1`` per axis."""
    (top, bottom), (left, right) = padding
    f_h, f_w = check_window(kernel_hw, "kernel size")
    s_h, s_w = check_stride(stride_hw)
    n_H, n_W = input_hw
    return ((n_H + top + bottom - f_h) // s_h + 1, (n_W + left + right - f_w) // s_w + 1)


def pad_spatial(X, padding: Padding, value=0):
    """Pad axes 1 and 2 of an NHWC array with ``value``.

    Parameters
    ----------
    X : ndarray (m, n_H, n_W, n_C)
    padding : ((top, bottom), (left, right))
    value : scalar
        Fill value: 0 for convolutions and average pools, ``-inf`` for max pools (so that padding
        never wins a max).

    Returns
    -------
    ndarray (m, n_H + top + bottom, n_W + left + right, n_C), same dtype as ``X``; ``X`` itself when
    there is nothing to pad.
    """
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return X
    m, n_H, n_W, n_C = X.shape
    # Preallocate and copy the interior: cheaper than np.pad, and it keeps X's dtype.
    out = np.full((m, n_H + top + bottom, n_W + left + right, n_C), value, dtype=X.dtype)
    out[:, top : top + n_H, left : left + n_W, :] = X
    return out
