"""The torch backend: outputs and layouts, gradients (gradcheck and finite differences), Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reference.spec import (
    ACTIVATION_NAMES,
    COURSE_MODEL,
    COURSE_TRAINING,
    GRADIENT_NAMES,
    PARAM_NAMES,
    activation_shapes,
    param_shapes,
)
from signs.tolerances import FLOAT64_ADAM_STEPS, GRADIENT_CHECK, relative_error
from torch_model import backend
from torch_model.convert import NAME_MAP, TO_TORCH
from torch_model.model import SignsConvNet

SMALL = COURSE_MODEL.with_input(10, 13)  # asymmetric SAME padding in conv1 and pool1


def test_interface_constants():
    assert backend.NAME == "torch"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_keys_shapes_dtypes(npref, dtype):
    params = npref.params(COURSE_MODEL, dtype, seed=31)
    X, Y = npref.batch(COURSE_MODEL, 3, dtype, seed=32, soft=False)
    out = backend.forward_backward(params, X, Y)
    assert set(out) == {*ACTIVATION_NAMES, "cost", *GRADIENT_NAMES}
    shapes = activation_shapes(COURSE_MODEL, m=3)
    for name in ACTIVATION_NAMES:
        assert out[name].shape == shapes[name] and out[name].dtype == dtype, name
    for name in PARAM_NAMES:
        assert out[f"d{name}"].shape == param_shapes(COURSE_MODEL)[name] and out[f"d{name}"].dtype == dtype
    assert out["dX"].shape == X.shape and out["dX"].dtype == dtype
    assert out["cost"].shape == () and out["cost"].dtype == dtype
    assert all(a.flags.c_contiguous for a in out.values())


def _cost_function(spec):
    """cost(X, W1, W2, W3, b3), every argument canonical, through SignsConvNet (float64)."""
    module = SignsConvNet(spec, torch.float64)

    def cost(X, Y, W1, W2, W3, b3):
        canonical = {"W1": W1, "W2": W2, "W3": W3, "b3": b3}
        state = {NAME_MAP[n]: TO_TORCH[n](canonical[n]) for n in PARAM_NAMES}
        logits = torch.func.functional_call(module, state, (X,))
        return backend.softmax_cross_entropy(logits, Y)

    return cost


def test_autograd_passes_gradcheck_and_forward_backward_returns_it(npref):
    params = npref.params(SMALL, np.float64, seed=33)
    X, Y = npref.batch(SMALL, 2, np.float64, seed=34)
    cost = _cost_function(SMALL)
    inputs = [torch.tensor(X, requires_grad=True)] + [torch.tensor(params[n], requires_grad=True) for n in PARAM_NAMES]
    y = torch.tensor(Y)
    assert torch.autograd.gradcheck(lambda x, *w: cost(x, y, *w), inputs, fast_mode=True)
    grads = torch.autograd.grad(cost(inputs[0], y, *inputs[1:]), inputs)
    out = backend.forward_backward(params, X, Y, spec=SMALL)
    for name, grad in zip(["dX", *[f"d{n}" for n in PARAM_NAMES]], grads):
        assert relative_error(out[name], grad.numpy()) <= 1e-14, name


def test_gradients_match_finite_differences(npref):
    """Directional derivatives of forward_backward's cost along random directions (float64)."""
    params = npref.params(SMALL, np.float64, seed=35)
    X, Y = npref.batch(SMALL, 2, np.float64, seed=36)
    out = backend.forward_backward(params, X, Y, spec=SMALL)
    rng = np.random.default_rng(37)
    h = 1e-6

    def cost_at(p, x):
        return float(backend.forward_backward(p, x, Y, spec=SMALL)["cost"])

    for name in [*PARAM_NAMES, "X"]:
        for _ in range(2):
            direction = rng.standard_normal(X.shape if name == "X" else params[name].shape)
            shifted = []
            for sign in (1, -1):
                p, x = dict(params), X
                if name == "X":
                    x = X + sign * h * direction
                else:
                    p[name] = params[name] + sign * h * direction
                shifted.append(cost_at(p, x))
            numeric = (shifted[0] - shifted[1]) / (2 * h)
            analytic = float(np.sum(out[f"d{name}"] * direction))
            assert relative_error(numeric, analytic) <= GRADIENT_CHECK, name


def test_cost_is_soft_label_cross_entropy(npref):
    params = npref.params(SMALL, np.float64, seed=38)
    X, Y = npref.batch(SMALL, 4, np.float64, seed=39)
    out = backend.forward_backward(params, X, Y, spec=SMALL)
    z3 = out["Z3"]
    log_softmax = z3 - z3.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    assert relative_error(out["cost"], -(Y * log_softmax).sum(1).mean()) <= 1e-14
    # torch >= 1.10 cross_entropy accepts class probabilities as the target: the same number.
    torch_cost = F.cross_entropy(torch.tensor(z3), torch.tensor(Y)).numpy()
    assert relative_error(out["cost"], torch_cost) <= 1e-14


def test_predict_logits_equals_forward_z3(npref):
    params = npref.params(COURSE_MODEL, np.float32, seed=40)
    X, Y = npref.batch(COURSE_MODEL, 3, np.float32, seed=41)
    logits = backend.predict_logits(params, X)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, backend.forward_backward(params, X, Y)["Z3"])


def test_global_rng_untouched(npref):
    params = npref.params(SMALL, np.float64, seed=42)
    X, Y = npref.batch(SMALL, 2, np.float64, seed=43)
    before = torch.get_rng_state()
    backend.forward_backward(params, X, Y, spec=SMALL)
    backend.Trainer(params, spec=SMALL)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("change, match", [
    (lambda p, X, Y: (p, X[:, :, :, :2], Y), r"X: expected a NumPy array of shape \(m, 64, 64, 3\) NHWC"),
    (lambda p, X, Y: (p, X.astype(np.float64), Y), "X: expected dtype float32 .*got float64"),
    (lambda p, X, Y: (p, X, Y[:2]), r"Y: expected a NumPy array of shape \(3, 6\), got \(2, 6\)"),
    (lambda p, X, Y: (p, X, Y[:, :5]), r"Y: expected a NumPy array of shape \(3, 6\), got \(3, 5\)"),
    (lambda p, X, Y: (p, X.tolist(), Y), "X: expected a NumPy array"),
    (lambda p, X, Y: (p, X[:0], Y[:0]), "X: expected at least one example"),
    (lambda p, X, Y: ({k: v for k, v in p.items() if k != "b3"}, X, Y), r"params: expected keys .*\(missing \['b3'\]"),
])
def test_bad_inputs_raise(npref, change, match):
    params = npref.params(COURSE_MODEL, np.float32, seed=44)
    X, Y = npref.batch(COURSE_MODEL, 3, np.float32, seed=45)
    p, x, y = change(params, X, Y)
    with pytest.raises(ValueError, match=match):
        backend.forward_backward(p, x, y)


