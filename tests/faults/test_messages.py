"""Issue 13.9: error messages point to options the command has, and say what was found."""

import numpy as np
import pytest
from PIL import Image

from reference.data.dataset import load_split
from signs.cli import main
from signs.convert import load_weights


def test_a_wrong_size_image_folder_says_how_to_convert_not_to_pass_resize(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "train" / "1_a.png")
    with pytest.raises(ValueError) as info:
        load_split(tmp_path, "train", progress=False)
    message = str(info.value)
    assert "pass --resize" not in message
    assert f"signs import-images {tmp_path / 'train'} {tmp_path / 'train_signs.h5'} --split train --resize" in message


@pytest.mark.parametrize("command", ["evaluate", "predict", "verify"])
def test_an_unknown_weight_name_does_not_suggest_from_to(tmp_path, capsys, command):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    argv = [command, "--weights", str(weights)] + (["image.png"] if command == "predict" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot tell the weight format" in err and "rename the file" in err
    assert "or pass --from/--to" not in err


@pytest.mark.parametrize("name", ["w.safetensors", "w.npz", "w.weights.h5", "w.pt"])
def test_a_directory_as_weight_file_is_not_a_file(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match=r"got a directory \(not a file\)"):
        load_weights(tmp_path / name)


def test_torch_load_errors_are_whole_and_give_the_reason(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "w.pt"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError) as info:
        load_weights(path)
    message = str(info.value)
    assert "\n" not in message
    assert "weights_only refused it: Unsupported operand" in message
    assert "weights_only` set to `False`" not in message  # no advice to run the file's code
    assert message.endswith(")")
