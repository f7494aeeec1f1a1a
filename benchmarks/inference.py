"""Inference throughput (``signs bench --only inference``): images/s of the course model's logits on
the SIGNS test set, NumPy, PyTorch, TensorFlow and onnxruntime side by side, batch 1 and batch 120.

Each candidate is the model *ready to serve*, built once from the course's initial weights, as a
user would keep it in memory: NumPy ``reference.model.predict_logits`` (nothing to build), the
PyTorch module under ``torch.inference_mode``, the Keras model in a ``tf.function`` with a
``None`` batch dimension (traced once), an onnxruntime session of the exported file
(``signs.onnx_export``, intra-op threads = ``--threads``). float32. Batch 1 cycles through the
120 test images one at a time; batch 120 is the whole test set per call. Candidates of a batch
size run interleaved (``benchmarks.timing``); the rows give the median images/s with min-max.

``benchmarks.run`` calls :func:`run_inference` (section "inference") and ``benchmarks.report``
calls :func:`inference_markdown`; nothing else here is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["BATCHES", "INFERENCE_BACKENDS", "load_test_images", "predictors", "run_inference",
           "inference_markdown"]

BATCHES = (1, 120)
INFERENCE_BACKENDS = ("numpy", "torch", "tf", "onnx")


def load_test_images(data_dir: Path | None, seed: int) -> tuple[np.ndarray, str]:
    """The 120 SIGNS test images X / 255 (float32 NHWC), or 120 seeded U[0, 1) images without data."""
    from reference.data.dataset import load_signs

    if data_dir is not None and data_dir.is_dir():
        data = load_signs(data_dir, splits=("test",), progress=False)
        return data.X_test.astype(np.float32), f"the {data.X_test.shape[0]} SIGNS test images ({data_dir})"
    X = np.random.default_rng(seed).random((120, 64, 64, 3), dtype=np.float32)
    return X, f"120 seeded random images (seed {seed}): no data folder"


def _numpy(params):
    from reference.model import predict_logits

    return lambda X: predict_logits(params, X)


def _torch(params):
    import torch

    from torch_model.backend import build_module

    module = build_module(params).eval()

    def run(X):
        with torch.inference_mode():
            return module(torch.from_numpy(X)).numpy()

    return run


def _tf(params):
    import tensorflow as tf

    from tf_model.convert import set_keras_weights
    from tf_model.model import build_model

    model = build_model(dtype="float32", seed=0)
    set_keras_weights(model, params)
    serve = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec((None, 64, 64, 3), tf.float32)])
    return lambda X: serve(tf.constant(X)).numpy()


def _onnx(params, threads: int):
    from signs.onnx_backend import predict_logits

    return lambda X: predict_logits(params, X, threads=threads)


def predictors(params, threads: int) -> tuple[dict[str, Callable], dict[str, str]]:
    """({backend: X -> logits} for those installed, {backend: why not} for the others)."""
    from signs.backends import BackendUnavailable, get_backend

    makers = {"numpy": _numpy, "torch": _torch, "tf": _tf, "onnx": lambda p: _onnx(p, threads)}
    ready, unavailable = {}, {}
    for name in INFERENCE_BACKENDS:
        try:
            get_backend(name)
        except BackendUnavailable as exc:
            unavailable[name] = str(exc)
            continue
        ready[name] = makers[name](params)
    return ready, unavailable


def _cycling(fn: Callable, X: np.ndarray, batch: int) -> Callable[[], object]:
    """A call of ``fn`` on the next ``batch`` images of ``X`` (wrapping around)."""
    state = {"start": 0}

    def call():
        start = state["start"]
        state["start"] = (start + batch) % X.shape[0]
        return fn(X[start:start + batch])

    return call


def run_inference(settings, data_dir: Path | None, progress) -> dict:
    """Time every installed backend at each batch size; returns rows and notes for the report."""
    from benchmarks.timing import Candidate, run_interleaved
    from reference.init import course_init

    X, note = load_test_images(data_dir, settings.seed)
    params = course_init()
    ready, unavailable = predictors(params, settings.threads)
    rows = []
    for batch in BATCHES:
        progress(f"inference: batch {batch}, {', '.join(ready)}")
        candidates = [Candidate(name, _cycling(fn, X, batch)) for name, fn in ready.items()]
        stats = run_interleaved(candidates, settings.reps, settings.warmup, settings.target_s, settings.gap_s)
        for name, s in stats.items():
            rows.append({"backend": name, "batch": batch, "seconds": s.to_dict(),
                         "images_per_s": batch / s.median, "images_per_s_min": batch / s.max,
                         "images_per_s_max": batch / s.min})
    return {"rows": rows, "images": note, "unavailable": unavailable}


def inference_markdown(results: dict) -> list[str]:
    """The report section: one row per backend, images/s at batch 1 and batch 120 side by side."""
    section = results.get("inference")
    if not section:
        return []
    by = {(r["backend"], r["batch"]): r for r in section["rows"]}
    backends = [b for b in INFERENCE_BACKENDS if any((b, n) in by for n in BATCHES)]
    lines = ["## Inference", "",
             f"Images/s of the logits on {section['images']}, float32, each model built once "
             "(see benchmarks/inference.py); median (min-max).", "",
             "| backend | " + " | ".join(f"batch {n}" for n in BATCHES) + " |",
             "|---|" + "---|" * len(BATCHES)]
    for backend in backends:
        cells = []
        for n in BATCHES:
            row = by.get((backend, n))
            cells.append("-" if row is None else
                         f"{row['images_per_s']:.0f} ({row['images_per_s_min']:.0f}-{row['images_per_s_max']:.0f})")
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    for name, reason in section.get("unavailable", {}).items():
        lines.append(f"\n{name}: not measured ({reason})")
    return lines + [""]
