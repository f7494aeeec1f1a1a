"""``signs bench`` / ``python -m benchmarks``: the benchmark run, start to finish.

Sections (``--only``, comma-separated; default all):

limit    float32 matmul GFLOP/s and copy bandwidth with NumPy; the model's FLOPs; the lower bounds
layers   per layer (conv1 pool1 conv2 pool2 dense), forward and backward: the course's loops (on a
         few images, scaled to 64), fast NumPy, PyTorch, TensorFlow (tf.function)
steps    one training step (forward, backward, Adam): NumPy, PyTorch, TF custom loop, Keras fit,
         the course's TF1 graph through tf.compat.v1
epoch    one epoch of the course's mini-batches per backend (images/s, 100-epoch projection)
memory   peak resident memory of one epoch per backend, each in a subprocess
profile  PyTorch: torch.profiler of a step and prototype variants of the step

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
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SECTIONS", "Settings", "add_arguments", "parse_sections", "settings_from_args", "run_benchmark", "main"]

SECTIONS = ("limit", "layers", "steps", "epoch", "memory", "profile")
DEFAULT_REPS = 7
QUICK_REPS = 2


def _project_root() -> Path:
    from reference.data.paths import project_root

    return project_root() or Path.cwd()


def default_out() -> Path:
    return _project_root() / "BENCHMARKS.md"


def default_json_out() -> Path:
    return _project_root() / "benchmarks" / "results.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``signs bench`` and ``python -m benchmarks``."""
    parser.add_argument("--quick", action="store_true",
                        help=f"few repetitions and images ({QUICK_REPS} reps; for smoke tests)")
    parser.add_argument("--reps", type=int, default=None, metavar="N",
                        help=f"timed repetitions per candidate (default {DEFAULT_REPS}; {QUICK_REPS} with --quick)")
    parser.add_argument("--only", default=",".join(SECTIONS), metavar="LIST",
                        help=f"comma-separated sections to run, from {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help=f"Markdown report (default: {default_out()})")
    parser.add_argument("--json-out", default=None, metavar="FILE",
                        help=f"JSON results (default: {default_json_out()} when --out is the default, "
                        "else FILE.json beside --out)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="threads for PyTorch (intra/inter-op) and TensorFlow (intra/inter-op) "
                        f"(default: os.cpu_count() = {os.cpu_count()})")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="SIGNS data folder (default: $SIGNS_DATA, else ../shared/data/signs beside the "
                        "project); without it seeded random images are used")
    parser.add_argument("--seed", type=int, default=0, help="seed of random images and upstream gradients")


def parse_sections(text: str) -> tuple[str, ...]:
    """``"layers,steps"`` -> ("layers", "steps") in canonical order; ValueError for unknown names."""
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise ValueError(f"--only: expected a comma-separated list from {','.join(SECTIONS)}, got {text!r}")
    return tuple(s for s in SECTIONS if s in names)


@dataclass
class Settings:
    """Everything a run needs, resolved from the options."""

    sections: tuple[str, ...]
    reps: int
    quick: bool
    threads: int
    out: Path
    json_out: Path
    data: str | None
    seed: int
    command: str = "signs bench"

    @property
    def warmup(self) -> int:
        return 1

    @property
    def epoch_reps(self) -> int:
        return 1 if self.quick else max(1, min(3, self.reps))

    @property
    def loop_images(self) -> dict[str, int]:
        """Images the course's loop layers are timed on (then scaled to 64)."""
        if self.quick:
            return {"conv1": 1, "pool1": 2, "conv2": 4, "pool2": 16}
        return {"conv1": 2, "pool1": 8, "conv2": 16, "pool2": 64}

    @property
    def target_s(self) -> float:
        """Duration aimed at for one timing sample of a fast operation."""
        return 0.02 if self.quick else 0.1

    @property
    def gap_s(self) -> float:
        """Pause between alternating candidates (lets the last one's threads stop spinning)."""
        return 0.02 if self.quick else 0.05

    @property
    def step_target_s(self) -> float:
        return 0.05 if self.quick else 0.4

    @property
    def profile_steps(self) -> int:
        return 3 if self.quick else 10


def command_line(args: argparse.Namespace, prog: str = "signs bench") -> str:
    """The options that differ from the defaults, as a command line (recorded in the report)."""
    parts = [prog]
    if args.quick:
        parts.append("--quick")
    if args.reps is not None:
        parts += ["--reps", str(args.reps)]
    if parse_sections(args.only) != SECTIONS:
        parts += ["--only", ",".join(parse_sections(args.only))]
    for option, value in (("--out", args.out), ("--json-out", args.json_out), ("--data", args.data)):
        if value:
            parts += [option, str(value)]
    if args.threads != (os.cpu_count() or 1):
        parts += ["--threads", str(args.threads)]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    return " ".join(parts)


