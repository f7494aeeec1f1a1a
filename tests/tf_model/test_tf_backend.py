"""tf_model.backend: forward_backward against finite differences, Trainer state and tracing."""

from __future__ import annotations

import numpy as np
import pytest

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, PARAM_NAMES, activation_shapes, param_shapes
from signs.tolerances import GRADIENT_CHECK, adam_tolerance, parity_tolerance, relative_error
from tf_model_helpers import SMALL_SPEC, random_batch, random_params


def _cost(params, X, Y):
    from tf_model.backend import forward_backward

    return float(forward_backward(params, X, Y, spec=SMALL_SPEC)["cost"])


def test_forward_backward_outputs_shapes_dtypes_and_cost():
    from tf_model.backend import forward_backward, predict_logits

    params = random_params(0)
    X, Y = random_batch(1, 3, soft=True)
    out = forward_backward(params, X, Y)
    shapes = activation_shapes(COURSE_MODEL, 3)
    assert {n: out[n].shape for n in ACTIVATION_NAMES} == shapes
    grad_shapes = {f"d{n}": s for n, s in param_shapes().items()} | {"dX": X.shape}
    assert {n: out[n].shape for n in GRADIENT_NAMES} == grad_shapes
    assert all(out[n].dtype == np.float32 for n in out) and out["cost"].shape == ()
    # the course's cost: mean over the batch of -sum(Y * log_softmax(Z3)), soft labels allowed
    z = out["Z3"].astype(np.float64)
    log_softmax = z - z.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    assert relative_error(out["cost"], np.mean(-(Y * log_softmax).sum(axis=1))) < parity_tolerance("cost", np.float32)
    np.testing.assert_array_equal(predict_logits(params, X), out["Z3"])


@pytest.mark.parametrize("name", ["W1", "W2", "W3", "b3", "X"])
def test_gradients_match_centred_finite_differences_float64(name):
    # Directional derivatives along random directions: (f(p + h d) - f(p - h d)) / 2h = <grad, d>.
    from tf_model.backend import forward_backward

    params = random_params(2, SMALL_SPEC, np.float64)
    X, Y = random_batch(3, 4, SMALL_SPEC, np.float64, soft=True)
    grads = forward_backward(params, X, Y, spec=SMALL_SPEC)
    rng = np.random.default_rng(4)
    h = 1e-6
    for _ in range(3):
        base = X if name == "X" else params[name]
        direction = rng.standard_normal(base.shape)
        values = []
        for sign in (1, -1):
            moved = base + sign * h * direction
            if name == "X":
                values.append(_cost(params, moved, Y))
            else:
                values.append(_cost(params | {name: moved}, X, Y))
        numeric = (values[0] - values[1]) / (2 * h)
        analytic = float(np.sum(grads[f"d{name}"] * direction))
        assert relative_error(numeric, analytic) < GRADIENT_CHECK, (name, numeric, analytic)


def test_input_errors_name_the_argument():
    from tf_model.backend import forward_backward, predict_logits, tf_device

    params = random_params(5)
    X, Y = random_batch(6, 2)
    with pytest.raises(ValueError, match=r"X: expected dtype float32 \(the params' dtype\), got float64"):
        forward_backward(params, X.astype(np.float64), Y)
    with pytest.raises(ValueError, match=r"X: expected a NumPy array of shape \(m, 64, 64, 3\) NHWC, got \(2, 3, 64, 64\)"):
        predict_logits(params, X.transpose(0, 3, 1, 2).copy())
    with pytest.raises(ValueError, match=r"Y: expected a NumPy array of shape \(2, 6\), got \(2, 5\)"):
        forward_backward(params, X, Y[:, :5])
    with pytest.raises(ValueError, match=r"W3'\]: expected shape"):
        forward_backward(params | {"W3": params["W3"][:10]}, X, Y)
    with pytest.raises(ValueError, match="device: expected 'cpu', 'cuda' or 'gpu', got 'tpu'"):
        tf_device("tpu")
    assert tf_device("cpu") == "/CPU:0"


def test_repeated_calls_reuse_one_cached_model():
    from tf_model.backend import forward_backward
    from tf_model.model import cached_model

    params = random_params(7, SMALL_SPEC)
    X, Y = random_batch(8, 2, SMALL_SPEC)
    first = forward_backward(params, X, Y, spec=SMALL_SPEC)
    model = cached_model(SMALL_SPEC, "float32")[0]
    other = random_params(9, SMALL_SPEC)
    forward_backward(other, X, Y, spec=SMALL_SPEC)
    again = forward_backward(params, X, Y, spec=SMALL_SPEC)
    assert cached_model(SMALL_SPEC, "float32")[0] is model
    for name in ("Z3", "cost", "dW1", "dX"):
        np.testing.assert_array_equal(first[name], again[name])


