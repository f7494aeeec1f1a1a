"""Importing an image folder into the course's h5 layout (``signs import-images``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from reference.data.images import read_image_folder
from reference.data.layout import IMAGE_SHAPE, check_split, course_classes
from reference.fileio import atomic_path, check_writable
from reference.messages import listing

__all__ = ["ImportResult", "import_images"]

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
            lines.append(f"skipped {len(self.skipped)} non-image entries: {listing(self.skipped)}")
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
    check_split(split)
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
            h5.create_dataset("list_classes", data=course_classes())
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