def settings_from_args(args: argparse.Namespace, prog: str = "signs bench") -> Settings:
    """Validate the options (ValueError naming the option) and resolve defaults."""
    sections = parse_sections(args.only)
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else DEFAULT_REPS)
    if reps < 1:
        raise ValueError(f"--reps: expected a positive integer, got {reps}")
    if args.threads < 1:
        raise ValueError(f"--threads: expected a positive integer, got {args.threads}")
    out = Path(args.out) if args.out else default_out()
    if args.json_out:
        json_out = Path(args.json_out)
    elif args.out is None:
        json_out = default_json_out()
    else:
        json_out = out.with_suffix(".json") if out.suffix != ".json" else out.with_name(out.name + ".results.json")
    return Settings(sections, reps, bool(args.quick), int(args.threads), out, json_out, args.data, int(args.seed),
                    command_line(args, prog))


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _data_dir(explicit: str | None) -> tuple[Path, bool]:
    if explicit:
        return Path(explicit).expanduser(), True
    env = os.environ.get("SIGNS_DATA")
    if env:
        return Path(env).expanduser(), True
    return _project_root().parent / "shared" / "data" / "signs", False


def load_training_data(settings: Settings) -> tuple[np.ndarray, np.ndarray, str]:
    """The 1080 training images (float32 NHWC, one-hot labels) and a sentence saying where from.

    The real SIGNS train split when its folder exists; otherwise 1080 seeded uniform [0, 1)
    images with seeded labels. A folder named by --data or $SIGNS_DATA must exist.
    """
    from reference.data.dataset import load_signs
    from reference.spec import COURSE_MODEL

    path, explicit = _data_dir(settings.data)
    if path.is_dir():
        data = load_signs(path, splits=("train",), progress=False)
        return data.X_train, data.Y_train, f"real SIGNS data: {data.describe()}"
    if explicit:
        raise FileNotFoundError(f"--data: expected a SIGNS data folder, got {path} (not a directory)")
    rng = np.random.default_rng(settings.seed)
    m = 1080
    X = rng.random((m, *COURSE_MODEL.input_shape), dtype=np.float32)
    Y = np.eye(COURSE_MODEL.n_classes, dtype=np.float32)[rng.integers(0, COURSE_MODEL.n_classes, m)]
    return X, Y, f"seeded random images (seed {settings.seed}, {m} x 64x64x3 uniform [0, 1)): no data folder at {path}"


# --------------------------------------------------------------------------------------------
# Frameworks
# --------------------------------------------------------------------------------------------


def _frameworks(settings: Settings, needed: bool) -> dict:
    """Import PyTorch and TensorFlow when a section needs them; set their threads.

    Returns {"torch": info-or-None, "tf": info-or-None, "unavailable": {name: reason}}.
    """
    from benchmarks.env import set_tf_threads, set_torch_threads
    from signs.backends import BackendUnavailable, get_backend

    info: dict = {"torch": None, "tf": None, "unavailable": {}}
    if not needed:
        return info
    for name, setter in (("torch", set_torch_threads), ("tf", set_tf_threads)):
        try:
            get_backend(name)
        except BackendUnavailable as exc:
            info["unavailable"][name] = str(exc)
            continue
        info[name] = setter(settings.threads)
    return info


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _row(stats, **extra) -> dict:
    return {**extra, "seconds": stats.to_dict()}


def run_layers(settings: Settings, params, X, frameworks, progress) -> list[dict]:
    """Per layer, forward and backward, every implementation interleaved."""
    from benchmarks import cases
    from benchmarks.timing import Candidate, run_interleaved

    rows = []
    m = X.shape[0]
    for case in cases.layer_cases(params, X, seed=settings.seed):
        fns: dict[str, tuple] = {}
        scale: dict[str, float] = {}
        images = settings.loop_images.get(case.name)
        loop = cases.loop_layer_fns(case, images) if images else None
        if loop is not None:
            fns["loops"], scale["loops"] = loop, m / images
        fns["numpy"] = cases.numpy_layer_fns(case)
        if frameworks["torch"] is not None:
            fns["torch"] = cases.torch_layer_fns(case)
        if frameworks["tf"] is not None:
            fns["tf"] = cases.tf_layer_fns(case)
        for index, direction in enumerate(("forward", "backward")):
            progress(f"layers: {case.name} {direction}")
            candidates = [
                Candidate(key, fn_pair[index], inner=1 if key == "loops" else None, scale=scale.get(key, 1.0),
                          warmup=key != "loops")
                for key, fn_pair in fns.items()
            ]
            stats = run_interleaved(candidates, settings.reps, settings.warmup, settings.target_s, settings.gap_s)
            for key, s in stats.items():
                rows.append(_row(s, layer=case.name, direction=direction, impl=key,
                                 images=images if key == "loops" else m))
    return rows


