"""Bad input gets a clear one-line error and nothing is lost; the data directory resolver.

Every file here is created by the test in tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from reference.data.course_h5 import read_signs_h5
from reference.data.dataset import load_signs
from reference.data.images import label_from_filename, list_image_files, read_image_folder
from reference.data.importer import import_images
from reference.data.paths import default_data_dir, find_split_source

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Lossless, so a round trip must give the exact pixels back."""
    Image.fromarray(pixels).save(path, format="PNG")


def make_image_folder(folder: Path, labels, seed: int = 0) -> dict[str, np.ndarray]:
    """PNG files ``{label}_img{i}.png`` of random 64x64 RGB pixels; returns name -> pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = {}
    for i, label in enumerate(labels):
        name = f"{label}_img{i:02d}.png"
        images[name] = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        write_png(folder / name, images[name])
    return images


def write_h5(path: Path, split: str = "test", m: int = 6, **override) -> Path:
    """A valid course-layout file; ``override`` replaces (or, with None, drops) a dataset."""
    rng = np.random.default_rng(m)
    arrays = {
        f"{split}_set_x": rng.integers(0, 256, size=(m, 64, 64, 3), dtype=np.uint8),
        f"{split}_set_y": np.arange(m, dtype=np.int64) % 6,
        "list_classes": np.arange(6, dtype=np.int64),
    }
    arrays.update(override)
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            if value is not None:
                h5.create_dataset(key, data=value)
    return path


def assert_one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# ---------------------------------------------------------------------------------- h5 files


def test_valid_h5_round_trip(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5", m=12)
    X, y, classes, files = read_signs_h5(path, "test")
    with h5py.File(path) as h5:
        np.testing.assert_array_equal(X, h5["test_set_x"][()])
    np.testing.assert_array_equal(y, np.arange(12) % 6)
    assert y.dtype == np.int64 and files is None


def test_truncated_h5(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError) as exc:
        read_signs_h5(path, "test")
    assert_one_line(exc, str(path), "not a readable HDF5 file")
    assert isinstance(exc.value.__cause__, OSError)


def test_not_an_h5_file(tmp_path):
    path = tmp_path / "test_signs.h5"
    path.write_text("hello")
    with pytest.raises(ValueError) as exc:
        read_signs_h5(path, "test")
    assert_one_line(exc, str(path), "not a readable HDF5 file")


@pytest.mark.parametrize(
    "override, fragments",
    [
        ({"test_set_y": None}, ["missing dataset 'test_set_y'", "found keys"]),
        ({"list_classes": None}, ["missing dataset 'list_classes'"]),
        ({"test_set_x": np.zeros((6, 64, 64, 3), np.float32)}, ["test_set_x must be uint8, got float32"]),
        ({"test_set_x": np.zeros((6, 32, 32, 3), np.uint8)}, ["test_set_x must have shape", "(6, 32, 32, 3)"]),
        ({"test_set_y": np.zeros(5, np.int64)}, ["label count mismatch", "5 labels", "6 images"]),
        ({"test_set_y": np.zeros(6, np.float64)}, ["test_set_y must hold integers, got float64"]),
        ({"test_set_y": np.array([0, 1, 2, 3, 4, 7])}, ["labels must be in the class list", "[7]"]),
        ({"list_classes": np.arange(5)}, ["list_classes must be [0, 1, 2, 3, 4, 5]"]),
    ],
)
def test_bad_h5_contents(tmp_path, override, fragments):
    path = write_h5(tmp_path / "test_signs.h5", **override)
    with pytest.raises(ValueError) as exc:
        read_signs_h5(path, "test")
    assert_one_line(exc, str(path), *fragments)


def test_course_label_shape_1_by_m_is_accepted(tmp_path):
    path = write_h5(tmp_path / "test_signs.h5", test_set_y=np.array([[0, 1, 2, 3, 4, 5]]))
    assert read_signs_h5(path, "test")[1].shape == (6,)


# ------------------------------------------------------------------------------ image folders


def test_image_folder_round_trip_is_exact_and_sorted(tmp_path):
    images = make_image_folder(tmp_path / "imgs", [3, 0, 5, 0, 1])
    (tmp_path / "imgs" / "README.txt").write_text("not an image")
    folder = read_image_folder(tmp_path / "imgs", progress=False)
    assert folder.files == ["0_img01.png", "0_img03.png", "1_img04.png", "3_img00.png", "5_img02.png"]
    np.testing.assert_array_equal(folder.y, [0, 0, 1, 3, 5])
    for i, name in enumerate(folder.files):
        np.testing.assert_array_equal(folder.X_orig[i], images[name])
    assert folder.skipped == ["README.txt"]


def test_odd_names_and_sort_key(tmp_path):
    names = ["3_IMG_5864.jpg", "0_IMG_5990.jpg", "1_b.PNG", "0_IMG_5990 (1).jpg"]
    for name in names:
        (tmp_path / name).write_bytes(b"")  # listing never opens the files
    images, skipped = list_image_files(tmp_path)
    # (label, name by code point): " " (0x20) sorts before "." (0x2e); suffixes case-insensitive.
    assert images == ["0_IMG_5990 (1).jpg", "0_IMG_5990.jpg", "1_b.PNG", "3_IMG_5864.jpg"]
    assert skipped == []
    assert [label_from_filename(n) for n in images] == [0, 0, 1, 3]
    with pytest.raises(ValueError, match="label 10 is not in the class list"):
        label_from_filename("10_x.png")
    with pytest.raises(ValueError, match=r"must start with '\{label\}_'"):
        label_from_filename("IMG_1.jpg")


def test_non_image_named_like_an_image(tmp_path):
    make_image_folder(tmp_path / "imgs", [0, 1])
    (tmp_path / "imgs" / "1_x.jpg").write_bytes(b"this is not a JPEG")
    with pytest.raises(ValueError) as exc:
        read_image_folder(tmp_path / "imgs", progress=False)
    assert_one_line(exc, "1_x.jpg", "not a readable image")
    assert isinstance(exc.value.__cause__, OSError)


def test_truncated_jpeg(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "2_a.jpg", quality=95)
    data = (folder / "2_a.jpg").read_bytes()
    (folder / "2_a.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as exc:
        read_image_folder(folder, progress=False)
    assert_one_line(exc, "2_a.jpg", "not a readable image")


def test_wrong_size_and_mode_refused_unless_resize(tmp_path):
    folder = tmp_path / "imgs"
    make_image_folder(folder, [0])
    rng = np.random.default_rng(2)
    write_png(folder / "1_small.png", rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    write_png(folder / "2_gray.png", rng.integers(0, 256, size=(64, 64), dtype=np.uint8))
    with pytest.raises(ValueError) as exc:
        read_image_folder(folder, progress=False)
    assert_one_line(
        exc,
        "2 of 3 images are not 64x64 RGB",
        "1_small.png is 32x32 RGB",
        "2_gray.png is 64x64 L",
        "--resize",
    )
    folder_read = read_image_folder(folder, resize=True, progress=False)
    assert folder_read.n_resized == 2 and folder_read.X_orig.shape == (3, 64, 64, 3)
    gray = folder_read.X_orig[folder_read.files.index("2_gray.png")]
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])  # grayscale replicated to RGB


def test_label_outside_the_classes(tmp_path):
    make_image_folder(tmp_path / "imgs", [0, 7, 2])
    with pytest.raises(ValueError) as exc:
        read_image_folder(tmp_path / "imgs", progress=False)
    assert_one_line(exc, "1 file name(s) refused", "7_img01.png: label 7 is not in the class list")


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        list_image_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_image_files(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------- importer


def test_import_round_trip_and_keys(tmp_path):
    images = make_image_folder(tmp_path / "imgs", [5, 4, 3, 2, 1, 0, 0])
    result = import_images(tmp_path / "imgs", tmp_path / "out.h5", split="train", progress=False)
    assert result.n_images == 7 and result.class_counts == {0: 2, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    with h5py.File(result.path) as h5:
        assert set(h5.keys()) == {"train_set_x", "train_set_y", "list_classes", "train_set_files"}
        assert h5["train_set_y"].dtype == np.int64 and h5["list_classes"].dtype == np.int64
        assert h5.attrs["source_dir"] == str((tmp_path / "imgs").resolve())
        assert h5.attrs["split"] == "train" and not h5.attrs["resized"]
    X, y, _, files = read_signs_h5(result.path, "train")
    assert files[:2] == ["0_img05.png", "0_img06.png"]
    for i, name in enumerate(files):
        np.testing.assert_array_equal(X[i], images[name])
        assert y[i] == int(name[0])
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left behind


def test_import_refuses_to_overwrite_without_force(tmp_path):
    make_image_folder(tmp_path / "imgs", [0, 1], seed=1)
    out = tmp_path / "train_signs.h5"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        import_images(tmp_path / "imgs", out, split="train", progress=False)
    assert out.read_bytes() == b"precious"
    import_images(tmp_path / "imgs", out, split="train", force=True, progress=False)
    assert read_signs_h5(out, "train")[0].shape == (2, 64, 64, 3)


def test_failed_import_loses_nothing(tmp_path):
    make_image_folder(tmp_path / "imgs", [0, 1])
    (tmp_path / "imgs" / "1_x.jpg").write_bytes(b"junk")
    out = tmp_path / "train_signs.h5"
    out.write_bytes(b"precious")
    with pytest.raises(ValueError, match="1_x.jpg"):
        import_images(tmp_path / "imgs", out, split="train", force=True, progress=False)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "train_signs.h5"]


def test_import_split_must_match_file_name(tmp_path):
    make_image_folder(tmp_path / "imgs", [0])
    with pytest.raises(ValueError, match="test_signs.h5 is where the test split"):
        import_images(tmp_path / "imgs", tmp_path / "test_signs.h5", split="train", progress=False)
    with pytest.raises(ValueError, match="split: expected one of"):
        import_images(tmp_path / "imgs", tmp_path / "x.h5", split="dev", progress=False)


# ------------------------------------------------------------------------- data directories


def test_default_data_dir_is_the_project_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_data_dir() == REPO_ROOT / "data"


def test_split_sources_in_order_of_preference(tmp_path):
    make_image_folder(tmp_path / "jpg" / "test", [0, 1], seed=3)
    assert find_split_source(tmp_path, "test") == tmp_path / "jpg" / "test"
    make_image_folder(tmp_path / "test", [0, 1], seed=4)
    assert find_split_source(tmp_path, "test") == tmp_path / "test"
    write_h5(tmp_path / "test_signs.h5")
    assert find_split_source(tmp_path, "test") == tmp_path / "test_signs.h5"


def test_cwd_relative_data_dir(tmp_path, monkeypatch):
    images = make_image_folder(tmp_path / "here" / "train", [2, 3])
    write_h5(tmp_path / "here" / "test_signs.h5", m=6)
    monkeypatch.chdir(tmp_path)
    data = load_signs("here", dtype=np.float64)
    assert data.sources == {"train": Path("here/train"), "test": Path("here/test_signs.h5")}
    assert data.X_train.dtype == np.float64 and data.Y_train.shape == (2, 6)
    np.testing.assert_array_equal(data.X_train[0], images["2_img00.png"] / 255.0)
    np.testing.assert_array_equal(data.labels("train"), [2, 3])
    assert data.files["train"] == ["2_img00.png", "3_img01.png"]
    only_test = load_signs("here", splits=("test",))
    assert only_test.X_train is None and only_test.X_test.shape == (6, 64, 64, 3)


def test_missing_data_dir_or_split_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        load_signs(tmp_path / "nowhere")
    assert_one_line(exc, "nowhere does not exist", "signs import-images", "data/README.md")
    write_h5(tmp_path / "test_signs.h5")
    with pytest.raises(FileNotFoundError) as exc:
        load_signs(tmp_path)
    assert_one_line(
        exc,
        "no train split",
        str(tmp_path / "train_signs.h5"),
        str(tmp_path / "jpg" / "train"),
        "signs import-images",
        "data/README.md",
    )
