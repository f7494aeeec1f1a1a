"""SignsConvNet against a forward pass written directly in NumPy; flatten order; shapes; dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, activation_shapes, param_shapes
from signs.tolerances import FLOAT64_PARITY, parity_tolerance, relative_error
from torch_model.convert import NAME_MAP, load_params_into_module
from torch_model.model import SignsConvNet

SMALL = COURSE_MODEL.with_input(10, 13)  # SAME pools pad asymmetrically at this size


def numpy_forward(npref, params, X, spec):
    """The course network computed directly from the TF definitions (float64)."""
    def same(n_hw, f, s):
        return (npref.same_pads(n_hw[0], f, s), npref.same_pads(n_hw[1], f, s))

    acts = {}
    c1, p1, c2, p2 = spec.conv1, spec.pool1, spec.conv2, spec.pool2
    acts["Z1"] = npref.conv(X, params["W1"], (c1.stride,) * 2, same(X.shape[1:3], c1.kernel, c1.stride))
    acts["A1"] = np.maximum(acts["Z1"], 0)
    a1 = acts["A1"]
    acts["P1"] = npref.pool(a1, (p1.window,) * 2, (p1.stride,) * 2, same(a1.shape[1:3], p1.window, p1.stride), "max")
    p = acts["P1"]
    acts["Z2"] = npref.conv(p, params["W2"], (c2.stride,) * 2, same(p.shape[1:3], c2.kernel, c2.stride))
    acts["A2"] = np.maximum(acts["Z2"], 0)
    a2 = acts["A2"]
    acts["P2"] = npref.pool(a2, (p2.window,) * 2, (p2.stride,) * 2, same(a2.shape[1:3], p2.window, p2.stride), "max")
    acts["F"] = acts["P2"].reshape(X.shape[0], -1)  # C-order reshape of NHWC = NHWC-flatten order
    acts["Z3"] = acts["F"] @ params["W3"] + params["b3"]
    return acts


def _model(params, spec, dtype):
    model = SignsConvNet(spec, dtype)
    load_params_into_module(model, params)
    return model


@pytest.mark.parametrize("spec", [COURSE_MODEL, SMALL, COURSE_MODEL.with_input(9, 17)])
def test_activations_match_numpy_forward_float64(npref, spec):
    params = npref.params(spec, np.float64, seed=1)
    X, _ = npref.batch(spec, 2, np.float64, seed=2)
    acts = _model(params, spec, torch.float64).forward_with_activations(torch.from_numpy(X))
    want = numpy_forward(npref, params, X, spec)
    shapes = activation_shapes(spec, m=2)
    for name in ACTIVATION_NAMES:
        assert tuple(acts[name].shape) == shapes[name] == want[name].shape, name
        assert relative_error(acts[name].detach().numpy(), want[name]) <= FLOAT64_PARITY, name


def test_activations_match_numpy_forward_float32(npref):
    params = npref.params(COURSE_MODEL, np.float32, seed=3)
    X, _ = npref.batch(COURSE_MODEL, 2, np.float32, seed=4)
    acts = _model(params, COURSE_MODEL, torch.float32).forward_with_activations(torch.from_numpy(X))
    want = numpy_forward(npref, {k: v.astype(np.float64) for k, v in params.items()}, X.astype(np.float64), COURSE_MODEL)
    for name in ACTIVATION_NAMES:
        assert acts[name].dtype == torch.float32
        assert relative_error(acts[name].detach().numpy(), want[name]) <= parity_tolerance(name, np.float32), name


def test_forward_equals_last_activation(npref):
    params = npref.params(SMALL, np.float64, seed=5)
    X = torch.from_numpy(npref.batch(SMALL, 3, np.float64, seed=6)[0])
    model = _model(params, SMALL, torch.float64)
    assert torch.equal(model(X), model.forward_with_activations(X)["Z3"])


@pytest.mark.parametrize("h, w, c", [(0, 0, 0), (1, 0, 5), (1, 1, 15), (0, 1, 9)])
def test_dense_row_picks_its_nhwc_position(npref, h, w, c):
    """A one-hot W3 row (h * W + w) * C + c makes logit k equal P2[:, h, w, c]."""
    spec = COURSE_MODEL
    params = {k: np.abs(v) for k, v in npref.params(spec, np.float64, seed=7).items()}  # no dead ReLUs
    _, n_h, n_w, n_c = activation_shapes(spec)["P2"]
    params["W3"] = np.zeros(param_shapes(spec)["W3"])
    params["b3"] = np.zeros(param_shapes(spec)["b3"])
    params["W3"][(h * n_w + w) * n_c + c, 4] = 1.0
    X = torch.from_numpy(np.abs(npref.batch(spec, 3, np.float64, seed=8)[0]))
    acts = _model(params, spec, torch.float64).forward_with_activations(X)
    assert torch.all(acts["P2"][:, h, w, c] > 0)
    assert torch.equal(acts["Z3"][:, 4], acts["P2"][:, h, w, c])
    assert torch.count_nonzero(acts["Z3"][:, [0, 1, 2, 3, 5]]) == 0


def test_state_dict_keys_shapes_and_dtypes():
    for dtype in (torch.float32, torch.float64):
        state = SignsConvNet(SMALL, dtype).state_dict()
        assert list(state) == list(NAME_MAP.values())
        shapes = param_shapes(SMALL)
        assert tuple(state[NAME_MAP["W1"]].shape) == tuple(np.array(shapes["W1"])[[3, 2, 0, 1]])
        assert tuple(state[NAME_MAP["W3"]].shape) == shapes["W3"][::-1]
        assert all(t.dtype == dtype for t in state.values())


def test_dense_width_follows_input_size():
    spec = COURSE_MODEL.with_input(40, 72)
    model = SignsConvNet(spec)
    assert model.classifier[-1].in_features == param_shapes(spec)["W3"][0] == 2 * 3 * 16
    assert model(torch.zeros(2, 40, 72, 3)).shape == (2, 6)


def test_bad_dtype_raises():
    with pytest.raises(ValueError, match="dtype: expected torch.float32 or torch.float64, got torch.float16"):
        SignsConvNet(dtype=torch.float16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu_float64(npref):
    params = npref.params(SMALL, np.float64, seed=9)
    X = torch.from_numpy(npref.batch(SMALL, 2, np.float64, seed=10)[0])
    cpu = _model(params, SMALL, torch.float64).forward_with_activations(X)
    gpu = _model(params, SMALL, torch.float64).to("cuda").forward_with_activations(X.cuda())
    for name in ACTIVATION_NAMES:
        assert relative_error(gpu[name].cpu().numpy(), cpu[name].numpy()) <= FLOAT64_PARITY, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_forward_is_bitwise_the_layer_by_layer_forward(npref, dtype):
    """forward pools before its ReLUs; values and gradients must equal the course order exactly."""
    params = npref.params(COURSE_MODEL, dtype, seed=12)
    X, Y = npref.batch(COURSE_MODEL, 4, dtype, seed=13)
    model = _model(params, COURSE_MODEL, torch.float32 if dtype == np.float32 else torch.float64)
    results = []
    for run in (model, lambda x: model.forward_with_activations(x)["Z3"]):
        x = torch.from_numpy(X).requires_grad_(True)
        logits = run(x)
        upstream = torch.from_numpy(Y)  # a random upstream gradient, not all ones
        grads = torch.autograd.grad(logits, [x, *model.parameters()], upstream)
        results.append([logits, *grads])
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert torch.count_nonzero(results[0][1]) > 0
