"""The course notebook's TF1 model, ported line by line to ``tf.compat.v1`` (graph mode, sessions).

The notebook (course 4 week 1, "Convolution model - Application") built::

    X = tf.placeholder(tf.float32, [None, n_H0, n_W0, n_C0]); Y = tf.placeholder(tf.float32, [None, n_y])
    tf.set_random_seed(1)
    W1 = tf.get_variable("W1", [4, 4, 3, 8], initializer=tf.contrib.layers.xavier_initializer(seed=0))
    W2 = tf.get_variable("W2", [2, 2, 8, 16], initializer=tf.contrib.layers.xavier_initializer(seed=0))
    Z1 = tf.nn.conv2d(X, W1, strides=[1, 1, 1, 1], padding="SAME"); A1 = tf.nn.relu(Z1)
    P1 = tf.nn.max_pool(A1, ksize=[1, 8, 8, 1], strides=[1, 8, 8, 1], padding="SAME")
    Z2 = tf.nn.conv2d(P1, W2, strides=[1, 1, 1, 1], padding="SAME"); A2 = tf.nn.relu(Z2)
    P2 = tf.nn.max_pool(A2, ksize=[1, 4, 4, 1], strides=[1, 4, 4, 1], padding="SAME")
    P2 = tf.contrib.layers.flatten(P2)
    Z3 = tf.contrib.layers.fully_connected(P2, 6, activation_fn=None)
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=Z3, labels=Y))
    optimizer = tf.train.AdamOptimizer(learning_rate=0.009).minimize(cost)

``tf.contrib`` no longer exists, so two pieces are rewritten here with their original arithmetic:

* ``xavier_initializer(seed)`` was ``variance_scaling_initializer(factor=1.0, mode='FAN_AVG',
  uniform=True, seed=seed)``: ``limit = math.sqrt(3.0 * factor / n)`` with ``n = (fan_in + fan_out) /
  2.0`` (fans multiplied by the receptive field), then ``random_ops.random_uniform(shape, -limit,
  limit, dtype, seed=seed)``. :func:`contrib_xavier_initializer` calls the very same
  ``tf.compat.v1.random_uniform`` with the same Python-float limit (``glorot_uniform_initializer``
  computes its limit in another order and is not used).
* ``fully_connected`` created ``fully_connected/weights`` (xavier, op seed None) and
  ``fully_connected/biases`` (zeros) and returned ``matmul(inputs, weights) + biases`` (bias_add);
  :func:`fully_connected` does the same. ``flatten`` reshaped to (m, -1): NHWC order.

Seeds: under ``tf.set_random_seed(1)`` an op seed None made TF1 take the op seed from the graph's
op count, which was 45 when ``fully_connected`` ran in the course's graph. TF 2 derives it from a
per-graph counter instead, so the value 45 (``COURSE_TRAINING.dense_init_op_seed``) is passed
explicitly. With it the notebook's published ``forward_propagation`` and ``compute_cost`` outputs
are reproduced (tests/tf_model/test_tf1_course.py).

Nothing here changes TensorFlow's global mode: every graph is a private ``tf.Graph`` run by its own
``tf.compat.v1.Session``, so eager Keras code keeps working in the same process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from reference.data.batches import epoch_mini_batches
from reference.init import contrib_xavier_limit
from reference.spec import COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec
from reference.weights_io import check_params

__all__ = [
    "TF1_VARIABLE_NAMES",
    "CourseGraph",
    "contrib_xavier_initializer",
    "fully_connected",
    "build_course_graph",
    "course_initial_weights",
    "run_course_forward",
    "run_course_activations",
    "course_cost",
    "train_course_tf1",
]

v1 = tf.compat.v1

# Canonical name -> the course's TF1 variable name (the checkpoint key).
TF1_VARIABLE_NAMES: dict[str, str] = {
    "W1": "W1",
    "W2": "W2",
    "W3": "fully_connected/weights",
    "b3": "fully_connected/biases",
}


def contrib_xavier_initializer(seed: int | None, factor: float = 1.0):
    """``tf.contrib.layers.xavier_initializer(seed=seed)`` (uniform, FAN_AVG), arithmetic unchanged."""

    def initializer(shape, dtype=tf.float32, partition_info=None):  # noqa: ARG001 (TF1 signature)
        dtype = tf.as_dtype(dtype)
        shape = [int(d) for d in shape]
        limit = contrib_xavier_limit(tuple(shape), factor)  # contrib's float arithmetic, written once
        return v1.random_uniform(shape, -limit, limit, dtype, seed=seed)

    return initializer


def fully_connected(inputs, num_outputs: int, weights_initializer, scope: str = "fully_connected"):
    """``tf.contrib.layers.fully_connected(inputs, num_outputs, activation_fn=None)`` on 2-D inputs.

    Creates ``{scope}/weights`` (n_in, num_outputs) and ``{scope}/biases`` (num_outputs,) zeros and
    returns ``bias_add(matmul(inputs, weights), biases)``.
    """
    n_in = int(inputs.shape[-1])
    with v1.variable_scope(scope):
        weights = v1.get_variable("weights", [n_in, num_outputs], dtype=inputs.dtype, initializer=weights_initializer)
        biases = v1.get_variable("biases", [num_outputs], dtype=inputs.dtype, initializer=v1.zeros_initializer())
    return tf.nn.bias_add(tf.matmul(inputs, weights), biases)


@dataclass
class CourseGraph:
    """The course's graph and the handles a caller needs.

    Attributes
    ----------
    graph, session : the private graph and a session on it (variables initialized).
    X, Y : placeholders (None, n_H, n_W, n_C) NHWC and (None, 6).
    activations : Z1 A1 P1 Z2 A2 P2 F Z3 tensors (NHWC; F (m, n_flat); Z3 logits (m, 6)).
    cost : the mean softmax cross-entropy. ``train_op`` : one Adam step (``optimizer`` is the
    ``AdamOptimizer``).
    variables : canonical name -> tf variable (W1, W2, W3 = fully_connected/weights, b3).
    saver : a ``tf.compat.v1.train.Saver`` of every global variable (weights, Adam slots,
    beta1_power, beta2_power), as a default ``Saver()`` in the course's graph would be.
    weights_saver : a Saver of the four weights only.
    """

    graph: tf.Graph
    session: v1.Session
    X: tf.Tensor
    Y: tf.Tensor
    activations: dict[str, tf.Tensor]
    cost: tf.Tensor
    optimizer: v1.train.AdamOptimizer
    train_op: tf.Operation
    init_op: tf.Operation
    variables: dict[str, tf.Variable]
    saver: v1.train.Saver
    weights_saver: v1.train.Saver
    _assign: dict[str, tuple[tf.Tensor, tf.Operation]] = field(default_factory=dict, repr=False)

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Assign canonical ``params`` (exact copies) to the graph's four weights."""
        check_params(params, None)
        feeds, ops = {}, []
        for name in PARAM_NAMES:
            placeholder, op = self._assign[name]
            expected = tuple(placeholder.shape.as_list())
            if params[name].shape != expected:
                raise ValueError(f"params: tensor {name}: expected shape {expected}, got {params[name].shape}")
            if params[name].dtype != placeholder.dtype.as_numpy_dtype:
                raise ValueError(f"params: tensor {name}: expected dtype {placeholder.dtype.name}, got {params[name].dtype}")
            feeds[placeholder] = params[name]
            ops.append(op)
        self.session.run(ops, feed_dict=feeds)

    def get_params(self) -> dict[str, np.ndarray]:
        """The four weights as canonical NumPy arrays (W3 = fully_connected/weights, NHWC-flatten rows)."""
        return self.session.run({name: self.variables[name] for name in PARAM_NAMES})

    def save(self, prefix: str, weights_only: bool = False) -> str:
        """``saver.save(sess, prefix)`` (or ``weights_saver``) as the course would; returns the prefix.

        Not atomic (this is TF1's own writer, kept as the reference producer of checkpoints); the
        project's writer is ``tf_model.tf1_checkpoint.save_tf1_checkpoint``.
        """
        saver = self.weights_saver if weights_only else self.saver
        with self.graph.as_default():  # a compat.v1 Saver needs its graph as the default graph
            return saver.save(self.session, str(prefix))

    def restore(self, prefix: str, weights_only: bool = False) -> None:
        """``saver.restore(sess, prefix)``: every global variable, or only the four weights."""
        saver = self.weights_saver if weights_only else self.saver
        with self.graph.as_default():
            saver.restore(self.session, str(prefix))

    def fetch(self, names) -> dict[str, np.ndarray]:
        """Values of global variables by TF1 name (e.g. "W1/Adam", "beta1_power")."""
        with self.graph.as_default():
            by_name = {v.op.name: v for v in v1.global_variables()}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ValueError(f"names: expected global variables of the course graph {sorted(by_name)}, got {unknown}")
        return self.session.run({name: by_name[name] for name in names})

    def variable_names(self) -> list[str]:
        """TF1 names of every global variable of the graph (weights, Adam slots, beta powers)."""
        with self.graph.as_default():
            return [v.op.name for v in v1.global_variables()]

    def close(self) -> None:
        self.session.close()


