"""Atomic file writing: an interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "check_writable"]


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing ``path`` unless ``force``; return it as a Path."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    return path


def _apply_default_mode(path: Path) -> None:
    """Give the temp file the mode a plain ``open(path, "w")`` would (mkstemp makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file lives in the destination folder so that the final ``os.replace`` is an
    atomic rename on the same file system. On any exception the temporary file is removed and the
    destination is left untouched. The suffix of ``path`` is kept (some writers key on it, e.g.
    Keras' ``.weights.h5``).
    """
    path = check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _apply_default_mode(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
