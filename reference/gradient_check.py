"""Centred finite differences (cs231n style) to check every analytic backward, in float64.

``numerical_gradient(f, x)`` differentiates a scalar function; ``numerical_gradient_array(f, x,
df)`` differentiates ``sum(f(x) * df)`` for an array-valued ``f`` and an upstream gradient ``df``
(use a random one: an all-ones ``df`` hides transposition and ordering mistakes). Both perturb
``x`` in place one coordinate at a time and restore it, so ``f`` must read ``x`` afresh on every
call. Compare with ``signs.tolerances.relative_error`` against ``GRADIENT_CHECK``.

Non-smooth layers (ReLU, max-pool) are differentiable only away from their kinks; inputs for
those checks must keep every ReLU input and every window's top-two gap larger than ``h``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numerical_gradient", "numerical_gradient_array", "sample_indices", "DEFAULT_STEP"]

# float64: the centred difference's truncation error ~h^2 and its rounding error ~eps/h balance
# near h ~ 1e-5, giving ~1e-10 relative accuracy on smooth functions of unit scale.
DEFAULT_STEP = 1e-5


def _check_float64(x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x: expected a float64 ndarray (finite differences need float64), got {got}")


def sample_indices(shape: tuple[int, ...], count: int, seed: int) -> list[tuple[int, ...]]:
    """``count`` distinct multi-indices of an array of ``shape``, drawn with ``seed`` (all of
    them, in order, when ``count`` >= the array's size)."""
    size = int(np.prod(shape))
    if count >= size:
        flat = np.arange(size)
    else:
        flat = np.sort(np.random.default_rng(seed).choice(size, size=count, replace=False))
    return [tuple(int(v) for v in np.unravel_index(i, shape)) for i in flat]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = DEFAULT_STEP, indices=None) -> np.ndarray:
    """Centred difference ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` of a scalar ``f``.

    Parameters
    ----------
    f : callable with no arguments returning a scalar; it must read ``x`` (perturbed in place)
    x : float64 ndarray, any shape
    h : step
    indices : list of multi-indices, optional (default: every coordinate)

    Returns
    -------
    grad : float64 ndarray, the shape of ``x`` when ``indices`` is None, else ``(len(indices),)``.
    """
    _check_float64(x)
    coords = list(np.ndindex(x.shape)) if indices is None else list(indices)
    out = np.empty(len(coords), dtype=np.float64)
    for k, idx in enumerate(coords):
        old = x[idx]
        x[idx] = old + h
        f_plus = float(f())
        x[idx] = old - h
        f_minus = float(f())
        x[idx] = old
        out[k] = (f_plus - f_minus) / (2 * h)
    return out.reshape(x.shape) if indices is None else out


def numerical_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = DEFAULT_STEP, indices=None
) -> np.ndarray:
    """Centred difference of ``sum(f() * df)`` with respect to ``x``.

    Parameters
    ----------
    f : callable with no arguments returning an array shaped like ``df``; it must read ``x``
    x : float64 ndarray
    df : ndarray, the upstream gradient (random, never all ones)
    h, indices : as for :func:`numerical_gradient`

    Returns
    -------
    grad : float64 ndarray (shape of ``x``, or ``(len(indices),)``).
    """
    _check_float64(x)
    df = np.asarray(df, dtype=np.float64)
    coords = list(np.ndindex(x.shape)) if indices is None else list(indices)
    out = np.empty(len(coords), dtype=np.float64)
    for k, idx in enumerate(coords):
        old = x[idx]
        x[idx] = old + h
        f_plus = np.array(f(), dtype=np.float64)
        x[idx] = old - h
        f_minus = np.array(f(), dtype=np.float64)
        x[idx] = old
        # Difference elementwise first, then weight: no cancellation between two large sums.
        out[k] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return out.reshape(x.shape) if indices is None else out
