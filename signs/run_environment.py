"""What decides a float32 training run besides the recipe, and the switches that pin it down.

A float32 run of the course recipe can end at 0.74 accuracy on one machine and at chance on
another with the same code and weights (README, "Training results"): the summation order of a
reduction decides the last bits of a gradient, Adam's first steps amplify them, and whether conv1's
filters survive depends on them. The summation order is set by things outside the recipe: the
frameworks' versions, how many threads split each reduction (intra-op), BLAS's own threads,
whether TensorFlow runs its oneDNN kernels, TF32 on GPUs, and the frameworks' determinism switches.

:func:`apply_thread_settings` fixes them (``signs train --threads N --deterministic``) and
:func:`describe_run_environment` records them in ``metrics.json``, with the initial weights'
SHA-256 (:func:`reference.weights_io.params_sha256`), so a run can be repeated bit for bit on the same machine and
software, and two runs that differ can be told apart by their records.

TensorFlow's thread pools can only be sized before its runtime starts (its first op), so
:func:`apply_thread_settings` must run before the backend builds anything. Frameworks are
imported lazily, and only the one the run uses.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from reference.gemm import available_cores, block_workers, set_block_workers
from reference.weights_io import params_sha256

__all__ = [
    "RECORDED_ENV",
    "FRAMEWORK_PACKAGES",
    "available_cores",
    "cpu_model",
    "framework_versions",
    "apply_thread_settings",
    "set_blas_threads",
    "set_torch_threads",
    "set_tf_threads",
    "tf_onednn_enabled",
    "blas_pools",
    "describe_run_environment",
]

# Environment variables that change how (or how fast) the frameworks compute; recorded, never
# changed here except CUBLAS_WORKSPACE_CONFIG under --deterministic on CUDA.
RECORDED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_CPP_MIN_LOG_LEVEL",
    "KERAS_BACKEND",
    "CUBLAS_WORKSPACE_CONFIG",
)

# The Python packages whose versions a backend's numbers depend on.
FRAMEWORK_PACKAGES = {"numpy": ("numpy",), "tf": ("numpy", "tensorflow", "keras"), "torch": ("numpy", "torch")}

# cuBLAS is deterministic only with a fixed workspace (PyTorch's reproducibility notes); it must be
# set before the first cuBLAS call.
_CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def framework_versions(backend_name: str) -> dict[str, str]:
    """Versions of NumPy and of the framework the backend uses (``"not installed"`` if absent)."""
    versions = {}
    for package in FRAMEWORK_PACKAGES.get(backend_name, ("numpy",)):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


# --------------------------------------------------------------------------------------------
# Control
# --------------------------------------------------------------------------------------------


def _check_threads(threads) -> int:
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise ValueError(f"threads: expected a positive integer, got {threads!r}")
    return int(threads)


def set_blas_threads(threads: int) -> None:
    """Limit every BLAS library this process loaded (NumPy's OpenBLAS) to ``threads`` threads."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=_check_threads(threads), user_api="blas")  # global until reset


def set_torch_threads(threads: int) -> dict[str, Any]:
    """``torch.set_num_threads`` and ``set_num_interop_threads``; the counts in force after.

    The inter-op pool can only be sized before PyTorch's first inter-op parallel work; asked for a
    different size later, it is left as it was and ``note`` says so.
    """
    import torch

    threads = _check_threads(threads)
    torch.set_num_threads(threads)
    note = ""
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError as exc:
            note = f"inter-op threads left at {torch.get_num_interop_threads()}: {str(exc).splitlines()[0]}"
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(), "note": note}


def set_tf_threads(threads: int) -> dict[str, Any]:
    """TensorFlow's intra- and inter-op pools of ``threads`` threads (before its runtime starts).

    Once TF's runtime has started the pools cannot change; asked for another size then, they are
    left as they were and ``note`` says so.
    """
    import tensorflow as tf

    threads = _check_threads(threads)
    note = ""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # the eager context was already initialised
        note = f"left unchanged: {str(exc).splitlines()[0]}"
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "note": note,
    }


