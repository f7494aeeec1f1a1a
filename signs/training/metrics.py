"""Metrics of a trained model, the course's epoch-cost divisor, and cutting a data set down."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference.spec import COURSE_MODEL

__all__ = ["course_cost_divisor", "subset", "predict_classes", "accuracy", "confusion_matrix"]

_PREDICT_CHUNK = 256  # examples per predict_logits call: bounds the backends' activation memory


def course_cost_divisor(m: int, mini_batch_size: int) -> int:
    """The course's ``num_minibatches = int(m / minibatch_size)`` (16 for 1080 / 64, not 17).

    With fewer examples than one batch the course would divide by zero; 1 is used instead.
    """
    return max(1, int(m / mini_batch_size))


def subset(data, limit: int | None):
    """``data`` (a ``reference.data.dataset.SignsData``) cut to at most ``limit`` examples per split.

    The examples kept are evenly spaced through each split (``np.linspace`` indices), so a small
    subset of a label-sorted image folder still holds every class.
    """
    if limit is None:
        return data
    if int(limit) != limit or limit < 1:
        raise ValueError(f"limit: expected a positive integer, got {limit!r}")

    def cut(X, Y):
        if X is None or X.shape[0] <= limit:
            return X, Y
        index = np.unique(np.linspace(0, X.shape[0] - 1, int(limit)).round().astype(np.int64))
        return X[index], Y[index]

    X_train, Y_train = cut(data.X_train, data.Y_train)
    X_test, Y_test = cut(data.X_test, data.Y_test)
    return replace(data, X_train=X_train, Y_train=Y_train, X_test=X_test, Y_test=Y_test)


def predict_classes(backend, params, X: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """int64 (m,) argmax of the backend's logits for X (m, 64, 64, 3), computed in chunks."""
    classes = []
    for start in range(0, X.shape[0], _PREDICT_CHUNK):
        logits = backend.predict_logits(params, X[start : start + _PREDICT_CHUNK], spec=COURSE_MODEL, device=device)
        classes.append(np.argmax(np.asarray(logits), axis=1))
    return np.concatenate(classes).astype(np.int64) if classes else np.zeros(0, dtype=np.int64)


def accuracy(backend, params, X: np.ndarray, Y: np.ndarray, *, device: str = "cpu") -> float:
    """The course's accuracy: mean of argmax(logits) == argmax(Y); X (m, 64, 64, 3), Y (m, 6)."""
    return float(np.mean(predict_classes(backend, params, X, device=device) == np.argmax(Y, axis=1)))


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int = COURSE_MODEL.n_classes) -> np.ndarray:
    """int64 (n_classes, n_classes) counts: row = true class, column = predicted class."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if true.shape != predicted.shape:
        raise ValueError(f"predicted: expected shape {true.shape} like the labels, got {predicted.shape}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix
