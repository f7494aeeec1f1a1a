"""reference.backend implements the interface of signs.backends."""

from __future__ import annotations

import numpy as np
import pytest

from reference import backend
from reference.adam import Adam
from reference.model import compute_cost, model_backward, model_forward
from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, PARAM_NAMES, activation_shapes, param_shapes
from signs.backends import get_backend

SMALL = COURSE_MODEL.with_input(16, 16)


def make(spec=SMALL, m=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {name: (rng.standard_normal(shape) * 0.3).astype(dtype) for name, shape in param_shapes(spec).items()}
    X = rng.random((m,) + spec.input_shape).astype(dtype)
    Y = np.eye(6, dtype=dtype)[rng.integers(0, 6, m)]
    return params, X, Y


def test_registered_as_numpy():
    assert get_backend("numpy") is backend and backend.NAME == "numpy"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_keys_shapes_dtypes(dtype):
    params, X, Y = make(COURSE_MODEL, 2, dtype)
    out = backend.forward_backward(params, X, Y)
    assert set(out) == set(ACTIVATION_NAMES) | set(GRADIENT_NAMES) | {"cost"}
    shapes = activation_shapes(COURSE_MODEL, 2)
    for name in ACTIVATION_NAMES:
        assert out[name].shape == shapes[name] and out[name].dtype == dtype, name
    grad_shapes = {"d" + k: v for k, v in param_shapes(COURSE_MODEL).items()} | {"dX": X.shape}
    for name in GRADIENT_NAMES:
        assert out[name].shape == grad_shapes[name] and out[name].dtype == dtype, name
    assert isinstance(out["cost"], np.ndarray) and out["cost"].shape == () and out["cost"].dtype == dtype
    assert out["cost"] == compute_cost(out["Z3"], Y)
    np.testing.assert_array_equal(backend.predict_logits(params, X), out["Z3"])


def test_forward_backward_equals_model_functions():
    params, X, Y = make()
    out = backend.forward_backward(params, X, Y, spec=SMALL)
    acts = model_forward(params, X, SMALL)
    grads = model_backward(params, X, Y, acts, SMALL)
    for name, value in {**acts, **grads}.items():
        np.testing.assert_array_equal(out[name], value)


def test_device_must_be_cpu():
    params, X, Y = make()
    with pytest.raises(ValueError, match=r"device: expected 'cpu'.*got 'cuda'"):
        backend.forward_backward(params, X, Y, spec=SMALL, device="cuda")
    with pytest.raises(ValueError, match="device"):
        backend.predict_logits(params, X, spec=SMALL, device="gpu")
    with pytest.raises(ValueError, match="device"):
        backend.Trainer(params, spec=SMALL, device="cuda:0")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p, X, Y: (dict(p, W1=p["W1"][:2]), X, Y), r"params\['W1'\]: expected shape \(4, 4, 3, 8\)"),
        (lambda p, X, Y: ({**p, "W4": p["W3"]}, X, Y), r"params: expected keys"),
        (lambda p, X, Y: (dict(p, W3=p["W3"].astype(np.float32)), X, Y), r"params: expected one dtype"),
        (lambda p, X, Y: (dict(p, b3=p["b3"].astype(np.int64)), X, Y), r"params\['b3'\]: expected dtype float32 or float64"),
        (lambda p, X, Y: (p, X[..., :2], Y), r"X: expected a NumPy array of shape \(m, 16, 16, 3\)"),
        (lambda p, X, Y: (p, X.astype(np.float32), Y), r"X: expected dtype float64"),
        (lambda p, X, Y: (p, X, Y[:, :5]), r"Y: expected a NumPy array of shape \(4, 6\)"),
        (lambda p, X, Y: (p, X, Y.astype(np.float32)), r"Y: expected dtype float64"),
        (lambda p, X, Y: (p, X.tolist(), Y), r"X: expected a NumPy array"),
    ],
)
def test_input_validation(change, match):
    params, X, Y = change(*make())
    with pytest.raises(ValueError, match=match):
        backend.forward_backward(params, X, Y, spec=SMALL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trainer_step_returns_cost_before_update_and_applies_adam(dtype):
    params, X, Y = make(dtype=dtype, seed=1)
    trainer = backend.Trainer(params, spec=SMALL)
    state0 = trainer.get_optimizer_state()
    assert state0["t"] == 0 and all(np.all(a == 0) for a in state0["m"].values())
    cost = trainer.step(X, Y)
    assert isinstance(cost, float)
    assert cost == float(compute_cost(model_forward(params, X, SMALL)["Z3"], Y))
    # The same update by hand: model gradients, then Adam.
    expected = {k: v.copy() for k, v in params.items()}
    Adam().step(expected, model_backward(params, X, Y, model_forward(params, X, SMALL), SMALL, need_dX=False))
    new = trainer.get_params()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name in PARAM_NAMES:
        assert new[name].dtype == dtype
        np.testing.assert_allclose(new[name], expected[name], rtol=0, atol=tol * np.abs(expected[name]).max())
        assert not np.array_equal(new[name], params[name])  # every parameter moved
    assert trainer.get_optimizer_state()["t"] == 1


def test_trainer_keeps_private_copies():
    params, X, Y = make(seed=2)
    original = {k: v.copy() for k, v in params.items()}
    trainer = backend.Trainer(params, spec=SMALL)
    trainer.step(X, Y)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(params[name], original[name])  # caller's arrays untouched
    got = trainer.get_params()
    got["W1"][:] = 0
    assert np.any(trainer.get_params()["W1"] != 0)


def test_optimizer_state_round_trip():
    params, X, Y = make(seed=3)
    a = backend.Trainer(params, spec=SMALL)
    for _ in range(2):
        a.step(X, Y)
    b = backend.Trainer(a.get_params(), spec=SMALL)
    b.set_optimizer_state(a.get_optimizer_state())
    X2 = X[::-1].copy()
    assert a.step(X2, Y) == b.step(X2, Y)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(a.get_params()[name], b.get_params()[name])
    sa, sb = a.get_optimizer_state(), b.get_optimizer_state()
    assert sa["t"] == sb["t"] == 3
    for key in ("m", "v"):
        for name in PARAM_NAMES:
            np.testing.assert_array_equal(sa[key][name], sb[key][name])


def test_set_optimizer_state_validation():
    params, _, _ = make()
    trainer = backend.Trainer(params, spec=SMALL)
    state = trainer.get_optimizer_state()
    with pytest.raises(ValueError, match=r"state: expected a dict with keys \['m', 't', 'v'\]"):
        trainer.set_optimizer_state({"t": 0, "m": state["m"]})
    with pytest.raises(ValueError, match=r"state\['m'\]\['W1'\]: expected shape"):
        trainer.set_optimizer_state(dict(state, m=dict(state["m"], W1=np.zeros(3))))
    f32 = {k: v.astype(np.float32) for k, v in state["v"].items()}
    with pytest.raises(ValueError, match=r"state\['v'\]: expected dtype float64 \(the params'\), got float32"):
        trainer.set_optimizer_state(dict(state, v=f32))
    with pytest.raises(ValueError, match=r"state\['t'\]"):
        trainer.set_optimizer_state(dict(state, t=-3))


def test_course_training_reduces_the_cost():
    """A few Adam steps on a fixed batch lower its cost (the optimizer is wired the right way)."""
    params, X, Y = make(seed=4, m=8)
    trainer = backend.Trainer(params, spec=SMALL)
    costs = [trainer.step(X, Y) for _ in range(15)]
    assert costs[-1] < 0.5 * costs[0]
