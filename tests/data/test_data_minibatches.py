"""random_mini_batches, the course's seed schedule, one-hot and scaling: course semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.data.batches import course_epoch_seeds, epoch_mini_batches, random_mini_batches
from reference.data.dataset import convert_to_one_hot, normalize_images, one_hot
from reference.spec import COURSE_MODEL, COURSE_TRAINING

M_TRAIN = 1080  # SIGNS training set size


def course_random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """The course's cnn_utils.random_mini_batches, verbatim apart from formatting."""
    m = X.shape[0]
    mini_batches = []
    np.random.seed(seed)
    permutation = list(np.random.permutation(m))
    shuffled_X = X[permutation, :, :, :]
    shuffled_Y = Y[permutation, :]
    num_complete_minibatches = math.floor(m / mini_batch_size)
    for k in range(0, num_complete_minibatches):
        mini_batch_X = shuffled_X[k * mini_batch_size : k * mini_batch_size + mini_batch_size, :, :, :]
        mini_batch_Y = shuffled_Y[k * mini_batch_size : k * mini_batch_size + mini_batch_size, :]
        mini_batches.append((mini_batch_X, mini_batch_Y))
    if m % mini_batch_size != 0:
        mini_batch_X = shuffled_X[num_complete_minibatches * mini_batch_size : m, :, :, :]
        mini_batch_Y = shuffled_Y[num_complete_minibatches * mini_batch_size : m, :]
        mini_batches.append((mini_batch_X, mini_batch_Y))
    return mini_batches


def indexed_examples(m: int, rng: np.random.Generator):
    """X (m, 2, 2, 3) whose [i, 0, 0, 0] is i, and random one-hot Y (m, 6)."""
    X = rng.standard_normal((m, 2, 2, 3))
    X[:, 0, 0, 0] = np.arange(m)
    Y = one_hot(rng.integers(0, COURSE_MODEL.n_classes, size=m), dtype=np.float64)
    return X, Y


@pytest.mark.parametrize("seed", [0, 4, 17])
def test_1080_examples_give_17_batches_in_the_course_permutation(seed):
    X, Y = indexed_examples(M_TRAIN, np.random.default_rng(seed))
    batches = random_mini_batches(X, Y, 64, seed)
    assert [b[0].shape[0] for b in batches] == [64] * 16 + [56]
    assert all(bx.shape[1:] == (2, 2, 3) and by.shape[1:] == (6,) for bx, by in batches)
    np.random.seed(seed)
    expected = np.random.permutation(M_TRAIN)
    order = np.concatenate([bx[:, 0, 0, 0] for bx, _ in batches]).astype(np.int64)
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(np.concatenate([by for _, by in batches]), Y[expected])
    # The same permutation without touching the global state (documented equivalence).
    np.testing.assert_array_equal(np.random.RandomState(seed).permutation(M_TRAIN), expected)


@pytest.mark.parametrize("m, size", [(1080, 64), (128, 64), (10, 64), (1, 1), (7, 3)])
def test_identical_to_the_course_code(m, size):
    X, Y = indexed_examples(m, np.random.default_rng(m))
    ours = random_mini_batches(X, Y, size, seed=m + 1)
    course = course_random_mini_batches(X, Y, size, seed=m + 1)
    assert len(ours) == len(course) == math.ceil(m / size)
    for (ox, oy), (cx, cy) in zip(ours, course):
        np.testing.assert_array_equal(ox, cx)
        np.testing.assert_array_equal(oy, cy)


def test_full_size_images_keep_their_shape(signs_train_h5):
    from reference.data.course_h5 import read_signs_h5

    X_orig, y, _, _ = read_signs_h5(signs_train_h5, "train")
    X, Y = normalize_images(X_orig), one_hot(y)
    batches = random_mini_batches(X, Y, COURSE_TRAINING.mini_batch_size, seed=4)
    assert len(batches) == 17
    assert batches[0][0].shape == (64, 64, 64, 3) and batches[-1][0].shape == (56, 64, 64, 3)
    assert batches[0][1].shape == (64, 6) and batches[0][0].dtype == np.float32


def test_reseeds_the_global_rng_like_the_course():
    X, Y = indexed_examples(20, np.random.default_rng(1))
    random_mini_batches(X, Y, 8, seed=11)
    after_ours = np.random.rand(3)
    np.random.seed(11)
    np.random.permutation(20)
    np.testing.assert_array_equal(after_ours, np.random.rand(3))


def test_course_seed_schedule():
    assert COURSE_TRAINING.first_seed == 3
    assert course_epoch_seeds(4) == [4, 5, 6, 7]
    assert course_epoch_seeds(2, first_seed=10) == [11, 12]
    assert course_epoch_seeds(0) == []
    # The course's loop: seed = 3; for each epoch: seed = seed + 1; random_mini_batches(..., seed).
    X, Y = indexed_examples(150, np.random.default_rng(2))
    seed = COURSE_TRAINING.first_seed
    for epoch in range(3):
        seed = seed + 1
        course = course_random_mini_batches(X, Y, COURSE_TRAINING.mini_batch_size, seed)
        ours = epoch_mini_batches(X, Y, epoch)
        assert len(ours) == len(course) == 3
        for (ox, oy), (cx, cy) in zip(ours, course):
            np.testing.assert_array_equal(ox, cx)
            np.testing.assert_array_equal(oy, cy)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, Y: random_mini_batches(X, Y[:-1]), "X, Y: expected the same number"),
        (lambda X, Y: random_mini_batches(X, Y, 0), "mini_batch_size"),
        (lambda X, Y: epoch_mini_batches(X, Y, -1), "epoch"),
        (lambda X, Y: course_epoch_seeds(-2), "num_epochs"),
    ],
)
def test_bad_batching_arguments(call, match):
    X, Y = indexed_examples(10, np.random.default_rng(3))
    with pytest.raises(ValueError, match=match):
        call(X, Y)


def test_convert_to_one_hot_course_semantics():
    Y = np.array([[1, 2, 3, 5, 0, 2]])  # (1, m) as load_dataset returns
    expected = np.eye(6)[Y.reshape(-1)].T
    got = convert_to_one_hot(Y, 6)
    assert got.shape == (6, 6) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got.argmax(axis=0), Y.reshape(-1))
    rows = one_hot(Y, dtype=np.float64)
    assert rows.shape == (6, 6)
    np.testing.assert_array_equal(rows, expected.T)
    assert one_hot(Y.reshape(-1)).dtype == np.float32


@pytest.mark.parametrize("labels", [np.array([0, 6]), np.array([-1, 2]), np.array([0.0, 1.0])])
def test_convert_to_one_hot_refuses_bad_labels(labels):
    with pytest.raises(ValueError, match="Y: expected"):
        convert_to_one_hot(labels, 6)


def test_normalize_images_matches_the_notebook_cell():
    X_orig = np.random.default_rng(5).integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    X_orig[0, 0, 0] = [0, 255, 128]
    course = X_orig / 255.0  # the notebook: X_train = X_train_orig/255.
    x64 = normalize_images(X_orig, np.float64)
    x32 = normalize_images(X_orig)
    assert x64.dtype == np.float64 and x32.dtype == np.float32 and x32.shape == X_orig.shape
    np.testing.assert_array_equal(x64, course)
    np.testing.assert_array_equal(x32, course.astype(np.float32))
    assert x32[0, 0, 0, 1] == 1.0 and x32[0, 0, 0, 0] == 0.0
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        normalize_images(X_orig, np.float16)
