"""Every format pair converts bitwise exactly, through the one dispatching converter."""

import itertools

import numpy as np
import pytest

from reference.init import course_init, glorot_init
from signs.cli import main
from signs.convert import FORMATS, detect_format, load_weights, params_from_model, params_into_model, save_weights

pytest.importorskip("tensorflow", reason="TensorFlow not installed: keras and tf1 formats need it")
pytest.importorskip("torch", reason="PyTorch not installed: the torch format needs it")

def assert_bitwise(expected, got):
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        assert got[name].shape == value.shape, name
        assert got[name].tobytes() == value.tobytes(), name


@pytest.fixture(scope="module")
def params():
    return glorot_init(2024)


@pytest.mark.parametrize("src,dst", list(itertools.permutations(FORMATS, 2)))
def test_every_pair_round_trips_bitwise(tmp_path, params, src, dst, weight_file_names):
    src_path, dst_path = tmp_path / "a" / weight_file_names[src], tmp_path / "b" / weight_file_names[dst]
    save_weights(params, src_path)
    assert detect_format(src_path) == src
    loaded, _ = load_weights(src_path)
    assert_bitwise(params, loaded)
    save_weights(loaded, dst_path)
    converted, _ = load_weights(dst_path)
    assert_bitwise(params, converted)


@pytest.fixture(scope="module")
def params64():
    """float64 params whose every tensor loses bits in a float32 cast (a casting writer fails)."""
    params = glorot_init(2025, dtype=np.float64)  # drawn in float64, not widened from float32
    params["b3"] = np.random.default_rng(2025).uniform(-0.1, 0.1, size=params["b3"].shape)
    for name, value in params.items():
        assert not np.array_equal(value, value.astype(np.float32).astype(np.float64)), name
    return params


@pytest.mark.parametrize("fmt", FORMATS)
def test_float64_round_trips_bitwise(tmp_path, params64, fmt, weight_file_names):
    params = params64
    save_weights(params, tmp_path / weight_file_names[fmt])
    assert_bitwise(params, load_weights(tmp_path / weight_file_names[fmt])[0])


def test_cli_convert_chain_through_every_format(tmp_path, capsys, weight_file_names):
    """safetensors -> npz -> keras -> torch -> tf1 -> safetensors with `signs convert`."""
    chain = ["safetensors", "npz", "keras", "torch", "tf1", "safetensors"]
    paths = [tmp_path / f"{i}_{weight_file_names[f]}" for i, f in enumerate(chain)]
    assert main(["init", str(paths[0]), "--course"]) == 0
    for src, dst in zip(paths, paths[1:]):
        assert main(["convert", str(src), str(dst)]) == 0
    assert_bitwise(course_init(), load_weights(paths[-1])[0])
    assert "converted" in capsys.readouterr().out


def test_cli_refuses_overwrite_and_unknown_formats(tmp_path, capsys):
    target = tmp_path / "w.safetensors"
    assert main(["init", str(target)]) == 0
    assert main(["init", str(target), "--seed", "3"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", str(target), str(tmp_path / "w.unknown")]) == 2
    assert "cannot tell the weight format" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.npz"), str(tmp_path / "x.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_live_models_through_the_dispatcher(params):
    from tf_model.model import build_model
    from torch_model.model import SignsConvNet

    for model in (build_model(), SignsConvNet()):
        params_into_model(params, model)
        assert_bitwise(params, params_from_model(model))
    with pytest.raises(ValueError, match="keras.Model or a torch.nn.Module"):
        params_from_model(object())
