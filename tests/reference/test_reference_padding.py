"""Padding forms resolved to ((top, bottom), (left, right)), TensorFlow's SAME rule, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.padding import output_size, pad_spatial, resolve_padding, same_padding_1d


def tf_same_1d(n, f, s):
    """TensorFlow's documented SAME rule, written independently of reference.padding."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2, out


@pytest.mark.parametrize("n, f, s, want", [
    (64, 4, 1, (1, 2)),  # the course's conv1: even kernel, extra row at the bottom
    (64, 2, 1, (0, 1)),  # conv2
    (64, 8, 8, (0, 0)),  # pool1 divides exactly
    (7, 3, 2, (1, 1)),
    (8, 3, 2, (0, 1)),   # stride 2, total 1: all of it after
    (2, 4, 4, (1, 1)),
    (5, 1, 3, (0, 0)),
])
def test_same_padding_known_values(n, f, s, want):
    assert same_padding_1d(n, f, s) == want


@pytest.mark.parametrize("n", [1, 2, 5, 7, 8, 64])
@pytest.mark.parametrize("f", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("s", [1, 2, 3, 8])
def test_same_matches_tensorflow_rule(n, f, s):
    before, after, out = tf_same_1d(n, f, s)
    assert same_padding_1d(n, f, s) == (before, after)
    if n + before + after >= f:
        padding = resolve_padding("same", (n, n), (f, f), (s, s))
        assert padding == ((before, after), (before, after))
        assert output_size((n, n), (f, f), (s, s), padding) == (out, out)


def test_same_is_asymmetric_extra_at_bottom_right():
    # conv1 of the course: 64x64, 4x4 kernel, stride 1 -> total 3: 1 top/left, 2 bottom/right.
    assert resolve_padding("SAME", (64, 64), (4, 4), (1, 1)) == ((1, 2), (1, 2))
    # conv2: 8x8, 2x2 -> total 1, all at the bottom/right.
    assert resolve_padding("same", (8, 8), (2, 2), (1, 1)) == ((0, 1), (0, 1))
    # pool1: 64 / 8 -> no padding; non-square input and kernel are resolved per axis.
    assert resolve_padding("same", (64, 64), (8, 8), (8, 8)) == ((0, 0), (0, 0))
    assert resolve_padding("same", (5, 6), (3, 2), (2, 1)) == ((1, 1), (0, 1))


def test_int_valid_explicit_forms():
    assert resolve_padding(2, (4, 4), (3, 3), 1) == ((2, 2), (2, 2))
    assert resolve_padding(np.int64(1), (4, 4), (3, 3), 1) == ((1, 1), (1, 1))
    assert resolve_padding("valid", (4, 5), (3, 3), 2) == ((0, 0), (0, 0))
    assert resolve_padding("VALID", (4, 5), (3, 3), 2) == ((0, 0), (0, 0))
    assert resolve_padding(((1, 0), (0, 2)), (4, 5), (3, 3), 1) == ((1, 0), (0, 2))
    assert resolve_padding([[0, 3], [2, 1]], (4, 5), (3, 3), (1, 2)) == ((0, 3), (2, 1))


@pytest.mark.parametrize(
    "pad, match",
    [
        ("full", "pad: expected an int, 'same', 'valid'"),
        (-1, "pad: expected an integer >= 0, got -1"),
        (1.5, "pad: expected an integer >= 0, got 1.5"),
        (float("nan"), "pad: expected a finite integer"),
        (float("inf"), "pad: expected a finite integer"),
        (True, "pad: expected an integer"),
        (((1, 1),), "pad: expected an int, 'same', 'valid' or"),
        (((1, -1), (0, 0)), "pad bottom: expected an integer >= 0, got -1"),
        (((1, 1), (0, 0.5)), "pad right: expected an integer >= 0, got 0.5"),
    ],
)
def test_bad_padding_raises_value_error_naming_it(pad, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        resolve_padding(pad, (4, 4), (2, 2), 1)


@pytest.mark.parametrize("stride", [0, -1, 1.5, float("nan"), (1, 0), (1, 2, 3)])
def test_bad_stride(stride):
    with pytest.raises(ValueError, match="stride"):
        resolve_padding(0, (4, 4), (2, 2), stride)


def test_window_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"pad: expected the window \(5, 5\) to fit the padded input \(4, 4\)"):
        resolve_padding("valid", (4, 4), (5, 5), 1)
    with pytest.raises(ValueError, match="window"):
        resolve_padding(((0, 0), (0, 0)), (6, 2), (2, 3), 1)
    assert resolve_padding(1, (4, 4), (5, 5), 1) == ((1, 1), (1, 1))  # fits once padded


def test_pad_spatial_values_and_dtype():
    X = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1)
    out = pad_spatial(X, ((1, 0), (0, 2)), -np.inf)
    assert out.dtype == np.float32 and out.shape == (2, 3, 5, 1)
    np.testing.assert_array_equal(out[:, 1:, :3], X)
    assert np.all(out[:, 0] == -np.inf) and np.all(out[:, :, 3:] == -np.inf)
    assert pad_spatial(X, ((0, 0), (0, 0)), 0) is X
