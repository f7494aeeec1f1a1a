"""A legacy TF1 candidate: the course's ``forward_propagation`` (and ``compute_cost``) run through ``tf.compat.v1``.

The file is a user's own TF1 code (``examples/ports/course_tf1.py`` is the course's), imported
unedited with ``tensorflow`` bound to a :class:`signs.port.tf1_contrib.TF1Namespace` (TF1's names,
``tf.contrib.layers``). Each run builds a private ``tf.Graph``::

    X = placeholder(dtype, (None, H, W, C))  NHWC      Y = placeholder(dtype, (None, n_classes))
    W1, W2 = get_variable("W1"), get_variable("W2")    HWIO, as initialize_parameters made them
    Z3 = forward_propagation(X, {"W1": W1, "W2": W2})  the file's own graph code
    cost = compute_cost(Z3, Y)                         the file's, else mean softmax cross-entropy

and runs it in its own ``Session`` (TF's global mode and default graph are never touched).

Candidate parameter names: ``W1``, ``W2``; ``W3`` and ``b3`` for the variables of the first
``tf.contrib.layers.fully_connected`` call; every other trainable variable by its TF name
(``fully_connected_1/weights``, a ``b1`` the file created...). TF1's layouts are the canonical ones
(HWIO kernels, W3 (n_flat, 6) with NHWC-flatten rows), so no transposes happen here.

Captured tensors: every floating tensor that ``forward_propagation`` computed from X, in graph
(creation) order, whose value has rank 4 (layout "NHWC") or 2 ("flat"), labelled by its tensor name
(``Conv2D:0``, ``Relu:0``, ``MaxPool:0``, ``Flatten/Reshape:0``, ``fully_connected/BiasAdd:0``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from reference.init import check_dtype
from reference.spec import COURSE_MODEL, COURSE_TRAINING
from signs.port.capture import CandidateParam, CandidateRun, Captured, StepsRun
from signs.port.script import describe_exception, import_script
from signs.port.tf1_contrib import TF1Namespace, import_redirects
from tf_model.tf1_course import tf1_adam

__all__ = ["TF1Candidate", "load_tf1_candidate"]

v1 = tf.compat.v1

CONV_NAMES = ("W1", "W2")  # the variables handed to forward_propagation, as initialize_parameters returned them
DENSE_NAMES = ("W3", "b3")  # the first fully_connected's weights and biases
_LAYOUTS = {4: "NHWC", 2: "flat"}


@contextlib.contextmanager
def _quiet_tf_logger() -> Iterator[None]:
    """Hide TF's Python warnings (deprecations of the v1 names a legacy file uses) while it builds."""
    logger = tf.get_logger()
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)


def _device_settings() -> dict:
    """Where TF places the graph, and whether float32 matmuls/convs may run in TF32 there.

    TF's TF32 switch is on by default but only acts on CUDA GPUs, so ``tf32`` is True only when a
    GPU is visible and the switch is on (a CPU run never reports it).
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    return {"device": "GPU" if gpu else "CPU",
            "tf32": gpu and bool(tf.config.experimental.tensor_float_32_execution_enabled())}


@dataclass
class _Graph:
    """One built candidate graph. ``variables``: candidate name -> tf variable, in order of use."""

    graph: tf.Graph
    session: v1.Session
    X: tf.Tensor
    Y: tf.Tensor
    output: tf.Tensor
    cost: tf.Tensor
    variables: dict[str, tf.Variable]
    use_order: dict[str, int]
    captured: list[tf.Tensor]
    gradients: dict[str, tf.Tensor]  # candidate name (and "X") -> d cost; absent when not connected
    settings: dict = field(default_factory=dict)
    train_op: tf.Operation | None = None


def _forward_tensors(ops: Sequence[tf.Operation], X: tf.Tensor) -> list[tf.Tensor]:
    """Floating outputs of ``ops`` (creation order, which is topological) that depend on ``X``."""
    reached = {X.name}
    tensors = []
    for op in ops:
        if any(t.name in reached for t in op.inputs):
            for t in op.outputs:
                reached.add(t.name)
                if t.dtype.is_floating:
                    tensors.append(t)
    return tensors


def _use_order(ops: Sequence[tf.Operation], variables: dict[str, tf.Variable]) -> dict[str, int]:
    """Candidate name -> rank of the variable's first read among ``ops`` (-1 if never read)."""
    first_read = {}
    handles = {var.handle.name: name for name, var in variables.items()}
    for index, op in enumerate(ops):
        for t in op.inputs:
            if t.name in handles and handles[t.name] not in first_read:
                first_read[handles[t.name]] = index
    ranked = sorted(first_read, key=first_read.get)
    return {name: ranked.index(name) if name in first_read else -1 for name in variables}


