"""The Keras model: layer names, layouts (Flatten order), SAME pooling, dtypes, Adam's rule."""

from __future__ import annotations

import numpy as np
import pytest

from tf_model_helpers import SMALL_SPEC, random_batch, random_params
from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, COURSE_TRAINING, activation_shapes, param_shapes
from signs.tolerances import FLOAT64_ADAM_STEPS, parity_tolerance, relative_error


@pytest.fixture(scope="module")
def keras_model():
    from tf_model.model import build_model

    return build_model(COURSE_MODEL, "float32", seed=1)


def test_layer_names_and_variable_shapes(keras_model):
    from tf_model.convert import NAME_MAP

    names = [layer.name for layer in keras_model.layers]
    assert names == ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "dense"]
    shapes = param_shapes(COURSE_MODEL)
    for canonical, (layer, attribute) in NAME_MAP.items():
        variable = getattr(keras_model.get_layer(layer), attribute)
        assert tuple(variable.shape) == shapes[canonical]
        assert variable.path == f"{layer}/{attribute}"
    assert keras_model.get_layer("conv1").bias is None and keras_model.get_layer("conv2").bias is None
    assert np.all(keras_model.get_layer("dense").bias.numpy() == 0)


def test_seed_makes_initial_weights_reproducible():
    from tf_model.convert import get_keras_weights
    from tf_model.model import build_model

    a = get_keras_weights(build_model(SMALL_SPEC, seed=7))
    b = get_keras_weights(build_model(SMALL_SPEC, seed=7))
    c = get_keras_weights(build_model(SMALL_SPEC, seed=8))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["W1"], c["W1"])


def test_flatten_is_nhwc_order_and_dense_uses_canonical_w3():
    # P2 is (m, 2, 2, 16) for a 64x64 input: an NCHW flatten would order F differently.
    from tf_model.backend import forward_backward

    params = random_params(0)
    X, Y = random_batch(1, 3)
    out = forward_backward(params, X, Y)
    assert out["P2"].shape == (3, 2, 2, 16)
    np.testing.assert_array_equal(out["F"], out["P2"].reshape(3, -1))  # C order of (m, h, w, c)
    z3 = out["F"].astype(np.float64) @ params["W3"].astype(np.float64) + params["b3"]
    assert relative_error(out["Z3"], z3) < parity_tolerance("Z3", np.float32)
    nchw = out["P2"].transpose(0, 3, 1, 2).reshape(3, -1)
    assert relative_error(nchw @ params["W3"] + params["b3"], out["Z3"]) > 1e-2  # the test can fail