def apply_thread_settings(backend: str, threads: int | None = None, *, deterministic: bool = False,
                          device: str = "cpu") -> dict[str, Any]:
    """Fix the thread counts and determinism switches of a run with ``backend``; what was set.

    Parameters
    ----------
    backend : "numpy", "tf" or "torch"; only its framework is imported and configured (NumPy's
        BLAS is configured for every backend: the data pipeline and the numpy backend use it).
    threads : size of every pool (BLAS; the NumPy reference's block workers; torch intra- and
        inter-op; TF intra- and inter-op), or ``None`` to keep the defaults.
    deterministic : torch ``use_deterministic_algorithms(True)`` (and cuDNN deterministic, no
        autotuning, cuBLAS's fixed workspace on CUDA), TF ``enable_op_determinism()``, and fixed
        thread counts: ``threads`` if given, else :func:`available_cores`.

    Raises
    ------
    ValueError
        ``threads`` is not a positive integer, or TensorFlow's runtime had already started with
        other pool sizes (the settings would silently not apply).
    """
    if backend not in FRAMEWORK_PACKAGES:
        raise ValueError(f"backend: expected one of {tuple(FRAMEWORK_PACKAGES)}, got {backend!r}")
    if threads is not None:
        threads = _check_threads(threads)
    elif deterministic:
        threads = available_cores()
    applied: dict[str, Any] = {"threads": threads, "deterministic": bool(deterministic)}
    if threads is not None:
        set_blas_threads(threads)
        set_block_workers(threads)  # reference.gemm: the NumPy backend's blocks of images
    if backend == "torch":
        _apply_torch(threads, deterministic, device, applied)
    elif backend == "tf":
        _apply_tf(threads, deterministic, applied)
    return applied


def _apply_torch(threads: int | None, deterministic: bool, device: str, applied: dict) -> None:
    if deterministic and device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_DETERMINISTIC_WORKSPACE)
    import torch

    if threads is not None:
        applied["torch"] = set_torch_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _apply_tf(threads: int | None, deterministic: bool, applied: dict) -> None:
    if threads is not None:
        settings = set_tf_threads(threads)
        if settings["note"]:
            raise ValueError(
                f"threads: TensorFlow's runtime has already started with intra-op "
                f"{settings['intra_op']} and inter-op {settings['inter_op']} threads (0 = TF's "
                f"default); thread counts must be set before TF runs its first op, got {threads}"
            )
        applied["tf"] = settings
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------------------------
# Record
# --------------------------------------------------------------------------------------------


def blas_pools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP thread pools this process loaded (threadpoolctl), each with its
    library, version and thread count."""
    import threadpoolctl

    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{key: info.get(key) for key in keys} for info in threadpoolctl.threadpool_info()]


def tf_onednn_enabled() -> bool | None:
    """Whether TensorFlow's oneDNN (MKL) kernels are on in this process; None if unknown.

    With ``TF_ENABLE_ONEDNN_OPTS`` unset TensorFlow decides by CPU (on this project's AMD EPYC:
    off), so the variable alone does not say. Reads TF's private ``IsMklEnabled`` (no public API).
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    check = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return None if check is None else bool(check())


def _torch_environment(device: str) -> dict[str, Any]:
    import torch

    record = {
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "mkldnn_available": bool(torch.backends.mkldnn.is_available()),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device_name": "cpu",
    }
    if device == "cuda" and torch.cuda.is_available():
        record["device_name"] = torch.cuda.get_device_name()
        record["cuda"] = torch.version.cuda
        record["cudnn"] = torch.backends.cudnn.version()
    return record


def _tf_environment(device: str) -> dict[str, Any]:
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # no public getter of op determinism

    record = {
        # 0 means TF's own default: one thread per core (intra-op), chosen by TF (inter-op).
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "op_determinism": bool(tf_config.is_op_determinism_enabled()),
        "onednn": tf_onednn_enabled(),
        "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        "device_name": "cpu",
    }
    if device == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        record["device_name"] = ", ".join(gpu.name for gpu in gpus) or "no GPU visible"
    return record


def describe_run_environment(backend: str, device: str = "cpu",
                             initial_params: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Everything recorded about the machine and software of a run (the ``environment`` of
    ``metrics.json``): versions, CPU, thread pools, oneDNN, TF32, determinism switches, device,
    the relevant environment variables, and the initial weights' SHA-256 when given."""
    record: dict[str, Any] = {
        "backend": backend,
        "device": device,
        "versions": framework_versions(backend),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores_available": available_cores(),
        "env": {name: os.environ.get(name) for name in RECORDED_ENV},
        "blas": blas_pools(),
        # Threads of the NumPy reference's blocks (reference.gemm); its bits do not depend on it.
        "numpy_block_workers": block_workers(),
    }
    if backend == "torch":
        record["torch"] = _torch_environment(device)
    elif backend == "tf":
        record["tf"] = _tf_environment(device)
    if initial_params is not None:
        record["initial_weights_sha256"] = params_sha256(initial_params)
    return record