def _steppers(settings, params, X_all, Y_all, frameworks, cache: dict) -> dict:
    """One training object per backend (built once, shared by the step and epoch sections)."""
    from benchmarks import cases

    if cache:
        return cache
    keys = ["numpy"]
    if frameworks["torch"] is not None:
        keys.append("torch")
    if frameworks["tf"] is not None:
        keys += ["tf", "keras_fit", "tf1"]
    for key in keys:
        cache[key] = cases.KerasFit(params, X_all, Y_all) if key == "keras_fit" else cases.make_stepper(key, params)
    return cache


def run_steps(settings, params, X, Y, steppers, progress) -> list[dict]:
    """One training step per backend on the same batch of 64, interleaved."""
    from benchmarks.timing import Candidate, run_interleaved

    progress("steps: " + ", ".join(steppers))
    candidates = []
    for key, obj in steppers.items():
        if key == "keras_fit":
            candidates.append(Candidate(key, sample=obj.step_time))
        else:
            candidates.append(Candidate(key, (lambda o=obj: o.step(X, Y))))
    stats = run_interleaved(candidates, settings.reps, settings.warmup, settings.step_target_s, settings.gap_s)
    return [_row(s, backend=key) for key, s in stats.items()]


def run_epochs(settings, X_all, Y_all, steppers, progress) -> list[dict]:
    """One epoch of the course's mini-batches per backend, interleaved."""
    from benchmarks.cases import run_epoch
    from benchmarks.timing import Candidate, run_interleaved

    progress("epoch: " + ", ".join(steppers))
    for key, obj in steppers.items():  # trace/compile for both batch sizes before timing
        if key == "keras_fit":
            continue
        obj.step(X_all[:64], Y_all[:64])
        obj.step(X_all[: X_all.shape[0] % 64 or 64], Y_all[: X_all.shape[0] % 64 or 64])
    candidates = []
    for key, obj in steppers.items():
        if key == "keras_fit":
            candidates.append(Candidate(key, sample=obj.epoch))
        else:
            candidates.append(Candidate(key, sample=lambda o=obj: run_epoch(o, X_all, Y_all)))
    warmup = 1 if "keras_fit" in steppers and not settings.quick else 0
    stats = run_interleaved(candidates, settings.epoch_reps, warmup=warmup, gap_s=settings.gap_s)
    return [_row(s, backend=key, images=int(X_all.shape[0])) for key, s in stats.items()]


def run_memory(settings, X_all, Y_all, progress) -> list[dict]:
    """One subprocess per backend whose framework is installed (run before this process imports
    PyTorch or TensorFlow, so the children start from a small parent)."""
    import importlib.util

    from benchmarks.memory import MEMORY_BACKENDS, measure_memory

    installed = {name: importlib.util.find_spec(name) is not None for name in ("torch", "tensorflow")}
    # --quick: the three frameworks only (Keras fit and TF1 import the same TensorFlow), concurrently.
    wanted = ("numpy", "torch", "tf") if settings.quick else MEMORY_BACKENDS
    backends = [b for b in wanted
                if b == "numpy" or (installed["torch"] if b == "torch" else installed["tensorflow"])]
    progress("memory: " + ", ".join(backends))
    with tempfile.TemporaryDirectory(prefix="signs-bench-") as tmp:
        path = Path(tmp) / "train.npz"
        np.savez(path, X=X_all, Y=Y_all)
        return measure_memory(backends, path, settings.threads, concurrent=settings.quick)


