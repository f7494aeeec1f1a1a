"""The numbers behind the report: labels, formatting, the limit of a step, paired ratios and the
targets of the speed issue (each with its measured value and met/missed; never asserted)."""

from __future__ import annotations

import statistics

from reference.spec import COURSE_TRAINING, SIGNS_TRAIN_EXAMPLES

__all__ = [
    "LAYER_IMPLS",
    "STEP_LABELS",
    "EPOCH_IMAGES",
    "BATCH",
    "COURSE_EPOCHS",
    "step_label",
    "fmt_time",
    "fmt_ratio",
    "fmt_range",
    "median_of",
    "ratio_or_none",
    "bounds",
    "paired_ratio",
    "evaluate_targets",
]

LAYER_IMPLS = {
    "loops": "course loops",
    "numpy": "fast NumPy",
    "torch": "PyTorch",
    "tf": "TensorFlow tf.function",
}
STEP_LABELS = {
    "numpy": "NumPy (`reference.backend.Trainer.step`)",
    "torch": "PyTorch (`torch_model.backend.Trainer.step`)",
    "tf": "TensorFlow custom loop (`tf_model.backend.Trainer.step`)",
    "keras_fit": "Keras `model.fit` of `training_model` (steps_per_execution = the epoch's batches; an epoch of `fit(epochs=2)`; per step = epoch / batches)",
    "tf1": "course TF1 graph, `tf.compat.v1` `sess.run([optimizer, cost])`",
}
EPOCH_IMAGES = SIGNS_TRAIN_EXAMPLES
BATCH = COURSE_TRAINING.mini_batch_size


def step_label(key: str) -> str:
    """Table label of a step/epoch row key, e.g. "tf" or "tf+onednn1" (the TF subprocess rows)."""
    base, _, onednn = key.partition("+onednn")
    label = STEP_LABELS.get(base, base)
    return f"{label}, **TF_ENABLE_ONEDNN_OPTS={onednn}** (subprocess)" if onednn else label
