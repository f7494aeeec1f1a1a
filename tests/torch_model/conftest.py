"""Shared fixtures for the torch_model tests: independent NumPy computations and random params.

The NumPy functions here are written from TensorFlow's definitions (SAME output length
ceil(n / s), extra padding after), not from torch_model's code, so the tests compare two
independent computations.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from reference.spec import param_shapes


def tf_same_pads(n: int, f: int, s: int) -> tuple[int, int]:
    """TF SAME (before, after) padding of one axis."""
    out = -(-n // s)
    total = max(0, (out - 1) * s + f - n)
    return total // 2, total - total // 2


def conv_nhwc(x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
              pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Direct cross-correlation: x NHWC (m, H, W, C), w HWIO; zero padding ``pads``; NHWC out."""
    (t, b), (l, r) = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    f_h, f_w = w.shape[:2]
    out_h = (xp.shape[1] - f_h) // stride[0] + 1
    out_w = (xp.shape[2] - f_w) // stride[1] + 1
    out = np.zeros((x.shape[0], out_h, out_w, w.shape[3]), dtype=np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride[0]: i * stride[0] + f_h, j * stride[1]: j * stride[1] + f_w, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def pool_nhwc(x: np.ndarray, window: tuple[int, int], stride: tuple[int, int],
              pads: tuple[tuple[int, int], tuple[int, int]], mode: str) -> np.ndarray:
    """Max or mean over the *real* cells of each padded window (padding never takes part)."""
    (t, b), (l, r) = pads
    m, n_h, n_w, n_c = x.shape
    out_h = (n_h + t + b - window[0]) // stride[0] + 1
    out_w = (n_w + l + r - window[1]) // stride[1] + 1
    reduce = np.max if mode == "max" else np.mean
    out = np.zeros((m, out_h, out_w, n_c), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            h0, w0 = i * stride[0] - t, j * stride[1] - l
            cells = x[:, max(h0, 0): min(h0 + window[0], n_h), max(w0, 0): min(w0 + window[1], n_w), :]
            out[:, i, j, :] = reduce(cells, axis=(1, 2))
    return out


def random_params(spec, dtype, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    """Canonical params with normal entries (scaled), seeded."""
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in param_shapes(spec).items()}


def random_batch(spec, m: int, dtype, seed: int, soft: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """X NHWC (m, *spec.input_shape) and labels Y (m, n_classes): soft (rows sum to 1) or one-hot."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, *spec.input_shape)).astype(dtype)
    if soft:
        Y = rng.random((m, spec.n_classes)) + 0.1
        Y = (Y / Y.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        Y = np.eye(spec.n_classes, dtype=dtype)[rng.integers(0, spec.n_classes, m)]
    return X, Y


@pytest.fixture(scope="session")
def npref() -> SimpleNamespace:
    """The independent NumPy helpers above, as one namespace."""
    return SimpleNamespace(same_pads=tf_same_pads, conv=conv_nhwc, pool=pool_nhwc,
                           params=random_params, batch=random_batch)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run these tiny problems on one intra-op thread (restored after each test).

    On a busy 2-core machine two OpenMP threads spin-waiting on each other make millisecond ops
    take tens of milliseconds; one thread is faster here and changes no tested value.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