def run_profile(settings, params, X, Y, torch_trainer, progress) -> dict:
    """torch.profiler of the shipped Trainer, then the prototype variants timed beside it."""
    import torch

    from benchmarks import torch_variants as tv
    from benchmarks.timing import Candidate, run_interleaved
    from signs.backends import get_backend

    progress("profile: torch.profiler")
    fresh = get_backend("torch").Trainer(params)
    profile = tv.profile_trainer(fresh, X, Y, settings.profile_steps)

    progress("profile: variants")
    threads = torch.get_num_threads()

    def with_threads(n, fn):
        def call():
            torch.set_num_threads(n)
            try:
                return fn()
            finally:
                torch.set_num_threads(threads)
        return call

    def without_mkldnn(fn):
        def call():
            with warnings.catch_warnings():  # flags() also resets oneDNN's TF32 switch, which warns on CPU
                warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN", category=UserWarning)
                with torch.backends.mkldnn.flags(enabled=False):
                    return fn()
        return call

    shipped_step = lambda: torch_trainer.step(X, Y)
    labels = {"shipped": "torch_model.backend.Trainer as shipped"}
    candidates = [Candidate("shipped", shipped_step)]
    if threads != 1:
        labels["shipped_1thread"] = "as shipped, torch.set_num_threads(1)"
        candidates.append(Candidate("shipped_1thread", with_threads(1, shipped_step)))
    labels["shipped_no_mkldnn"] = "as shipped, torch.backends.mkldnn disabled"
    candidates.append(Candidate("shipped_no_mkldnn", without_mkldnn(shipped_step)))
    variants = {}
    for config in tv.VARIANTS:
        trainer = tv.TorchVariantTrainer(params, config)
        variants[config.key] = trainer
        labels[config.key] = config.label
        candidates.append(Candidate(config.key, (lambda t=trainer: t.step(X, Y))))
    stats = run_interleaved(candidates, settings.reps, settings.warmup, settings.step_target_s, settings.gap_s)

    # Each variant must compute the shipped Trainer's step: compare the weights after one step.
    reference_trainer = get_backend("torch").Trainer(params)
    reference_trainer.step(X, Y)
    expected = reference_trainer.get_params()
    differences = {}
    for config in tv.VARIANTS:
        trainer = tv.TorchVariantTrainer(params, config)
        trainer.step(X, Y)
        differences[config.key] = tv.max_param_difference(expected, trainer.get_params())
    return {
        "profile": profile,
        "variants": [
            _row(stats[key], key=key, label=labels[key], max_abs_param_diff_after_1_step=differences.get(key))
            for key in labels
        ],
    }


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
    from benchmarks import limits, report
    from benchmarks.env import describe_machine, load_average, numpy_blas_threads
    from reference.data.batches import epoch_mini_batches
    from reference.init import course_init
    from reference.spec import COURSE_MODEL

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
            "batch": 64,
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

    needs_frameworks = any(s in settings.sections for s in ("layers", "steps", "epoch", "profile"))
    frameworks = _frameworks(settings, needs_frameworks)
    meta["torch_threads"], meta["tf_threads"] = frameworks["torch"], frameworks["tf"]
    meta["unavailable"] = frameworks["unavailable"]
    meta["versions"] = _versions(frameworks)

    results["work"] = {"layers": limits.layer_work(), "step_flops": limits.step_flops(),
                       "step_flops_per_image": limits.step_flops(m=1)}
    if settings.sections != ("memory",):
        progress("limit: matmul GFLOP/s and bandwidth")
        results["limit"] = timed("limit", limits.measure_limits, max(3, settings.reps), COURSE_MODEL, 64,
                                 settings.seed, settings.target_s)
    if "layers" in settings.sections:
        results["layers"] = timed("layers", run_layers, settings, params, X, frameworks, progress)
        meta["loop_images"] = settings.loop_images
    steppers: dict = {}
    get_steppers = lambda: _steppers(settings, params, X_all, Y_all, frameworks, steppers)
    if "steps" in settings.sections:
        results["steps"] = timed("steps", run_steps, settings, params, X, Y, get_steppers(), progress)
    if "epoch" in settings.sections:
        results["epoch"] = timed("epoch", run_epochs, settings, X_all, Y_all, get_steppers(), progress)
    if "profile" in settings.sections and frameworks["torch"] is not None:
        results["profile"] = timed("profile", run_profile, settings, params, X, Y, get_steppers()["torch"], progress)
    for obj in steppers.values():
        if hasattr(obj, "close"):
            obj.close()
    if frameworks["tf"] is not None and ("steps" in settings.sections or "epoch" in settings.sections):
        timed("tf-onednn", run_other_onednn, settings, X_all, Y_all, results, frameworks["tf"].get("onednn"), progress)
    meta["load_average_end"] = load_average()
    meta["json_out"] = _shown_path(settings.json_out)
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = report.evaluate_targets(results)
    report.write_outputs(results, settings.out, settings.json_out)
    progress(f"wrote {settings.out} and {settings.json_out} ({meta['wall_s']} s)")
    return results


def _shown_path(path: Path) -> str:
    """``path`` relative to the project root when inside it (as the report shows it)."""
    try:
        return str(path.resolve().relative_to(_project_root().resolve()))
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
    from signs.cli import quiet_frameworks

    quiet_frameworks()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
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
