"""Canonical params <-> PyTorch state dicts: exact round trips, element placement, error cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference.spec import COURSE_MODEL, PARAM_NAMES
from torch_model import convert
from torch_model.model import SignsConvNet

SMALL = COURSE_MODEL.with_input(10, 13)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def params(request, npref):
    return npref.params(COURSE_MODEL, request.param, seed=21)


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


def test_name_map_matches_module_keys():
    assert set(convert.NAME_MAP) == set(PARAM_NAMES)
    assert list(SignsConvNet().state_dict()) == [convert.NAME_MAP[n] for n in PARAM_NAMES]


def test_round_trip_is_bitwise(params):
    state = convert.params_to_state_dict(params)
    _assert_bitwise_equal(convert.state_dict_to_params(state), params)
    assert all(t.is_contiguous() for t in state.values())


def test_round_trip_other_input_size(npref):
    params = npref.params(SMALL, np.float64, seed=22)
    _assert_bitwise_equal(convert.state_dict_to_params(convert.params_to_state_dict(params, SMALL), SMALL), params)


def test_elements_land_where_the_layouts_say(params):
    state = convert.params_to_state_dict(params)
    w1, w3 = state[convert.NAME_MAP["W1"]], state[convert.NAME_MAP["W3"]]
    assert w1.shape == (8, 3, 4, 4) and w3.shape == (6, 64)
    # Every element (a reshape in place of a permute lands most of them elsewhere):
    for name in ("W1", "W2"):  # OIHW[o, i, h, w] = HWIO[h, w, i, o]
        oihw, hwio = state[convert.NAME_MAP[name]].numpy(), params[name]
        for h, w, i, o in np.ndindex(*hwio.shape):
            assert oihw[o, i, h, w] == hwio[h, w, i, o], (name, h, w, i, o)
    linear = w3.numpy()
    for i, o in np.ndindex(*params["W3"].shape):  # nn.Linear (out, in)[o, i] = W3 (in, out)[i, o]
        assert linear[o, i] == params["W3"][i, o], (i, o)
    assert torch.equal(state[convert.NAME_MAP["b3"]], torch.from_numpy(params["b3"]))


def test_module_load_and_read_back_bitwise(params):
    dtype = torch.float32 if params["W1"].dtype == np.float32 else torch.float64
    module = SignsConvNet(dtype=dtype)
    convert.load_params_into_module(module, params)
    _assert_bitwise_equal(convert.params_from_module(module), params)


def test_non_contiguous_and_read_only_inputs(params):
    params = dict(params)
    params["W3"] = np.asfortranarray(params["W3"])
    params["W1"] = params["W1"].copy()
    params["W1"].setflags(write=False)
    back = convert.state_dict_to_params(convert.params_to_state_dict(params))
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(back[name], params[name])
        assert back[name].flags.c_contiguous


def test_file_round_trip_bitwise(params, tmp_path):
    path = tmp_path / "weights.pt"
    convert.save_state_dict(params, path)
    _assert_bitwise_equal(convert.load_state_dict_file(path), params)
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]  # no temporary left behind
    with pytest.raises(FileExistsError, match="weights.pt"):
        convert.save_state_dict(params, path)
    convert.save_state_dict(params, path, force=True)


def test_file_loads_into_a_stock_module(params, tmp_path):
    """The file is a plain state dict: ``SignsConvNet().load_state_dict(torch.load(...))`` works."""
    path = tmp_path / "weights.pt"
    convert.save_state_dict(params, path)
    dtype = torch.float32 if params["W1"].dtype == np.float32 else torch.float64
    module = SignsConvNet(dtype=dtype)
    module.load_state_dict(torch.load(path, weights_only=True))
    _assert_bitwise_equal(convert.params_from_module(module), params)


def _one_line_error(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("mutate, report_field, words", [
    (lambda p: p.pop("W2"), "missing", ["'W2'"]),
    (lambda p: p.update(W4=p["W1"]), "unexpected", ["'W4'"]),
    (lambda p: p.update(W3=p["W3"].T.copy()), "mismatched", ["W3", "(64, 6)", "(6, 64)"]),
    (lambda p: p.update(b3=p["b3"][None]), "mismatched", ["b3", "(6,)", "(1, 6)"]),
    (lambda p: p.update(W1=p["W1"].astype(np.float16)), "mismatched", ["W1", "float16"]),
    (lambda p: p.update(W2=p["W2"].tolist()), "mismatched", ["W2", "NumPy array", "list"]),
])
def test_bad_params_raise_with_report(params, mutate, report_field, words):
    params = dict(params)
    mutate(params)
    with pytest.raises(convert.StateDictMismatch) as info:
        convert.params_to_state_dict(params)
    message = _one_line_error(info)
    assert isinstance(info.value, ValueError) and message.startswith("params:")
    assert all(w in message for w in words), message
    assert getattr(info.value.report, report_field)


def test_mixed_dtypes_rejected(params):
    params = dict(params)
    other = np.float64 if params["W1"].dtype == np.float32 else np.float32
    params["b3"] = params["b3"].astype(other)
    with pytest.raises(ValueError, match="one dtype for all tensors"):
        convert.params_to_state_dict(params)


def test_byte_swapped_rejected(params):
    params = dict(params)
    params["W3"] = params["W3"].astype(params["W3"].dtype.newbyteorder(">"))
    with pytest.raises(ValueError, match=r"W3: expected dtype float32 or float64, got >f"):
        convert.params_to_state_dict(params)


@pytest.mark.parametrize("mutate, words", [
    (lambda s: s.pop("classifier.dense.bias"), ["missing key 'classifier.dense.bias'"]),
    (lambda s: s.update(extra=torch.zeros(1)), ["unexpected key 'extra'"]),
    (lambda s: s.update({"features.conv1.weight": torch.zeros(4, 4, 3, 8)}),
     ["features.conv1.weight: expected shape (8, 3, 4, 4), got (4, 4, 3, 8)"]),
    (lambda s: s.update({"classifier.dense.weight": torch.zeros(6, 64, dtype=torch.int32)}),
     ["classifier.dense.weight: expected dtype float32 or float64, got int32"]),
])
def test_bad_state_dict_reports_and_raises(params, mutate, words):
    state = convert.params_to_state_dict(params)
    mutate(state)
    report = convert.check_state_dict(state)
    assert not report.ok
    with pytest.raises(convert.StateDictMismatch) as info:
        convert.state_dict_to_params(state)
    message = _one_line_error(info)
    assert all(w in message for w in words), message


def test_wrong_input_size_is_a_shape_error_not_a_reshape(npref):
    state = convert.params_to_state_dict(npref.params(SMALL, np.float32, seed=23), SMALL)
    with pytest.raises(ValueError, match=r"classifier.dense.weight: expected shape \(6, 64\), got \(6, 16\)"):
        convert.state_dict_to_params(state)  # COURSE_MODEL expects 64 inputs


def test_module_dtype_mismatch(params):
    other = torch.float64 if params["W1"].dtype == np.float32 else torch.float32
    with pytest.raises(ValueError, match="params: expected dtype float"):
        convert.load_params_into_module(SignsConvNet(dtype=other), params)


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "numpy"])
def test_unreadable_files_raise_one_line(params, tmp_path, kind):
    good = tmp_path / "good.pt"
    convert.save_state_dict(params, good)
    raw = good.read_bytes()
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        _write_bytes(path, raw[: len(raw) // 2])
    elif kind == "text":
        _write_bytes(path, b"hello, not a checkpoint\n")
    elif kind == "empty":
        _write_bytes(path, b"")
    else:
        np.save(path.with_suffix(".npy"), np.ones(3))
        path = path.with_suffix(".npy")
    with pytest.raises(ValueError) as info:
        convert.load_state_dict_file(path)
    message = _one_line_error(info)
    assert message.startswith(str(path)) and "expected a PyTorch state-dict file" in message


def test_file_with_wrong_content(tmp_path, params):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match=r"list.pt: expected a dict of tensors, got list"):
        convert.load_state_dict_file(path)
    path = tmp_path / "partial.pt"
    state = convert.params_to_state_dict(params)
    del state["features.conv2.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"partial.pt: missing key 'features.conv2.weight'"):
        convert.load_state_dict_file(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        convert.load_state_dict_file(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="expected a PyTorch state-dict file, got a directory"):
        convert.load_state_dict_file(tmp_path)
