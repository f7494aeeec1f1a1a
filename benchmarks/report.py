"""The Markdown report (BENCHMARKS.md) and the JSON results, written atomically; the numbers and
targets come from :mod:`benchmarks.targets`."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.targets import (
    BATCH,
    COURSE_EPOCHS,
    EPOCH_IMAGES,
    LAYER_IMPLS,
    STEP_LABELS,
    bounds,
    fmt_range,
    fmt_ratio,
    fmt_time,
    median_of,
    ratio_or_none,
    step_label,
)
from reference.fileio import atomic_path

__all__ = ["render_markdown", "write_outputs", "BY_HAND"]


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _setup(results: dict) -> list[str]:
    meta = results["meta"]
    mach = meta["machine"]
    env = mach["env"]
    versions = meta.get("versions", {})
    torch_t, tf_t = meta.get("torch_threads"), meta.get("tf_threads")

    def unset(v):
        return "unset" if v is None else f"`{v}`"

    rows = [
        ["CPU", f"{mach['cpu']}, {mach['cores']} cores ({mach['platform']})"],
        ["Load average (1/5/15 min)", f"start {meta.get('load_average_start')}, end {meta.get('load_average_end')}"],
        ["Python / NumPy / BLAS", f"{mach['python']} / {mach['numpy']} / {mach['blas']}"],
        ["NumPy BLAS threads", f"{meta['numpy_blas_threads']} ({meta['numpy_blas_threads_source']})"],
    ]
    if torch_t:
        rows.append(["PyTorch threads", f"{versions.get('torch')}: intra-op {torch_t['intra_op']}, inter-op {torch_t['inter_op']}"
                     + (f" ({torch_t['note']})" if torch_t.get("note") else "")])
    if tf_t:
        rows.append(["TensorFlow threads", f"{versions.get('tensorflow')} / Keras {versions.get('keras')}: intra-op "
                     f"{tf_t['intra_op']}, inter-op {tf_t['inter_op']}" + (f" ({tf_t['note']})" if tf_t.get("note") else "")])
    other = meta.get("tf_other_onednn")
    if other:
        value = other["main_process_value"]
        state = {True: "on", False: "off", None: "unknown"}[other.get("main_process_onednn")]
        text = (f"unmarked TF rows: TF_ENABLE_ONEDNN_OPTS={'unset' if value is None else value}, oneDNN kernels "
                f"**{state}** (TensorFlow's `IsMklEnabled()`; unset, TensorFlow decides by CPU); rows marked "
                f"TF_ENABLE_ONEDNN_OPTS={other['value']} ran in a subprocess with oneDNN switched the other way")
        if other.get("error"):
            text += f" that failed: {other['error']}"
        rows.append(["TensorFlow oneDNN", text])
    for name, reason in meta.get("unavailable", {}).items():
        rows.append([f"{name}", f"unavailable: {reason}"])
    load = meta.get("section_load", {})
    if load:
        parts = []
        for name, r in load.items():
            share = "n/a" if r["others_cpu_share"] is None else f"{100 * r['others_cpu_share']:.0f}%"
            parts.append(f"{name} {share} ({r['wall_s']:.0f} s, load {r['load1_start']})")
        rows.append(["Other processes' CPU use per section", "; ".join(parts)
                     + " — share of all cores used outside this benchmark while each section ran (/proc/stat); "
                     "above a few % the timings of that section are inflated"])
    rows += [
        ["Environment", ", ".join(f"{k}={unset(v)}" for k, v in env.items())],
        ["Data", meta.get("data", "—")],
        ["Model, dtype, batch", f"the course model (reference/spec.py), {meta['params']}, {meta['dtype']}, batch {meta['batch']} of 64x64x3"],
        ["Method", f"candidates interleaved (A B C A B C ...), {meta['warmup_rounds']} warm-up round, {meta['reps']} timed "
                   f"repetitions ({meta['epoch_reps']} for epochs); median (min – max); fast operations are repeated "
                   "inside a sample and averaged"],
    ]
    return ["## Setup", ""] + _table(["", ""], rows)


def _targets(results: dict) -> list[str]:
    rows = []
    for t in results.get("targets", []):
        result = t["verdict"] if t.get("met") is None else ("**met**" if t["met"] else "**missed**") + f" ({t['verdict']})"
        rows.append([t["goal"], t["measured"], result])
    return ["## Targets", "", "Reported, not asserted by the tests. \"The bound\" is the training step's limit: the "
            "larger of its FLOPs at the CPU's float32 peak and its least bytes at the best copy bandwidth (see "
            "Machine limit).", ""] + _table(["Target", "Measured", "Result"], rows)


def _limit(results: dict) -> list[str]:
    limit = results.get("limit")
    if not limit:
        return []
    b = bounds(results)
    work = results["work"]
    lines = ["## Machine limit", "", "Float32 matmul with NumPy (`np.matmul`, BLAS threads as above), measured in this run:", ""]
    rows = [[key, v["shape"], f"{v['gflops']:.1f}", f"{v['gflops_best']:.1f}"] for key, v in limit["matmul"].items()]
    lines += _table(["Product", "Shapes", "GFLOP/s (median)", "GFLOP/s (best)"], rows)
    lines += [f"Copy bandwidth (`np.copyto`, 64 MiB, read + write): {limit['bandwidth_gbs']:.1f} GB/s median, "
              f"{limit.get('bandwidth_best_gbs', limit['bandwidth_gbs']):.1f} GB/s best.", ""]
    cpu = limit.get("cpu")
    lines += [f"CPU peak from its own numbers: {cpu['derivation']}." if cpu else
              "CPU peak from its own numbers: not available (/proc/cpuinfo unreadable).",
              f"Best matmul sample of this run: {limit.get('peak_best_gflops', limit['peak_gflops']):.1f} GFLOP/s. "
              f"The peak used is the larger of the two: **{b['peak_gflops']:.1f} GFLOP/s**.", ""]
    lines += ["FLOPs of the model for a batch of 64, counted from the shapes in reference/spec.py: conv "
              "`2*m*H_out*W_out*f*f*C_in*C_out`; conv backward = dW (1x forward) + dX (1x forward), except that a "
              "training step never computes conv1's dX (so conv1 backward = 1x, conv2 backward = 2x); dense "
              "`2*m*n_in*n_out` (+ bias) forward, 2x that backward. ReLU, max-pool, softmax cross-entropy and Adam "
              "(1,286 weights) are memory operations, not counted as FLOPs; the per-layer table bounds pools by "
              "bytes / copy bandwidth.", ""]
    rows = []
    for layer, w in work["layers"].items():
        rows.append([layer, f"{w['forward']['flops'] / 1e6:.2f}", f"{w['backward']['train_flops'] / 1e6:.2f}",
                     f"{w['backward']['flops'] / 1e6:.2f}", f"{(w['forward']['bytes'] + w['backward']['bytes']) / 2**20:.1f}"])
    sf = work["step_flops"]
    rows.append(["**step**", f"{sf['forward'] / 1e6:.2f}", f"{sf['backward'] / 1e6:.2f}", "", ""])
    lines += _table(["Layer", "Forward MFLOP", "Backward MFLOP (training)", "Backward MFLOP (with dX)",
                     "Min. bytes fwd+bwd (MiB)"], rows)
    lines += [
        f"**Limit** of one step ({sf['total'] / 1e9:.3f} GFLOP, {work.get('step_bytes', 0) / 2**20:.1f} MiB): FLOP bound "
        f"{fmt_time(b['flop_step_s'])} at {b['peak_gflops']:.1f} GFLOP/s, byte bound {fmt_time(b['byte_step_s'])} at "
        f"{b['bandwidth_bytes_s'] / 1e9:.1f} GB/s; the limit is the larger, **{fmt_time(b['step_s'])}**; one epoch of "
        f"{EPOCH_IMAGES} images = {fmt_time(b['epoch_s'])}; {COURSE_EPOCHS} epochs = **{fmt_time(b['course_s'])}**. "
        f"At the rate NumPy reaches on conv1's im2col product ({limit['im2col_gflops']:.1f} GFLOP/s) the FLOPs "
        f"alone would take {fmt_time(b['step_im2col_s'])}.",
        "",
    ]
    return lines


def _layer_bound(results: dict, layer: str, direction: str) -> tuple[float | None, str]:
    b = bounds(results)
    if not b:
        return None, ""
    w = results["work"]["layers"][layer][direction]
    byte_bound = w["bytes"] / b["bandwidth_bytes_s"]
    if w["flops"]:
        return max(w["flops"] / (b["peak_gflops"] * 1e9), byte_bound), f"{w['flops'] / 1e6:.1f} MFLOP"
    return byte_bound, f"{w['bytes'] / 2**20:.1f} MiB"


def _layers(results: dict) -> list[str]:
    rows_in = results.get("layers")
    if not rows_in:
        return []
    images = results["meta"].get("loop_images", {})
    lines = [f"## Per layer (batch {BATCH})", "",
             "Forward and backward of each layer on the activations of the course's first mini-batch. Backward computes "
             "the input gradient and the weight gradient (the course's `conv_backward` API) for every implementation. "
             "**Course loops** (`reference.layers`, the notebook's code) are timed on a few images and scaled to 64: "
             + ", ".join(f"{k} on {v}" for k, v in images.items())
             + "; the course has no loop dense layer. Fast NumPy is `reference.fast_layers` (dense: `reference.model`). "
             "PyTorch runs `torch_model.ops` on the model's channels_last view of NHWC data, backward by "
             "`torch.autograd.grad`; TensorFlow runs `tf.nn.conv2d`/`max_pool2d`/matmul in a `tf.function`, backward by "
             "the gradient ops TF registers (`Conv2DBackpropInput` + `Conv2DBackpropFilter`, `MaxPoolGrad`). Bound: "
             "the larger of the FLOPs at the peak (see Machine limit) and the minimum bytes at the best copy bandwidth (pools: bytes only).", ""]
    table = []
    for row in rows_in:
        bound, work = _layer_bound(results, row["layer"], row["direction"])
        torch_median = median_of(rows_in, layer=row["layer"], direction=row["direction"], impl="torch")
        s = row["seconds"]
        name = LAYER_IMPLS.get(row["impl"], row["impl"])
        if row["impl"] == "loops":
            name += f" ({row['images']} img x{BATCH // row['images']})"
        table.append([row["layer"], row["direction"], name, f"**{fmt_time(s['median'])}**", fmt_range(s), work,
                      fmt_ratio(ratio_or_none(s["median"], bound)), fmt_ratio(ratio_or_none(s["median"], torch_median))])
    lines += _table(["Layer", "Pass", "Implementation", "Median", "Min – max", "Work", "x bound", "x PyTorch"], table)
    speed = []
    for layer in dict.fromkeys(r["layer"] for r in rows_in):
        loop = [median_of(rows_in, layer=layer, direction=d, impl="loops") for d in ("forward", "backward")]
        fast = [median_of(rows_in, layer=layer, direction=d, impl="numpy") for d in ("forward", "backward")]
        if None not in loop and None not in fast:
            speed.append(f"{layer} {fmt_ratio(sum(loop) / sum(fast))}")
    if speed:
        lines += ["Fast NumPy vs the course loops (forward + backward): " + ", ".join(speed) + ".", ""]
    return lines


def _backend_section(results: dict, key: str, intro: list[str], columns: list[str], middle) -> list[str]:
    """A step or epoch section: ``intro``, then one table row per backend: label, median, min-max,
    the cells ``middle(median, row, bounds)`` under ``columns[2:-1]``, the ratio to PyTorch's median."""
    rows_in = results.get(key)
    if not rows_in:
        return []
    b = bounds(results) or {}
    torch_median = median_of(rows_in, backend="torch")
    rows = [[step_label(row["backend"]), f"**{fmt_time(row['seconds']['median'])}**", fmt_range(row["seconds"]),
             *middle(row["seconds"]["median"], row, b), fmt_ratio(ratio_or_none(row["seconds"]["median"], torch_median))]
            for row in rows_in]
    return intro + _table(["Backend", *columns], rows)


