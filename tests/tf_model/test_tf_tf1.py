"""The course's TF1 graph (tf.compat.v1) and TF1 checkpoints: course outputs, Saver round trips, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reference.spec import COURSE_TRAINING, PARAM_NAMES
from signs.tolerances import parity_tolerance, relative_error
from tf_model_helpers import SMALL_SPEC, random_batch, random_params

TF1_NAMES = {"W1": "W1", "W2": "W2", "W3": "fully_connected/weights", "b3": "fully_connected/biases"}


def _assert_bitwise(a, b):
    for name in PARAM_NAMES:
        assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name


@pytest.fixture(scope="module")
def trained_course():
    """A course graph after two Adam steps (so slots and beta powers are non-trivial), then closed."""
    from tf_model.tf1_course import build_course_graph

    course = build_course_graph()
    for k in range(2):
        X, Y = random_batch(50 + k, 5)
        course.session.run([course.train_op, course.cost], {course.X: X, course.Y: Y})
    yield course
    course.close()


@pytest.fixture(scope="module")
def course_checkpoint(trained_course, tmp_path_factory):
    """A checkpoint written by the course graph's own Saver (all variables, Adam slots included)."""
    prefix = str(tmp_path_factory.mktemp("course") / "model.ckpt")
    trained_course.save(prefix)
    return prefix


def test_course_initial_weights_match_the_numpy_reproduction(course_params):
    from reference.init import contrib_xavier_limit, course_init
    from reference.tf_philox import tf_random_uniform_float32

    _assert_bitwise(course_params, course_init())
    # Both sides above read their op seeds from reference.spec; check the TF1 graph's weights
    # against the course's seeds written out here: tf.set_random_seed(1), xavier_initializer
    # (seed=0) for W1 and W2, and op seed 45 that TF1 derived for fully_connected's weights.
    for name, op_seed in (("W1", 0), ("W2", 0), ("W3", 45)):
        shape = course_params[name].shape
        limit = contrib_xavier_limit(shape)
        expected = tf_random_uniform_float32(shape, -limit, limit, 1, op_seed)
        np.testing.assert_array_equal(course_params[name], expected, err_msg=name)
    # the notebook prints W1[1, 1, 1] after initialize_parameters()
    np.testing.assert_allclose(course_params["W1"][1, 1, 1][:3], [0.00131723, 0.14176141, -0.04434952], atol=5e-9)


def test_notebook_forward_propagation_and_compute_cost_outputs(course_params):
    # The notebook's checks: np.random.seed(1); X = randn(2,64,64,3), and randn(4,64,64,3) for the cost.
    from tf_model.tf1_course import course_cost, run_course_forward

    np.random.seed(1)
    X = np.random.randn(2, 64, 64, 3).astype(np.float32)
    expected_z3 = [
        [-0.44670227, -1.57208765, -1.53049231, -2.31013036, -1.29104376, 0.46852064],
        [-0.17601591, -1.57972014, -1.4737016, -2.61672091, -1.00810647, 0.5747785],
    ]
    assert relative_error(run_course_forward(course_params, X), expected_z3) < parity_tolerance("Z3", np.float32)
    np.random.seed(1)
    X = np.random.randn(4, 64, 64, 3).astype(np.float32)
    Y = np.random.randn(4, 6).astype(np.float32)
    # printed with 5 decimals: half a unit of the last printed digit
    assert abs(course_cost(course_params, X, Y) - 2.91034) <= 5e-6


def test_course_graph_agrees_with_the_keras_backend(course_params):
    from tf_model.backend import forward_backward
    from tf_model.tf1_course import run_course_activations

    X, Y = random_batch(60, 3)
    tf1 = run_course_activations(course_params, X)
    keras = forward_backward(course_params, X, Y)
    for name, value in tf1.items():
        assert relative_error(keras[name], value) < parity_tolerance(name, np.float32), name


def test_saved_checkpoint_restores_bitwise_in_the_course_graph(tmp_path):
    from tf_model.tf1_checkpoint import save_tf1_checkpoint
    from tf_model.tf1_course import build_course_graph

    params = random_params(61)
    prefix = str(tmp_path / "weights.ckpt")
    assert save_tf1_checkpoint(params, prefix) == prefix
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "weights.ckpt.data-00000-of-00001", "weights.ckpt.index"]
    assert 'model_checkpoint_path: "weights.ckpt"' in (tmp_path / "checkpoint").read_text()
    course = build_course_graph()
    try:
        course.restore(prefix, weights_only=True)
        _assert_bitwise(params, course.get_params())
    finally:
        course.close()


