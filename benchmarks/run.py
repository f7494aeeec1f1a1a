"""``signs bench`` / ``python -m benchmarks``: the benchmark run, start to finish.

Sections (``--only``, comma-separated; default all): :data:`benchmarks.settings.SECTION_HELP`, listed
at the end of ``--help``.

Within a section every group of candidates is timed interleaved (A B C A B C ...) after a warm-up;
the tables give the median over the repetitions with min-max.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.sections import (
    bench_data_dir,
    load_frameworks,
    load_training_data,
    make_steppers,
    run_epochs,
    run_layers,
    run_memory,
    run_profile,
    run_numpy_phases,
    run_steps,
)
from benchmarks.settings import Settings, add_arguments, describe_sections, project_dir, settings_from_args

__all__ = ["run_benchmark", "main"]


def run_other_onednn(settings, X_all, Y_all, results, enabled_here, progress) -> None:
    """TF rows with oneDNN switched the other way (``TF_ENABLE_ONEDNN_OPTS``), from a subprocess
    (see tf_child); ``enabled_here`` says whether this process runs TF with oneDNN."""
    from benchmarks.tf_child import run_tf_child

    current = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    other = "0" if enabled_here else "1"
    sections = [s for s in ("steps", "epoch") if s in settings.sections]
    progress(f"{'/'.join(sections)}: TensorFlow with TF_ENABLE_ONEDNN_OPTS={other} (subprocess)")
    with tempfile.TemporaryDirectory(prefix="signs-bench-") as tmp:
        path = Path(tmp) / "train.npz"
        np.savez(path, X=X_all, Y=Y_all)
        child = run_tf_child(other, path, settings.threads, settings.reps, settings.quick, sections)
    results["meta"]["tf_other_onednn"] = {"value": other, "main_process_value": current,
                                          "main_process_onednn": enabled_here,
                                          "error": child.get("error"), "tf_threads": child.get("tf_threads")}
    for section in sections:
        for row in child.get(section, []):
            row.update(backend=f"{row['backend']}+onednn{other}", onednn=other, subprocess=True)
            results[section].append(row)


class _SectionClock:
    """Per-section wall time, start load average and the CPU share other processes used."""

    def __init__(self, meta: dict):
        self.records = meta.setdefault("section_load", {})

    def __call__(self, name: str, fn, *args):
        from benchmarks.env import cpu_snapshot, load_average, others_cpu_share

        load, before = load_average(), cpu_snapshot()
        start = time.perf_counter()
        value = fn(*args)
        share = others_cpu_share(before, cpu_snapshot())
        self.records[name] = {"wall_s": round(time.perf_counter() - start, 1), "load1_start": load[0] if load else None,
                              "others_cpu_share": None if share is None else round(share, 3)}
        return value


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_benchmark(settings: Settings, progress=_progress) -> dict:
    """Run the selected sections; write the Markdown report and the JSON; return the results."""
    from benchmarks import limits, report, targets
    from benchmarks.env import describe_machine, load_average, numpy_blas_threads
    from reference.data.batches import epoch_mini_batches
    from reference.gemm import set_block_workers
    from reference.init import course_init
    from reference.spec import COURSE_MODEL, COURSE_TRAINING

    started = time.perf_counter()
    blas_threads, blas_source = numpy_blas_threads()
    results: dict = {
        "meta": {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": settings.command,
            "sections": list(settings.sections),
            "reps": settings.reps,
            "warmup_rounds": settings.warmup,
            "epoch_reps": settings.epoch_reps,
            "quick": settings.quick,
            "dtype": "float32",
            "batch": COURSE_TRAINING.mini_batch_size,
            "machine": describe_machine(),
            "load_average_start": load_average(),
            "threads_requested": settings.threads,
            "numpy_blas_threads": blas_threads,
            "numpy_blas_threads_source": blas_source,
        },
    }
    progress("loading data")
    X_all, Y_all, data_note = load_training_data(settings)
    meta = results["meta"]
    meta["data"] = data_note
    X, Y = epoch_mini_batches(X_all, Y_all, 0)[0]  # the course's first batch of 64
    params = course_init()
    meta["params"] = "the course's initial weights (reference.init.course_init)"
    timed = _SectionClock(meta)
    if "memory" in settings.sections:
        results["memory"] = timed("memory", run_memory, settings, X_all, Y_all, progress)

    needs_frameworks = any(s in settings.sections for s in ("layers", "steps", "epoch", "profile", "inference"))
    frameworks = load_frameworks(settings, needs_frameworks)
    meta["torch_threads"], meta["tf_threads"] = frameworks["torch"], frameworks["tf"]
    set_block_workers(settings.threads)  # NumPy's blocks of images, like the frameworks' pools
    meta["numpy_block_workers"] = settings.threads
    meta["unavailable"] = frameworks["unavailable"]
    meta["versions"] = _versions(frameworks)

    results["work"] = {"layers": limits.layer_work(), "step_flops": limits.step_flops(),
                       "step_flops_per_image": limits.step_flops(m=1), "step_bytes": limits.step_bytes(),
                       "step_bytes_per_image": limits.step_bytes(m=1)}
    if settings.sections != ("memory",):
        progress("limit: matmul GFLOP/s and bandwidth")
        results["limit"] = timed("limit", limits.measure_limits, max(3, settings.reps), COURSE_MODEL,
                                 COURSE_TRAINING.mini_batch_size,
                                 settings.seed, settings.target_s)
    if "layers" in settings.sections:
        results["layers"] = timed("layers", run_layers, settings, params, X, frameworks, progress)
        meta["loop_images"] = settings.loop_images
    steppers: dict = {}
    get_steppers = lambda: make_steppers(settings, params, X_all, Y_all, frameworks, steppers)
    if "steps" in settings.sections:
        results["steps"] = timed("steps", run_steps, settings, params, X, Y, get_steppers(), progress)
    if "epoch" in settings.sections:
        results["epoch"] = timed("epoch", run_epochs, settings, X_all, Y_all, get_steppers(), progress)
    if "profile" in settings.sections and frameworks["torch"] is not None:
        results["profile"] = timed("profile", run_profile, settings, params, X, Y, get_steppers()["torch"], progress)
    if "profile" in settings.sections:
        results["numpy_phases"] = timed("numpy-phases", run_numpy_phases, settings, params, X, Y, progress)
    if "inference" in settings.sections:  # benchmarks/inference.py
        from benchmarks.inference import run_inference

        data_dir, _ = bench_data_dir(settings.data)
        results["inference"] = timed("inference", run_inference, settings, data_dir, progress)
    for obj in steppers.values():
        if hasattr(obj, "close"):
            obj.close()
    if frameworks["tf"] is not None and ("steps" in settings.sections or "epoch" in settings.sections):
        timed("tf-onednn", run_other_onednn, settings, X_all, Y_all, results, frameworks["tf"].get("onednn"), progress)
    meta["load_average_end"] = load_average()
    meta["json_out"] = _shown_path(settings.json_out)
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets.evaluate_targets(results)
    report.write_outputs(results, settings.out, settings.json_out)
    progress(f"wrote {settings.out} and {settings.json_out} ({meta['wall_s']} s)")
    return results


def _shown_path(path: Path) -> str:
    """``path`` relative to the project root when inside it (as the report shows it)."""
    try:
        return str(path.resolve().relative_to(project_dir().resolve()))
    except ValueError:
        return str(path)


def _versions(frameworks: dict) -> dict:
    versions = {"numpy": np.__version__}
    if frameworks.get("torch") is not None:
        import torch

        versions["torch"] = torch.__version__
    if frameworks.get("tf") is not None:
        import keras
        import tensorflow as tf

        versions["tensorflow"], versions["keras"] = tf.__version__, keras.__version__
    return versions


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks [options]``."""
    from signs.quiet import quiet_frameworks

    quiet_frameworks()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=f"{__doc__}\n{describe_sections()}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, "python -m benchmarks")
        run_benchmark(settings)
    except (ValueError, FileNotFoundError) as exc:
        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
        return 2
    return 0