def _steps(results: dict) -> list[str]:
    intro = [f"## Training step (forward, backward, Adam; batch {BATCH})", "",
             "The same batch every step. Trainers' `step(X, Y)` includes their input checks, the host-to-framework "
             "conversion of the batch and reading the cost back as a Python float. Keras `fit` (compiled with "
             "`steps_per_execution` = the epoch's 17 batches) has no per-step call: its per-step time is the second "
             "epoch of a `fit(epochs=2)` call over its 17 batches (fit's per-epoch work included, its once-per-call "
             "data adapter not).", ""]
    return _backend_section(
        results, "steps", intro, ["Median", "Min – max", "Images/s", "x bound", "x PyTorch"],
        lambda median, row, b: [f"{BATCH / median:.0f}", fmt_ratio(ratio_or_none(median, b.get("step_s")))])


def _epochs(results: dict) -> list[str]:
    intro = [f"## One epoch ({EPOCH_IMAGES} images, the course's mini-batches)", "",
             "Each epoch calls the course's `random_mini_batches` (seed of epoch 0) and steps through its 17 batches "
             "(16 of 64, one of 56) with the Trainer's `step`, as `signs train` does; Keras is one "
             "`model.fit(..., batch_size=64, epochs=1, shuffle=False)` call. "
             f"{COURSE_EPOCHS} epochs is the median epoch x {COURSE_EPOCHS}.", ""]
    columns = ["Epoch median", "Min – max", "Images/s", f"{COURSE_EPOCHS} epochs", f"{COURSE_EPOCHS} epochs x bound",
               "x PyTorch"]
    return _backend_section(
        results, "epoch", intro, columns,
        lambda median, row, b: [f"{row['images'] / median:.0f}", fmt_time(COURSE_EPOCHS * median),
                                fmt_ratio(ratio_or_none(COURSE_EPOCHS * median, b.get("course_s")))])