def _candidate_names(graph: tf.Graph, conv: dict[str, tf.Variable], dense) -> dict[str, tf.Variable]:
    """Every trainable variable under its candidate name (see the module docstring)."""
    alias = {id(var): name for name, var in conv.items()}
    if dense:
        weights, biases = dense[0]
        alias[id(weights)] = "W3"
        if biases is not None:
            alias[id(biases)] = "b3"
    named: dict[str, tf.Variable] = {}
    for var in graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES):
        name = alias.get(id(var), var.op.name)
        named[var.op.name if name in named else name] = var
    return named


def _check_params(params: dict, variables: dict[str, tf.Variable], path: Path) -> None:
    """Every given parameter names a variable of the same shape; W1 W2 (and W3 b3 if made) are given."""
    unknown = sorted(set(params) - set(variables))
    if unknown:
        raise ValueError(f"params: expected names of {path.name}'s variables {sorted(variables)}, got unknown {unknown}")
    missing = [name for name in CONV_NAMES + DENSE_NAMES if name in variables and name not in params]
    if missing:
        raise ValueError(f"params: expected values for {missing} ({path.name} uses them), got {sorted(params)}")
    for name, value in params.items():
        expected = tuple(variables[name].shape.as_list())
        if np.shape(value) != expected:
            raise ValueError(f"params[{name!r}]: expected shape {expected} ({path.name}'s variable), got {np.shape(value)}")


