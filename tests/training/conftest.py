"""Fixtures of the training tests. ``signs_data_dir`` comes from the root conftest.py (skips
without the SIGNS data, fails under CI=true)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the `signs` CLI runs TF (signs/cli.py)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from training_helpers import SMALL  # noqa: E402  (the environment above must be set first)


@pytest.fixture(scope="session")
def fast_data_dir(signs_data_dir, signs_train_h5, tmp_path_factory):
    """A data folder of h5 files only (train imported once from jpg/train by the root conftest):
    loading it is much faster than decoding 1080 JPEG files in every test."""
    if (signs_data_dir / "train_signs.h5").is_file():
        return signs_data_dir
    folder = tmp_path_factory.mktemp("signs-h5")
    (folder / "train_signs.h5").symlink_to(signs_train_h5)
    if (signs_data_dir / "test_signs.h5").is_file():
        (folder / "test_signs.h5").symlink_to(signs_data_dir / "test_signs.h5")
    else:
        (folder / "test").symlink_to(signs_data_dir / "jpg" / "test", target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def small_data(fast_data_dir):
    """``small_data(dtype, limit)``: a cached ``SignsData`` of ``limit`` evenly spaced examples
    per split (the test split has 120, so it is whole for limit >= 120)."""
    from reference.data.dataset import load_signs
    from signs.training.metrics import subset

    cache: dict[tuple[str, int], object] = {}

    def get(dtype: str = "float32", limit: int = SMALL):
        key = (dtype, limit)
        if key not in cache:
            cache[key] = subset(load_signs(fast_data_dir, dtype=dtype, progress=False), limit)
        return cache[key]

    return get
