"""``signs import-images`` through signs.cli.main."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reference.data.course_h5 import read_signs_h5
from signs.cli import main


def make_pngs(folder: Path, labels) -> list[np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    pixels = []
    for i, label in enumerate(labels):
        pixels.append(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
        Image.fromarray(pixels[-1]).save(folder / f"{label}_p{i}.png")
    return pixels


def test_cli_round_trip(tmp_path, capsys):
    pixels = make_pngs(tmp_path / "imgs", [1, 0, 4])
    out = tmp_path / "data" / "test_signs.h5"
    rc = main(["import-images", str(tmp_path / "imgs"), str(out), "--split", "test"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 3 test images" in printed and "0: 1, 1: 1, 4: 1" in printed
    X, y, _, files = read_signs_h5(out, "test")
    assert files == ["0_p1.png", "1_p0.png", "4_p2.png"]
    np.testing.assert_array_equal(y, [0, 1, 4])
    np.testing.assert_array_equal(X[0], pixels[1])

    rc = main(["import-images", str(tmp_path / "imgs"), str(out), "--split", "test"])
    captured = capsys.readouterr()
    assert rc == 2 and "signs import-images: error:" in captured.err and "--force" in captured.err
    assert main(["import-images", str(tmp_path / "imgs"), str(out), "--split", "test", "--force"]) == 0


def test_cli_resize_and_errors(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((40, 50), 9, np.uint8)).save(folder / "5_gray.png")
    out = tmp_path / "train_signs.h5"
    assert main(["import-images", str(folder), str(out), "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "5_gray.png is 50x40 L" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["import-images", str(folder), str(out), "--split", "train", "--resize"]) == 0
    assert "resized or converted 1 images" in capsys.readouterr().out
    X, y, _, _ = read_signs_h5(out, "train")
    assert X.shape == (1, 64, 64, 3) and np.all(X == 9) and y.tolist() == [5]
    missing = ["import-images", str(tmp_path / "nowhere"), str(tmp_path / "o.h5"), "--split", "train"]
    assert main(missing) == 2
    assert "does not exist" in capsys.readouterr().err
