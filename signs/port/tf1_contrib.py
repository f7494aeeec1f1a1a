"""TF1's top-level API and ``tf.contrib.layers`` for legacy course files, without touching TensorFlow.

Legacy course code does ``import tensorflow as tf`` and calls ``tf.placeholder``, ``tf.get_variable``,
``tf.contrib.layers.flatten`` ... which TF 2 moved to ``tf.compat.v1`` or dropped. The candidate
loader (:mod:`signs.port.tf1_candidate`) imports such a file with ``tensorflow`` bound to a
:class:`TF1Namespace`, a module object of its own:

- any name it does not define is read from ``tf.compat.v1`` (``tf.nn.conv2d``, ``tf.nn.max_pool``,
  ``tf.reduce_mean``, ``tf.train.AdamOptimizer``, ``tf.Session``, ``tf.set_random_seed`` ...);
- ``tf.contrib.layers`` holds ``flatten``, ``fully_connected`` and ``xavier_initializer``, with
  contrib's arithmetic (:mod:`tf_model.tf1_course` holds the pieces);
- ``tf.compat.v1`` is the namespace itself; ``disable_v2_behavior`` / ``disable_eager_execution``
  do nothing (the file always runs inside a private graph; TF's global mode is never switched);
  ``reset_default_graph`` does nothing (every run already starts from a fresh graph).

The real ``tensorflow`` module is never modified: only the file's own ``tf`` is the namespace.

Dtype: course code hardcodes float32 (``tf.placeholder(tf.float32, ...)``, ``tf.get_variable`` whose
default dtype is float32). Inside :meth:`TF1Namespace.floats` (``dtype=float64``) every float32 the
file asks for through the namespace means float64: the attribute ``tf.float32``, the dtype of
``placeholder`` / ``get_variable`` (its default included) and of ``constant`` built from Python
floats. The file's arithmetic is otherwise untouched. Float32 obtained elsewhere (``np.float32``
arrays, ``tf.zeros`` without a dtype, a module-level ``DTYPE = tf.float32`` read at import) stays
float32 and makes a float64 run fail with TensorFlow's dtype error.
"""

from __future__ import annotations

import contextlib
import math
import types
from typing import Iterator

import numpy as np
import tensorflow as tf

from reference.spec import COURSE_TRAINING
from tf_model.tf1_course import contrib_xavier_initializer, fully_connected as course_fully_connected

__all__ = ["TF1Namespace", "import_redirects"]

v1 = tf.compat.v1

_CONTRIB_LAYERS = ("flatten", "fully_connected", "xavier_initializer", "xavier_initializer_conv2d")


class _Fallback(types.ModuleType):
    """A module object that reads any name it lacks from ``target``, with a clear error otherwise."""

    def __init__(self, name: str, target, doc: str = ""):
        super().__init__(name, doc)
        self._target = target

    def __getattr__(self, attr: str):
        if attr.startswith("__") or self._target is None:
            raise AttributeError(f"{self.__name__}.{attr} is not supplied for legacy TF1 files")
        return getattr(self._target, attr)


