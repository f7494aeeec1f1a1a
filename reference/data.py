"""The SIGNS data layer: loading, importing and batching, once, in NumPy.

Every backend trains and is checked on the arrays this module returns; frameworks only ever
receive NumPy arrays.

Files and layouts
-----------------
A data directory holds, for each split (``train``, ``test``), one of (first match wins):

1. ``{split}_signs.h5``: the course's layout, ``{split}_set_x`` uint8 (m, 64, 64, 3) NHWC RGB,
   ``{split}_set_y`` integer (m,), ``list_classes`` integer (6,) = 0..5, and optionally
   ``{split}_set_files`` (m,) UTF-8 strings (written by :func:`import_images` to trace images);
2. an image folder ``{split}/`` or ``jpg/{split}/`` whose files are named ``{label}_...``
   (e.g. ``3_IMG_5864.jpg``), read into memory by the same reader as the importer.

The course's functions keep the course's semantics: :func:`load_dataset` returns
``X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes`` with labels shaped (1, m);
:func:`convert_to_one_hot` returns (C, m); :func:`random_mini_batches` reseeds NumPy's *global*
RNG exactly as the course does. :func:`load_signs` is the notebook's preprocessing cell
(``X / 255.`` and one-hot ``Y`` (m, 6)) plus a record of which files were used.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np
from PIL import Image, ImageOps

from reference.fileio import atomic_path, check_writable
from reference.spec import COURSE_MODEL, COURSE_TRAINING

__all__ = [
    "SPLITS",
    "IMAGE_SHAPE",
    "IMAGE_SUFFIXES",
    "SignsData",
    "SplitArrays",
    "ImageFolder",
    "ImportResult",
    "project_root",
    "default_data_dir",
    "resolve_data_dir",
    "add_data_argument",
    "find_split_source",
    "load_split",
    "load_dataset",
    "load_signs",
    "normalize_images",
    "one_hot",
    "convert_to_one_hot",
    "random_mini_batches",
    "course_epoch_seeds",
    "epoch_mini_batches",
    "label_from_filename",
    "list_image_files",
    "read_image_folder",
    "read_signs_h5",
    "import_images",
]

SPLITS: tuple[str, ...] = ("train", "test")
IMAGE_SHAPE: tuple[int, int, int] = COURSE_MODEL.input_shape  # (n_H, n_W, n_C) of one image
# Files with these suffixes (case-insensitive) are read as images; anything else in an image
# folder (README, Thumbs.db, sub-folders, hidden files) is skipped and reported.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)
HOW_TO_GET_DATA = (
    "build it with `signs import-images IMAGE_DIR {data_dir}/{split}_signs.h5 --split {split}` "
    "or pass --data ../shared/data/signs (see data/README.md)"
)
_MAX_LISTED = 5  # how many offending files an error message names before "and N more"


# --------------------------------------------------------------------------------------------
# Where the data lives
# --------------------------------------------------------------------------------------------


def project_root() -> Path | None:
    """The project folder (the one holding ``pyproject.toml``), found from this file's location.

    Only the folder directly above the ``reference`` package is checked, so an installed (non
    editable) copy never picks up an unrelated ``pyproject.toml`` further up. ``None`` if absent.
    """
    candidate = Path(__file__).resolve().parent.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def default_data_dir() -> Path:
    """``data/`` in the project root; ``./data`` when the package is not run from a checkout."""
    root = project_root()
    return (root if root is not None else Path.cwd()) / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory for ``--data DIR``: ``None`` gives :func:`default_data_dir`.

    A path given by the user is taken as written, so a relative one is relative to the current
    working directory (``--data ../shared/data/signs``). Existence is checked by the loaders.
    """
    if data_dir is None:
        return default_data_dir()
    return Path(data_dir).expanduser()


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add the shared ``--data DIR`` option (``args.data``, ``None`` = project ``data/``)."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="data directory holding {split}_signs.h5 or image folders {split}/ or jpg/{split}/ "
        f"(default: {default_data_dir()}); e.g. --data ../shared/data/signs",
    )


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return split