COURSE_EPOCHS = COURSE_TRAINING.num_epochs


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    """A duration with 3 significant digits in s, ms or µs."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def fmt_ratio(x: float | None) -> str:
    """``3.21x``, ``32.1x``, ``321x``; "—" for None."""
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    if x >= 0.1:
        return f"{x:.2f}x"
    return f"{x:.2g}x"


def fmt_range(stats: dict) -> str:
    return f"{fmt_time(stats['min'])} – {fmt_time(stats['max'])}"


def median_of(rows: list[dict], **match) -> float | None:
    for row in rows or []:
        if all(row.get(k) == v for k, v in match.items()):
            return row["seconds"]["median"]
    return None


def ratio_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or b in (None, 0) else a / b


# --------------------------------------------------------------------------------------------
# Bounds and targets
# --------------------------------------------------------------------------------------------


def bounds(results: dict) -> dict | None:
    """The limit of a step: the larger of its FLOP bound and its byte bound (benchmarks/limits.py).

    ``peak_gflops``: the larger of the CPU's own peak (cores x FMA lanes x pipes x frequency) and
    the best matmul sample of this run; ``flop_step_s``: the step's FLOPs at that peak;
    ``byte_step_s``: the step's least bytes at the best copy bandwidth of this run; ``step_s``
    (the limit every ratio is against): the larger of the two; ``step_im2col_s``: the FLOPs at the
    rate NumPy reaches on conv1's im2col product.
    """
    limit = results.get("limit")
    if not limit:
        return None
    work = results["work"]
    cpu = (limit.get("cpu") or {}).get("gflops", 0.0)
    peak_gflops = max(cpu, limit.get("peak_best_gflops", limit["peak_gflops"]))
    peak = peak_gflops * 1e9
    bandwidth = limit.get("bandwidth_best_gbs", limit["bandwidth_gbs"]) * 1e9
    im2col = limit["im2col_gflops"] * 1e9
    step = work["step_flops"]["total"]
    per_image_bytes = work.get("step_bytes_per_image")
    flop_step = step / peak
    byte_step = work["step_bytes"] / bandwidth if "step_bytes" in work else 0.0
    flop_image = work["step_flops_per_image"]["total"] / peak
    byte_image = per_image_bytes / bandwidth if per_image_bytes else 0.0
    epoch = EPOCH_IMAGES * max(flop_image, byte_image)
    return {
        "peak_gflops": peak_gflops,
        "flop_step_s": flop_step,
        "byte_step_s": byte_step,
        "step_s": max(flop_step, byte_step),
        "step_im2col_s": step / im2col,
        "epoch_s": epoch,
        "course_s": COURSE_EPOCHS * epoch,
        "bandwidth_bytes_s": bandwidth,
    }


def paired_ratio(rows: list[dict] | None, a: str, b: str) -> float | None:
    """Median over the timing rounds of ``a``'s sample / ``b``'s sample in the same round.

    Candidates run interleaved (A B C A B C ...), so sample k of every candidate comes from round
    k; a slow phase of the machine then lands in both halves of a ratio (on this VM samples swing
    between two levels 30 % apart, which a ratio of medians turns into a coin toss)."""
    samples = {row["backend"]: row["seconds"].get("samples") or [] for row in rows or []}
    pairs = [x / y for x, y in zip(samples.get(a, []), samples.get(b, [])) if y > 0]
    return statistics.median(pairs) if pairs else None


def _target(name: str, goal: str, value: float | None, limit: float, at_least: bool, shown: str, detail: str = "") -> dict:
    if value is None:
        return {"target": name, "goal": goal, "value": None, "measured": "not measured", "met": None,
                "verdict": "not measured (section skipped or framework unavailable)"}
    met = value >= limit if at_least else value <= limit
    if at_least:
        verdict = f"met: {value / limit:.2f}x the target" if met else f"missed: {limit / value:.2f}x short"
    else:
        verdict = f"met with {limit / value:.2f}x headroom" if met else f"missed by {value / limit:.2f}x"
    return {"target": name, "goal": goal, "value": value, "limit": limit, "measured": shown + detail,
            "met": met, "verdict": verdict}


def evaluate_targets(results: dict) -> list[dict]:
    """The targets of the brief, each with its measured value and met/missed (never asserted)."""
    layers, steps, epoch = results.get("layers"), results.get("steps"), results.get("epoch")
    b = bounds(results)
    targets = []

    loops = [median_of(layers, layer="conv1", direction=d, impl="loops") for d in ("forward", "backward")]
    fast = [median_of(layers, layer="conv1", direction=d, impl="numpy") for d in ("forward", "backward")]
    speedup = None if None in loops or None in fast else sum(loops) / sum(fast)
    targets.append(_target("conv1 fast vs loops", "fast NumPy conv1 forward+backward >= 300x faster than the course loops",
                           speedup, 300.0, True, fmt_ratio(speedup) + " faster" if speedup else ""))

    numpy_s, torch_s, tf_s, tf1_s = (median_of(steps, backend=k) for k in ("numpy", "torch", "tf", "tf1"))
    paired = "median of per-round ratios"
    ratio = paired_ratio(steps, "numpy", "torch")
    targets.append(_target("NumPy step vs PyTorch", "NumPy training step <= 1.5x PyTorch's time", ratio, 1.5, False,
                           f"{fmt_ratio(ratio)} ({paired}; medians {fmt_time(numpy_s)} vs {fmt_time(torch_s)})"
                           if ratio else ""))
    other = [row["backend"] for row in steps or [] if row["backend"].startswith("tf+onednn")]
    onednn_label = {k: f"TF custom-loop step, TF_ENABLE_ONEDNN_OPTS={k.partition('+onednn')[2]}" for k in other}
    for key, label in (("tf", "TF custom-loop step"), *onednn_label.items(), ("torch", "PyTorch step"), ("numpy", "NumPy step")):
        value = median_of(steps, backend=key)
        r = ratio_or_none(value, b["step_s"]) if b else None
        detail = f" ({fmt_time(value)} vs bound {fmt_time(b['step_s'])}; {fmt_ratio(ratio_or_none(value, b['step_im2col_s']))} the im2col-rate bound)" if r else ""
        targets.append(_target(f"{label} vs bound", f"{label} <= 3x the machine bound", r, 3.0, False, fmt_ratio(r) if r else "", detail))
    r = paired_ratio(steps, "tf", "tf1")
    targets.append(_target("TF2 vs TF1 step", "TF2 custom-loop step at least as fast as the course's TF1 graph (ratio <= 1)",
                           r, 1.0, False, f"{fmt_ratio(r)} ({paired}; medians {fmt_time(tf_s)} vs {fmt_time(tf1_s)})" if r else ""))
    tf_epoch, tf1_epoch, fit_epoch = (median_of(epoch, backend=k) for k in ("tf", "tf1", "keras_fit"))
    r = paired_ratio(epoch, "tf", "tf1")
    targets.append(_target("TF2 vs TF1 epoch", "TF2 custom-loop epoch at least as fast as the course's TF1 loop (ratio <= 1)",
                           r, 1.0, False, f"{fmt_ratio(r)} ({paired}; medians {fmt_time(tf_epoch)} vs {fmt_time(tf1_epoch)})" if r else ""))
    r = paired_ratio(epoch, "keras_fit", "tf")
    targets.append(_target("Keras fit vs custom loop", "Keras `fit` epoch (steps_per_execution) within 1.2x of the TF custom loop's",
                           r, 1.2, False, f"{fmt_ratio(r)} ({paired}; medians {fmt_time(fit_epoch)} vs {fmt_time(tf_epoch)})" if r else ""))
    for row in epoch or []:
        course = COURSE_EPOCHS * row["seconds"]["median"]
        r = ratio_or_none(course, b["course_s"]) if b else None
        targets.append({
            "target": f"100 epochs {row['backend']}",
            "goal": f"100 course epochs, {step_label(row['backend'])}: wall time and ratio to the bound",
            "value": course, "met": None,
            "measured": f"{fmt_time(course)} ({fmt_ratio(r)} the bound {fmt_time(b['course_s']) if b else '—'})",
            "verdict": "reported (no threshold)",
        })
    return targets
