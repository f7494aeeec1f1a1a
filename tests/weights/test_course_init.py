"""Course-exact initial weights: NumPy Philox against the course's printed values and TF itself."""

import math

import numpy as np
import pytest

from reference.init import contrib_xavier_limit, course_init, glorot_init
from reference.spec import param_shapes
from reference.tf_philox import philox4x32_10, tf_random_uniform_float32


def test_philox_matches_the_published_known_answer():
    # Random123's known-answer vector for philox4x32_10 (counter 0, key 0) and
    # (counter all ones, key all ones): the same block function TF's PhiloxRandom implements.
    zeros = philox4x32_10(np.zeros((1, 4), dtype=np.uint64), (0, 0))
    assert [hex(int(x)) for x in zeros[0]] == ["0x6627e8d5", "0xe169c58d", "0xbc57ac4c", "0x9b00dbd8"]
    ones = philox4x32_10(np.full((1, 4), 0xFFFFFFFF, dtype=np.uint64), (0xFFFFFFFF, 0xFFFFFFFF))
    assert [hex(int(x)) for x in ones[0]] == ["0x408f276d", "0x41c83b0e", "0xa20bc7c6", "0x6d5451fd"]


def test_course_init_reproduces_the_notebook_printout():
    # The notebook's initialize_parameters() cell prints W1[1,1,1] and W2[1,1,1].
    params = course_init()
    np.testing.assert_allclose(
        params["W1"][1, 1, 1],
        [0.00131723, 0.14176141, -0.04434952, 0.09197326, 0.14984085, -0.03514394, -0.06847463, 0.05245192],
        atol=5e-9,
    )
    np.testing.assert_allclose(
        params["W2"][1, 1, 1],
        [-0.08566415, 0.17750949, 0.11974221, 0.16773748, -0.0830943, -0.08058, -0.00577033, -0.14643836,
         0.24162132, -0.05857408, -0.19055021, 0.1345228, -0.22779644, -0.1601823, -0.16117483, -0.10286498],
        atol=5e-9,
    )
    assert not params["b3"].any()


def test_course_init_w3_reproduces_the_notebook_forward_propagation_printout():
    # The notebook prints no W3 value; its forward_propagation cell prints Z3 for these initial
    # weights and X = randn(2, 64, 64, 3) after np.random.seed(1), which W3 and b3 decide last.
    from reference.model import predict_logits
    from signs.tolerances import parity_tolerance, relative_error

    np.random.seed(1)
    X = np.random.randn(2, 64, 64, 3).astype(np.float32)
    expected_z3 = [
        [-0.44670227, -1.57208765, -1.53049231, -2.31013036, -1.29104376, 0.46852064],
        [-0.17601591, -1.57972014, -1.4737016, -2.61672091, -1.00810647, 0.5747785],
    ]
    assert relative_error(predict_logits(course_init(), X), expected_z3) < parity_tolerance("Z3", np.float32)


def test_course_init_shapes_dtypes_and_float64_is_the_exact_widening():
    p32, p64 = course_init(dtype=np.float32), course_init(dtype=np.float64)
    for name, shape in param_shapes().items():
        assert p32[name].shape == shape and p32[name].dtype == np.float32
        assert p64[name].dtype == np.float64
        assert np.array_equal(p64[name], p32[name].astype(np.float64))
    limits = {n: contrib_xavier_limit(param_shapes()[n]) for n in ("W1", "W2", "W3")}
    for name, limit in limits.items():
        assert np.abs(p32[name]).max() <= np.float32(limit)
    assert limits["W1"] == pytest.approx(math.sqrt(6 / (48 + 128)))


def test_glorot_init_is_seeded_and_bounded():
    a, b, c = glorot_init(3), glorot_init(3), glorot_init(4)
    for name in a:
        assert np.array_equal(a[name], b[name])
    assert not np.array_equal(a["W1"], c["W1"])
    with pytest.raises(ValueError, match="seed"):
        glorot_init(-1)
    with pytest.raises(ValueError, match="dtype"):
        glorot_init(0, dtype=np.int32)


def _tf():
    pytest.importorskip("tensorflow", reason="TensorFlow not installed: the TF cross-check needs it")
    import tensorflow as tf

    return tf


@pytest.mark.parametrize("shape,seed,seed2", [((4, 4, 3, 8), 1, 0), ((64, 6), 1, 45), ((5, 3), 7, 123456), ((2, 3, 7), 2**31 - 2, 3)])
def test_random_uniform_is_bitwise_tensorflow(shape, seed, seed2):
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        op = tf.compat.v1.random_uniform(shape, -0.37, 0.61, dtype=tf.float32, seed=seed2)
        with tf.compat.v1.Session(graph=graph) as session:
            theirs = session.run(op)
    ours = tf_random_uniform_float32(shape, -0.37, 0.61, seed, seed2)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, theirs)


def test_course_init_equals_the_course_tf1_graph():
    """The course's initialize_parameters(), run through tf.compat.v1 with contrib's initializer."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)

        def xavier(seed):  # tf.contrib.layers.xavier_initializer(seed=seed), contrib's arithmetic
            def init(shape, dtype=tf.float32, partition_info=None):
                limit = contrib_xavier_limit(tuple(shape))
                return tf.compat.v1.random_uniform(shape, -limit, limit, dtype, seed=seed)

            return init

        W1 = tf.compat.v1.get_variable("W1", [4, 4, 3, 8], initializer=xavier(0))
        W2 = tf.compat.v1.get_variable("W2", [2, 2, 8, 16], initializer=xavier(0))
        W3 = tf.compat.v1.get_variable("fully_connected/weights", [64, 6], initializer=xavier(45))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            got = dict(zip(("W1", "W2", "W3"), session.run([W1, W2, W3])))
    ours = course_init()
    for name in got:
        assert np.array_equal(ours[name], got[name]), name
