"""Mini-batches: the course's ``random_mini_batches`` and its seed schedule, for every backend."""

from __future__ import annotations

import math

import numpy as np

from reference.spec import COURSE_TRAINING

__all__ = ["random_mini_batches", "course_epoch_seeds", "epoch_mini_batches"]

def random_mini_batches(X: np.ndarray, Y: np.ndarray, mini_batch_size: int = 64, seed: int = 0):
    """The course's ``random_mini_batches``, with its exact semantics.

    ``np.random.seed(seed)`` then ``list(np.random.permutation(m))``; the complete batches in
    order, then the remainder batch if ``m`` is not a multiple of ``mini_batch_size``.

    Note: this reseeds NumPy's *global* RNG, as the course does; the course's permutations (and so
    its batch order) are only reproduced this way. Code that needs its own randomness afterwards
    must use its own ``np.random.Generator``.

    Parameters
    ----------
    X : (m, 64, 64, 3) NHWC images (any array whose first axis is the example axis).
    Y : (m, 6) one-hot labels (any array whose first axis is the example axis).

    Returns
    -------
    list of (mini_batch_X, mini_batch_Y) tuples, X (b, 64, 64, 3) and Y (b, 6).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim == 0 or Y.ndim == 0 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            "X, Y: expected the same number of examples on axis 0, "
            f"got shapes {X.shape} and {Y.shape}"
        )
    if int(mini_batch_size) != mini_batch_size or mini_batch_size < 1:
        raise ValueError(f"mini_batch_size: expected a positive integer, got {mini_batch_size!r}")
    mini_batch_size = int(mini_batch_size)
    m = X.shape[0]
    np.random.seed(seed)
    permutation = list(np.random.permutation(m))
    shuffled_X = X[permutation]
    shuffled_Y = Y[permutation]
    num_complete_minibatches = math.floor(m / mini_batch_size)
    mini_batches = []
    for k in range(num_complete_minibatches):
        batch = slice(k * mini_batch_size, (k + 1) * mini_batch_size)
        mini_batches.append((shuffled_X[batch], shuffled_Y[batch]))
    if m % mini_batch_size != 0:
        rest = slice(num_complete_minibatches * mini_batch_size, m)
        mini_batches.append((shuffled_X[rest], shuffled_Y[rest]))
    return mini_batches


def course_epoch_seeds(num_epochs: int, first_seed: int = COURSE_TRAINING.first_seed) -> list[int]:
    """The seed of each epoch: the course sets ``seed = 3`` and does ``seed += 1`` before every
    epoch, so epoch 0 uses 4, epoch 1 uses 5, ... (``first_seed + 1 + epoch``)."""
    if int(num_epochs) != num_epochs or num_epochs < 0:
        raise ValueError(f"num_epochs: expected a non-negative integer, got {num_epochs!r}")
    return [int(first_seed) + 1 + epoch for epoch in range(int(num_epochs))]


def epoch_mini_batches(
    X: np.ndarray,
    Y: np.ndarray,
    epoch: int,
    *,
    mini_batch_size: int = COURSE_TRAINING.mini_batch_size,
    first_seed: int = COURSE_TRAINING.first_seed,
):
    """The mini-batches of 0-based ``epoch`` in the course's schedule (seed ``first_seed + 1 + epoch``).

    Reseeds the global NumPy RNG (see :func:`random_mini_batches`).
    """
    if int(epoch) != epoch or epoch < 0:
        raise ValueError(f"epoch: expected a non-negative integer, got {epoch!r}")
    seed = course_epoch_seeds(int(epoch) + 1, first_seed)[-1]
    return random_mini_batches(X, Y, mini_batch_size, seed)