def _memory(results: dict) -> list[str]:
    rows_in = results.get("memory")
    if rows_in is None:
        return []
    rows = []
    for r in rows_in:
        label = step_label(r["backend"])
        if "error" in r:
            rows.append([label, "—", "—", "—", "—", f"failed: {r['error']}"])
            continue
        rows.append([label, f"{r['data_loaded_mib']:.0f}", f"{r['import_baseline_mib']:.0f}", f"**{r['peak_mib']:.0f}**",
                     f"**{r['delta_mib']:.0f}**", fmt_time(r["epoch_s_incl_build"])])
    return (["## Memory (peak resident set, MiB)", "",
             "Each backend in its own subprocess (`python -m benchmarks.memory`), reading its own peak resident set "
             "(`VmHWM` of /proc/self/status; Linux carries `ru_maxrss` across fork + exec, so a child would inherit "
             "the parent's peak): after loading the 1080 float32 images (53 MiB) and the weights, after importing the "
             "framework (the baseline), and after building the model and training one epoch. Delta = peak - baseline."
             + (" (--quick: only NumPy, PyTorch and the TF custom loop, run concurrently, so their epoch times overlap.)" if results["meta"]["quick"] else ""), ""]
            + _table(["Backend", "Data loaded", "Framework-import baseline", "Peak (one epoch)", "Delta over baseline",
                      "Epoch incl. build"], rows))