def build_course_graph(
    spec: ModelSpec = COURSE_MODEL,
    dtype=tf.float32,
    init: str | dict[str, np.ndarray] = "course",
    train: TrainSpec = COURSE_TRAINING,
) -> CourseGraph:
    """Build the course's graph (placeholders, forward, cost, Adam) and initialize it in a session.

    Parameters
    ----------
    spec : the architecture (layer sizes, strides, padding).
    dtype : tf.float32 (the course's) or tf.float64.
    init : "course" for the course's seeded initializers, or canonical params to start from.
    train : learning rate, betas, epsilon and the seeds (graph_seed, conv/dense op seeds).
    """
    dtype = tf.as_dtype(dtype)
    if dtype not in (tf.float32, tf.float64):
        raise ValueError(f"dtype: expected tf.float32 or tf.float64, got {dtype.name}")
    if not (isinstance(init, str) and init == "course") and not isinstance(init, dict):
        raise ValueError(f"init: expected 'course' or a dict of canonical params, got {init!r}")
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(train.graph_seed)
        n_H0, n_W0, n_C0 = spec.input_shape
        X = v1.placeholder(dtype, [None, n_H0, n_W0, n_C0], name="X")
        Y = v1.placeholder(dtype, [None, spec.n_classes], name="Y")
        conv_init = contrib_xavier_initializer(seed=train.conv_init_op_seed)
        c1, c2 = spec.conv1, spec.conv2
        W1 = v1.get_variable("W1", [c1.kernel, c1.kernel, n_C0, c1.filters], dtype=dtype, initializer=conv_init)
        W2 = v1.get_variable("W2", [c2.kernel, c2.kernel, c1.filters, c2.filters], dtype=dtype, initializer=conv_init)
        acts: dict[str, tf.Tensor] = {}
        acts["Z1"] = tf.nn.conv2d(X, W1, strides=[1, c1.stride, c1.stride, 1], padding=c1.padding)
        acts["A1"] = tf.nn.relu(acts["Z1"])
        p1 = spec.pool1
        acts["P1"] = tf.nn.max_pool2d(
            acts["A1"], ksize=[1, p1.window, p1.window, 1], strides=[1, p1.stride, p1.stride, 1], padding=p1.padding
        )
        acts["Z2"] = tf.nn.conv2d(acts["P1"], W2, strides=[1, c2.stride, c2.stride, 1], padding=c2.padding)
        acts["A2"] = tf.nn.relu(acts["Z2"])
        p2 = spec.pool2
        acts["P2"] = tf.nn.max_pool2d(
            acts["A2"], ksize=[1, p2.window, p2.window, 1], strides=[1, p2.stride, p2.stride, 1], padding=p2.padding
        )
        # contrib.layers.flatten: (m, h, w, c) -> (m, h*w*c), C order, i.e. NHWC-flatten.
        n_flat = int(np.prod(acts["P2"].shape.as_list()[1:]))
        acts["F"] = tf.reshape(acts["P2"], [-1, n_flat])
        # fully_connected's initializer had op seed None; TF1 turned it into the graph's op count
        # (45 in the course's graph). TF 2 counts differently, so the seed is given explicitly.
        dense_init = contrib_xavier_initializer(seed=train.dense_init_op_seed)
        acts["Z3"] = fully_connected(acts["F"], spec.n_classes, dense_init)
        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=acts["Z3"], labels=Y))
        # The hyperparameters are given as tensors of the graph's dtype. Python floats would become
        # float32 tensors cast to the variables' dtype (and beta1_power/beta2_power float32
        # variables): identical for the course's float32 graph, but float32-rounded constants
        # (0.9f, 0.999f, 0.009f) in a float64 one.
        optimizer = v1.train.AdamOptimizer(
            learning_rate=tf.constant(train.learning_rate, dtype),
            beta1=tf.constant(train.beta1, dtype),
            beta2=tf.constant(train.beta2, dtype),
            epsilon=tf.constant(train.epsilon, dtype),
        )
        train_op = optimizer.minimize(cost)
        init_op = v1.global_variables_initializer()
        with v1.variable_scope("fully_connected", reuse=True):
            W3 = v1.get_variable("weights", dtype=dtype)
            b3 = v1.get_variable("biases", dtype=dtype)
        variables = {"W1": W1, "W2": W2, "W3": W3, "b3": b3}
        assign = {}
        for name, variable in variables.items():
            placeholder = v1.placeholder(dtype, variable.shape, name=f"assign_{name}")
            assign[name] = (placeholder, variable.assign(placeholder, read_value=False))
        saver = v1.train.Saver()
        weights_saver = v1.train.Saver(var_list={TF1_VARIABLE_NAMES[n]: v for n, v in variables.items()})
    session = v1.Session(graph=graph)
    session.run(init_op)
    course = CourseGraph(
        graph=graph, session=session, X=X, Y=Y, activations=acts, cost=cost, optimizer=optimizer,
        train_op=train_op, init_op=init_op, variables=variables, saver=saver, weights_saver=weights_saver,
        _assign=assign,
    )
    if isinstance(init, dict):
        course.load_params(init)
    return course


