"""Reading the course's h5 files (``{split}_signs.h5``), with every array checked."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from reference.data.layout import DEFAULT_MAX_IMAGES, IMAGE_SHAPE, check_labels, check_max_images, check_split
from reference.fileio import H5_READ_ERRORS
from reference.messages import one_line
from reference.spec import COURSE_TRAINING

__all__ = ["read_signs_h5"]


def _dataset(h5: h5py.File, key: str, path: Path) -> h5py.Dataset:
    """The dataset ``key`` (not read yet: its dtype and shape come from the file's metadata)."""
    if key not in h5:
        raise ValueError(f"{path}: missing dataset {key!r} (found keys: {sorted(h5.keys())})")
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{path}: {key!r} is a group, expected a dataset")
    return node


def _check_layout(path: Path, x_key: str, y_key: str, nodes: dict, max_images: int) -> None:
    """Check every dataset's dtype and shape from the metadata, before any data is read.

    ``nodes``: "x", "y", "classes" and optionally "files" (h5py datasets). X must be uint8
    (m, 64, 64, 3) with 0 < m <= ``max_images``; y integer (m,) or the course's (1, m);
    list_classes integer with the course's 6 entries; the file names strings, m of them.
    """
    X, y, classes, files = nodes["x"], nodes["y"], nodes["classes"], nodes.get("files")
    expected_x = f"(m, {', '.join(map(str, IMAGE_SHAPE))}) with m > 0"
    if X.dtype != np.uint8:
        raise ValueError(f"{path}: {x_key} must be uint8, got {X.dtype}")
    if X.ndim != 4 or X.shape[1:] != IMAGE_SHAPE or X.shape[0] == 0:
        raise ValueError(f"{path}: {x_key} must have shape {expected_x}, got {X.shape}")
    m = X.shape[0]
    check_max_images(m, max_images, f"{path}: {x_key}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: {y_key} must hold integers, got {y.dtype}")
    if y.ndim == 2 and y.shape[0] == 1:  # the course's (1, m) shape is accepted too
        n_labels = y.shape[1]
    elif y.ndim == 1:
        n_labels = y.shape[0]
    else:
        raise ValueError(f"{path}: {y_key} must have shape (m,), got {y.shape}")
    if n_labels != m:
        raise ValueError(f"{path}: label count mismatch: {y_key} has {n_labels} labels, {x_key} has {m} images")
    course = list(COURSE_TRAINING.classes)
    if not np.issubdtype(classes.dtype, np.integer) or classes.size != len(course):
        raise ValueError(f"{path}: list_classes must be {course}, got {classes.dtype} of shape {classes.shape}")
    if files is not None:
        if h5py.check_string_dtype(files.dtype) is None and files.dtype.kind not in "SU":
            raise ValueError(f"{path}: {files.name.lstrip('/')} must hold strings, got {files.dtype}")
        if files.size != m:
            raise ValueError(f"{path}: {files.size} file names for {m} images")


def read_signs_h5(
    path: str | os.PathLike, split: str, *, max_images: int = DEFAULT_MAX_IMAGES
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str] | None]:
    """Read and validate one course-layout h5 file.

    Parameters
    ----------
    path : path to ``{split}_signs.h5``.
    split : "train" or "test"; selects the keys ``{split}_set_x`` / ``{split}_set_y``.
    max_images : the most images the split may declare (checked before reading).

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
        or shape, more than ``max_images`` images, label count mismatch, labels outside the class
        list. Dtypes, shapes and sizes are checked from the file's metadata before any array is
        read, so memory stays within what ``max_images`` valid images need.
    """
    check_split(split)
    path = Path(path)
    x_key, y_key, f_key = f"{split}_set_x", f"{split}_set_y", f"{split}_set_files"
    try:
        with h5py.File(path, "r") as h5:
            nodes = {"x": _dataset(h5, x_key, path), "y": _dataset(h5, y_key, path),
                     "classes": _dataset(h5, "list_classes", path)}
            if f_key in h5:
                nodes["files"] = _dataset(h5, f_key, path)
            _check_layout(path, x_key, y_key, nodes, max_images)
            X, y, classes = nodes["x"][()], nodes["y"][()], nodes["classes"][()]
            files = None
            if "files" in nodes:
                files = [
                    name.decode("utf-8", errors="replace") if isinstance(name, bytes) else str(name)
                    for name in nodes["files"][()].reshape(-1)
                ]
    except H5_READ_ERRORS as exc:  # truncated, not HDF5, damaged headers or links
        raise ValueError(f"{path}: not a readable HDF5 file ({one_line(exc)})") from exc
    return _validate_arrays(path, x_key, y_key, X, y, classes, files)


def _validate_arrays(path, x_key, y_key, X, y, classes, files):
    """Check the values of one h5 split (the layout was checked before reading); return
    (X uint8, y int64 (m,), classes int64 (6,), files)."""
    y = y.reshape(-1).astype(np.int64)  # (m,) or the course's (1, m)
    course = list(COURSE_TRAINING.classes)
    if classes.reshape(-1).tolist() != course:
        raise ValueError(
            f"{path}: list_classes must be {course}, got {classes.tolist()} ({classes.dtype})"
        )
    check_labels(y, f"{path}: {y_key}")
    return X, y, classes.reshape(-1).astype(np.int64), files
