"""Reading the course's h5 files (``{split}_signs.h5``), with every array checked."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from reference.data.layout import IMAGE_SHAPE, check_labels, check_split
from reference.messages import one_line
from reference.spec import COURSE_TRAINING

__all__ = ["read_signs_h5"]

def _read_dataset(h5: h5py.File, key: str, path: Path) -> np.ndarray:
    if key not in h5:
        raise ValueError(f"{path}: missing dataset {key!r} (found keys: {sorted(h5.keys())})")
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{path}: {key!r} is a group, expected a dataset")
    return node[()]


def read_signs_h5(
    path: str | os.PathLike, split: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str] | None]:
    """Read and validate one course-layout h5 file.

    Parameters
    ----------
    path : path to ``{split}_signs.h5``.
    split : "train" or "test"; selects the keys ``{split}_set_x`` / ``{split}_set_y``.

    Returns
    -------
    X_orig : uint8 (m, 64, 64, 3), NHWC RGB, 0..255.
    y : int64 (m,), the labels.
    classes : int64 (6,), ``list_classes`` (must equal the course's 0..5).
    files : the ``{split}_set_files`` names (m,) if the file has them, else ``None``.

    Raises
    ------
    ValueError
        One line naming the file and the problem: not HDF5 / truncated, missing key, wrong dtype
        or shape, label count mismatch, labels outside the class list.
    """
    check_split(split)
    path = Path(path)
    x_key, y_key, f_key = f"{split}_set_x", f"{split}_set_y", f"{split}_set_files"
    try:
        with h5py.File(path, "r") as h5:
            X = _read_dataset(h5, x_key, path)
            y = _read_dataset(h5, y_key, path)
            classes = _read_dataset(h5, "list_classes", path)
            files = None
            if f_key in h5:
                files = [
                    name.decode("utf-8") if isinstance(name, bytes) else str(name)
                    for name in _read_dataset(h5, f_key, path).reshape(-1)
                ]
    except OSError as exc:  # h5py reports truncated / non-HDF5 / unreadable files as OSError
        raise ValueError(f"{path}: not a readable HDF5 file ({one_line(exc)})") from exc
    return _validate_arrays(path, x_key, y_key, X, y, classes, files)


def _validate_arrays(path, x_key, y_key, X, y, classes, files):
    """Check the arrays of one h5 split; return (X uint8, y int64 (m,), classes int64, files)."""
    expected_x = f"(m, {', '.join(map(str, IMAGE_SHAPE))}) with m > 0"
    if X.dtype != np.uint8:
        raise ValueError(f"{path}: {x_key} must be uint8, got {X.dtype}")
    if X.ndim != 4 or X.shape[1:] != IMAGE_SHAPE or X.shape[0] == 0:
        raise ValueError(f"{path}: {x_key} must have shape {expected_x}, got {X.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: {y_key} must hold integers, got {y.dtype}")
    if y.ndim == 2 and y.shape[0] == 1:  # the course's (1, m) shape is accepted too
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(f"{path}: {y_key} must have shape (m,), got {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{path}: label count mismatch: {y_key} has {y.shape[0]} labels, "
            f"{x_key} has {X.shape[0]} images"
        )
    course = list(COURSE_TRAINING.classes)
    if not np.issubdtype(classes.dtype, np.integer) or classes.reshape(-1).tolist() != course:
        raise ValueError(
            f"{path}: list_classes must be {course}, got {classes.tolist()} ({classes.dtype})"
        )
    if files is not None and len(files) != X.shape[0]:
        raise ValueError(f"{path}: {len(files)} file names for {X.shape[0]} images")
    y = y.astype(np.int64)
    check_labels(y, f"{path}: {y_key}")
    return X, y, classes.reshape(-1).astype(np.int64), files