def course_initial_weights(spec: ModelSpec = COURSE_MODEL, train: TrainSpec = COURSE_TRAINING) -> dict[str, np.ndarray]:
    """The course's initial weights, float32, computed by running its initializers in TF.

    Returns
    -------
    dict: W1 (4, 4, 3, 8) HWIO, W2 (2, 2, 8, 16) HWIO, W3 (64, 6) NHWC-flatten rows, b3 (6,) zeros.
    """
    course = build_course_graph(spec, tf.float32, "course", train)
    try:
        return course.get_params()
    finally:
        course.close()


_GRAPHS: dict[tuple[ModelSpec, str], CourseGraph] = {}


def _graph_for(params, spec: ModelSpec) -> CourseGraph:
    """A cached course graph of the params' dtype holding ``params``."""
    dtype = check_params(params, spec)
    key = (spec, dtype.name)
    if key not in _GRAPHS:
        _GRAPHS[key] = build_course_graph(spec, tf.as_dtype(dtype.name))
    course = _GRAPHS[key]
    course.load_params(params)
    return course


def _check_batch(X, Y, spec: ModelSpec, dtype: np.dtype) -> None:
    if not isinstance(X, np.ndarray) or X.ndim != 4 or X.shape[1:] != spec.input_shape:
        raise ValueError(f"X: expected shape (m, {', '.join(map(str, spec.input_shape))}) NHWC, got {getattr(X, 'shape', X)}")
    if X.dtype != dtype:
        raise ValueError(f"X: expected dtype {dtype} (the params' dtype), got {X.dtype}")
    if Y is not None:
        if not isinstance(Y, np.ndarray) or Y.shape != (X.shape[0], spec.n_classes):
            raise ValueError(f"Y: expected shape ({X.shape[0]}, {spec.n_classes}), got {getattr(Y, 'shape', Y)}")
        if Y.dtype != dtype:
            raise ValueError(f"Y: expected dtype {dtype} (the params' dtype), got {Y.dtype}")