def _split_candidates(data_dir: Path, split: str) -> list[Path]:
    """The places a split is looked for, in order of preference."""
    return [data_dir / f"{split}_signs.h5", data_dir / split, data_dir / "jpg" / split]


def find_split_source(data_dir: str | os.PathLike | None, split: str) -> Path:
    """The file or folder holding ``split`` in ``data_dir`` (see the module docstring).

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` does not exist or holds none of the candidates; the message lists what was
        looked for and how to build it.
    """
    _check_split(split)
    data_dir = resolve_data_dir(data_dir)
    how = HOW_TO_GET_DATA.format(split=split, data_dir=data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist; {how}")
    candidates = _split_candidates(data_dir, split)
    if candidates[0].is_file():
        return candidates[0]
    for folder in candidates[1:]:
        if folder.is_dir():
            return folder
    looked = ", ".join(str(path) + ("/" if i else "") for i, path in enumerate(candidates))
    raise FileNotFoundError(f"no {split} split in {data_dir}: looked for {looked}; {how}")


# --------------------------------------------------------------------------------------------
# Reading the course's h5 files
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (h5py and PIL messages can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _course_classes() -> np.ndarray:
    return np.asarray(COURSE_TRAINING.classes, dtype=np.int64)


def _check_labels(labels: np.ndarray, where: str) -> None:
    """Refuse labels outside the course's class list."""
    classes = _course_classes()
    bad = ~np.isin(labels, classes)
    if bad.any():
        found = np.unique(labels[bad]).tolist()
        raise ValueError(
            f"{where}: labels must be in the class list {classes.tolist()}, found {found} "
            f"({int(bad.sum())} of {labels.size} labels)"
        )


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
    _check_split(split)
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
        raise ValueError(f"{path}: not a readable HDF5 file ({_one_line(exc)})") from exc
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
    _check_labels(y, f"{path}: {y_key}")
    return X, y, classes.reshape(-1).astype(np.int64), files


# --------------------------------------------------------------------------------------------
# Reading image folders (shared by the importer and the loader)
# --------------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^(\d+)_")


def label_from_filename(name: str) -> int:
    """The label of ``{label}_...`` (``"0_IMG_5990 (1).jpg"`` -> 0), checked against the classes.

    Raises
    ------
    ValueError
        If the name does not start with digits and an underscore, or the label is not a class.
    """
    match = _LABEL_RE.match(name)
    if match is None:
        raise ValueError(f"{name}: file name must start with '{{label}}_' (e.g. 3_IMG_5864.jpg)")
    label = int(match.group(1))
    if label not in COURSE_TRAINING.classes:
        classes = list(COURSE_TRAINING.classes)
        raise ValueError(f"{name}: label {label} is not in the class list {classes}")
    return label


def _sort_key(name: str) -> tuple[int, str]:
    return (label_from_filename(name), name)


def list_image_files(src_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The image files of a folder in the importer's order, and the names it skipped.

    Order: by ``(label as an integer, file name)`` with names compared by Unicode code point
    (Python's ``sorted``; no locale, no natural sort), so it is the same on every machine. Files
    whose suffix is not in :data:`IMAGE_SUFFIXES`, hidden files and sub-folders are skipped.

    Raises
    ------
    FileNotFoundError
        If ``src_dir`` is not a folder.
    ValueError
        If it holds no image file, or an image's name has no valid ``{label}_`` prefix.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(
            f"image folder {src_dir} does not exist "
            "(expected files named {label}_..., e.g. 3_IMG_5864.jpg)"
        )
    images, skipped = [], []
    for entry in os.scandir(src_dir):
        is_image = (
            entry.is_file()
            and not entry.name.startswith(".")
            and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
        )
        (images if is_image else skipped).append(entry.name)
    if not images:
        raise ValueError(f"{src_dir}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    bad = []
    for name in images:
        try:
            label_from_filename(name)
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        raise ValueError(f"{src_dir}: {len(bad)} file name(s) refused: {_listing(bad)}")
    return sorted(images, key=_sort_key), sorted(skipped)


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


@dataclass(frozen=True)
class ImageFolder:
    """An image folder read into memory.

    Attributes
    ----------
    X_orig : uint8 (m, 64, 64, 3), NHWC RGB, in :func:`list_image_files` order.
    y : int64 (m,), the labels parsed from the file names.
    files : the m file names, same order.
    source : the folder.
    skipped : names in the folder that were not read (not images, hidden, sub-folders).
    n_resized : how many images were converted (only with ``resize=True``).
    """

    X_orig: np.ndarray
    y: np.ndarray
    files: list[str]
    source: Path
    skipped: list[str] = field(default_factory=list)
    n_resized: int = 0


def _use_progress(progress: bool | None) -> bool:
    """``None`` means: show a bar only when stderr (where tqdm writes) is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def _describe_image(im: Image.Image) -> str:
    return f"{im.size[0]}x{im.size[1]} {im.mode}"


def read_image_folder(
    src_dir: str | os.PathLike, *, resize: bool = False, progress: bool | None = None
) -> ImageFolder:
    """Read every ``{label}_...`` image of ``src_dir`` into memory.

    Parameters
    ----------
    src_dir : folder of images named ``{label}_...``.
    resize : if False (default) every image must already be 64x64 RGB and anything else is refused,
        naming what was found. If True, other images are centre-cropped to a square and resized
        with Lanczos filtering to 64x64 (``PIL.ImageOps.fit``), and converted to RGB (grayscale is
        replicated, alpha dropped). EXIF orientation is not applied.
    progress : show a tqdm bar; ``None`` shows one only when stderr is a terminal.

    Raises
    ------
    ValueError
        An unreadable image (naming the file), images of the wrong size/mode without ``resize``,
        bad file names (see :func:`list_image_files`).
    """
    from tqdm import tqdm

    src_dir = Path(src_dir)
    names, skipped = list_image_files(src_dir)
    n_H, n_W, n_C = IMAGE_SHAPE
    X = np.empty((len(names), n_H, n_W, n_C), dtype=np.uint8)
    y = np.array([label_from_filename(name) for name in names], dtype=np.int64)
    wrong, n_resized = [], 0
    show = _use_progress(progress)
    bar = tqdm(names, desc=f"reading {src_dir.name}", unit="img", disable=not show, leave=False)
    for i, name in enumerate(bar):
        try:
            with Image.open(src_dir / name) as im:
                im.load()
                fits = im.mode == "RGB" and im.size == (n_W, n_H)
                if not fits and not resize:
                    wrong.append(f"{name} is {_describe_image(im)}")
                    continue
                if not fits:
                    n_resized += 1
                    im = ImageOps.fit(im.convert("RGB"), (n_W, n_H), method=Image.Resampling.LANCZOS)
                X[i] = np.asarray(im, dtype=np.uint8)
        # PIL raises OSError (UnidentifiedImageError, truncated data), ValueError or a bomb error.
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"{src_dir / name}: not a readable image ({_one_line(exc)})") from exc
    if wrong:
        raise ValueError(
            f"{src_dir}: {len(wrong)} of {len(names)} images are not {n_W}x{n_H} RGB "
            f"(pass --resize / resize=True to convert them): {_listing(wrong)}"
        )
    return ImageFolder(X_orig=X, y=y, files=names, source=src_dir, skipped=skipped, n_resized=n_resized)


# --------------------------------------------------------------------------------------------
# Loading a data directory
# --------------------------------------------------------------------------------------------


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
    return SplitArrays(folder.X_orig, folder.y, _course_classes(), source, folder.files)


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
        Y = {"train": self.Y_train, "test": self.Y_test}[_check_split(split)]
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
    splits = tuple(_check_split(s) for s in splits)
    arrays = {split: load_split(data_dir, split, progress=progress) for split in splits}

    def pick(split, fn):
        return fn(arrays[split]) if split in arrays else None

    classes = arrays["test"].classes if "test" in arrays else _course_classes()
    return SignsData(
        X_train=pick("train", lambda a: normalize_images(a.X_orig, dtype)),
        Y_train=pick("train", lambda a: one_hot(a.y, COURSE_MODEL.n_classes, dtype)),
        X_test=pick("test", lambda a: normalize_images(a.X_orig, dtype)),
        Y_test=pick("test", lambda a: one_hot(a.y, COURSE_MODEL.n_classes, dtype)),
        classes=classes,
        sources={split: a.source for split, a in arrays.items()},
        files={split: a.files for split, a in arrays.items()},
    )


# --------------------------------------------------------------------------------------------
# Mini-batches: the course's function and seed schedule
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Importing an image folder into the course's h5 layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_images` wrote."""

    path: Path
    split: str
    source: Path
    n_images: int
    class_counts: dict[int, int]
    n_resized: int
    skipped: list[str]

    def summary(self) -> str:
        counts = ", ".join(f"{label}: {n}" for label, n in self.class_counts.items())
        lines = [
            f"wrote {self.path}: {self.n_images} {self.split} images from {self.source} "
            f"({self.split}_set_x uint8 ({self.n_images}, {', '.join(map(str, IMAGE_SHAPE))}))",
            f"images per class: {counts}",
        ]
        if self.n_resized:
            size = f"{IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]}"
            lines.append(f"resized or converted {self.n_resized} images to {size} RGB")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} non-image entries: {_listing(self.skipped)}")
        return "\n".join(lines)


_SPLIT_FILE_RE = re.compile(r"^(train|test)_signs\.h5$")


def import_images(
    src_dir: str | os.PathLike,
    out_h5: str | os.PathLike,
    split: str = "train",
    resize: bool = False,
    force: bool = False,
    *,
    progress: bool | None = None,
) -> ImportResult:
    """Write an image folder (files ``{label}_...``) as a course-layout h5 file.

    Keys written: ``{split}_set_x`` uint8 (m, 64, 64, 3), ``{split}_set_y`` int64 (m,),
    ``list_classes`` int64 (6,), ``{split}_set_files`` UTF-8 strings (m,) (the source file names,
    to trace each image). File attributes: ``source_dir``, ``split``, ``resized``, ``sort_key``,
    ``created_by``. Images are in :func:`list_image_files` order. The file is written atomically
    (temporary file, then rename) and an existing file is only replaced with ``force``.

    Raises
    ------
    FileExistsError
        ``out_h5`` exists and ``force`` is False (checked before any image is read).
    FileNotFoundError, ValueError
        See :func:`read_image_folder`; also a split that contradicts the file name
        (``--split test`` into ``train_signs.h5``).
    """
    _check_split(split)
    out_h5 = Path(out_h5)
    named = _SPLIT_FILE_RE.match(out_h5.name)
    if named and named.group(1) != split:
        raise ValueError(
            f"out_h5: {out_h5.name} is where the {named.group(1)} split is looked for, "
            f"but split is {split!r}; name it {split}_signs.h5"
        )
    check_writable(out_h5, force)  # fail before spending time reading images
    folder = read_image_folder(src_dir, resize=resize, progress=progress)
    with atomic_path(out_h5, force=force) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset(f"{split}_set_x", data=folder.X_orig)
            h5.create_dataset(f"{split}_set_y", data=folder.y)
            h5.create_dataset("list_classes", data=_course_classes())
            h5.create_dataset(f"{split}_set_files", data=folder.files, dtype=h5py.string_dtype("utf-8"))
            h5.attrs["source_dir"] = str(folder.source.resolve())
            h5.attrs["split"] = split
            h5.attrs["resized"] = bool(resize)
            h5.attrs["sort_key"] = "(label, file name by code point)"
            h5.attrs["created_by"] = "signs import-images"
    labels, counts = np.unique(folder.y, return_counts=True)
    return ImportResult(
        path=out_h5,
        split=split,
        source=folder.source,
        n_images=int(folder.y.size),
        class_counts={int(k): int(n) for k, n in zip(labels, counts)},
        n_resized=folder.n_resized,
        skipped=folder.skipped,
    )
