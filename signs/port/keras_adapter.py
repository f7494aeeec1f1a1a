"""Run a user's Keras 3 model and record every layer's output (:class:`CandidateRun`).

Keras keeps the course's layouts (NHWC activations, HWIO kernels, Dense kernel (in, out)), so no
layout moves. A functional or Sequential model is re-wired into one model whose outputs are every
layer's output (a subclassed model gives its output only: its activations are then "not found").
float64 runs rebuild the model in float64: ``FILE.py:NAME`` by calling ``NAME()`` again under a
float64 dtype policy, ``FILE.keras`` from its config with every dtype set to float64.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from reference.spec import COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec
from signs.port.capture import CandidateParam, CandidateRun, Captured, StepsRun
from signs.port.load import call_user
from signs.port.mapping import CANONICAL_LAYOUTS, kind_from_words

__all__ = ["KerasCandidate", "keras_settings", "load_keras_file"]


@contextlib.contextmanager
def _dtype_policy(dtype: str) -> Iterator[None]:
    """Keras' global float type and dtype policy set to ``dtype`` inside the block, restored after."""
    import keras

    saved_floatx, saved_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(saved_floatx)
        keras.config.set_dtype_policy(saved_policy)


def _retype(config: Any, dtype: str) -> Any:
    """A model config with every float dtype (layer policies, inputs) replaced by ``dtype``."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config.get("config", {}), "name": dtype}}
        return {k: (dtype if k == "dtype" and v in ("float32", "float64", "float16")
                    else _retype(v, dtype)) for k, v in config.items()}
    if isinstance(config, list):
        return [_retype(v, dtype) for v in config]
    return config


def load_keras_file(path) -> Any:
    """A ``.keras`` model, loaded with ``safe_mode=True`` (no lambda or arbitrary code)."""
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for a bad file
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"CANDIDATE: {path}: expected a Keras model file that loads with "
                         f"safe_mode=True, got {type(exc).__name__}: {first}") from exc


def keras_settings(device: str) -> dict:
    """Device and TF32 facts of TensorFlow (TF32 only matters on a GPU)."""
    import tensorflow as tf

    return {
        "framework": "keras",
        "device": device,
        "cuda": device.startswith("cuda") and bool(tf.config.list_physical_devices("GPU")),
        "tf.config.experimental.tensor_float_32_execution_enabled":
            bool(tf.config.experimental.tensor_float_32_execution_enabled()),
    }


def _layer_kind(layer) -> str:
    """"relu" for a conv or dense layer with a fused ReLU, else the kind its class name says."""
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "")
    if type(layer).__name__ == "Activation" or (name and name != "linear"):
        return kind_from_words(name) if kind_from_words(name) != "unknown" else name or "unknown"
    return kind_from_words(type(layer).__name__)


class KerasCandidate:
    """A Keras model port of the course net.

    Parameters
    ----------
    model : the model as built (float32) or loaded
    build : ``NAME()`` to rebuild it under another dtype policy; None rebuilds from the config
    loss : ``loss(output, labels)`` -> scalar; None: ``CategoricalCrossentropy(from_logits=True)``
    optimizer : ``optimizer(model)`` -> Keras optimizer; None: ``keras.optimizers.Adam`` with the
        course's hyperparameters as constants of the run's dtype (``tf_model.model.make_adam``)
    """

    framework = "keras"
    layouts = CANONICAL_LAYOUTS
    input_layout = "NHWC"

    def __init__(self, model, *, build: Callable | None = None, loss: Callable | None = None,
                 optimizer: Callable | None = None, device: str = "cpu",
                 spec: ModelSpec = COURSE_MODEL) -> None:
        if device.startswith("cuda"):
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                raise ValueError(f"--device: expected a device TensorFlow can use, got {device!r} "
                                 "(TensorFlow sees no GPU)")
        self.original = model
        self.build = build
        self.loss_fn = loss
        self.optimizer_fn = optimizer
        self.device = device
        self.spec = spec
        self._models: dict[str, tuple[Any, Any, list]] = {}
        self.notes: list[str] = []
        # Names of the trainable variables, the original model's: a model rebuilt in float64 may
        # get other automatic layer names ("conv2d_3"), so every copy is addressed by position.
        self.names = [v.path for v in model.trainable_variables]
        shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
        if shape is not None and shape != tuple(spec.input_shape):
            raise ValueError(f"candidate: expected a Keras model taking NHWC input "
                             f"{tuple(spec.input_shape)}, got input shape {shape}")

    to_nhwc = None  # Keras activations are NHWC already

    @contextlib.contextmanager
    def tf32_off(self) -> Iterator[None]:
        """A context in which TensorFlow computes float32 in IEEE float32 (TF32 off), restored after."""
        import tensorflow as tf

        saved = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(saved)

    def _tf_device(self):
        import tensorflow as tf

        return tf.device("/GPU:0" if self.device.startswith("cuda") else "/CPU:0")

    def _model(self, dtype) -> tuple[Any, Any]:
        """(model, capture model) in ``dtype``; the capture model returns every layer's output."""
        import keras

        dtype = np.dtype(dtype).name
        if dtype in self._models:
            return self._models[dtype]
        if dtype == self.original.weights[0].dtype:
            model = self.original
        elif self.build is not None:
            with _dtype_policy(dtype):
                model = call_user(self.build, (), "candidate")
        else:
            with _dtype_policy(dtype):
                model = type(self.original).from_config(_retype(self.original.get_config(), dtype))
            model.set_weights([np.asarray(w).astype(dtype) for w in self.original.get_weights()])
        layers, outputs = [], []
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            try:
                outputs.append(layer.output)
            except (AttributeError, ValueError):  # a layer called twice, or never on a symbol
                continue
            layers.append(layer)
        capture = None
        if getattr(model, "inputs", None) and outputs:
            capture = keras.Model(model.inputs, [model.outputs[0], *outputs])
        self._models[dtype] = (model, capture, layers)
        return self._models[dtype]

    def _variables(self, model) -> list[tuple[str, Any]]:
        """(name, variable) pairs of ``model``, named as the original model's variables."""
        variables = model.trainable_variables
        if len(variables) != len(self.names):
            raise ValueError(f"candidate: the rebuilt model has {len(variables)} trainable "
                             f"variables, the original {len(self.names)}: {self.names}")
        return list(zip(self.names, variables))

    def own_weights(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(v).astype(np.float64) for n, v in self._variables(self.original)}

    def parameters(self, X: np.ndarray, dtype) -> list[CandidateParam]:
        """Trainable variables in model order (Keras' order of layers is the order of use)."""
        model = self._model(dtype)[0]
        return [CandidateParam(n, np.asarray(v).copy(), i)
                for i, (n, v) in enumerate(self._variables(model))]

    def detect_layout(self, X: np.ndarray, dtype) -> str:
        return "NHWC"

    def _load(self, model, params: Mapping[str, np.ndarray]) -> None:
        for n, v in self._variables(model):
            if n in params:
                v.assign(np.asarray(params[n], dtype=v.dtype))

    def _loss(self, out, Y, dtype):
        import keras

        if self.loss_fn is None:
            return keras.losses.CategoricalCrossentropy(from_logits=True, dtype=dtype)(Y, out)
        with _dtype_policy(dtype):  # a Keras loss built inside computes in floatx
            loss = call_user(self.loss_fn, (out, Y), "--loss")
        if getattr(loss, "shape", None) != ():
            raise ValueError(f"--loss: expected a scalar, got {getattr(loss, 'shape', type(loss).__name__)}")
        return loss

    def run(self, params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
            dtype) -> CandidateRun:
        import tensorflow as tf

        dtype = np.dtype(dtype).name
        model, capture, layers = self._model(dtype)
        self._load(model, params)
        with self._tf_device():
            x = tf.constant(np.asarray(X, dtype=dtype))
            y = tf.constant(np.asarray(Y, dtype=dtype))
            with tf.GradientTape() as tape:
                tape.watch(x)
                if capture is not None:
                    out, *layer_outputs = capture(x, training=False)
                else:
                    out, layer_outputs = model(x, training=False), []
                loss = self._loss(out, y, dtype)
            named = self._variables(model)
            grads = tape.gradient(loss, [x, *(v for _, v in named)])
        captured = [Captured(f"{layer.name} ({type(layer).__name__})", np.asarray(value).copy(),
                             layout="NHWC" if len(value.shape) == 4 else "flat",
                             kind=_layer_kind(layer))
                    for layer, value in zip(layers, layer_outputs)]
        param_grads = {n: (np.zeros(v.shape, dtype=dtype) if g is None else np.asarray(g).copy())
                       for (n, v), g in zip(named, grads[1:])}
        return CandidateRun(
            framework="keras", input_layout="NHWC",
            params=[CandidateParam(n, np.asarray(v).copy(), i) for i, (n, v) in enumerate(named)],
            captured=captured, output=np.asarray(out).copy(), loss=float(loss),
            param_grads=param_grads,
            input_grad=None if grads[0] is None else np.asarray(grads[0]).copy(),
            settings=keras_settings(self.device),
        )

    def _optimizer(self, model, train: TrainSpec, dtype: str):
        if self.optimizer_fn is None:
            from tf_model.model import make_adam

            return make_adam(train, dtype)
        # Built as a program of this dtype would build it: Keras keeps the learning rate in a
        # variable of floatx, which would round 0.009 to float32 inside a float64 run.
        with _dtype_policy(dtype):
            optimizer = call_user(self.optimizer_fn, (model,), "--optimizer")
        self._float64_hyperparameters(optimizer, dtype)
        return optimizer

    def _float64_hyperparameters(self, optimizer, dtype: str) -> None:
        """Give a float64 run's optimizer its Python-number betas and epsilon as float64 constants.

        Keras' Adam casts ``self.beta_1`` with ``ops.cast``, which turns a Python float into a
        float32 tensor first: in a float64 model its bias correction then uses float32(0.999),
        moving every step by about 6e-6 (relative), a Keras artifact that does not exist in float32
        (the course's dtype), where the float32 run checks the exact numbers. The float64 run asks
        whether the algorithm is the course's, so the user's numbers are passed at full precision
        (as ``tf_model.model.make_adam`` does), and the report says so.
        """
        import tensorflow as tf

        if dtype != "float64":
            return
        changed = []
        for name in ("beta_1", "beta_2", "epsilon"):
            value = getattr(optimizer, name, None)
            if isinstance(value, float):
                setattr(optimizer, name, tf.constant(value, dtype=tf.float64))
                changed.append(f"{name}={value:g}")
        if changed:
            self.notes.append(
                f"note: float64 steps: the optimizer's {', '.join(changed)} were passed as float64 "
                "constants (Keras rounds Python numbers to float32 in Adam's bias correction, "
                "a float64-only artifact; the float32 run uses them as Keras does)")

    def steps(self, params: Mapping[str, np.ndarray], batches: Sequence[tuple[np.ndarray, np.ndarray]],
              dtype, train: TrainSpec = COURSE_TRAINING) -> StepsRun:
        import tensorflow as tf

        dtype = np.dtype(dtype).name
        model = self._model(dtype)[0]
        self._load(model, params)
        optimizer = self._optimizer(model, train, dtype)
        after, losses = [], []
        with self._tf_device():
            for X, Y in batches:
                x, y = tf.constant(np.asarray(X, dtype=dtype)), tf.constant(np.asarray(Y, dtype=dtype))
                with tf.GradientTape() as tape:
                    loss = self._loss(model(x, training=True), y, dtype)
                variables = model.trainable_variables
                optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
                losses.append(float(loss))
                after.append({n: np.asarray(v).copy() for n, v in self._variables(model)})
        self._load(model, params)  # the next run starts from the given weights again
        return StepsRun(after, losses)
