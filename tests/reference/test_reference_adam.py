"""Adam with TensorFlow 1's ApplyAdam arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.adam import Adam
from reference.spec import COURSE_TRAINING
from signs.tolerances import FLOAT64_ADAM_STEPS


def kernel_scalar(w, m, v, g, t, lr=0.009, b1=0.9, b2=0.999, eps=1e-8):
    """ApplyAdamNonCuda on one float64 value, operation by operation."""
    lr_t = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    m = m + (g - m) * (1.0 - b1)
    v = v + (g * g - v) * (1.0 - b2)
    w = w - (m * lr_t) / (math.sqrt(v) + eps)
    return w, m, v


def test_float64_matches_the_kernel_bit_for_bit():
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    params = {"w": w0.copy()}
    opt = Adam()
    for g in grads:
        opt.step(params, {"dw": g})
    for k in range(5):
        w, m, v = w0[k], 0.0, 0.0
        for t, g in enumerate(grads[:, k], start=1):
            w, m, v = kernel_scalar(w, m, v, g, t)
        assert params["w"][k] == w and opt.m["w"][k] == m and opt.v["w"][k] == v
    assert opt.t == 4


def test_equals_textbook_adam():
    """m = b1 m + (1 - b1) g ... w -= lr_t m / (sqrt(v) + eps): same mathematics, other rounding."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4))
    params, ref = {"W": w.copy()}, w.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    opt = Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-6)
    for t in range(1, 8):
        g = rng.standard_normal(w.shape)
        opt.step(params, {"W": g})
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        ref -= 0.01 * math.sqrt(1 - 0.99**t) / (1 - 0.8**t) * m / (np.sqrt(v) + 1e-6)
    np.testing.assert_allclose(params["W"], ref, rtol=FLOAT64_ADAM_STEPS, atol=0)


def test_first_step_moves_each_weight_by_about_lr():
    params = {"W": np.zeros(4)}
    g = np.array([3.0, -0.5, 1e-3, -20.0])
    Adam().step(params, {"dW": g})
    # lr * |g| sqrt(1 - b2) / (sqrt(1 - b2) |g| + eps): about lr unless |g| is tiny, where TF1's
    # eps (added to sqrt(v), not to the bias-corrected sqrt(v_hat)) shrinks the step.
    expected = -np.sign(g) * 0.009 * np.abs(g) * math.sqrt(0.001) / (math.sqrt(0.001) * np.abs(g) + 1e-8)
    np.testing.assert_allclose(params["W"], expected, rtol=1e-12)
    assert abs(params["W"][2] + 0.009) > 1e-6 and abs(params["W"][0] + 0.009) < 1e-8


def test_float32_state_and_scalars_stay_float32():
    rng = np.random.default_rng(2)
    params = {"W": rng.standard_normal((2, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}
    opt = Adam()
    for _ in range(3):
        opt.step(params, {"dW": rng.standard_normal((2, 3)).astype(np.float32), "db": np.ones(3, np.float32)})
    assert all(a.dtype == np.float32 for a in [*params.values(), *opt.m.values(), *opt.v.values()])
    # The kernel in float32: every scalar rounded to float32 as T(1) - beta1() etc. does.
    f = np.float32
    t = f(3)
    lr_t = f(0.009) * np.sqrt(f(1) - f(0.999) ** t) / (f(1) - f(0.9) ** t)
    assert lr_t.dtype == np.float32
    m, v = opt.m["b"], opt.v["b"]
    expected_b = np.zeros(3, np.float32)
    mm, vv = np.zeros(3, np.float32), np.zeros(3, np.float32)
    for step in (1, 2, 3):
        s = f(step)
        lr_s = f(0.009) * np.sqrt(f(1) - f(0.999) ** s) / (f(1) - f(0.9) ** s)
        mm = mm + (f(1) - mm) * (f(1) - f(0.9))
        vv = vv + (f(1) - vv) * (f(1) - f(0.999))
        expected_b = expected_b - (mm * lr_s) / (np.sqrt(vv) + f(1e-8))
    np.testing.assert_array_equal(m, mm)
    np.testing.assert_array_equal(v, vv)
    np.testing.assert_array_equal(params["b"], expected_b)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(3)
    params = {"W": rng.standard_normal((2, 2))}
    grads = [rng.standard_normal((2, 2)) for _ in range(6)]
    opt = Adam()
    for g in grads[:3]:
        opt.step(params, {"W": g})
    state = opt.state_dict()
    assert state["t"] == 3 and set(state["m"]) == {"W"}
    clone_params = {"W": params["W"].copy()}
    clone = Adam(learning_rate=0.5)  # overwritten by the state's hyperparameters
    clone.load_state_dict(state)
    state["m"]["W"][:] = 99.0  # the loaded state is a copy
    for g in grads[3:]:
        opt.step(params, {"W": g})
        clone.step(clone_params, {"W": g})
    np.testing.assert_array_equal(params["W"], clone_params["W"])
    np.testing.assert_array_equal(opt.v["W"], clone.v["W"])
    assert clone.t == 6 and clone.learning_rate == COURSE_TRAINING.learning_rate


def test_defaults_come_from_the_course_recipe():
    opt = Adam()
    assert (opt.learning_rate, opt.beta1, opt.beta2, opt.epsilon) == (0.009, 0.9, 0.999, 1e-8)
    assert vars(Adam.from_spec(COURSE_TRAINING)) == vars(opt)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": float("nan")}, "learning_rate: expected a finite number > 0"),
        ({"learning_rate": 0}, "learning_rate: expected a finite number > 0"),
        ({"beta1": 1.0}, r"beta1: expected a finite number in \(0, 1\)"),
        ({"beta2": "x"}, "beta2: expected a finite number"),
        ({"epsilon": float("inf")}, "epsilon: expected a finite number > 0"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam(**kwargs)


def test_bad_gradients_and_state():
    opt = Adam()
    params = {"W": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=r"grads: expected a gradient for 'W'"):
        opt.step(params, {"dX": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected shape \(2, 2\)"):
        opt.step(params, {"dW": np.zeros(4)})
    assert opt.t == 0 and np.all(params["W"] == 0)  # a rejected step changes nothing
    with pytest.raises(ValueError, match=r"state\['t'\]: expected an integer >= 0"):
        opt.load_state_dict({"t": -1, "m": {}, "v": {}})
    with pytest.raises(ValueError, match="state: expected a dict with keys"):
        opt.load_state_dict({"t": 0})