def test_saved_checkpoint_with_optimizer_restores_every_variable(trained_course, course_checkpoint, tmp_path):
    # course Saver -> load (with slots) -> save_tf1_checkpoint -> full Saver restore in a new graph:
    # every variable (weights, 8 slots, both beta powers) bitwise equal to the original graph's.
    from tf_model.tf1_checkpoint import load_tf1_checkpoint, save_tf1_checkpoint
    from tf_model.tf1_course import build_course_graph

    params, state = load_tf1_checkpoint(course_checkpoint, include_optimizer=True)
    assert state["t"] == 2
    prefix = save_tf1_checkpoint(params, tmp_path / "again.ckpt", optimizer_state=state)
    names = trained_course.variable_names()
    assert len(names) == 14 and {"beta1_power", "W1/Adam_1", "fully_connected/biases/Adam"} <= set(names)
    original = trained_course.fetch(names)
    course = build_course_graph()
    try:
        course.restore(prefix)
        restored = course.fetch(names)
    finally:
        course.close()
    for name in names:
        assert restored[name].dtype == original[name].dtype and restored[name].tobytes() == original[name].tobytes(), name


def test_course_saver_checkpoint_loads_with_and_without_optimizer(trained_course, course_checkpoint):
    from tf_model.tf1_checkpoint import load_tf1_checkpoint

    expected = trained_course.get_params()
    params = load_tf1_checkpoint(course_checkpoint)
    _assert_bitwise(expected, params)
    _assert_bitwise(expected, load_tf1_checkpoint(course_checkpoint + ".index"))
    _assert_bitwise(expected, load_tf1_checkpoint(os.path.dirname(course_checkpoint)))  # via its state file
    params, state = load_tf1_checkpoint(course_checkpoint, include_optimizer=True)
    slots = trained_course.fetch([TF1_NAMES[n] + s for n in PARAM_NAMES for s in ("/Adam", "/Adam_1")])
    for name in PARAM_NAMES:
        assert state["m"][name].tobytes() == slots[TF1_NAMES[name] + "/Adam"].tobytes()
        assert state["v"][name].tobytes() == slots[TF1_NAMES[name] + "/Adam_1"].tobytes()
        assert np.any(state["v"][name] != 0)


def test_beta_powers_give_the_step_count_even_after_float32_underflow():
    from tf_model.tf1_checkpoint import steps_from_beta_powers, tf1_beta_power

    for t in (0, 1, 7, 500, 1700):  # 1700 = the course's 100 epochs of 17 batches
        b1 = tf1_beta_power(COURSE_TRAINING.beta1, t, np.float32)
        b2 = tf1_beta_power(COURSE_TRAINING.beta2, t, np.float32)
        assert steps_from_beta_powers(b1, b2) == t
    assert tf1_beta_power(COURSE_TRAINING.beta1, 1700, np.float32) == 0  # flushed to zero: beta2 decides
    assert steps_from_beta_powers(np.float64(0.9) ** 4, np.float64(0.999) ** 4) == 3  # pow, not a product
    with pytest.raises(ValueError, match="beta1_power: expected 0.9 \\*\\* k for an integer k >= 1, got 0.5"):
        steps_from_beta_powers(np.float32(0.5), np.float32(0.999))
    with pytest.raises(ValueError, match="disagree on the step count"):
        steps_from_beta_powers(np.float32(0.9) ** 3, np.float32(0.999) ** 10)


