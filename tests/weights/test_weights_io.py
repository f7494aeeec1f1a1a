"""Canonical weight files (safetensors, npz): exact round trips, clear errors, atomic writes."""

import numpy as np
import pytest

from reference.fileio import atomic_path
from reference.init import glorot_init
from reference.validate import check_params
from reference.weights_io import load_npz, load_safetensors, save_npz, save_safetensors

FORMATS = [(save_safetensors, load_safetensors, "w.safetensors"), (save_npz, load_npz, "w.npz")]


@pytest.mark.parametrize("save,load,name", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bitwise(tmp_path, save, load, name, dtype):
    params = glorot_init(11, dtype=dtype)
    save(params, tmp_path / name, {"init": "glorot", "epoch": 3})
    loaded, metadata = load(tmp_path / name)
    for key in params:
        assert loaded[key].dtype == params[key].dtype
        assert loaded[key].tobytes() == params[key].tobytes()
    assert metadata["format_version"] == "1" and metadata["dtype"] == str(np.dtype(dtype))
    assert metadata["init"] == "glorot" and metadata["epoch"] == "3"


@pytest.mark.parametrize("save,load,name", FORMATS)
def test_refuses_to_overwrite_without_force(tmp_path, save, load, name):
    params = glorot_init(0)
    save(params, tmp_path / name)
    with pytest.raises(FileExistsError, match="already exists"):
        save(glorot_init(1), tmp_path / name)
    assert np.array_equal(load(tmp_path / name)[0]["W1"], params["W1"])
    save(glorot_init(1), tmp_path / name, force=True)
    assert np.array_equal(load(tmp_path / name)[0]["W1"], glorot_init(1)["W1"])


@pytest.mark.parametrize("save,load,name", FORMATS)
def test_truncated_and_missing_files_give_one_line_errors(tmp_path, save, load, name):
    path = tmp_path / name
    save(glorot_init(0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=name):
        load(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        load(tmp_path / f"nope{name}")


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda p: p.pop("b3"), r"missing \['b3'\]"),
        (lambda p: p.update(extra=np.zeros(1, np.float32)), r"unexpected \['extra'\]"),
        (lambda p: p.update(W1=p["W1"].reshape(4, 4, 24)), r"W1'\]: expected shape \(4, 4, 3, 8\), got \(4, 4, 24\)"),
        (lambda p: p.update(W3=p["W3"].T.copy()), r"W3'\]: expected shape \(64, 6\), got \(6, 64\)"),
        (lambda p: p.update(b3=p["b3"].astype(np.float64)), "one dtype"),
        (lambda p: p.update(W2=p["W2"].astype(np.int32)), r"W2'\]: expected dtype float32 or float64"),
    ],
)
def test_check_params_names_the_tensor(mutate, message):
    params = glorot_init(0)
    mutate(params)
    with pytest.raises(ValueError, match=message):
        check_params(params)


def test_wrong_shape_in_file_is_refused_not_reshaped(tmp_path):
    from safetensors.numpy import save_file

    params = glorot_init(0)
    params["W3"] = params["W3"].T.copy()  # a (6, 64) kernel: the torch layout, not the canonical one
    save_file(params, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match=r"W3'\]: expected shape \(64, 6\), got \(6, 64\)"):
        load_safetensors(tmp_path / "bad.safetensors")


def test_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "w.safetensors"
    save_safetensors(glorot_init(0), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(target, force=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]
