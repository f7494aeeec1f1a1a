"""Thread settings and a description of the machine, recorded with every benchmark run."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

import numpy as np

from signs.run_environment import RECORDED_ENV, cpu_model, tf_onednn_enabled
from signs.run_environment import set_tf_threads as _set_tf_threads
from signs.run_environment import set_torch_threads as _set_torch_threads

__all__ = [
    "RECORDED_ENV",
    "cpu_model",
    "load_average",
    "numpy_blas_threads",
    "set_torch_threads",
    "set_tf_threads",
    "describe_machine",
    "cpu_snapshot",
    "others_cpu_share",
]


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def _openblas_threads_ctypes() -> int | None:
    """OpenBLAS's thread count read through ctypes from the library NumPy loaded (Linux only)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    libs = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line})
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def numpy_blas_threads() -> tuple[int, str]:
    """NumPy's BLAS thread count and where it came from.

    threadpoolctl when installed; else OpenBLAS's own getter through ctypes; else
    ``os.cpu_count()`` (OpenBLAS's default is one thread per core).
    """
    try:
        import threadpoolctl
    except ModuleNotFoundError:
        threadpoolctl = None
    if threadpoolctl is not None:
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return int(infos[0]["num_threads"]), f"threadpoolctl ({infos[0].get('internal_api')})"
    threads = _openblas_threads_ctypes()
    if threads is not None:
        return threads, "openblas_get_num_threads via ctypes (threadpoolctl not installed)"
    return int(os.cpu_count() or 1), "os.cpu_count() (threadpoolctl not installed)"


def set_torch_threads(n: int) -> dict:
    """``signs.run_environment.set_torch_threads`` plus whether oneDNN (mkldnn) is available."""
    import torch

    return {**_set_torch_threads(n), "mkldnn": bool(torch.backends.mkldnn.is_available())}


def set_tf_threads(n: int) -> dict:
    """``signs.run_environment.set_tf_threads`` plus whether TF's oneDNN kernels are on."""
    return {**_set_tf_threads(n), "onednn": tf_onednn_enabled()}


def _numpy_blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except (TypeError, KeyError):
        return "unknown"


def describe_machine() -> dict:
    """CPU, core count, Python and NumPy/BLAS versions, and the recorded environment variables."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": _numpy_blas_name(),
        "env": {name: os.environ.get(name) for name in RECORDED_ENV},
    }


def cpu_snapshot() -> dict:
    """Busy CPU seconds of the whole machine (/proc/stat) and of this process tree (os.times).

    Two snapshots give the share of the machine other processes used in between
    (:func:`others_cpu_share`); empty where /proc/stat does not exist.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    own = os.times()
    return {
        "machine_busy_s": (user + nice + system + irq + softirq + steal) / ticks,
        "own_s": own.user + own.system + own.children_user + own.children_system,
        "wall_s": own.elapsed,
    }


def others_cpu_share(before: dict, after: dict) -> float | None:
    """Fraction of all cores that processes outside this tree kept busy between two snapshots."""
    if not before or not after:
        return None
    wall = after["wall_s"] - before["wall_s"]
    if wall <= 0:
        return None
    others = (after["machine_busy_s"] - before["machine_busy_s"]) - (after["own_s"] - before["own_s"])
    return max(0.0, others) / (wall * (os.cpu_count() or 1))
