"""The loader and importer against the real SIGNS files (../shared/data/signs or $SIGNS_DATA)."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from reference.data.course_h5 import read_signs_h5
from reference.data.dataset import load_dataset, load_signs
from reference.data.images import read_image_folder
from reference.data.importer import import_images
from reference.spec import COURSE_TRAINING

pytestmark = pytest.mark.data

N_TEST, N_TRAIN = 120, 1080
MAX_RMS = 8.0  # per-image pixel RMS (0..255) between a JPEG and its h5 twin; ~4.5 on average


def test_course_test_set_has_120_images_20_per_class(signs_data_dir):
    X, y, classes, files = read_signs_h5(signs_data_dir / "test_signs.h5", "test")
    assert X.shape == (N_TEST, 64, 64, 3) and X.dtype == np.uint8
    assert y.dtype == np.int64 and y.shape == (N_TEST,)
    np.testing.assert_array_equal(classes, COURSE_TRAINING.classes)
    np.testing.assert_array_equal(np.bincount(y, minlength=6), [20] * 6)
    assert files is None  # the course's own file does not trace its images


def test_load_dataset_course_shapes(signs_data_dir):
    X_train, Y_train, X_test, Y_test, classes = load_dataset(signs_data_dir)
    assert X_train.shape == (N_TRAIN, 64, 64, 3) and X_train.dtype == np.uint8
    assert Y_train.shape == (1, N_TRAIN) and Y_test.shape == (1, N_TEST)
    assert X_test.shape == (N_TEST, 64, 64, 3)
    np.testing.assert_array_equal(classes, np.arange(6))
    np.testing.assert_array_equal(np.bincount(Y_train[0], minlength=6), [180] * 6)


def test_load_signs_uses_jpg_train_and_course_test_h5(signs_data_dir):
    data = load_signs(signs_data_dir)
    assert data.sources == {
        "train": signs_data_dir / "jpg" / "train",
        "test": signs_data_dir / "test_signs.h5",
    }
    assert data.X_train.dtype == np.float32 and data.X_train.shape == (N_TRAIN, 64, 64, 3)
    assert data.Y_train.shape == (N_TRAIN, 6) and data.Y_test.shape == (N_TEST, 6)
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    np.testing.assert_array_equal(data.Y_test.sum(axis=1), np.ones(N_TEST))
    raw = read_signs_h5(signs_data_dir / "test_signs.h5", "test")
    np.testing.assert_array_equal(data.labels("test"), raw[1])
    np.testing.assert_array_equal(data.X_test, (raw[0] / 255.0).astype(np.float32))
    assert data.files["train"][0].startswith("0_") and data.files["test"] is None
    described = data.describe().splitlines()
    assert described[0].startswith(f"train: {N_TRAIN} images from ") and "image folder" in described[0]
    assert described[1].startswith(f"test: {N_TEST} images from ") and "h5 file" in described[1]


def test_imported_jpg_test_matches_course_h5(signs_data_dir, tmp_path):
    out = import_images(
        signs_data_dir / "jpg" / "test", tmp_path / "test_signs.h5", split="test", progress=False
    )
    assert out.n_images == N_TEST and out.class_counts == {k: 20 for k in range(6)}
    imported, y_imp, _, files = read_signs_h5(out.path, "test")
    assert "0_IMG_5990 (1).jpg" in files
    course, y_course, _, _ = read_signs_h5(signs_data_dir / "test_signs.h5", "test")
    a = course.reshape(N_TEST, -1).astype(np.float64)
    b = imported.reshape(N_TEST, -1).astype(np.float64)
    # Squared distances of every (h5, imported) pair at once: |a|^2 + |b|^2 - 2 a.b
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    nearest = d2.argmin(axis=1)
    rms = np.sqrt(np.maximum(d2[np.arange(N_TEST), nearest], 0.0) / a.shape[1])
    assert rms.max() < MAX_RMS, f"worst RMS {rms.max():.2f}"
    np.testing.assert_array_equal(y_imp[nearest], y_course)
    # Both ways: every imported image also has an h5 twin. (Not argmin-unique: the data holds one
    # exact duplicate pair, h5 images 1 and 66 = 0_IMG_5990.jpg and "0_IMG_5990 (1).jpg".)
    assert np.sqrt(np.maximum(d2.min(axis=0), 0.0) / a.shape[1]).max() < MAX_RMS
    # Not a fluke: every image of another class is far further away than the twin.
    other_class = np.where(y_course[:, None] != y_imp[None, :], d2, np.inf).min(axis=1)
    assert np.all(np.sqrt(other_class / a.shape[1]) > 2 * rms)


def test_import_1080_train_images_is_fast_and_traceable(signs_data_dir, tmp_path):
    start = time.perf_counter()
    result = import_images(
        signs_data_dir / "jpg" / "train", tmp_path / "train_signs.h5", split="train", progress=False
    )
    seconds = time.perf_counter() - start
    assert seconds < 15.0, f"importing {N_TRAIN} images took {seconds:.1f} s"
    assert result.n_images == N_TRAIN and result.class_counts == {k: 180 for k in range(6)}
    with h5py.File(result.path, "r") as h5:
        assert h5["train_set_x"].dtype == np.uint8 and h5["train_set_x"].shape == (N_TRAIN, 64, 64, 3)
        assert h5["train_set_y"].dtype == np.int64 and h5["train_set_y"].shape == (N_TRAIN,)
        assert h5["list_classes"].dtype == np.int64 and h5["list_classes"].shape == (6,)
        files = [f.decode() for f in h5["train_set_files"][()]]
        assert h5.attrs["source_dir"] == str((signs_data_dir / "jpg" / "train").resolve())
    folder = read_image_folder(signs_data_dir / "jpg" / "train", progress=False)
    assert files == folder.files == sorted(files, key=lambda n: (int(n.split("_")[0]), n))
    X, y, _, _ = read_signs_h5(result.path, "train")
    np.testing.assert_array_equal(X, folder.X_orig)
    np.testing.assert_array_equal(y, [int(n.split("_")[0]) for n in files])


def test_session_train_fixture(signs_train_h5):
    X, y, _, files = read_signs_h5(signs_train_h5, "train")
    assert X.shape == (N_TRAIN, 64, 64, 3) and y.shape == (N_TRAIN,)
    assert files is None or len(files) == N_TRAIN  # None: a $SIGNS_DATA with the course's file
    assert X.std() > 10  # real photos, not an empty array