def test_trainer_compiles_once_for_any_batch_size():
    from tf_model.backend import Trainer

    trainer = Trainer(random_params(10, SMALL_SPEC), spec=SMALL_SPEC)
    for seed, m in enumerate((5, 5, 3, 5, 1)):
        X, Y = random_batch(20 + seed, m, SMALL_SPEC)
        assert np.isfinite(trainer.step(X, Y))
    assert trainer.trace_count == 1
    assert trainer.get_optimizer_state()["t"] == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trainer_state_restore_is_bitwise(dtype):
    from tf_model.backend import Trainer

    batches = [random_batch(30 + k, 4, SMALL_SPEC, dtype) for k in range(4)]
    straight = Trainer(random_params(11, SMALL_SPEC, dtype), spec=SMALL_SPEC)
    for X, Y in batches[:2]:
        straight.step(X, Y)
    params, state = straight.get_params(), straight.get_optimizer_state()  # the "interruption"
    costs = [straight.step(X, Y) for X, Y in batches[2:]]
    resumed = Trainer(params, spec=SMALL_SPEC)
    resumed.set_optimizer_state(state)
    assert [resumed.step(X, Y) for X, Y in batches[2:]] == costs
    final, final_state = resumed.get_params(), resumed.get_optimizer_state()
    expected, expected_state = straight.get_params(), straight.get_optimizer_state()
    assert state["t"] == 2 and final_state["t"] == expected_state["t"] == 4
    for name in PARAM_NAMES:
        assert not np.array_equal(final[name], params[name])  # the resumed steps did move the weights
        np.testing.assert_array_equal(final[name], expected[name])
        np.testing.assert_array_equal(final_state["m"][name], expected_state["m"][name])
        np.testing.assert_array_equal(final_state["v"][name], expected_state["v"][name])
        assert final[name].dtype == dtype


def test_trainer_state_errors():
    from tf_model.backend import Trainer

    trainer = Trainer(random_params(12, SMALL_SPEC), spec=SMALL_SPEC)
    state = trainer.get_optimizer_state()
    with pytest.raises(ValueError, match=r"state: expected a dict with keys \['m', 't', 'v'\]"):
        trainer.set_optimizer_state({"m": state["m"]})
    with pytest.raises(ValueError, match=r"state\['t'\]: expected a non-negative integer, got -1"):
        trainer.set_optimizer_state(state | {"t": -1})
    wide = {n: a.astype(np.float64) for n, a in state["m"].items()}
    with pytest.raises(ValueError, match=r"state\['m'\]: expected dtype float32 \(the params'\), got float64"):
        trainer.set_optimizer_state(state | {"m": wide})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trainer_follows_the_course_tf1_graph(dtype, course_params):
    # The Keras custom loop and the course's own TF1 graph (AdamOptimizer), same start, same batches.
    import tensorflow as tf

    from tf_model.backend import Trainer
    from tf_model.tf1_course import build_course_graph

    params = {n: a.astype(dtype) for n, a in course_params.items()}
    course = build_course_graph(dtype=tf.as_dtype(np.dtype(dtype).name), init=params)
    trainer = Trainer(params)
    for k in range(3):
        X, Y = random_batch(40 + k, 6, COURSE_MODEL, dtype)
        _, tf1_cost = course.session.run([course.train_op, course.cost], {course.X: X, course.Y: Y})
        assert relative_error(trainer.step(X, Y), tf1_cost) < parity_tolerance("cost", dtype)
    tf1_params, keras_params = course.get_params(), trainer.get_params()
    slots = course.fetch([f"{v}/Adam" for v in ("W1", "W2", "fully_connected/weights", "fully_connected/biases")])
    state = trainer.get_optimizer_state()
    course.close()
    for name, tf1_name in zip(PARAM_NAMES, ("W1", "W2", "fully_connected/weights", "fully_connected/biases")):
        assert relative_error(keras_params[name], tf1_params[name]) < adam_tolerance(dtype), name
        assert relative_error(state["m"][name], slots[f"{tf1_name}/Adam"]) < adam_tolerance(dtype), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trainer_applyadam_kernel_is_keras_adam_to_the_bit(dtype):
    """The Trainer runs TF1's ApplyAdam kernel on Keras' slots; Keras' own optimizer.apply on the
    same gradients must give the same weights, slots and step count, bit for bit, over steps of
    both batch sizes and a learning-rate change."""
    from tf_model.backend import Trainer

    class KerasApply(Trainer):
        def _apply_adam(self, grads):
            self.optimizer.apply(grads, self._variables)

    params = random_params(11, COURSE_MODEL, dtype)
    fused, keras_apply = Trainer(params), KerasApply(params)
    for k, m in enumerate((8, 8, 3, 8)):
        if k == 2:
            fused.set_learning_rate(0.004)
            keras_apply.set_learning_rate(0.004)
        X, Y = random_batch(60 + k, m, COURSE_MODEL, dtype)
        assert fused.step(X, Y) == keras_apply.step(X, Y)
    a, b = fused.get_optimizer_state(), keras_apply.get_optimizer_state()
    assert a["t"] == b["t"] == 4
    for name, value in fused.get_params().items():
        np.testing.assert_array_equal(value, keras_apply.get_params()[name])
        np.testing.assert_array_equal(a["m"][name], b["m"][name])
        np.testing.assert_array_equal(a["v"][name], b["v"][name])