@pytest.mark.parametrize("device, match", [("tpu", "device: expected 'cpu'"), ("not a device", "device")])
def test_bad_device_raises(npref, device, match):
    params = npref.params(COURSE_MODEL, np.float32, seed=46)
    with pytest.raises(ValueError, match=match):
        backend.Trainer(params, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_unavailable_is_a_value_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        backend.resolve_device("cuda")


def test_trainer_lowers_the_loss(npref):
    params = npref.params(SMALL, np.float32, seed=47, scale=0.3)
    X, Y = npref.batch(SMALL, 16, np.float32, seed=48, soft=False)
    trainer = backend.Trainer(params, spec=SMALL)
    costs = [trainer.step(X, Y) for _ in range(40)]
    assert costs[-1] < 0.5 * costs[0]
    assert trainer.get_optimizer_state()["t"] == 40


def test_trainer_step_returns_cost_before_update_and_follows_tf1_rule(npref):
    """One Trainer step = forward_backward's cost and grads + the TF1 formula in NumPy."""
    params = npref.params(SMALL, np.float64, seed=49)
    X, Y = npref.batch(SMALL, 4, np.float64, seed=50)
    trainer = backend.Trainer(params, spec=SMALL)
    out = backend.forward_backward(params, X, Y, spec=SMALL)
    assert trainer.step(X, Y) == float(out["cost"])
    t, tr = 1, COURSE_TRAINING
    lr_t = tr.learning_rate * np.sqrt(1 - tr.beta2**t) / (1 - tr.beta1**t)
    state, new = trainer.get_optimizer_state(), trainer.get_params()
    for name in PARAM_NAMES:
        g = out[f"d{name}"]
        m, v = g * (1 - tr.beta1), g * g * (1 - tr.beta2)
        want = params[name] - m * lr_t / (np.sqrt(v) + tr.epsilon)
        assert relative_error(new[name], want) <= FLOAT64_ADAM_STEPS, name
        assert relative_error(state["m"][name], m) <= FLOAT64_ADAM_STEPS
        assert relative_error(state["v"][name], v) <= FLOAT64_ADAM_STEPS


def test_trainer_does_not_touch_callers_params(npref):
    params = npref.params(SMALL, np.float32, seed=51)
    copy = {k: v.copy() for k, v in params.items()}
    trainer = backend.Trainer(params, spec=SMALL)
    for name in PARAM_NAMES:
        assert trainer.get_params()[name].tobytes() == params[name].tobytes()
    trainer.step(*npref.batch(SMALL, 4, np.float32, seed=52))
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(params[name], copy[name])
        assert not np.array_equal(trainer.get_params()[name], params[name])


@pytest.mark.parametrize("optimizer", backend.OPTIMIZERS)
def test_state_restore_gives_bitwise_same_next_step(npref, optimizer):
    params = npref.params(SMALL, np.float32, seed=53)
    batches = [npref.batch(SMALL, 4, np.float32, seed=54 + i) for i in range(4)]
    first = backend.Trainer(params, spec=SMALL, optimizer=optimizer)
    for X, Y in batches[:3]:
        first.step(X, Y)
    second = backend.Trainer(first.get_params(), spec=SMALL, optimizer=optimizer)
    second.set_optimizer_state(first.get_optimizer_state())
    assert first.step(*batches[3]) == second.step(*batches[3])
    a, b = first.get_params(), second.get_params()
    sa, sb = first.get_optimizer_state(), second.get_optimizer_state()
    assert sa["t"] == sb["t"] == 4
    for name in PARAM_NAMES:
        assert a[name].tobytes() == b[name].tobytes()
        assert sa["m"][name].tobytes() == sb["m"][name].tobytes()
        assert sa["v"][name].tobytes() == sb["v"][name].tobytes()


def test_fresh_state_is_zero_and_optimizers_differ(npref):
    params = npref.params(SMALL, np.float64, seed=60)
    X, Y = npref.batch(SMALL, 4, np.float64, seed=61)
    tf1, ref = backend.Trainer(params, spec=SMALL), backend.Trainer(params, spec=SMALL, optimizer="torch")
    state = tf1.get_optimizer_state()
    assert state["t"] == 0 and all(not np.any(state[k][n]) for k in "mv" for n in PARAM_NAMES)
    assert state["m"]["W1"].shape == param_shapes(SMALL)["W1"]
    tf1.step(X, Y)
    ref.step(X, Y)
    assert relative_error(tf1.get_params()["W1"] - params["W1"], ref.get_params()["W1"] - params["W1"]) > 1e-9


@pytest.mark.parametrize("state, match", [
    ({"t": 1, "m": {}}, r"state: expected a dict with keys \['m', 't', 'v'\]"),
    ({"t": -1, "m": None, "v": None}, r"state\['t'\]: expected a non-negative integer"),
    ({"t": 1.5, "m": None, "v": None}, r"state\['t'\]"),
])
def test_bad_optimizer_state_raises(npref, state, match):
    trainer = backend.Trainer(npref.params(SMALL, np.float32, seed=62), spec=SMALL)
    with pytest.raises(ValueError, match=match):
        trainer.set_optimizer_state(state)


def test_optimizer_state_dtype_and_shape_checked(npref):
    trainer = backend.Trainer(npref.params(SMALL, np.float32, seed=63), spec=SMALL)
    state = trainer.get_optimizer_state()
    bad = {**state, "m": {k: v.astype(np.float64) for k, v in state["m"].items()}}
    with pytest.raises(ValueError, match=r"state\['m'\]: expected dtype float32"):
        trainer.set_optimizer_state(bad)
    bad = {**state, "v": {**state["v"], "W3": state["v"]["W3"].T}}
    with pytest.raises(ValueError, match=r"state\['v'\]\['W3'\]: expected shape \(16, 6\), got \(6, 16\)"):
        trainer.set_optimizer_state(bad)
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        backend.Trainer(npref.params(SMALL, np.float32, seed=63), spec=SMALL, optimizer="sgd")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(npref):
    params = npref.params(SMALL, np.float64, seed=64)
    X, Y = npref.batch(SMALL, 3, np.float64, seed=65)
    cpu = backend.forward_backward(params, X, Y, spec=SMALL)
    gpu = backend.forward_backward(params, X, Y, spec=SMALL, device="cuda")
    for name in cpu:
        assert relative_error(gpu[name], cpu[name]) <= 1e-10, name
    trainer = backend.Trainer(params, spec=SMALL, device="cuda")
    trainer.step(X, Y)
    assert trainer.get_params()["W1"].dtype == np.float64


@pytest.mark.parametrize("optimizer", backend.OPTIMIZERS)
def test_set_learning_rate_scales_the_next_update(npref, optimizer):
    params = npref.params(SMALL, np.float64, seed=66)
    X, Y = npref.batch(SMALL, 4, np.float64, seed=67)
    full, half = (backend.Trainer(params, spec=SMALL, optimizer=optimizer) for _ in range(2))
    half.set_learning_rate(COURSE_TRAINING.learning_rate / 2)
    full.step(X, Y)
    half.step(X, Y)
    for name in PARAM_NAMES:
        step_full = full.get_params()[name] - params[name]
        step_half = half.get_params()[name] - params[name]
        assert relative_error(step_half, 0.5 * step_full) <= 1e-12, name
    with pytest.raises(ValueError, match="lr: expected a finite number > 0, got -1"):
        full.set_learning_rate(-1)
