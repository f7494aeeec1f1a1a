"""Issue 13.4: h5 files and image folders are checked from their metadata before they are read:
dtype, shape, size, and at most --max-images images per split."""

import struct
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest
from PIL import Image

from reference.data.course_h5 import read_signs_h5
from reference.data.dataset import load_split
from reference.data.images import read_image_folder
from signs.cli import main

MEMORY_BOUND = 8 * 2**20  # bytes of Python/NumPy allocations allowed while refusing a crafted file


def write_h5(path, *, x_shape=(10, 64, 64, 3), x_dtype=np.uint8, y_shape=(10,), classes_shape=(6,), fill=True):
    """A course-layout h5 file; with ``fill=False`` the datasets are declared but never written
    (chunked storage: a small file whatever the declared size)."""
    with h5py.File(path, "w") as h5:
        for key, shape, dtype in (("test_set_x", x_shape, x_dtype), ("test_set_y", y_shape, np.int64),
                                  ("list_classes", classes_shape, np.int64)):
            if fill:
                data = np.arange(int(np.prod(shape))).reshape(shape) % 6
                h5.create_dataset(key, data=data.astype(dtype))
            else:
                h5.create_dataset(key, shape=shape, dtype=dtype, chunks=(1,) * (len(shape) - 1) + (min(shape[-1], 1024),),
                                  compression="gzip")
    return path


def refused_within_memory(call, match):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB while refusing"


def test_a_declared_float32_set_is_refused_before_reading(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5", x_shape=(20000, 64, 64, 3), x_dtype=np.float32,
                    y_shape=(20000,), fill=False)
    assert path.stat().st_size < 2 * 2**20
    refused_within_memory(lambda: read_signs_h5(path, "test"), "test_set_x must be uint8, got float32")


def test_a_billion_declared_images_are_refused_before_reading(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5", x_shape=(10**9, 64, 64, 3), y_shape=(10**9,), fill=False)
    refused_within_memory(lambda: read_signs_h5(path, "test"), "holds 1000000000 images, more than the limit of 10000")


def test_huge_labels_or_class_list_are_refused_before_reading(tmp_path):
    labels = write_h5(tmp_path / "a.h5", y_shape=(10**8,), fill=False)
    refused_within_memory(lambda: read_signs_h5(labels, "test"), "label count mismatch: test_set_y has 100000000 labels")
    classes = write_h5(tmp_path / "b.h5", classes_shape=(10**8,), fill=False)
    refused_within_memory(lambda: read_signs_h5(classes, "test"), "list_classes must be")


def test_max_images_is_a_limit_the_caller_chooses(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5")
    with pytest.raises(ValueError, match="holds 10 images, more than the limit of 9 .pass --max-images N"):
        read_signs_h5(path, "test", max_images=9)
    X, y, _, _ = read_signs_h5(path, "test", max_images=10)
    assert X.shape == (10, 64, 64, 3) and y.shape == (10,)


def test_cli_max_images(tmp_path, capsys):
    write_h5(tmp_path / "test_signs.h5")
    argv = ["verify", "--data", str(tmp_path), "--backends", "numpy,torch", "--max-images", "9"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than the limit of 9" in err[0], err


def test_an_image_folder_over_the_limit_is_refused_before_decoding(tmp_path):
    for i in range(5):
        (tmp_path / f"1_{i}.jpg").write_bytes(b"not decoded")
    with pytest.raises(ValueError, match="holds 5 images, more than the limit of 4"):
        read_image_folder(tmp_path, max_images=4, progress=False)


def _png_claiming(path, width, height):
    """A 64x64 PNG whose header claims ``width`` x ``height`` (CRC fixed, data too short)."""
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])))
    path.write_bytes(bytes(data))


def test_an_oversized_image_header_is_reported_without_decoding(tmp_path):
    (tmp_path / "train").mkdir()
    _png_claiming(tmp_path / "train" / "1_big.png", 9000, 9000)
    with pytest.raises(ValueError, match=r"1_big.png is 9000x9000 RGB"):
        load_split(tmp_path, "train", progress=False)