def test_load_errors_name_the_file_and_variable(tmp_path, course_checkpoint):
    import tensorflow as tf

    from tf_model.tf1_checkpoint import load_tf1_checkpoint, save_tf1_checkpoint

    with pytest.raises(FileNotFoundError, match="nothing.ckpt.index: TF1 checkpoint index not found"):
        load_tf1_checkpoint(tmp_path / "nothing.ckpt")
    # weights only: asking for the optimizer names the missing slot
    prefix = save_tf1_checkpoint(random_params(62), tmp_path / "w.ckpt")
    with pytest.raises(ValueError, match="w.ckpt: variable 'W1/Adam': missing from the checkpoint"):
        load_tf1_checkpoint(prefix, include_optimizer=True)
    # another spec's checkpoint: W3 has another shape
    small = save_tf1_checkpoint(random_params(63, SMALL_SPEC), tmp_path / "small.ckpt", spec=SMALL_SPEC)
    with pytest.raises(ValueError, match=r"small.ckpt: variable 'fully_connected/weights': expected shape \(64, 6\), got \(16, 6\)"):
        load_tf1_checkpoint(small)
    # a checkpoint without the course's names
    graph = tf.Graph()
    with graph.as_default():
        var = tf.compat.v1.Variable(np.zeros((4, 4, 3, 8), np.float32), name="conv")
        saver = tf.compat.v1.train.Saver({"conv1/kernel": var})
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            other = saver.save(session, str(tmp_path / "other.ckpt"), write_meta_graph=False, write_state=False)
    with pytest.raises(ValueError, match=r"other.ckpt: variable 'W1': missing from the checkpoint \(found \['conv1/kernel'\]\)"):
        load_tf1_checkpoint(other)
    # truncated files
    index = open(course_checkpoint + ".index", "rb").read()
    data = open(course_checkpoint + ".data-00000-of-00001", "rb").read()
    for name, cut_index, cut_data in (("ti", True, False), ("td", False, True)):
        base = str(tmp_path / f"{name}.ckpt")
        open(base + ".index", "wb").write(index[: len(index) // 2] if cut_index else index)
        open(base + ".data-00000-of-00001", "wb").write(data[: len(data) // 2] if cut_data else data)
        with pytest.raises(ValueError, match=f"{name}.ckpt: "):
            load_tf1_checkpoint(base, include_optimizer=True)
    os.remove(str(tmp_path / "td.ckpt.data-00000-of-00001"))
    with pytest.raises(FileNotFoundError, match="td.ckpt.data-00000-of-00001: TF1 checkpoint data file not found"):
        load_tf1_checkpoint(tmp_path / "td.ckpt")


def test_save_is_all_or_nothing_and_respects_force(tmp_path, monkeypatch):
    from tf_model import tf1_checkpoint
    from tf_model.tf1_checkpoint import load_tf1_checkpoint, save_tf1_checkpoint

    first = random_params(64)
    prefix = save_tf1_checkpoint(first, tmp_path / "m.ckpt")
    with pytest.raises(FileExistsError, match="m.ckpt: TF1 checkpoint already exists"):
        save_tf1_checkpoint(random_params(65), prefix)

    def interrupted(tensors, tmp_prefix):
        open(tmp_prefix + ".index", "wb").write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(tf1_checkpoint, "_write_with_saver", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_tf1_checkpoint(random_params(66), tmp_path / "new.ckpt")
    with pytest.raises(KeyboardInterrupt):
        save_tf1_checkpoint(random_params(66), prefix, force=True)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "m.ckpt.data-00000-of-00001", "m.ckpt.index"]
    _assert_bitwise(first, load_tf1_checkpoint(prefix))  # the old checkpoint survived intact
    second = random_params(67)
    save_tf1_checkpoint(second, prefix, force=True)
    _assert_bitwise(second, load_tf1_checkpoint(prefix))
    with pytest.raises(ValueError, match=r"optimizer_state\['t'\]: expected a non-negative integer, got -2"):
        zeros = {n: np.zeros_like(a) for n, a in second.items()}
        save_tf1_checkpoint(second, tmp_path / "o.ckpt", optimizer_state={"t": -2, "m": zeros, "v": zeros})


def test_train_course_tf1_runs_the_notebook_loop():
    from tf_model.tf1_course import train_course_tf1

    X, Y = random_batch(70, 70)  # 64 + 6: a full batch and the smaller last one
    start = random_params(71)
    run = train_course_tf1(X, Y, epochs=2, params=start)
    try:
        assert len(run.costs) == 2 and len(run.step_times) == 4
        assert all(np.isfinite(run.costs)) and run.costs[1] < run.costs[0]
        state = run.course.fetch(["beta1_power"])
        assert state["beta1_power"] == np.float32(0.9) ** 5  # 4 steps done: beta1 ** (t + 1)
        assert not np.array_equal(run.params["W1"], start["W1"])
    finally:
        run.course.close()
