"""Peak resident memory of one training epoch per backend, each in its own subprocess.

The child (``python -m benchmarks.memory --backend B --data FILE.npz --threads N``) reads its own
peak resident set size three times: after loading the data, after importing the framework and
building nothing else (the import baseline), and after building the model and training one epoch
of the course's mini-batches. It prints one JSON line.

The peak is ``VmHWM`` from ``/proc/self/status`` where it exists. ``getrusage().ru_maxrss`` is not
used on Linux because the kernel carries it across ``fork`` + ``exec``: a child of a parent that
has PyTorch and TensorFlow loaded starts with the parent's peak (``VmHWM`` belongs to the new
address space, so it starts from zero at ``exec``). Elsewhere ``ru_maxrss`` is the fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["MEMORY_BACKENDS", "peak_rss_mib", "measure_memory", "child_main"]

MEMORY_BACKENDS = ("numpy", "torch", "tf", "keras_fit", "tf1")
_KIB_PER_MIB = 1024.0


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB: ``VmHWM`` (Linux), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / _KIB_PER_MIB  # "VmHWM:   123456 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / (_KIB_PER_MIB * _KIB_PER_MIB) if sys.platform == "darwin" else peak / _KIB_PER_MIB


def _import_framework(backend: str, threads: int) -> dict:
    """Import what ``backend`` needs and set its threads; returns the thread settings."""
    from benchmarks.env import set_tf_threads, set_torch_threads

    if backend == "numpy":
        import reference.backend  # noqa: F401  (the import is what is measured)

        return {}
    if backend == "torch":
        import torch_model.backend  # noqa: F401

        return {"torch": set_torch_threads(threads)}
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    import tf_model.backend  # noqa: F401
    import tf_model.tf1_course  # noqa: F401

    return {"tf": set_tf_threads(threads)}


def child_main(argv: list[str] | None = None) -> int:
    """Entry point of the measuring subprocess."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--backend", choices=MEMORY_BACKENDS, required=True)
    parser.add_argument("--data", required=True, help="npz holding X (m, 64, 64, 3) and Y (m, 6), float32")
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)

    import numpy as np

    with np.load(args.data) as data:
        X, Y = data["X"], data["Y"]
    from reference.init import course_init

    params = course_init()
    data_mib = peak_rss_mib()
    threads = _import_framework(args.backend, args.threads)
    baseline_mib = peak_rss_mib()

    from benchmarks.cases import KerasFit, make_stepper, run_epoch

    start = time.perf_counter()
    if args.backend == "keras_fit":
        KerasFit(params, X, Y).fit_once()
    else:
        run_epoch(make_stepper(args.backend, params), X, Y)
    seconds = time.perf_counter() - start
    peak_mib = peak_rss_mib()
    print(json.dumps({
        "backend": args.backend,
        "data_loaded_mib": round(data_mib, 1),
        "import_baseline_mib": round(baseline_mib, 1),
        "peak_mib": round(peak_mib, 1),
        "delta_mib": round(peak_mib - baseline_mib, 1),
        "epoch_s_incl_build": round(seconds, 3),
        "threads": threads,
    }))
    return 0


def _record(backend: str, returncode: int, stdout: str, stderr: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"backend": backend, "error": f"exit {returncode}: {tail}"}
    return json.loads(lines[-1])


def measure_memory(backends, data_path: Path, threads: int, timeout_s: float = 300.0, concurrent: bool = False) -> list[dict]:
    """Run one child per backend; returns their JSON records in ``backends`` order.

    Children run one after another, or all at once with ``concurrent`` (quick runs: the peaks do
    not depend on it, only the "epoch incl. build" times do). A child that fails yields
    ``{"backend": b, "error": "..."}`` (its last stderr line).
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")

    def command(backend):
        return [sys.executable, "-m", "benchmarks.memory", "--backend", backend,
                "--data", str(data_path), "--threads", str(threads)]

    if not concurrent:
        records = []
        for backend in backends:
            try:
                proc = subprocess.run(command(backend), capture_output=True, text=True, timeout=timeout_s, env=env)
            except subprocess.TimeoutExpired:
                records.append({"backend": backend, "error": f"timed out after {timeout_s:.0f} s"})
                continue
            records.append(_record(backend, proc.returncode, proc.stdout, proc.stderr))
        return records
    procs = {b: subprocess.Popen(command(b), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for b in backends}
    records = []
    for backend, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            records.append({"backend": backend, "error": f"timed out after {timeout_s:.0f} s"})
            continue
        records.append(_record(backend, proc.returncode, out, err))
    return records


if __name__ == "__main__":
    sys.exit(child_main())
