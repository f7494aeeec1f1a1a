"""Lazy access to the three implementations through one interface.

Each backend module (``reference.backend``, ``tf_model.backend``, ``torch_model.backend``) provides:

``NAME``
    "numpy", "tf" or "torch".
``forward_backward(params, X, Y, *, spec=COURSE_MODEL, device="cpu") -> dict[str, np.ndarray]``
    One forward and backward pass of the course ConvNet. ``params`` is the canonical dict
    (W1 (4,4,3,8) HWIO, W2 (2,2,8,16) HWIO, W3 (64,6) NHWC-flatten rows, b3 (6,)); ``X`` is NHWC
    (m, 64, 64, 3); ``Y`` is (m, 6), one-hot or soft. All inputs share one dtype (float32 or
    float64), which is the dtype of every output. Returns NumPy arrays keyed by
    ``ACTIVATION_NAMES`` (Z1 A1 P1 Z2 A2 P2 F Z3, NHWC), ``"cost"`` (0-d: the mean softmax
    cross-entropy, as the course's ``tf.reduce_mean(softmax_cross_entropy_with_logits)``) and
    ``GRADIENT_NAMES`` (dW1 dW2 dW3 db3 dX: gradients of that cost, canonical layouts).
``predict_logits(params, X, *, spec=COURSE_MODEL, device="cpu") -> np.ndarray``
    Logits (m, 6) in the dtype of ``params``.
``Trainer(params, *, train=COURSE_TRAINING, spec=COURSE_MODEL, device="cpu")``
    (the three native backends only, :data:`NATIVE_BACKENDS`.) Adam with TF1's update rule on a private copy of ``params``. ``step(X, Y) -> float`` runs one
    update and returns the batch cost computed *before* the update (as the course's
    ``sess.run([optimizer, cost])`` does). ``get_params()`` returns canonical NumPy arrays;
    ``get_optimizer_state()`` returns ``{"t": int, "m": {name: arr}, "v": {name: arr}}`` in
    canonical layouts and ``set_optimizer_state(state)`` restores it exactly.
    ``set_learning_rate(lr)`` changes the learning rate from the next step on (schedules); the
    Adam state is kept.

Optional, for runtimes that are not a framework of their own: ``NOTE`` (a line ``signs verify``
prints about how the backend runs), ``NOT_APPLICABLE`` ({quantity: why it is not computed}, e.g.
gradients of an inference runtime) and ``UNSUPPORTED_DTYPES`` ({dtype name: why}).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["BACKENDS", "NATIVE_BACKENDS", "BackendUnavailable", "get_backend"]

BACKENDS: dict[str, tuple[str, str]] = {
    # name: (module, the pip requirement that provides its framework)
    "numpy": ("reference.backend", "numpy"),
    "tf": ("tf_model.backend", "tensorflow (pip install 'signs-parity[tf]')"),
    "torch": ("torch_model.backend", "torch (pip install torch==2.13.0)"),
    # Runtimes checked against the three: the exported ONNX file in onnxruntime (forward only),
    # and the tf_model Keras model on Keras 3's torch and JAX backends (in subprocesses).
    "onnx": ("signs.onnx_backend", "onnx, onnxruntime and onnxscript (pip install 'signs-parity[onnx]')"),
    "keras-torch": ("signs.keras_torch_backend", "pip install torch==2.13.0 'signs-parity[tf]'"),
    "keras-jax": ("signs.keras_jax_backend", "pip install 'signs-parity[jax,tf]'"),
}
# The three implementations of the project: each also has a Trainer (Adam steps, training).
NATIVE_BACKENDS: tuple[str, ...] = ("numpy", "tf", "torch")


class BackendUnavailable(RuntimeError):
    """The framework behind a backend is not installed (or fails to import)."""


def get_backend(name: str) -> ModuleType:
    """Import and return the backend module ``name`` (a key of :data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(BACKENDS)}, got {name!r}")
    module, requirement = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} is unavailable: {exc}. Install {requirement}."
        ) from exc
