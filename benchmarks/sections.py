"""The sections of a benchmark run (see :mod:`benchmarks.settings`), each timed interleaved.

Used by :mod:`benchmarks.run` and by the oneDNN subprocess :mod:`benchmarks.tf_child`.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from benchmarks.settings import Settings, project_dir
from reference.spec import SIGNS_TRAIN_EXAMPLES

__all__ = [
    "load_training_data",
    "load_frameworks",
    "run_layers",
    "make_steppers",
    "run_steps",
    "run_epochs",
    "run_memory",
    "run_profile",
    "run_numpy_phases",
]

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def bench_data_dir(explicit: str | None) -> tuple[Path, bool]:
    if explicit:
        return Path(explicit).expanduser(), True
    env = os.environ.get("SIGNS_DATA")
    if env:
        return Path(env).expanduser(), True
    return project_dir().parent / "shared" / "data" / "signs", False


def load_training_data(settings: Settings) -> tuple[np.ndarray, np.ndarray, str]:
    """The 1080 training images (float32 NHWC, one-hot labels) and a sentence saying where from.

    The real SIGNS train split when its folder exists; otherwise 1080 seeded uniform [0, 1)
    images with seeded labels. A folder named by --data or $SIGNS_DATA must exist.
    """
    from reference.data.dataset import load_signs
    from reference.spec import COURSE_MODEL

    path, explicit = bench_data_dir(settings.data)
    if path.is_dir():
        data = load_signs(path, splits=("train",), progress=False)
        return data.X_train, data.Y_train, f"real SIGNS data: {data.describe()}"
    if explicit:
        raise FileNotFoundError(f"--data: expected a SIGNS data folder, got {path} (not a directory)")
    rng = np.random.default_rng(settings.seed)
    m = SIGNS_TRAIN_EXAMPLES
    X = rng.random((m, *COURSE_MODEL.input_shape), dtype=np.float32)
    Y = np.eye(COURSE_MODEL.n_classes, dtype=np.float32)[rng.integers(0, COURSE_MODEL.n_classes, m)]
    return X, Y, f"seeded random images (seed {settings.seed}, {m} x 64x64x3 uniform [0, 1)): no data folder at {path}"


# --------------------------------------------------------------------------------------------
# Frameworks
# --------------------------------------------------------------------------------------------


def load_frameworks(settings: Settings, needed: bool) -> dict:
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


def make_steppers(settings, params, X_all, Y_all, frameworks, cache: dict) -> dict:
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
    warmup = 0 if settings.quick else 1
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


def run_numpy_phases(settings, params, X, Y, progress) -> list[dict]:
    """Where NumPy's training step goes: the whole ``Trainer.step``, ``train_gradients``, and its
    two conv1 phases (``reference.fused``: conv1 -> relu -> pool1 forward, dW1 from its cache),
    timed interleaved. The rest (layers after pool1, the cost, Adam) is the difference."""
    from benchmarks.timing import Candidate, run_interleaved
    from reference import fused
    from reference.backend import Trainer
    from reference.model import conv1_pool1_geometry, train_gradients
    from reference.spec import COURSE_MODEL

    progress("profile: NumPy step phases")
    spec = COURSE_MODEL
    conv, pool = conv1_pool1_geometry(params, X, spec)
    P, cache = fused.conv_relu_pool_forward(X, params["W1"], conv, pool)
    dP = np.random.default_rng(settings.seed).standard_normal(P.shape).astype(P.dtype)
    trainer = Trainer(params)
    labels = {
        "step": "`reference.backend.Trainer.step` (whole step)",
        "train_gradients": "`reference.model.train_gradients` (forward, cost, gradients; no Adam)",
        "conv1_forward": "conv1 -> relu -> pool1 forward (`reference.fused.conv_relu_pool_forward`)",
        "conv1_dW": "dW1 from the fused cache (`reference.fused.conv_relu_pool_weight_grad`)",
    }
    calls = {
        "step": lambda: trainer.step(X, Y),
        "train_gradients": lambda: train_gradients(params, X, Y, spec),
        "conv1_forward": lambda: fused.conv_relu_pool_forward(X, params["W1"], conv, pool),
        "conv1_dW": lambda: fused.conv_relu_pool_weight_grad(dP, cache, conv, pool),
    }
    stats = run_interleaved([Candidate(k, fn) for k, fn in calls.items()], settings.reps, settings.warmup,
                            settings.step_target_s, settings.gap_s)
    return [_row(stats[key], key=key, label=label) for key, label in labels.items()]