def _profile(results: dict) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    p = prof["profile"]
    lines = ["## PyTorch: where the step loses time", "",
             f"`torch.profiler` over {p['steps']} steps of the shipped Trainer (self CPU time per step; "
             f"total {p['total_ms_per_step']:.1f} ms/step of CPU time across threads):", ""]
    rows = [[f"`{o['name']}`", f"{o['self_ms_per_step']:.2f}", f"{o['calls_per_step']:.0f}", f"{100 * o['share']:.1f}%"]
            for o in p["ops"]]
    lines += _table(["Operator", "Self ms/step", "Calls/step", "Share"], rows)
    variants = prof["variants"]
    shipped = median_of(variants, key="shipped")
    rows = []
    for v in variants:
        s = v["seconds"]
        diff = v.get("max_abs_param_diff_after_1_step")
        rows.append([v["label"], f"**{fmt_time(s['median'])}**", fmt_range(s), fmt_ratio(ratio_or_none(shipped, s["median"])),
                     "—" if diff is None else f"{diff:.1e}"])
    lines += ["Prototype variants of the training step (`benchmarks/torch_variants.py`, functional PyTorch with the "
              "shipped TF1 Adam), timed interleaved with the shipped Trainer. \"Speed-up\" is shipped time / variant "
              "time; the last column is the largest weight difference from the shipped Trainer after one step from "
              "the same weights.", ""]
    lines += _table(["Variant", "Median", "Min – max", "Speed-up vs shipped", "Max |Δw| after 1 step"], rows)
    best = min((v for v in variants if v["key"] != "shipped"), key=lambda v: v["seconds"]["median"], default=None)
    if best is not None and shipped:
        lines += [f"Fastest: {best['label']} at {fmt_time(best['seconds']['median'])}, "
                  f"{fmt_ratio(shipped / best['seconds']['median'])} the shipped step's speed.", ""]
    return lines


