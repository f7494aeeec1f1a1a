"""Fixtures of the training tests. ``signs_data_dir`` comes from the root conftest.py (skips
without the SIGNS data, fails under CI=true)."""

from __future__ import annotations

import pytest

from signs.cli import main
from training_helpers import CLI_BACKEND, SMALL, backend_or_skip, train_argv


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


@pytest.fixture(scope="session")
def two_epoch_run(fast_data_dir, tmp_path_factory):
    """A complete 2-epoch course run through the CLI (``train_argv``): its run folder. Shared by
    the CLI and fault tests, which only read it or check that a refused command left it as it was."""
    backend_or_skip(CLI_BACKEND)
    out = tmp_path_factory.mktemp("two-epoch-run")
    assert main(train_argv(fast_data_dir, out, "--epochs", "2")) == 0
    return out
