"""Reading image folders (files named ``{label}_...``), shared by the importer and the loader."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from reference.data.layout import IMAGE_SHAPE, IMAGE_SUFFIXES
from reference.messages import listing, one_line
from reference.spec import COURSE_TRAINING

__all__ = ["ImageFolder", "label_from_filename", "list_image_files", "read_image_folder"]

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
        raise ValueError(f"{src_dir}: {len(bad)} file name(s) refused: {listing(bad)}")
    return sorted(images, key=_sort_key), sorted(skipped)


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
            raise ValueError(f"{src_dir / name}: not a readable image ({one_line(exc)})") from exc
    if wrong:
        raise ValueError(
            f"{src_dir}: {len(wrong)} of {len(names)} images are not {n_W}x{n_H} RGB "
            f"(pass --resize / resize=True to convert them): {listing(wrong)}"
        )
    return ImageFolder(X_orig=X, y=y, files=names, source=src_dir, skipped=skipped, n_resized=n_resized)