def _numpy_phases(results: dict) -> list[str]:
    rows_in = results.get("numpy_phases")
    if not rows_in:
        return []
    t = {row["key"]: row["seconds"]["median"] for row in rows_in}
    step = t.get("step")
    conv1_bound, _ = _layer_bound(results, "conv1", "forward")
    rows = []
    for row in rows_in:
        s = row["seconds"]
        bound = conv1_bound if row["key"] == "conv1_forward" else None
        rows.append([row["label"], f"**{fmt_time(s['median'])}**", fmt_range(s),
                     f"{100 * s['median'] / step:.0f}%" if step else "—",
                     fmt_ratio(ratio_or_none(s["median"], bound)) if bound else "—"])
    rest = None
    if None not in (step, t.get("conv1_forward"), t.get("conv1_dW")):
        rest = step - t["conv1_forward"] - t["conv1_dW"]
        rows.append(["the rest (layers after pool1, cost, Adam, checks): step minus the two conv1 phases",
                     f"**{fmt_time(rest)}**", "", f"{100 * rest / step:.0f}%", "—"])
    lines = ["## NumPy: where the step goes", "",
             "The shipped training step and its conv1 phases (`reference.fused`, on "
             f"{results['meta'].get('numpy_block_workers', '?')} block workers), timed interleaved on the "
             "course's first mini-batch. The conv1 forward's bound is conv1's FLOPs at the peak (it also pools).", ""]
    lines += _table(["Phase", "Median", "Min – max", "Share of the step", "x conv1 forward bound"], rows)
    return lines + [""]


def _conv1_account(results: dict) -> list[str]:
    """Which kernel keeps each step above 3x the limit: conv1's, against its own bound."""
    b = bounds(results)
    steps, layers = results.get("steps") or [], results.get("layers") or []
    if not b:
        return []
    forward_bound, _ = _layer_bound(results, "conv1", "forward")
    backward_bound, _ = _layer_bound(results, "conv1", "backward")
    lines = []
    for key, impl in (("torch", "torch"), ("tf", "tf")):
        step = median_of(steps, backend=key)
        fwd, bwd = (median_of(layers, layer="conv1", direction=d, impl=impl) for d in ("forward", "backward"))
        if None in (step, fwd, bwd):
            continue
        lines.append(f"- {STEP_LABELS[key]}: the step is {fmt_ratio(step / b['step_s'])} the limit; conv1's forward "
                     f"kernel takes {fmt_time(fwd)} ({100 * fwd / step:.0f}% of the step, {fmt_ratio(fwd / forward_bound)} "
                     f"its FLOP bound) and its backward with dX, as the per-layer table times it, {fmt_time(bwd)} "
                     f"({fmt_ratio(bwd / backward_bound)} its bound).")
    phases = {row["key"]: row["seconds"]["median"] for row in results.get("numpy_phases") or []}
    if "conv1_forward" in phases and "step" in phases:
        lines.append(f"- NumPy: the step is {fmt_ratio(phases['step'] / b['step_s'])} the limit; its fused conv1 forward "
                     f"takes {fmt_time(phases['conv1_forward'])}, {100 * phases['conv1_forward'] / phases['step']:.0f}% "
                     f"of the step and {fmt_ratio(phases['conv1_forward'] / forward_bound)} conv1's FLOP bound "
                     f"(a (48 x 8) kernel matrix is too thin for BLAS to reach peak; im2col copy and window argmax).")
    return lines


