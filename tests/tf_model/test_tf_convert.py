"""tf_model.convert: canonical params <-> live Keras model and .weights.h5, bitwise, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference.spec import COURSE_MODEL, PARAM_NAMES
from tf_model_helpers import SMALL_SPEC, random_batch, random_params


def _assert_bitwise(a, b):
    assert set(a) == set(b) == set(PARAM_NAMES)
    for name in PARAM_NAMES:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_live_model_round_trip_is_bitwise(dtype):
    from tf_model.convert import get_keras_weights, set_keras_weights
    from tf_model.model import cached_model

    params = random_params(0, dtype=dtype)
    model, _ = cached_model(COURSE_MODEL, np.dtype(dtype).name)
    set_keras_weights(model, params)
    got = get_keras_weights(model)
    _assert_bitwise(params, got)
    got["W1"][0, 0, 0, 0] += 1.0  # a copy, not a view of the variable
    assert get_keras_weights(model)["W1"][0, 0, 0, 0] == params["W1"][0, 0, 0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_h5_round_trip_is_bitwise_and_keras_loads_it(tmp_path, dtype):
    from tf_model.convert import get_keras_weights, load_keras_weights, save_keras_weights
    from tf_model.model import build_model

    params = random_params(1, SMALL_SPEC, dtype)
    path = tmp_path / "model.weights.h5"
    assert save_keras_weights(params, path, spec=SMALL_SPEC) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]  # no temporary left
    _assert_bitwise(params, load_keras_weights(path, spec=SMALL_SPEC))
    # the public Keras API reads the file into a fresh model of that dtype
    model = build_model(SMALL_SPEC, np.dtype(dtype).name, seed=3)
    model.load_weights(str(path))
    _assert_bitwise(params, get_keras_weights(model))


def test_save_refuses_to_overwrite_without_force(tmp_path):
    from tf_model.convert import load_keras_weights, save_keras_weights

    path = tmp_path / "a.weights.h5"
    save_keras_weights(random_params(2, SMALL_SPEC), path, spec=SMALL_SPEC)
    newer = random_params(3, SMALL_SPEC)
    with pytest.raises(FileExistsError, match="a.weights.h5: already exists"):
        save_keras_weights(newer, path, spec=SMALL_SPEC)
    save_keras_weights(newer, path, force=True, spec=SMALL_SPEC)
    _assert_bitwise(newer, load_keras_weights(path, spec=SMALL_SPEC))


def test_set_weights_errors_name_the_tensor():
    from tf_model.convert import set_keras_weights
    from tf_model.model import cached_model

    model, _ = cached_model(COURSE_MODEL, "float32")
    params = random_params(4)
    with pytest.raises(ValueError, match=r"tensor W1: expected shape \(4, 4, 3, 8\) \(conv1/kernel\), got \(8, 3, 4, 4\)"):
        set_keras_weights(model, params | {"W1": params["W1"].transpose(3, 2, 0, 1).copy()})
    wide = {n: a.astype(np.float64) for n, a in params.items()}
    with pytest.raises(ValueError, match=r"tensor W1: expected dtype float32 \(conv1/kernel\), got float64"):
        set_keras_weights(model, wide)
    with pytest.raises(ValueError, match=r"missing \['b3'\]"):
        set_keras_weights(model, {n: params[n] for n in ("W1", "W2", "W3")})


def test_load_errors_name_the_file(tmp_path):
    from tf_model.convert import load_keras_weights, save_keras_weights

    with pytest.raises(FileNotFoundError, match="nothing.weights.h5: Keras weight file not found"):
        load_keras_weights(tmp_path / "nothing.weights.h5")
    with pytest.raises(ValueError, match=r"model.h5: expected a file name ending in '.weights.h5'"):
        save_keras_weights(random_params(5), tmp_path / "model.h5")
    small = tmp_path / "small.weights.h5"
    save_keras_weights(random_params(5, SMALL_SPEC), small, spec=SMALL_SPEC)
    with pytest.raises(ValueError, match=r"small.weights.h5: expected tensors of shapes .* \(input \(64, 64, 3\)\), got"):
        load_keras_weights(small)  # a 16x16-input file read as the 64x64 course model
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="garbage.weights.h5: not a readable HDF5 weight file"):
        load_keras_weights(garbage)
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(small.read_bytes()[:800])
    with pytest.raises(ValueError, match="truncated.weights.h5: "):
        load_keras_weights(truncated, spec=SMALL_SPEC)


def test_loaded_weights_drive_the_backend(tmp_path):
    # what was saved predicts what the params predict
    from tf_model.backend import predict_logits
    from tf_model.convert import load_keras_weights, save_keras_weights

    params = random_params(6, SMALL_SPEC)
    save_keras_weights(params, tmp_path / "m.weights.h5", spec=SMALL_SPEC)
    X, _ = random_batch(7, 3, SMALL_SPEC)
    loaded = load_keras_weights(tmp_path / "m.weights.h5", spec=SMALL_SPEC)
    np.testing.assert_array_equal(predict_logits(loaded, X, spec=SMALL_SPEC), predict_logits(params, X, spec=SMALL_SPEC))