def run_course_activations(params, X, spec: ModelSpec = COURSE_MODEL) -> dict[str, np.ndarray]:
    """Every activation (Z1 A1 P1 Z2 A2 P2 NHWC, F (m, n_flat), Z3 (m, 6)) of the course graph."""
    course = _graph_for(params, spec)
    _check_batch(X, None, spec, check_params(params, spec))
    return course.session.run(course.activations, feed_dict={course.X: X})


def run_course_forward(params, X, spec: ModelSpec = COURSE_MODEL) -> np.ndarray:
    """Logits Z3 (m, 6) of X (m, n_H, n_W, n_C) NHWC through the course's TF1 graph."""
    course = _graph_for(params, spec)
    _check_batch(X, None, spec, check_params(params, spec))
    return course.session.run(course.activations["Z3"], feed_dict={course.X: X})


def course_cost(params, X, Y, spec: ModelSpec = COURSE_MODEL) -> float:
    """The course's cost (mean softmax cross-entropy) of X (m, ...) NHWC and labels Y (m, 6)."""
    course = _graph_for(params, spec)
    _check_batch(X, Y, spec, check_params(params, spec))
    return float(course.session.run(course.cost, feed_dict={course.X: X, course.Y: Y}))


@dataclass
class CourseRun:
    """What :func:`train_course_tf1` returns."""

    costs: list[float]  # the course's per-epoch cost: sum(batch cost) / floor(m / mini_batch_size)
    params: dict[str, np.ndarray]
    course: CourseGraph  # still open: fetch Adam slots, save with course.saver, then close()
    step_times: list[float]  # wall time (s) of every sess.run([optimizer, cost])


