"""What one SIGNS split holds: the split names, the image shape, the class list, and its checks."""

from __future__ import annotations

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING

__all__ = ["SPLITS", "IMAGE_SHAPE", "IMAGE_SUFFIXES", "check_split", "course_classes", "check_labels"]

SPLITS: tuple[str, ...] = ("train", "test")
IMAGE_SHAPE: tuple[int, int, int] = COURSE_MODEL.input_shape  # (n_H, n_W, n_C) of one image
# Files with these suffixes (case-insensitive) are read as images; anything else in an image
# folder (README, Thumbs.db, sub-folders, hidden files) is skipped and reported.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)


def check_split(split: str) -> str:
    """``split`` itself if it is one of :data:`SPLITS`, else ValueError naming it."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return split


def course_classes() -> np.ndarray:
    """int64 (6,): the course's class list 0..5 (``list_classes`` of its h5 files)."""
    return np.asarray(COURSE_TRAINING.classes, dtype=np.int64)


def check_labels(labels: np.ndarray, where: str) -> None:
    """Refuse labels outside the course's class list."""
    classes = course_classes()
    bad = ~np.isin(labels, classes)
    if bad.any():
        found = np.unique(labels[bad]).tolist()
        raise ValueError(
            f"{where}: labels must be in the class list {classes.tolist()}, found {found} "
            f"({int(bad.sum())} of {labels.size} labels)"
        )
