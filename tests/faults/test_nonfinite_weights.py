"""Issue 13.1: weights holding NaN or inf are refused on load (every format), except by
`signs convert --allow-nonfinite`; `signs verify` reports them as a failure row."""

import numpy as np
import pytest

from reference.init import glorot_init
from signs.cli import main
from signs.convert import FORMATS, load_weights, save_weights

def nonfinite_params():
    """Glorot weights with two NaNs and one -inf in W2 (2, 2, 8, 16): 3 of 512 elements."""
    params = glorot_init(5)
    params["W2"] = params["W2"].copy()
    params["W2"][0, 0, 0, :2] = np.nan
    params["W2"][1, 1, 7, 15] = -np.inf
    return params


@pytest.fixture(scope="module")
def nonfinite_files(tmp_path_factory, weight_file_names):
    folder = tmp_path_factory.mktemp("nonfinite")
    params = nonfinite_params()
    paths = {}
    for fmt in FORMATS:
        paths[fmt] = folder / fmt / weight_file_names[fmt]
        save_weights(params, paths[fmt])
    return paths


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_refuses_nonfinite_weights_naming_tensor_and_count(nonfinite_files, fmt):
    with pytest.raises(ValueError, match=r"\['W2'\]: expected finite values, got 3 of 512 elements NaN or inf"):
        load_weights(nonfinite_files[fmt])
    params, _ = load_weights(nonfinite_files[fmt], allow_nonfinite=True)
    expected = nonfinite_params()
    assert params["W2"].tobytes() == expected["W2"].tobytes()  # NaN payloads and -inf kept bitwise


def _one_error_line(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"signs {command}: error: ") and "3 of 512 elements NaN or inf" in err[0], err
    return err[0]


def test_evaluate_and_predict_refuse_with_one_line(nonfinite_files, tmp_path, capsys):
    weights = str(nonfinite_files["safetensors"])
    assert main(["evaluate", "--weights", weights, "--out", str(tmp_path / "eval")]) == 2
    _one_error_line(capsys, "evaluate")
    assert not (tmp_path / "eval").exists()
    assert main(["predict", "--weights", str(nonfinite_files["torch"]), "no-such-image.png"]) == 2
    _one_error_line(capsys, "predict")


def test_convert_refuses_unless_allow_nonfinite(nonfinite_files, tmp_path, capsys):
    src, dst = str(nonfinite_files["npz"]), tmp_path / "out.safetensors"
    assert main(["convert", src, str(dst)]) == 2
    _one_error_line(capsys, "convert")
    assert not dst.exists()
    assert main(["convert", src, str(dst), "--allow-nonfinite"]) == 0
    params, _ = load_weights(dst, allow_nonfinite=True)
    assert params["W2"].tobytes() == nonfinite_params()["W2"].tobytes()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN is the point
def test_verify_still_reports_nonfinite_weights_as_a_failure_row(nonfinite_files, capsys):
    argv = ["verify", "--weights", str(nonfinite_files["npz"]), "--backends", "numpy,torch", "--dtype", "float64"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "first divergence: Z2 (conv2)" in out and "NON-FINITE" in out
