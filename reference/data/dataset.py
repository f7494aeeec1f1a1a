"""Loading a data directory: one split as stored, the course's ``load_dataset``, and the notebook's
preprocessing (``X / 255.``, one-hot ``Y``) as :class:`SignsData`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from reference.data.course_h5 import read_signs_h5
from reference.data.images import read_image_folder
from reference.data.layout import SPLITS, check_split, course_classes
from reference.data.paths import find_split_source
from reference.spec import COURSE_MODEL

__all__ = [
    "SplitArrays",
    "SignsData",
    "load_split",
    "load_dataset",
    "load_signs",
    "normalize_images",
    "one_hot",
    "convert_to_one_hot",
]

@dataclass(frozen=True)
class SplitArrays:
    """One split as stored: uint8 images (m, 64, 64, 3), int64 labels (m,), where they came from."""

    X_orig: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    source: Path
    files: list[str] | None


def load_split(
    data_dir: str | os.PathLike | None, split: str, *, progress: bool | None = None
) -> SplitArrays:
    """Load one split from a data directory, h5 or image folder (see :func:`find_split_source`).

    An image folder must hold 64x64 RGB images (import with ``--resize`` to convert others).
    """
    source = find_split_source(data_dir, split)
    if source.is_file():
        X, y, classes, files = read_signs_h5(source, split)
        return SplitArrays(X, y, classes, source, files)
    folder = read_image_folder(source, resize=False, progress=progress)
    return SplitArrays(folder.X_orig, folder.y, course_classes(), source, folder.files)


def load_dataset(data_dir: str | os.PathLike | None = None):
    """The course's ``load_dataset``, from any data directory layout.

    Returns
    -------
    X_train_orig : uint8 (m_train, 64, 64, 3)
    Y_train_orig : int64 (1, m_train)
    X_test_orig : uint8 (m_test, 64, 64, 3)
    Y_test_orig : int64 (1, m_test)
    classes : int64 (6,), the test file's ``list_classes`` as in the course.
    """
    train = load_split(data_dir, "train")
    test = load_split(data_dir, "test")
    return train.X_orig, train.y.reshape(1, -1), test.X_orig, test.y.reshape(1, -1), test.classes


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    return dtype


def normalize_images(X_orig: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The notebook's ``X_orig / 255.``: (m, 64, 64, 3) uint8 -> same shape in ``dtype``.

    Divided in float64 then cast, as the course did (NumPy float64 fed to a float32 placeholder).
    """
    dtype = _float_dtype(dtype)
    return (np.asarray(X_orig) / 255.0).astype(dtype, copy=False)


def convert_to_one_hot(Y: np.ndarray, C: int) -> np.ndarray:
    """The course's ``convert_to_one_hot``: ``np.eye(C)[Y.reshape(-1)].T``, float64 (C, m).

    Unlike the course, labels outside 0..C-1 raise ValueError (NumPy would wrap negatives).
    """
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.integer):
        raise ValueError(f"Y: expected integer labels, got dtype {Y.dtype}")
    flat = Y.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= C):
        raise ValueError(f"Y: expected labels in 0..{C - 1}, got min {flat.min()} max {flat.max()}")
    return np.eye(C)[flat].T


def one_hot(Y: np.ndarray, n_classes: int = COURSE_MODEL.n_classes, dtype=np.float32) -> np.ndarray:
    """The notebook's ``convert_to_one_hot(Y, 6).T``: labels (m,) or (1, m) -> (m, n_classes)."""
    return convert_to_one_hot(Y, n_classes).T.astype(_float_dtype(dtype))


@dataclass(frozen=True)
class SignsData:
    """The notebook's arrays, ready for any backend, and the files they came from.

    Attributes
    ----------
    X_train, X_test : ``dtype`` (m, 64, 64, 3) NHWC, ``X_orig / 255.``; ``None`` if not loaded.
    Y_train, Y_test : ``dtype`` (m, 6) one-hot; ``None`` if not loaded.
    classes : int64 (6,).
    sources : split -> the h5 file or image folder used.
    files : split -> image file names in array order (``None`` for an h5 without
        ``{split}_set_files``, e.g. the course's own).
    """

    X_train: np.ndarray | None
    Y_train: np.ndarray | None
    X_test: np.ndarray | None
    Y_test: np.ndarray | None
    classes: np.ndarray
    sources: dict[str, Path]
    files: dict[str, list[str] | None] = field(default_factory=dict)

    def labels(self, split: str) -> np.ndarray:
        """int64 (m,) labels of ``split`` (argmax of the one-hot rows)."""
        Y = {"train": self.Y_train, "test": self.Y_test}[check_split(split)]
        if Y is None:
            raise ValueError(f"split: {split!r} was not loaded")
        return np.argmax(Y, axis=1).astype(np.int64)

    def describe(self) -> str:
        """One line per loaded split, e.g. ``train: 1080 images from data/train/ (image folder)``."""
        lines = []
        for split, X in (("train", self.X_train), ("test", self.X_test)):
            if X is None:
                continue
            source = self.sources[split]
            kind = "h5 file" if source.is_file() else "image folder"
            shown = f"{source}" if source.is_file() else f"{source}/"
            lines.append(f"{split}: {X.shape[0]} images from {shown} ({kind})")
        return "\n".join(lines)


def load_signs(
    data_dir: str | os.PathLike | None = None,
    *,
    dtype=np.float32,
    splits: Iterable[str] = SPLITS,
    progress: bool | None = None,
) -> SignsData:
    """Load a data directory and apply the notebook's preprocessing.

    Parameters
    ----------
    data_dir : the ``--data`` folder; ``None`` = the project's ``data/``.
    dtype : float32 (default) or float64 for X and Y.
    splits : which splits to load; the others are ``None`` in the result.
    """
    dtype = _float_dtype(dtype)
    splits = tuple(check_split(s) for s in splits)
    arrays = {split: load_split(data_dir, split, progress=progress) for split in splits}

    def pick(split, fn):
        return fn(arrays[split]) if split in arrays else None

    classes = arrays["test"].classes if "test" in arrays else course_classes()
    return SignsData(
        X_train=pick("train", lambda a: normalize_images(a.X_orig, dtype)),
        Y_train=pick("train", lambda a: one_hot(a.y, COURSE_MODEL.n_classes, dtype)),
        X_test=pick("test", lambda a: normalize_images(a.X_orig, dtype)),
        Y_test=pick("test", lambda a: one_hot(a.y, COURSE_MODEL.n_classes, dtype)),
        classes=classes,
        sources={split: a.source for split, a in arrays.items()},
        files={split: a.files for split, a in arrays.items()},
    )
