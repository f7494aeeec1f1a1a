"""The ``tf_model`` Keras model on Keras 3's torch and JAX backends, each in its own subprocess.

Keras fixes its backend per process (``KERAS_BACKEND`` is read when ``keras`` is first imported),
and this process runs Keras on TensorFlow. So the backends ``keras-torch`` and ``keras-jax`` of
``signs.backends`` run :mod:`signs.keras_child` in a child process started with
``KERAS_BACKEND=torch`` / ``jax``: one long-lived child per (backend, device), started on first use
and reused until this process exits (``close_all``), because starting Keras costs seconds.

What the child computes: the project's unchanged ``tf_model`` model, loading the weights from a
Keras ``.weights.h5`` file that *this* process writes with the TensorFlow backend
(``tf_model.convert.save_keras_weights``), so the check also proves that a file saved on one
backend loads on another. Arrays go both ways through temporary ``.npz`` files (never pickle).

The backend modules ``signs.keras_torch_backend`` and ``signs.keras_jax_backend`` expose this
through the interface of :mod:`signs.backends` (``forward_backward``, ``predict_logits``; no
``Trainer``: Adam steps stay with the three native backends).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from reference.spec import COURSE_MODEL, ModelSpec
from reference.validate import check_params

__all__ = [
    "KERAS_BACKENDS",
    "SUBPROCESS_NOTE",
    "require",
    "KerasProcess",
    "keras_process",
    "close_all",
    "float64_matmul_dtype",
    "forward_backward",
    "predict_logits",
]

# signs backend name -> (KERAS_BACKEND, the modules the child needs, how to install them)
KERAS_BACKENDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "keras-torch": ("torch", ("keras", "torch", "tensorflow"), "pip install torch==2.13.0 'signs-parity[tf]'"),
    "keras-jax": ("jax", ("keras", "jax", "tensorflow"), "pip install 'signs-parity[jax,tf]'"),
}
SUBPROCESS_NOTE = ("the tf_model Keras model in a subprocess with KERAS_BACKEND={backend} (Keras fixes "
                   "its backend per process), weights from a .weights.h5 written by the TF backend")

_PROCESSES: dict[tuple[str, str], "KerasProcess"] = {}


def require(name: str) -> None:
    """ImportError naming what to install unless backend ``name``'s child can run here.

    TensorFlow is needed too: this process writes the ``.weights.h5`` file with Keras on TF.
    """
    _, modules, install = KERAS_BACKENDS[name]
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(f"{name} needs {', '.join(missing)} ({install})")


class KerasProcess:
    """One ``python -m signs.keras_child`` with ``KERAS_BACKEND`` set, serving requests.

    Parameters
    ----------
    keras_backend : "torch" or "jax".
    device : "cpu" (GPUs hidden from the child) or "cuda" (the child refuses to start without one).
    """

    def __init__(self, keras_backend: str, device: str = "cpu") -> None:
        if keras_backend not in ("torch", "jax"):
            raise ValueError(f"keras_backend: expected 'torch' or 'jax', got {keras_backend!r}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
        self.keras_backend, self.device = keras_backend, device
        self._workdir = tempfile.TemporaryDirectory(prefix=f"signs-keras-{keras_backend}-")
        self._stderr_path = Path(self._workdir.name) / "stderr.txt"
        self._stderr = open(self._stderr_path, "w")  # a file, not a pipe: a chatty child never blocks
        self._process = subprocess.Popen(
            [sys.executable, "-m", "signs.keras_child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=self._environment(), cwd=os.getcwd(),
        )
        self._info: dict | None = None  # the child's first line, read when first needed
        self._requests = 0

    @property
    def info(self) -> dict:
        """The child's start-up report: backend, Keras version, device, float64 matmul dtype.

        Read on first use, so that several children started together start in parallel.
        """
        if self._info is None:
            self._info = self._read_reply()
        return self._info

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ, KERAS_BACKEND=self.keras_backend, SIGNS_KERAS_DEVICE=self.device)
        env["JAX_ENABLE_X64"] = "1"  # else JAX silently computes float64 inputs in float32
        if self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # Keras' torch backend takes a GPU whenever it sees one
            env["JAX_PLATFORMS"] = "cpu"
        # The project's packages must import in the child as they do here (editable or PYTHONPATH).
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        return env

    def _stderr_tail(self, lines: int = 15) -> str:
        self._stderr.flush()
        text = self._stderr_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def _read_reply(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise RuntimeError(f"the Keras {self.keras_backend} child process exited (status {code}):\n"
                               f"{self._stderr_tail()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            kind = {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError}.get(reply.get("error"),
                                                                                        RuntimeError)
            raise kind(f"Keras {self.keras_backend} backend: {reply.get('message')}")
        return reply

    def request(self, op: str, weights: str | os.PathLike | None, arrays: dict[str, np.ndarray],
                spec: ModelSpec = COURSE_MODEL, **extra) -> dict[str, np.ndarray]:
        """Run ``op`` ("forward_backward", "predict_logits" or "layers") on ``arrays`` in the child;
        ``extra`` goes into the request (e.g. ``cases`` of the "layers" op)."""
        self.info  # noqa: B018  (the start-up line comes first)
        self._requests += 1
        inputs = Path(self._workdir.name) / f"in{self._requests}.npz"
        outputs = Path(self._workdir.name) / f"out{self._requests}.npz"
        np.savez(inputs, **arrays)
        message = {"op": op, "weights": None if weights is None else os.fspath(weights), "inputs": str(inputs),
                   "outputs": str(outputs), "input_shape": list(spec.input_shape), **extra}
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
            self._read_reply()
            with np.load(outputs, allow_pickle=False) as reply:
                return {name: reply[name] for name in reply.files}
        finally:
            for path in (inputs, outputs):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """End the child (closing its stdin ends its loop) and remove the temporary folder."""
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()
        self._stderr.close()
        self._workdir.cleanup()


def keras_process(name: str, device: str = "cpu") -> KerasProcess:
    """The child of backend ``name`` ("keras-torch" or "keras-jax") on ``device``, started once."""
    require(name)
    key = (name, device)
    if key not in _PROCESSES or _PROCESSES[key]._process.poll() is not None:
        _PROCESSES[key] = KerasProcess(KERAS_BACKENDS[name][0], device)
    return _PROCESSES[key]


def float64_matmul_dtype(name: str, device: str = "cpu") -> str:
    """What ``keras.ops.matmul`` of two float64 tensors returns in backend ``name``'s child."""
    return keras_process(name, device).info["float64_matmul_dtype"]