class _ContribLayers(types.ModuleType):
    """``tf.contrib.layers``: ``flatten``, ``fully_connected`` and ``xavier_initializer`` only."""

    def __init__(self):
        super().__init__("tensorflow.contrib.layers")
        self.dense_variables: list[tuple[tf.Variable, tf.Variable | None]] = []  # per fully_connected call

    def __getattr__(self, attr: str):
        raise AttributeError(
            f"tf.contrib.layers.{attr} is not supplied for legacy TF1 files (supplied: {', '.join(_CONTRIB_LAYERS)})"
        )

    @staticmethod
    def xavier_initializer(uniform: bool = True, seed: int | None = None, dtype=tf.float32):  # noqa: ARG004
        """contrib's ``xavier_initializer``: U(-limit, limit), limit = sqrt(3 / ((fan_in + fan_out) / 2)).

        ``dtype`` is ignored: ``get_variable`` passes the variable's dtype to the initializer.
        """
        if not uniform:
            raise ValueError("tf.contrib.layers.xavier_initializer: expected uniform=True (the course's), got uniform=False")
        return contrib_xavier_initializer(seed)

    xavier_initializer_conv2d = xavier_initializer

    @staticmethod
    def flatten(inputs, outputs_collections=None, scope=None):
        """contrib's ``flatten``: (m, d1, ..., dk) -> (m, d1 * ... * dk), C order (NHWC-flatten for NHWC)."""
        if outputs_collections is not None:
            raise ValueError("tf.contrib.layers.flatten: expected outputs_collections=None, got a collection")
        with v1.name_scope(scope, "Flatten", [inputs]):
            features = inputs.shape.as_list()[1:]
            if None in features:  # dynamic sizes: let reshape infer the feature count
                return tf.reshape(inputs, tf.stack([tf.shape(inputs)[0], -1]))
            return tf.reshape(inputs, [-1, math.prod(features)])

    def fully_connected(self, inputs, num_outputs, activation_fn=tf.nn.relu, normalizer_fn=None,
                        normalizer_params=None, weights_initializer=None, weights_regularizer=None,
                        biases_initializer=v1.zeros_initializer(), biases_regularizer=None, reuse=None,
                        variables_collections=None, outputs_collections=None, trainable=True, scope=None):
        """contrib's ``fully_connected`` on 2-D inputs; its default ``activation_fn`` is ReLU, as contrib's.

        The variables it creates are recorded in ``dense_variables`` (the candidate names the first
        pair W3 and b3). Normalizers, regularizers, collections, ``reuse`` and ``trainable=False``
        are not supplied (ValueError).
        """
        unsupported = {
            "normalizer_fn": normalizer_fn, "normalizer_params": normalizer_params,
            "weights_regularizer": weights_regularizer, "biases_regularizer": biases_regularizer,
            "reuse": reuse, "variables_collections": variables_collections,
            "outputs_collections": outputs_collections,
        }
        given = [name for name, value in unsupported.items() if value is not None]
        if given or trainable is not True:
            raise ValueError(f"tf.contrib.layers.fully_connected: expected the course's arguments, got {given or ['trainable']} set")
        graph = v1.get_default_graph()
        if weights_initializer is None:  # contrib's default: xavier_initializer(), op seed None
            # Under a graph seed, TF1 took a None op seed from the graph's op count: 45 where the
            # course's graph created this initializer. TF 2 counts seed-less ops per graph from 0
            # instead, so the course's value is given explicitly (as tf_model.tf1_course does); a
            # graph built otherwise had another count, which cannot be recovered.
            seed = COURSE_TRAINING.dense_init_op_seed if graph.seed is not None else None
            weights_initializer = contrib_xavier_initializer(seed)
        before = set(id(v) for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES))
        outputs = course_fully_connected(
            inputs, int(num_outputs), weights_initializer, scope,
            activation_fn=activation_fn, biases_initializer=biases_initializer,
        )
        created = [v for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES) if id(v) not in before]
        weights = next(v for v in created if v.op.name.endswith("/weights"))
        biases = next((v for v in created if v.op.name.endswith("/biases")), None)
        self.dense_variables.append((weights, biases))
        return outputs


class TF1Namespace(_Fallback):
    """What ``import tensorflow as tf`` gives a legacy file: ``tf.compat.v1`` plus ``tf.contrib.layers``.

    ``float_dtype`` is the dtype that stands for float32 (see :meth:`floats`).
    """

    def __init__(self):
        super().__init__("tensorflow", v1, "TF1's API for a legacy file (signs.port.tf1_contrib)")
        self.float_dtype = tf.float32
        self.contrib = _Fallback("tensorflow.contrib", None)
        self.contrib.layers = _ContribLayers()
        self.compat = _Fallback("tensorflow.compat", tf.compat)
        self.compat.v1 = self
        self.__version__ = tf.__version__

    @contextlib.contextmanager
    def floats(self, dtype) -> Iterator[None]:
        """Let float32 requests mean ``dtype`` (tf.float32 or tf.float64) for the duration of the block."""
        dtype = tf.as_dtype(dtype)
        if dtype not in (tf.float32, tf.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {dtype.name}")
        saved, self.float_dtype = self.float_dtype, dtype
        try:
            yield
        finally:
            self.float_dtype = saved

    @property
    def float32(self):
        return self.float_dtype

    def _float(self, dtype):
        """``dtype`` with float32 (and None: get_variable's default) replaced by ``float_dtype``."""
        if dtype is None or tf.as_dtype(dtype) == tf.float32:
            return self.float_dtype
        return tf.as_dtype(dtype)

    def placeholder(self, dtype, shape=None, name=None):
        return v1.placeholder(self._float(dtype), shape, name)

    def get_variable(self, name, shape=None, dtype=None, *args, **kwargs):
        return v1.get_variable(name, shape, self._float(dtype), *args, **kwargs)

    def constant(self, value, dtype=None, shape=None, name="Const"):
        if dtype is None and np.asarray(value).dtype.kind == "f":  # Python floats: TF would pick float32
            dtype = self.float_dtype
        elif dtype is not None:
            dtype = self._float(dtype)
        return v1.constant(value, dtype, shape, name)

    @staticmethod
    def disable_v2_behavior():
        """Nothing to do: the file runs in a private graph, TF's global mode is left alone."""

    disable_eager_execution = disable_v2_behavior
    reset_default_graph = disable_v2_behavior


def import_redirects(namespace: TF1Namespace) -> dict[str, types.ModuleType]:
    """The ``import`` names a legacy file may use, for :func:`signs.port.script.import_script`."""
    return {
        "tensorflow": namespace,
        "tensorflow.compat": namespace.compat,
        "tensorflow.compat.v1": namespace,
        "tensorflow.contrib": namespace.contrib,
        "tensorflow.contrib.layers": namespace.contrib.layers,
    }
