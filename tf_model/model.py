"""The course ConvNet as a Keras 3 functional model, plus its (TensorFlow-backend) optimizer.

Layers (names in the Keras ``vgg16`` style, read from ``reference.spec``)::

    input    (m, n_H, n_W, n_C)                       NHWC
    conv1    Conv2D(8, 4, SAME, no bias)   kernel HWIO (4, 4, 3, 8)   = canonical W1, no transpose
    relu1
    pool1    MaxPool2D(8, 8, SAME)
    conv2    Conv2D(16, 2, SAME, no bias)  kernel HWIO (2, 2, 8, 16)  = canonical W2, no transpose
    relu2
    pool2    MaxPool2D(4, 4, SAME)
    flatten  Flatten: on channels_last it reshapes (m, h, w, c) -> (m, h*w*c) in C order, which is
             exactly the canonical NHWC-flatten order (tests/tf_model/test_tf_model.py checks it)
    dense    Dense(6), Glorot-uniform kernel (n_flat, 6) = canonical W3, zero bias = canonical b3

Dtypes. ``dtype="float64"`` is passed to *every* layer (and to ``keras.Input``): a Keras 3 dtype
policy named after a plain dtype sets both the variable and the compute dtype (keras.io /
tf.keras.DTypePolicy docs: "Can be any dtype name, such as "float32" or "float64", which causes
both the compute and variable dtypes will be that dtype"). Nothing is global, so float32 and
float64 models live side by side in one process.

Adam. Keras 3's ``Adam.update_step`` (keras/src/optimizers/adam.py, Keras 3.15.1 read here) is::

    local_step = iterations + 1
    alpha = lr * sqrt(1 - beta_2 ** local_step) / (1 - beta_1 ** local_step)
    m += (g - m) * (1 - beta_1)
    v += (g**2 - v) * (1 - beta_2)
    w -= m * alpha / (sqrt(v) + epsilon)

which is TF1's ``ApplyAdam`` kernel (tensorflow/core/kernels/training_ops.cc, ``ApplyAdamNonCuda``:
``alpha = lr() * sqrt(T(1) - beta2_power()) / (T(1) - beta1_power())``; ``m += (grad - m) * (T(1) -
beta1())``; ``v += (grad.square() - v) * (T(1) - beta2())``; ``var -= (m * alpha) / (v.sqrt() +
epsilon())``) with the same epsilon placement ("epsilon hat", outside the square root, not
bias-corrected). Only float rounding of the constants differs, never the formula:

* TF1 keeps ``beta1_power`` as a variable multiplied by beta1 after every step; Keras computes
  ``beta_1 ** t`` with ``pow``. Keras ``iterations`` counts *completed* steps (the canonical
  ``"t"``); TF1's ``beta1_power`` after t completed steps is ``beta1 ** (t + 1)``.
* Keras turns Python-float hyperparameters into tensors through float32: ``ops.cast(self.beta_2,
  float64)`` yields float64(float32(0.999)) = 0.99900001287..., which moved float64 weights by a
  relative 6.7e-6 after one step (found by tests/tf_model/test_tf_model.py), and a float
  ``learning_rate`` lives in a float32 variable (0.009f = 0.008999999612...). :func:`make_adam`
  therefore passes beta_1, beta_2 and epsilon as constants of the weights' dtype and the learning
  rate as a callable returning one. Then ``1 - beta_1`` is also formed in the weights' dtype, exactly
  as TF1's kernel does (float32: 0.100000024).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, COURSE_TRAINING, ModelSpec, TrainSpec

if TYPE_CHECKING:  # annotations only; make_adam imports TensorFlow when it runs
    import tensorflow as tf

__all__ = [
    "INPUT_NAME",
    "relu_names",
    "activation_layer_names",
    "build_model",
    "cached_model",
    "make_adam",
    "compile_model",
    "activation_model",
    "training_model",
    "check_model_dtype",
    "model_dtype",
    "as_numpy_activations",
]

INPUT_NAME = "input"
_DTYPES = ("float32", "float64")


def check_model_dtype(dtype) -> str:
    """Return the dtype name ("float32" or "float64") of ``dtype``; ValueError for anything else."""
    try:
        # keras.backend.standardize_dtype, not tf.as_dtype: this module must also import under
        # KERAS_BACKEND=torch or jax, where TensorFlow is not loaded (signs/keras_backends.py).
        name = keras.backend.standardize_dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}") from exc
    if name not in _DTYPES:
        raise ValueError(f"dtype: expected float32 or float64, got {name}")
    return name


def relu_names(spec: ModelSpec = COURSE_MODEL) -> tuple[str, str]:
    """Names of the two ReLU layers: ``relu1``, ``relu2`` (the conv names with conv -> relu)."""
    return tuple(conv.name.replace("conv", "relu", 1) for conv in (spec.conv1, spec.conv2))


def activation_layer_names(spec: ModelSpec = COURSE_MODEL) -> dict[str, str]:
    """Canonical activation name -> the Keras layer whose output it is (Z1 -> conv1, ..., Z3 -> dense)."""
    relu1, relu2 = relu_names(spec)
    layers = (
        spec.conv1.name, relu1, spec.pool1.name,
        spec.conv2.name, relu2, spec.pool2.name,
        spec.flatten_name, spec.dense_name,
    )
    return dict(zip(ACTIVATION_NAMES, layers))


def _glorot(seed: int | None, offset: int) -> keras.initializers.Initializer:
    """A seeded Glorot-uniform initializer; each layer gets its own seed (seed + offset)."""
    return keras.initializers.GlorotUniform(seed=None if seed is None else int(seed) + offset)


def _conv(conv, dtype: str, seed: int | None, offset: int) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters=conv.filters,
        kernel_size=conv.kernel,
        strides=conv.stride,
        padding=conv.padding.lower(),  # Keras spells TF's "SAME" as "same"
        use_bias=False,
        kernel_initializer=_glorot(seed, offset),
        name=conv.name,
        dtype=dtype,
    )


def _pool(pool, dtype: str) -> keras.layers.MaxPooling2D:
    return keras.layers.MaxPooling2D(
        pool_size=pool.window, strides=pool.stride, padding=pool.padding.lower(), name=pool.name, dtype=dtype
    )


def build_model(spec: ModelSpec = COURSE_MODEL, dtype="float32", seed: int | None = None) -> keras.Model:
    """Build the course ConvNet as a functional Keras model.

    Parameters
    ----------
    spec : the architecture (``spec.with_input(n_H, n_W)`` for another input size).
    dtype : "float32" or "float64" (variables and computation).
    seed : seeds the Glorot-uniform initializers (conv1: seed, conv2: seed + 1, dense: seed + 2);
        None draws unseeded. The project's canonical initial weights come from
        ``reference.init``; these are only a starting point for a model used on its own.

    Returns
    -------
    keras.Model mapping X (m, n_H, n_W, n_C) NHWC to logits Z3 (m, n_classes).
    """
    dtype = check_model_dtype(dtype)
    relu1, relu2 = relu_names(spec)
    inputs = keras.Input(shape=spec.input_shape, dtype=dtype, name=INPUT_NAME)
    x = _conv(spec.conv1, dtype, seed, 0)(inputs)
    x = keras.layers.ReLU(name=relu1, dtype=dtype)(x)
    x = _pool(spec.pool1, dtype)(x)
    x = _conv(spec.conv2, dtype, seed, 1)(x)
    x = keras.layers.ReLU(name=relu2, dtype=dtype)(x)
    x = _pool(spec.pool2, dtype)(x)
    x = keras.layers.Flatten(name=spec.flatten_name, dtype=dtype)(x)
    logits = keras.layers.Dense(
        spec.n_classes,
        kernel_initializer=_glorot(seed, 2),
        bias_initializer="zeros",
        name=spec.dense_name,
        dtype=dtype,
    )(x)
    return keras.Model(inputs=inputs, outputs=logits, name="signs_convnet")


_MODEL_CACHE: dict[tuple[ModelSpec, str], tuple[keras.Model, keras.Model]] = {}


def cached_model(spec: ModelSpec = COURSE_MODEL, dtype="float32") -> tuple[keras.Model, keras.Model]:
    """A shared (model, activation_model) pair per (spec, dtype), built once per process.

    Callers set the weights they need before every use (``tf_model.convert.set_keras_weights``);
    the cache only saves rebuilding the graph of layers. Not for training (use a private model).
    """
    key = (spec, check_model_dtype(dtype))
    if key not in _MODEL_CACHE:
        model = build_model(spec, key[1], seed=0)
        _MODEL_CACHE[key] = (model, activation_model(model, spec))
    return _MODEL_CACHE[key]


def activation_model(model: keras.Model, spec: ModelSpec = COURSE_MODEL) -> keras.Model:
    """A model sharing ``model``'s layers (and so its weights) whose outputs are every activation.

    Returns
    -------
    keras.Model whose call returns a dict keyed by ``ACTIVATION_NAMES``: Z1 A1 (m, n_H, n_W, 8),
    P1 Z2 A2 (m, n_H/8, n_W/8, ...), P2 (m, ., ., 16), all NHWC; F (m, n_flat); Z3 (m, n_classes).
    """
    outputs = {name: model.get_layer(layer).output for name, layer in activation_layer_names(spec).items()}
    return keras.Model(inputs=model.input, outputs=outputs, name=f"{model.name}_activations")


def training_model(model: keras.Model, spec: ModelSpec = COURSE_MODEL) -> keras.Model:
    """A model sharing ``model``'s layers (and so its weights) that applies each ReLU after its
    max-pool: conv1 -> pool1 -> relu1 -> conv2 -> pool2 -> relu2 -> flatten -> dense.

    ``relu(maxpool(z)) == maxpool(relu(z))`` exactly (both are monotone and exact), and so are the
    gradients: where the pooled value is positive the pool routes to the same first maximum, and
    elsewhere the ReLU's gradient is zero either way. The ReLU and its gradient then run on 64x
    fewer elements after pool1 (as ``torch_model``'s ``forward`` does). The Trainer and Keras
    ``fit`` train this model; ``model`` keeps the course's order for its activations (A1 = relu(Z1)).

    Returns
    -------
    keras.Model mapping X (m, n_H, n_W, n_C) NHWC to logits Z3 (m, n_classes).
    """
    relu1, relu2 = relu_names(spec)
    inputs = keras.Input(shape=spec.input_shape, dtype=model_dtype(model), name=INPUT_NAME)
    x = inputs
    for name in (spec.conv1.name, spec.pool1.name, relu1, spec.conv2.name, spec.pool2.name, relu2,
                 spec.flatten_name, spec.dense_name):
        x = model.get_layer(name)(x)
    return keras.Model(inputs=inputs, outputs=x, name=f"{model.name}_training")


def make_adam(
    train: TrainSpec = COURSE_TRAINING, dtype="float32", learning_rate: tf.Variable | None = None
) -> keras.optimizers.Adam:
    """Keras Adam with the course's hyperparameters; TF1's update rule (see the module docstring).

    beta_1, beta_2 and epsilon are constants of ``dtype`` and the learning rate a callable returning
    one, so that every constant of the update has the value TF1's ``ApplyAdam`` kernel sees in that
    dtype (Python floats would pass through float32 inside Keras). ``learning_rate``, if given, is a
    non-trainable variable of ``dtype`` read at every step (a schedule assigns to it).

    TensorFlow backend only (the training loop of tf_model.backend). TensorFlow is imported here,
    not at module level, so that the model definition above imports under Keras' torch and JAX
    backends without TensorFlow.
    """
    import tensorflow as tf

    dtype = check_model_dtype(dtype)
    if learning_rate is None:
        learning_rate = tf.constant(float(train.learning_rate), dtype=dtype)

    def current_learning_rate():
        return learning_rate

    return keras.optimizers.Adam(
        learning_rate=current_learning_rate,
        beta_1=tf.constant(float(train.beta1), dtype=dtype),
        beta_2=tf.constant(float(train.beta2), dtype=dtype),
        epsilon=tf.constant(float(train.epsilon), dtype=dtype),
    )


def model_dtype(model: keras.Model) -> str:
    """The dtype name of a model's weights ("float32" or "float64")."""
    return check_model_dtype(model.weights[0].dtype)


def compile_model(model: keras.Model, train: TrainSpec = COURSE_TRAINING, *, steps_per_execution: int = 1) -> keras.Model:
    """Compile for ``model.fit``: the course's Adam, softmax cross-entropy on logits, accuracy.

    ``CategoricalCrossentropy(from_logits=True)`` with its default "sum_over_batch_size" reduction
    is the course's ``reduce_mean(softmax_cross_entropy_with_logits(...))`` for one-hot or soft
    labels. To see the course's batches, shuffle once per epoch with
    ``reference.data.batches.random_mini_batches`` (or concatenate its batches) and call
    ``model.fit(X, Y, batch_size=train.mini_batch_size, shuffle=False, epochs=1)``: Keras then cuts
    the same consecutive batches, the last one smaller. Note that the loss ``fit`` reports is the
    running mean over examples, not the course's per-epoch ``sum(cost) / floor(m / 64)``.
    ``steps_per_execution`` > 1 runs that many steps per compiled call (fewer Python round trips;
    batch callbacks then fire once per call).
    """
    dtype = model_dtype(model)
    model.compile(
        steps_per_execution=int(steps_per_execution),
        optimizer=make_adam(train, dtype),
        # A Keras loss computes in its own dtype (floatx, float32, by default): pass the model's.
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, dtype=dtype),
        metrics=["accuracy"],
    )
    return model


def as_numpy_activations(outputs: dict) -> dict[str, np.ndarray]:
    """Activation tensors -> NumPy arrays keyed by ``ACTIVATION_NAMES`` (layouts unchanged: NHWC)."""
    return {name: np.asarray(outputs[name]) for name in ACTIVATION_NAMES}
