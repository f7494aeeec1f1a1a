"""Where the data lives: the project's ``data/`` folder, ``--data DIR``, and each split's file or
folder in it (``{split}_signs.h5``, then ``{split}/``, then ``jpg/{split}/``; first match wins)."""

from __future__ import annotations

import os
from pathlib import Path

from reference.data.layout import check_split

__all__ = ["HOW_TO_GET_DATA", "project_root", "default_data_dir", "resolve_data_dir", "find_split_source"]

HOW_TO_GET_DATA = (
    "build it with `signs import-images IMAGE_DIR {data_dir}/{split}_signs.h5 --split {split}` "
    "or pass --data ../shared/data/signs (see data/README.md)"
)


def project_root() -> Path | None:
    """The project folder (the one holding ``pyproject.toml``), found from this file's location.

    Only the folder directly above the ``reference`` package is checked, so an installed (non
    editable) copy never picks up an unrelated ``pyproject.toml`` further up. ``None`` if absent.
    """
    candidate = Path(__file__).resolve().parents[2]  # reference/data/paths.py -> the project
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
    check_split(split)
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