def _numpy_same_max_pool(A, window, stride):
    """TF SAME max pool of A (m, h, w, c) NHWC: n_out = ceil(n/s), pad total//2 before, rest after."""
    m, h, w, c = A.shape
    outs = []
    for n in (h, w):
        n_out = -(-n // stride)
        total = max((n_out - 1) * stride + window - n, 0)
        outs.append((n_out, total // 2, total - total // 2))
    (oh, top, bottom), (ow, left, right) = outs
    padded = np.pad(A, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    P = np.empty((m, oh, ow, c), A.dtype)
    for i in range(oh):
        for j in range(ow):
            P[:, i, j, :] = padded[:, i * stride:i * stride + window, j * stride:j * stride + window, :].max(axis=(1, 2))
    return P


def test_same_pooling_with_sizes_that_do_not_divide():
    from tf_model.backend import forward_backward

    spec = COURSE_MODEL.with_input(20, 13)  # 20/8 and 13/8 leave remainders; so do 3/4 and 2/4
    params = random_params(2, spec, np.float64)
    X, Y = random_batch(3, 2, spec, np.float64)
    out = forward_backward(params, X, Y, spec=spec)
    shapes = activation_shapes(spec, 2)
    assert {name: out[name].shape for name in ACTIVATION_NAMES} == shapes
    assert shapes["P1"] == (2, 3, 2, 8) and shapes["P2"] == (2, 1, 1, 16)
    np.testing.assert_array_equal(out["P1"], _numpy_same_max_pool(out["A1"], 8, 8))
    np.testing.assert_array_equal(out["P2"], _numpy_same_max_pool(out["A2"], 4, 4))


def test_activation_model_names_and_float64():
    from tf_model.convert import set_keras_weights
    from tf_model.model import activation_model, build_model

    model = build_model(SMALL_SPEC, "float64")
    assert all(v.dtype == "float64" for v in model.weights)
    params = random_params(4, SMALL_SPEC, np.float64)
    set_keras_weights(model, params)
    X, _ = random_batch(5, 2, SMALL_SPEC, np.float64)
    out = activation_model(model, SMALL_SPEC)(X)
    assert sorted(out) == sorted(ACTIVATION_NAMES)
    assert all(np.asarray(out[name]).dtype == np.float64 for name in ACTIVATION_NAMES)
    # float64 all the way: Z1 matches a float64 NumPy convolution to float64 precision
    Xp = np.pad(X, ((0, 0), (1, 2), (1, 2), (0, 0)))  # SAME for f=4: 1 before, 2 after
    Z1 = np.zeros((2, 16, 16, 8))
    for i in range(4):
        for j in range(4):
            Z1 += np.einsum("mhwc,cd->mhwd", Xp[:, i:i + 16, j:j + 16, :], params["W1"][i, j])
    assert relative_error(np.asarray(out["Z1"]), Z1) < parity_tolerance("Z1", np.float64)


def test_bad_dtype_is_refused():
    from tf_model.model import build_model

    with pytest.raises(ValueError, match="dtype: expected float32 or float64, got float16"):
        build_model(SMALL_SPEC, "float16")


def test_keras_adam_is_tf1_apply_adam():
    # Two steps of the Trainer against the TF1 ApplyAdam formula written out in NumPy (float64).
    from tf_model.backend import Trainer, forward_backward

    tr = COURSE_TRAINING
    params = random_params(6, SMALL_SPEC, np.float64)
    trainer = Trainer(params, spec=SMALL_SPEC)
    w = {n: v.copy() for n, v in params.items()}
    m = {n: np.zeros_like(v) for n, v in params.items()}
    v = {n: np.zeros_like(x) for n, x in params.items()}
    for t in (1, 2):
        X, Y = random_batch(10 + t, 4, SMALL_SPEC, np.float64, soft=True)
        grads = forward_backward(w, X, Y, spec=SMALL_SPEC)
        cost = trainer.step(X, Y)
        assert cost == pytest.approx(float(grads["cost"]), rel=1e-14)
        alpha = tr.learning_rate * np.sqrt(1 - tr.beta2**t) / (1 - tr.beta1**t)
        for n in w:
            g = grads[f"d{n}"]
            m[n] += (g - m[n]) * (1 - tr.beta1)
            v[n] += (g * g - v[n]) * (1 - tr.beta2)
            w[n] -= m[n] * alpha / (np.sqrt(v[n]) + tr.epsilon)
    got, state = trainer.get_params(), trainer.get_optimizer_state()
    assert state["t"] == 2
    for n in w:
        assert relative_error(got[n], w[n]) < FLOAT64_ADAM_STEPS, n
        assert relative_error(state["m"][n], m[n]) < FLOAT64_ADAM_STEPS, n
        assert relative_error(state["v"][n], v[n]) < FLOAT64_ADAM_STEPS, n


def test_compile_model_fit_runs_float64():
    from tf_model.convert import set_keras_weights
    from tf_model.model import build_model, compile_model

    model = compile_model(build_model(SMALL_SPEC, "float64"))
    set_keras_weights(model, random_params(7, SMALL_SPEC, np.float64))
    X, Y = random_batch(8, 10, SMALL_SPEC, np.float64)
    history = model.fit(X, Y, batch_size=4, shuffle=False, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.optimizer.iterations.numpy() == 3  # 4 + 4 + 2: the last batch is smaller
    assert model.weights[0].dtype == "float64"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_model_shares_weights_and_gives_the_same_values_and_gradients(dtype):
    """training_model (each ReLU after its max-pool) against the course-order model: the same
    variables, the same logits and the same gradients, to the bit (relu and max commute
    exactly; the gradients route to the same cells). Standard-normal inputs: many pool windows
    with the ReLU off, where a wrong order or routing would show."""
    import tensorflow as tf

    from tf_model.backend import course_cost
    from tf_model.convert import set_keras_weights
    from tf_model.model import build_model, training_model

    params = random_params(5, SMALL_SPEC, np.dtype(dtype).type)
    X, Y = random_batch(6, 4, SMALL_SPEC, np.dtype(dtype).type)
    model = build_model(SMALL_SPEC, dtype, seed=0)
    set_keras_weights(model, params, SMALL_SPEC)
    trainer_model = training_model(model, SMALL_SPEC)
    assert [v.path for v in trainer_model.weights] == [v.path for v in model.weights]
    assert all(a is b for a, b in zip(trainer_model.weights, model.weights))
    names = [layer.name for layer in trainer_model.layers]
    assert names == ["input", "conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "flatten", "dense"]

    results = []
    for net in (model, trainer_model):
        with tf.GradientTape() as tape:
            cost = course_cost(tf.constant(Y), net(tf.constant(X), training=True))
        results.append([cost] + tape.gradient(cost, [v.value for v in model.weights]))
    for a, b in zip(*results):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