def _findings(results: dict) -> list[str]:
    """A few sentences computed from this run's numbers (no hand-written conclusions)."""
    steps, layers = results.get("steps") or [], results.get("layers") or []
    lines = []
    for base in ("tf", "tf1", "keras_fit"):
        main = median_of(steps, backend=base)
        other = [r for r in steps if r["backend"].startswith(base + "+onednn")]
        if main and other:
            value = other[0]["backend"].partition("+onednn")[2]
            ratio = main / other[0]["seconds"]["median"]
            lines.append(f"- {STEP_LABELS[base]}: TF_ENABLE_ONEDNN_OPTS={value} makes a step {fmt_ratio(ratio)} "
                         f"{'faster' if ratio >= 1 else 'slower'} than this process's setting "
                         f"({fmt_time(other[0]['seconds']['median'])} vs {fmt_time(main)}).")
    numpy_s, torch_s = median_of(steps, backend="numpy"), median_of(steps, backend="torch")
    if numpy_s and torch_s:
        conv1 = [(median_of(layers, layer="conv1", direction="forward", impl=k)) for k in ("numpy", "torch")]
        detail = (f"; conv1 forward alone takes {fmt_time(conv1[0])} in fast NumPy vs {fmt_time(conv1[1])} in PyTorch"
                  if None not in conv1 else "")
        lines.append(f"- NumPy's step is {fmt_ratio(numpy_s / torch_s)} PyTorch's{detail}.")
    lines += _conv1_account(results)
    prof = results.get("profile")
    if prof:
        v = {row["key"]: row["seconds"]["median"] for row in prof["variants"]}
        shipped = v.get("shipped")
        notes = []
        for key, text in (("shipped_1thread", "1 thread instead of {t}"), ("shipped_no_mkldnn", "mkldnn disabled"),
                          ("crop_cl", "over-pad + crop conv"), ("ops_nchw", "contiguous NCHW input"),
                          ("ops_cl_poolrelu", "max-pool before ReLU")):
            if shipped and key in v:
                threads = (results["meta"].get("torch_threads") or {}).get("intra_op")
                notes.append(f"{text.format(t=threads)} {fmt_ratio(shipped / v[key])}")
        if notes:
            lines.append("- PyTorch step speed relative to the shipped Trainer: " + ", ".join(notes) + ".")
        top = prof["profile"]["ops"][:3]
        if top:
            lines.append("- PyTorch's largest operators: " + ", ".join(
                f"`{o['name']}` {100 * o['share']:.0f}%" for o in top) + " of its CPU time.")
    return (["## Findings (computed from this run)", ""] + lines + [""]) if lines else []


def render_markdown(results: dict) -> str:
    """The whole BENCHMARKS.md text."""
    meta = results["meta"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command'].strip()}` on {meta['date']} in {meta.get('wall_s', '?')} s "
        f"(sections: {', '.join(meta['sections'])}). Regenerate with `signs bench` (or `python -m benchmarks`) on a "
        f"quiet machine; the JSON of this run is `{meta.get('json_out', 'benchmarks/results.json')}`.",
        "",
    ]
    from benchmarks.inference import inference_markdown

    for part in (_setup, _targets, _findings, _limit, _layers, _steps, _epochs, _memory, _profile,
                 _numpy_phases, inference_markdown, _by_hand):
        lines += part(results)
    return "\n".join(lines).rstrip() + "\n"


BY_HAND = Path(__file__).with_name("by_hand.md")  # sections `signs bench` does not measure


def _by_hand(results: dict) -> list[str]:
    """The hand-measured sections (benchmarks/by_hand.md), kept as they are after the measured ones
    so that regenerating the report does not drop them; its leading HTML comment is left out."""
    if not BY_HAND.is_file():
        return []
    text = BY_HAND.read_text(encoding="utf-8")
    if text.startswith("<!--"):
        text = text[text.index("-->") + 3:]
    return [*text.strip("\n").splitlines(), ""]


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_outputs(results: dict, out: Path, json_out: Path) -> None:
    """Write the Markdown report and the JSON results, each atomically (temp file, then rename)."""
    text = render_markdown(results)
    with atomic_path(json_out, force=True) as tmp:
        tmp.write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    with atomic_path(out, force=True) as tmp:
        tmp.write_text(text)
