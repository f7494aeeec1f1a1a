"""The child process of :mod:`signs.keras_backends`: the ``tf_model`` Keras model on one Keras backend.

Keras 3 fixes its backend when ``keras`` is first imported (``KERAS_BACKEND``), so a process can
run one backend only. ``signs.keras_backends`` starts ``python -m signs.keras_child`` with
``KERAS_BACKEND=torch`` or ``KERAS_BACKEND=jax`` and sends it requests, one JSON line each on
stdin::

    {"op": "forward_backward" | "predict_logits", "weights": "<file>.weights.h5",
     "inputs": "<request>.npz", "outputs": "<reply>.npz", "input_shape": [64, 64, 3]}

(``"op": "layers"`` runs single ``keras.ops`` conv / pool layers for the layer sweeps instead:
``"cases"`` lists their hyperparameters, the inputs hold ``x{i}``, ``w{i}``, ``G{i}``.)

The child builds the project's own model (``tf_model.model.build_model``, unchanged: the same code
the TensorFlow backend runs), loads the ``.weights.h5`` file with Keras' ``load_weights``, runs
the batch ``X`` (and labels ``Y``) of the inputs ``.npz`` and writes NumPy arrays to the outputs
``.npz``; then it answers one JSON line on stdout: ``{"ok": true}`` or ``{"ok": false, "error":
"ValueError", "message": "..."}``. Arrays travel only through ``.npz`` files read with
``allow_pickle=False``; nothing is pickled.

Gradients come from the backend's own autodiff: ``torch.autograd.grad`` through the Keras layers'
torch ops (Keras runs torch eagerly, as ``fit`` does by default), and ``jax.value_and_grad`` of
the model's ``stateless_call``. The cost is
the course's mean softmax cross-entropy written with ``keras.ops``, so it is the same code on
both backends.

This module imports no framework at module level; ``main`` imports Keras after the parent has
set ``KERAS_BACKEND``. It never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, PARAM_NAMES, ModelSpec

__all__ = ["main", "course_cost", "handle", "float64_matmul_dtype"]

OPS = ("forward_backward", "predict_logits", "layers")


def course_cost(Y, Z3):
    """Mean over the batch of -sum_k Y_k log softmax(Z3)_k: Z3 and Y (m, 6), any Keras backend.

    A sum divided by m, not ``keras.ops.mean``: on the JAX backend Keras 3.15's ``mean`` computes
    float64 in float32 (its ``result_type`` maps float64 to float32 off TensorFlow, the defect of
    keras-team/keras#23704), which moved the float64 cost by 1.4e-8. The cost is this harness's,
    not the model's, so it must not add an error of its own.
    """
    import keras

    ops = keras.ops
    per_example = -ops.sum(Y * ops.log_softmax(Z3, axis=-1), axis=-1)
    return ops.sum(per_example) / Z3.shape[0]


def _spec(request: dict) -> ModelSpec:
    """The course model for the request's input shape (n_H, n_W, n_C)."""
    n_H, n_W, n_C = (int(n) for n in request.get("input_shape", COURSE_MODEL.input_shape))
    return COURSE_MODEL.with_input(n_H, n_W, n_C)


def _load_model(weights: str, spec: ModelSpec):
    """(model, activation model, params) with the weights of the ``.weights.h5`` file loaded."""
    from tf_model.convert import load_keras_weights, set_keras_weights
    from tf_model.model import cached_model

    params = load_keras_weights(weights, spec)  # Keras' own load_weights, on this backend
    dtype = params["W1"].dtype.name
    model, activations = cached_model(spec, dtype)
    set_keras_weights(model, params, spec)
    return model, activations, params


def _check_batch(name: str, array: np.ndarray, dtype: np.dtype) -> None:
    if array.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {dtype} (the weights' dtype), got {array.dtype}")


def _torch_forward_backward(model, activations, X, Y, spec):
    """Activations, cost and gradients through ``torch.autograd`` (Keras runs torch eagerly)."""
    import keras
    import torch

    from tf_model.convert import keras_variable

    x = keras.ops.convert_to_tensor(X, dtype=X.dtype.name).requires_grad_()
    y = keras.ops.convert_to_tensor(Y, dtype=Y.dtype.name)
    outputs = activations(x, training=False)
    cost = course_cost(y, outputs["Z3"])
    variables = [keras_variable(model, name, spec).value for name in PARAM_NAMES]
    grads = torch.autograd.grad(cost, variables + [x])
    return outputs, cost, dict(zip([f"d{name}" for name in PARAM_NAMES] + ["dX"], grads))


def _jax_forward_backward(model, activations, X, Y, spec):
    """Activations, cost and gradients by ``jax.value_and_grad`` of the model's stateless call."""
    import jax

    from tf_model.convert import keras_variable

    trainable = activations.trainable_variables
    non_trainable = [v.value for v in activations.non_trainable_variables]

    def cost_and_outputs(values, x, y):
        outputs, _ = activations.stateless_call(values, non_trainable, x, training=False)
        return course_cost(y, outputs["Z3"]), outputs

    # Not jit-compiled: a compile per batch shape and dtype costs 10-20 s here, and op-by-op
    # dispatch runs the same XLA kernels for a single forward and backward pass.
    step = jax.value_and_grad(cost_and_outputs, argnums=(0, 1), has_aux=True)
    (cost, outputs), (dvalues, dx) = step([v.value for v in trainable], X, Y)
    position = {v.path: i for i, v in enumerate(trainable)}
    grads = {f"d{name}": dvalues[position[keras_variable(model, name, spec).path]] for name in PARAM_NAMES}
    grads["dX"] = dx
    return outputs, cost, grads


def _layer(case: dict, x, w=None, b=None):
    """One conv (+ bias (n_C,)) / max / average pool of ``keras.ops`` (NHWC; kernel HWIO); padding
    "SAME"/"VALID"."""
    import keras

    padding = case["padding"].lower()
    if case["kind"] == "conv":
        return keras.ops.conv(x, w, strides=tuple(case["stride"]), padding=padding) + b
    pool = keras.ops.max_pool if case["kind"] == "max" else keras.ops.average_pool
    return pool(x, tuple(case["kernel"]), strides=tuple(case["stride"]), padding=padding)


def _layer_gradients(case: dict, x, w, b, G) -> dict:
    """{"out", "dx"(, "dw", "db")}: the layer and the gradient of sum(G * out), by the backend's
    autodiff (w and b are None for a pool)."""
    import keras

    arrays = [x] if w is None else [x, w, b]
    if keras.backend.backend() == "torch":
        import torch

        leaves = [keras.ops.convert_to_tensor(a, dtype=a.dtype.name).requires_grad_() for a in arrays]
        out = _layer(case, *leaves)
        grads = torch.autograd.grad(out, leaves, keras.ops.convert_to_tensor(G, dtype=G.dtype.name))
    else:
        import jax

        out, vjp = jax.vjp(lambda *a: _layer(case, *a), *arrays)
        grads = vjp(G)
    result = {"out": keras.ops.convert_to_numpy(out), "dx": keras.ops.convert_to_numpy(grads[0])}
    if w is not None:
        result["dw"] = keras.ops.convert_to_numpy(grads[1])
        result["db"] = keras.ops.convert_to_numpy(grads[2])
    return result


def _handle_layers(request: dict) -> None:
    """The "layers" op: request["cases"] (kind, kernel, stride, padding); inputs x{i}, w{i}, b{i}, G{i}."""
    result = {}
    with np.load(request["inputs"], allow_pickle=False) as inputs:
        for i, case in enumerate(request["cases"]):
            w = inputs[f"w{i}"] if f"w{i}" in inputs.files else None
            b = inputs[f"b{i}"] if f"b{i}" in inputs.files else None
            try:
                outputs = _layer_gradients(case, inputs[f"x{i}"], w, b, inputs[f"G{i}"])
            except RuntimeError as exc:  # reported per case as error{i} (a string array, no pickle)
                result[f"error{i}"] = np.array(f"{type(exc).__name__}: {exc}")
                continue
            for name, value in outputs.items():
                result[f"{name}{i}"] = value
    np.savez(request["outputs"], **result)


def handle(request: dict) -> None:
    """Run one request (see the module docstring) and write its outputs ``.npz``."""
    import keras

    op = request.get("op")
    if op not in OPS:
        raise ValueError(f"op: expected one of {list(OPS)}, got {op!r}")
    if op == "layers":
        _handle_layers(request)
        return
    spec = _spec(request)
    model, activations, params = _load_model(request["weights"], spec)
    with np.load(request["inputs"], allow_pickle=False) as inputs:
        X = inputs["X"]
        Y = inputs["Y"] if op == "forward_backward" else None
    dtype = params["W1"].dtype
    _check_batch("X", X, dtype)
    if op == "predict_logits":
        logits = model(keras.ops.convert_to_tensor(X, dtype=dtype.name), training=False)
        result = {"Z3": keras.ops.convert_to_numpy(logits)}
    else:
        _check_batch("Y", Y, dtype)
        run = _torch_forward_backward if keras.backend.backend() == "torch" else _jax_forward_backward
        outputs, cost, grads = run(model, activations, X, Y, spec)
        result = {name: keras.ops.convert_to_numpy(outputs[name]) for name in ACTIVATION_NAMES}
        result["cost"] = np.asarray(keras.ops.convert_to_numpy(cost))
        result.update({name: keras.ops.convert_to_numpy(g) for name, g in grads.items()})
    np.savez(request["outputs"], **result)


def float64_matmul_dtype() -> str:
    """The dtype ``keras.ops.matmul`` returns for two float64 tensors on this backend.

    Keras 3.15's ``result_type`` maps float64 to float32 on every backend but TensorFlow, and the
    torch backend's ``matmul`` computes in that type (keras-team/keras#23704): a float64 Dense
    layer then multiplies in float32. ``signs.upstream`` uses this probe as part of its proof.
    """
    import keras

    one = keras.ops.ones((1, 1), dtype="float64")
    return keras.backend.standardize_dtype(keras.ops.matmul(one, one).dtype)


def _check_device(device: str) -> None:
    """ValueError unless the Keras backend really runs on ``device`` ("cpu" or "cuda")."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        running = "cuda" if jax.default_backend() == "gpu" else jax.default_backend()
    else:
        from keras.src.backend.torch.core import get_device

        running = "cuda" if str(get_device()).startswith("cuda") else "cpu"
    if running != device:
        raise ValueError(f"device: expected Keras' {keras.backend.backend()} backend on {device!r}, "
                         f"but it runs on {running!r}")


def main() -> int:
    """Serve requests from stdin until it closes; replies go to the original stdout only."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    import keras

    device = os.environ.get("SIGNS_KERAS_DEVICE", "cpu")
    try:
        _check_device(device)
    except ValueError as exc:
        replies.write(json.dumps({"ok": False, "error": "ValueError", "message": str(exc)}) + "\n")
        return 2
    loaded_tf = "tensorflow" in sys.modules
    replies.write(json.dumps({"ok": True, "backend": keras.backend.backend(), "keras": keras.__version__,
                              "device": device, "tensorflow_loaded": loaded_tf,
                              "float64_matmul_dtype": float64_matmul_dtype()}) + "\n")
    for line in sys.stdin:
        try:
            handle(json.loads(line))
            reply = {"ok": True}
        except (ValueError, FileNotFoundError, KeyError) as exc:
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # noqa: BLE001  (forwarded to the parent, which raises it)
            traceback.print_exc()
            reply = {"ok": False, "error": "RuntimeError", "message": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