def train_course_tf1(
    X: np.ndarray,
    Y: np.ndarray,
    epochs: int = COURSE_TRAINING.num_epochs,
    *,
    train: TrainSpec = COURSE_TRAINING,
    spec: ModelSpec = COURSE_MODEL,
    params: dict[str, np.ndarray] | None = None,
    batches_for_epoch: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]] | None = None,
    print_cost: bool = False,
) -> CourseRun:
    """The notebook's ``model()`` training loop, in a compat.v1 session.

    ``seed = first_seed``; every epoch ``seed += 1`` and ``random_mini_batches(X, Y, 64, seed)``;
    for each batch ``_, temp_cost = sess.run([optimizer, cost])`` and ``minibatch_cost +=
    temp_cost / num_minibatches`` with ``num_minibatches = int(m / minibatch_size)`` (the course's
    floor, although the last, smaller batch is also run).

    Parameters
    ----------
    X : (m, n_H, n_W, n_C) NHWC training images; Y : (m, 6) one-hot labels; same float dtype.
    epochs : number of epochs.
    params : starting weights; None for the course's initializers (float32 only then).
    batches_for_epoch : 0-based epoch -> its (X, Y) batches; default the course's shuffle.
    print_cost : print "Cost after epoch i: c" every ``train.print_every`` epochs, as the notebook.
    """
    dtype = np.dtype(X.dtype)
    if params is not None:
        dtype = check_params(params, spec)
    _check_batch(X, Y, spec, dtype)
    if params is None and dtype != np.float32:
        raise ValueError(f"X: the course's initializers are float32; got {dtype} data and no params")
    course = build_course_graph(spec, tf.as_dtype(dtype.name), "course" if params is None else params, train)
    num_minibatches = int(X.shape[0] / train.mini_batch_size)
    if num_minibatches == 0:
        raise ValueError(
            f"X: expected at least {train.mini_batch_size} examples (the course divides the epoch cost "
            f"by floor(m / {train.mini_batch_size})), got {X.shape[0]}"
        )
    if batches_for_epoch is None:
        def batches_for_epoch(epoch: int):
            return epoch_mini_batches(
                X, Y, epoch, mini_batch_size=train.mini_batch_size, first_seed=train.first_seed
            )
    costs, step_times = [], []
    fetches = [course.train_op, course.cost]
    for epoch in range(int(epochs)):
        minibatch_cost = 0.0
        for batch_X, batch_Y in batches_for_epoch(epoch):
            start = time.perf_counter()
            _, temp_cost = course.session.run(fetches, feed_dict={course.X: batch_X, course.Y: batch_Y})
            step_times.append(time.perf_counter() - start)
            minibatch_cost += temp_cost / num_minibatches
        if print_cost and epoch % train.print_every == 0:
            print("Cost after epoch %i: %f" % (epoch, minibatch_cost))
        costs.append(float(minibatch_cost))
    return CourseRun(costs=costs, params=course.get_params(), course=course, step_times=step_times)