def close_all() -> None:
    """End every child process started by :func:`keras_process`."""
    while _PROCESSES:
        _, process = _PROCESSES.popitem()
        process.close()


atexit.register(close_all)


def _run(name: str, op: str, params, arrays: dict[str, np.ndarray], spec: ModelSpec, device: str):
    """Write ``params`` as a ``.weights.h5`` file (Keras on TF), run ``op`` in the child."""
    from tf_model.convert import save_keras_weights

    check_params(params, spec)
    process = keras_process(name, device)
    with tempfile.TemporaryDirectory(prefix="signs-keras-weights-") as folder:
        weights = Path(folder) / "model.weights.h5"
        save_keras_weights(params, weights, spec=spec)
        return process.request(op, weights, arrays, spec)


def forward_backward(name: str, params, X: np.ndarray, Y: np.ndarray, *, spec: ModelSpec = COURSE_MODEL,
                     device: str = "cpu") -> dict[str, np.ndarray]:
    """``signs.backends`` forward_backward of Keras backend ``name`` (see the module docstring).

    Returns the activations Z1..Z3 (NHWC), "cost" and dW1 dW2 dW3 db3 dX in canonical layouts, as
    NumPy arrays of the params' dtype.
    """
    return _run(name, "forward_backward", params, {"X": np.asarray(X), "Y": np.asarray(Y)}, spec, device)


def predict_logits(name: str, params, X: np.ndarray, *, spec: ModelSpec = COURSE_MODEL,
                   device: str = "cpu") -> np.ndarray:
    """Logits (m, 6) of X (m, 64, 64, 3) NHWC from Keras backend ``name``, in the params' dtype."""
    return _run(name, "predict_logits", params, {"X": np.asarray(X)}, spec, device)["Z3"]