class TF1Candidate:
    """A loaded legacy TF1 file; :meth:`run` and :meth:`steps` build a fresh graph each time.

    Attributes: ``path`` (the file), ``module`` (its imported module), ``namespace`` (the ``tf`` it sees).
    """

    framework = "tf1"
    input_layout = "NHWC"

    def __init__(self, path: Path, module, namespace: TF1Namespace):
        self.path = path
        self.module = module
        self.namespace = namespace
        self.forward_propagation: Callable = module.forward_propagation
        self.compute_cost: Callable | None = getattr(module, "compute_cost", None)

    def _call(self, what: str, function: Callable, *args):
        """Call the file's ``function``; anything it raises becomes one ValueError naming the file."""
        try:
            return function(*args)
        except Exception as exc:  # a user's code may raise anything
            raise ValueError(f"candidate: {what} of {str(self.path)!r} raised {describe_exception(exc)}") from exc

    @contextlib.contextmanager
    def _graph_scope(self, dtype) -> Iterator[tf.Graph]:
        """A fresh private graph, made the default, with the file's float32 meaning ``dtype``."""
        graph = tf.Graph()
        self.namespace.contrib.layers.dense_variables = []
        with graph.as_default(), self.namespace.floats(dtype), _quiet_tf_logger():
            yield graph

    def initial_params(self, input_shape: tuple[int, int, int] = COURSE_MODEL.input_shape,
                       n_classes: int = COURSE_MODEL.n_classes) -> dict[str, np.ndarray]:
        """The weights the file builds itself (float32, candidate names): its ``initialize_parameters()``
        then ``forward_propagation`` on an NHWC placeholder, then ``global_variables_initializer``.

        For the course's file these are the course's initial weights (``reference.init.course_init``):
        the file's ``tf.set_random_seed(1)`` and ``xavier_initializer(seed=0)`` run as written, and
        ``fully_connected``'s seed-less initializer gets the op seed TF1 gave it in the course's graph
        (see :mod:`signs.port.tf1_contrib`). ValueError when the file has no ``initialize_parameters``.
        """
        if not callable(getattr(self.module, "initialize_parameters", None)):
            raise ValueError(f"candidate: expected {str(self.path)!r} to define initialize_parameters() for its own weights, found none")
        with self._graph_scope(tf.float32) as graph:
            X = v1.placeholder(tf.float32, [None, *input_shape], name="X")
            parameters = self._call("initialize_parameters()", self.module.initialize_parameters)
            if not isinstance(parameters, dict):
                raise ValueError(f"candidate: initialize_parameters of {str(self.path)!r} returned {type(parameters).__name__}, expected a dict")
            self._call("forward_propagation(X, parameters)", self.forward_propagation, X, parameters)
            conv = {name: parameters[name] for name in CONV_NAMES if name in parameters}
            variables = _candidate_names(graph, conv, self.namespace.contrib.layers.dense_variables)
            init_op = v1.global_variables_initializer()
        with v1.Session(graph=graph) as session:
            session.run(init_op)
            return session.run(variables)

    def _build(self, params: dict, input_shape: tuple, n_classes: int, dtype: np.dtype, adam: dict | None = None) -> _Graph:
        """Build the candidate's graph and a session holding ``params``; see the module docstring."""
        for name in CONV_NAMES:
            if name not in params or np.ndim(params[name]) != 4:
                raise ValueError(f"params[{name!r}]: expected an HWIO kernel (4-D), got {np.shape(params.get(name))}")
        with self._graph_scope(dtype) as graph:
            v1.set_random_seed(COURSE_TRAINING.graph_seed)  # deterministic values for variables not in params
            X = v1.placeholder(dtype, [None, *input_shape], name="X")
            Y = v1.placeholder(dtype, [None, n_classes], name="Y")
            zeros = v1.zeros_initializer()
            conv = {name: v1.get_variable(name, np.shape(params[name]), dtype, zeros) for name in CONV_NAMES}
            first_forward_op = len(graph.get_operations())
            output = self._call("forward_propagation(X, parameters)", self.forward_propagation, X, dict(conv))
            if not isinstance(output, tf.Tensor) or output.graph is not graph:
                raise ValueError(f"candidate: forward_propagation of {str(self.path)!r} returned {type(output).__name__}, expected a tensor")
            forward_ops = graph.get_operations()[first_forward_op:]
            cost, loss_source = self._cost(output, Y)
            variables = _candidate_names(graph, conv, self.namespace.contrib.layers.dense_variables)
            _check_params(params, variables, self.path)
            wrt = list(variables.values()) + [X]
            gradients = {name: g for name, g in zip([*variables, "X"], tf.gradients(cost, wrt)) if g is not None}
            train_op = None
            if adam is not None:
                train_op = tf1_adam(dtype, **adam).minimize(cost, var_list=list(variables.values()))
            init_op = v1.global_variables_initializer()
            feeds, assigns = {}, []
            for name, value in params.items():
                placeholder = v1.placeholder(dtype, variables[name].shape, name=f"assign_{name.replace('/', '_')}")
                assigns.append(variables[name].assign(placeholder, read_value=False))
                feeds[placeholder] = np.asarray(value, dtype=dtype)
        session = v1.Session(graph=graph)
        session.run(init_op)
        session.run(assigns, feed_dict=feeds)
        return _Graph(
            graph=graph, session=session, X=X, Y=Y, output=output, cost=cost, variables=variables,
            use_order=_use_order(forward_ops, variables), captured=_forward_tensors(forward_ops, X),
            settings={"graph": "tf.compat.v1", "loss": loss_source, "tensorflow": tf.__version__, **_device_settings()},
            gradients=gradients, train_op=train_op,
        )

    def _cost(self, output: tf.Tensor, Y: tf.Tensor) -> tuple[tf.Tensor, str]:
        """The file's ``compute_cost(Z3, Y)`` (a non-scalar one summed, as TF1's gradients and
        ``minimize`` treat it), else the mean softmax cross-entropy; and which it was."""
        if self.compute_cost is None:
            return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=output)), "softmax cross-entropy, mean"
        cost = self._call("compute_cost(Z3, Y)", self.compute_cost, output, Y)
        if not isinstance(cost, tf.Tensor) or not cost.dtype.is_floating:
            raise ValueError(f"candidate: compute_cost of {str(self.path)!r} returned {type(cost).__name__}, expected a float tensor")
        if cost.shape.rank != 0:
            return tf.reduce_sum(cost), f"compute_cost (shape {cost.shape.as_list()}, summed)"
        return cost, "compute_cost"

    def run(self, params: dict, X: np.ndarray, Y: np.ndarray, dtype) -> CandidateRun:
        """One forward and backward pass on (X, Y); see the module docstring for names and captures.

        Parameters
        ----------
        params : candidate name -> value: W1 (4,4,3,8) W2 (2,2,8,16) HWIO, W3 (64,6) NHWC-flatten rows,
            b3 (6,), and optionally any other variable of the file (else its initializer's value).
        X : (m, H, W, C) NHWC. Y : (m, n_classes) labels. dtype : float32 or float64 (all are cast).
        """
        dtype = check_dtype(dtype)
        X, Y = np.asarray(X, dtype=dtype), np.asarray(Y, dtype=dtype)
        if X.ndim != 4 or Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise ValueError(f"X, Y: expected (m, H, W, C) NHWC and (m, n_classes), got {X.shape} and {Y.shape}")
        built = self._build(params, X.shape[1:], Y.shape[1], dtype)
        names = list(built.variables)
        fetch = {
            "captured": built.captured, "output": built.output, "cost": built.cost,
            "params": built.variables, "grads": built.gradients,
        }
        try:
            values = built.session.run(fetch, feed_dict={built.X: X, built.Y: Y})
        finally:
            built.session.close()
        param_grads = {n: values["grads"].get(n, np.zeros_like(values["params"][n])) for n in names}  # unused: 0
        captured = [
            Captured(label=t.name, array=value, layout=_LAYOUTS[value.ndim])
            for t, value in zip(built.captured, values["captured"]) if value.ndim in _LAYOUTS
        ]
        return CandidateRun(
            framework=self.framework, input_layout=self.input_layout,
            params=[CandidateParam(n, values["params"][n], built.use_order[n]) for n in names],
            captured=captured, output=values["output"], loss=float(values["cost"]),
            param_grads=param_grads, input_grad=values["grads"].get("X"), settings=built.settings,
        )

    def steps(self, params: dict, batches: Sequence[tuple[np.ndarray, np.ndarray]], dtype, *,
              learning_rate: float = COURSE_TRAINING.learning_rate, beta1: float = COURSE_TRAINING.beta1,
              beta2: float = COURSE_TRAINING.beta2, epsilon: float = COURSE_TRAINING.epsilon) -> StepsRun:
        """K steps of ``tf.compat.v1.train.AdamOptimizer(...).minimize(cost)`` (TF1's Adam), one per batch.

        Hyperparameters are constants of ``dtype`` (not float32-rounded in a float64 run).
        ``losses[k]``: the cost on batch k before step k's update, as ``sess.run([train_op, cost])``
        returns it. ``params_after[k]``: every variable after step k, candidate names.
        """
        dtype = check_dtype(dtype)
        batches = [(np.asarray(X, dtype=dtype), np.asarray(Y, dtype=dtype)) for X, Y in batches]
        if not batches:
            raise ValueError("batches: expected at least one (X, Y) batch, got none")
        adam = {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
        X0, Y0 = batches[0]
        built = self._build(params, X0.shape[1:], Y0.shape[1], dtype, adam)
        params_after, losses = [], []
        try:
            for X, Y in batches:
                _, cost = built.session.run([built.train_op, built.cost], feed_dict={built.X: X, built.Y: Y})
                losses.append(float(cost))
                params_after.append(built.session.run(built.variables))
        finally:
            built.session.close()
        return StepsRun(params_after=params_after, losses=losses)


def load_tf1_candidate(path) -> TF1Candidate:
    """Import a legacy TF1 file (unedited; see :mod:`signs.port.tf1_contrib`) as a candidate.

    Raises FileNotFoundError (no such file) or ValueError (not a .py file, importing it raised, or it
    defines no ``forward_propagation``), one line naming the file. The file is executed as Python.
    """
    namespace = TF1Namespace()
    with _quiet_tf_logger():
        module = import_script(path, redirects=import_redirects(namespace))
    if not callable(getattr(module, "forward_propagation", None)):
        raise ValueError(
            f"candidate: expected {str(path)!r} to define forward_propagation(X, parameters) (legacy TF1 code), "
            "found none"
        )
    return TF1Candidate(Path(path), module, namespace)
