"""Shared pytest fixtures: where the SIGNS data is, a train h5 built from it once, weight file names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signs.quiet import quiet_frameworks

# Before anything imports TensorFlow: the environment the `signs` CLI runs TF in (no C++ log
# noise, oneDNN on), so the tests check what users run.
quiet_frameworks()

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_SIGNS_DIR = REPO_ROOT.parent / "shared" / "data" / "signs"


@pytest.fixture(scope="session")
def weight_file_names() -> dict[str, str]:
    """A file name for each weights format of ``signs.convert.FORMATS``, one its suffix detects."""
    return {
        "safetensors": "w.safetensors",
        "npz": "w.npz",
        "keras": "w.weights.h5",
        "torch": "w.pt",
        "tf1": "model.ckpt",
    }


@pytest.fixture(scope="session")
def signs_data_dir() -> Path:
    """The SIGNS folder ($SIGNS_DATA, else ../shared/data/signs); skips if absent (fails under CI)."""
    path = Path(os.environ.get("SIGNS_DATA") or DEFAULT_SIGNS_DIR)
    if not path.is_dir():
        message = (
            f"SIGNS data not found at {path}; set SIGNS_DATA or provide {DEFAULT_SIGNS_DIR} "
            "(test_signs.h5, jpg/train, jpg/test)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def signs_train_h5(tmp_path_factory, signs_data_dir) -> Path:
    """A course-layout train_signs.h5 imported once from jpg/train (1080 images, 64x64 RGB)."""
    from reference.data.importer import import_images

    jpg_train = signs_data_dir / "jpg" / "train"
    if not jpg_train.is_dir() and (signs_data_dir / "train_signs.h5").is_file():
        return signs_data_dir / "train_signs.h5"  # a $SIGNS_DATA holding the course's own file
    out = tmp_path_factory.mktemp("signs") / "train_signs.h5"
    import_images(jpg_train, out, split="train", progress=False)
    return out
