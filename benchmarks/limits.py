"""The machine's limit and the model's work: FLOPs and bytes counted from ``reference.spec``.

Counting rules (stated in BENCHMARKS.md):

- conv forward: ``2 * m * n_H_out * n_W_out * f * f * n_C_in * n_C_out`` (one multiply and one add
  per kernel tap, padding taps included, as a dense im2col matmul does them).
- conv backward: ``dW`` costs one forward, ``dX`` one more. A training step never needs the input
  gradient of the first layer (conv1's ``dX``), so a training step counts conv1 backward = 1x its
  forward and conv2 backward = 2x. The per-layer benchmark computes both gradients for every layer
  (the course's ``conv_backward`` API), so there conv backward = 2x forward.
- dense forward ``2 * m * n_in * n_out + m * n_out`` (bias); backward ``dF`` and ``dW`` each
  ``2 * m * n_in * n_out`` plus ``m * n_out`` for ``db``.
- ReLU, max-pool, softmax cross-entropy and Adam (1,286 parameters) are counted as memory
  operations, not FLOPs: their bound is bytes moved / measured copy bandwidth.

The limit of a step is the larger of two bounds that do not move between runs: its FLOPs at the
CPU's peak (cores x float32 FMA lanes x 2 FMA pipes x 2 FLOP x frequency from /proc/cpuinfo, or
the best measured matmul rate if that is higher) and its least bytes (every activation a layer
reads or writes, once) at the best measured copy bandwidth.
"""

from __future__ import annotations

import numpy as np

from benchmarks.timing import Candidate, run_interleaved
from reference.spec import COURSE_MODEL, ModelSpec, activation_shapes, param_shapes

__all__ = [
    "LAYERS",
    "conv_flops",
    "layer_work",
    "step_flops",
    "step_bytes",
    "cpu_peak",
    "measure_limits",
]

LAYERS = ("conv1", "pool1", "conv2", "pool2", "dense")
FLOAT32_BYTES = 4


def conv_flops(m: int, out_hw: tuple[int, int], kernel: int, c_in: int, c_out: int) -> int:
    """Forward FLOPs of a conv layer: ``2 * m * n_H_out * n_W_out * f * f * c_in * c_out``."""
    return 2 * m * out_hw[0] * out_hw[1] * kernel * kernel * c_in * c_out


def _nbytes(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) * FLOAT32_BYTES


def layer_work(spec: ModelSpec = COURSE_MODEL, m: int = 64) -> dict[str, dict[str, dict[str, int]]]:
    """FLOPs and minimum bytes of every layer's forward and backward for a batch of ``m``.

    Returns
    -------
    ``{layer: {"forward": {"flops", "bytes", "train_flops"}, "backward": {...}}}``.
    ``flops`` is the per-layer benchmark's work (backward with the input gradient);
    ``train_flops`` what a training step needs (conv1 without ``dX``). ``bytes`` is the least
    traffic: every input read once and every output written once (float32).
    """
    a = activation_shapes(spec, m)
    p = param_shapes(spec)
    x_shape = (m, *spec.input_shape)
    work: dict[str, dict[str, dict[str, int]]] = {}
    for conv, x, z, w, first in (
        (spec.conv1, x_shape, a["Z1"], p["W1"], True),
        (spec.conv2, a["P1"], a["Z2"], p["W2"], False),
    ):
        fwd = conv_flops(m, z[1:3], conv.kernel, x[3], conv.filters)
        work[conv.name] = {
            "forward": {"flops": fwd, "train_flops": fwd, "bytes": _nbytes(x) + _nbytes(w) + _nbytes(z)},
            "backward": {
                "flops": 2 * fwd,
                "train_flops": fwd if first else 2 * fwd,
                # read x, W, dZ; write dX, dW
                "bytes": 2 * _nbytes(x) + 2 * _nbytes(w) + _nbytes(z),
                # a training step never writes conv1's dX
                "train_bytes": (1 if first else 2) * _nbytes(x) + 2 * _nbytes(w) + _nbytes(z),
            },
        }
    for pool, x, y in ((spec.pool1, a["A1"], a["P1"]), (spec.pool2, a["A2"], a["P2"])):
        work[pool.name] = {
            "forward": {"flops": 0, "train_flops": 0, "bytes": _nbytes(x) + _nbytes(y)},
            # read x (to find the maxima) and dY; write dX
            "backward": {"flops": 0, "train_flops": 0, "bytes": 2 * _nbytes(x) + _nbytes(y)},
        }
    n_in, n_out = p["W3"]
    mm = 2 * m * n_in * n_out
    work[spec.dense_name] = {
        "forward": {"flops": mm + m * n_out, "train_flops": mm + m * n_out,
                    "bytes": _nbytes(a["F"]) + _nbytes(p["W3"]) + _nbytes(a["Z3"])},
        "backward": {"flops": 2 * mm + m * n_out, "train_flops": 2 * mm + m * n_out,
                     "bytes": 2 * _nbytes(a["F"]) + 2 * _nbytes(p["W3"]) + _nbytes(a["Z3"])},
    }
    for passes in work.values():
        for counts in passes.values():
            counts.setdefault("train_bytes", counts["bytes"])
    return {name: work[name] for name in (spec.conv1.name, spec.pool1.name, spec.conv2.name,
                                          spec.pool2.name, spec.dense_name)}


def step_flops(spec: ModelSpec = COURSE_MODEL, m: int = 64) -> dict[str, int]:
    """FLOPs of one training step: ``{"forward", "backward", "total"}`` (conv1 without ``dX``)."""
    work = layer_work(spec, m)
    fwd = sum(w["forward"]["train_flops"] for w in work.values())
    bwd = sum(w["backward"]["train_flops"] for w in work.values())
    return {"forward": fwd, "backward": bwd, "total": fwd + bwd}


def step_bytes(spec: ModelSpec = COURSE_MODEL, m: int = 64) -> int:
    """Least bytes one training step moves: every layer's input and output read or written once,
    forward and backward (conv1 without ``dX``), float32. About 48 MiB for a batch of 64, most of
    it conv1's output and pool1's input (each (64, 64, 64, 8), 8 MiB)."""
    work = layer_work(spec, m)
    return sum(w[d]["train_bytes"] for w in work.values() for d in ("forward", "backward"))


# FMA pipes per core (two on every x86 core with AVX2 since Haswell and Zen 2). AMD's cores with
# AVX-512 (Zen 4) run it on 256-bit pipes, so only Intel's count 16 float32 lanes per pipe.
_FMA_PIPES = 2
CPUFREQ_MAX = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def cpu_peak(cpuinfo_path: str = "/proc/cpuinfo", cpufreq_path: str = CPUFREQ_MAX) -> dict | None:
    """The CPU's float32 peak from its own numbers, or None where /proc/cpuinfo says too little.

    ``cores x lanes x 2 FMA pipes x 2 FLOP (multiply + add) x GHz``: ``lanes`` is 16 with
    ``avx512f`` on an Intel CPU, 8 with ``avx2`` + ``fma`` (and AMD's AVX-512), 4 otherwise;
    cores are the logical processors listed; the frequency is cpufreq's maximum where the kernel
    exposes one, else the highest "cpu MHz" listed (in most VMs the nominal clock).
    """
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    blocks = [b for b in text.split("\n\n") if b.strip()]
    fields = [{k.strip(): v.strip() for k, v in (line.split(":", 1) for line in b.splitlines() if ":" in line)}
              for b in blocks]
    fields = [f for f in fields if "processor" in f]
    mhz = [float(f["cpu MHz"]) for f in fields if f.get("cpu MHz", "").replace(".", "", 1).isdigit()]
    max_freq = _cpufreq_max_mhz(cpufreq_path)
    if not fields or not (mhz or max_freq):
        return None
    ghz = (max_freq or max(mhz)) / 1000
    flags = set(fields[0].get("flags", "").split())
    vendor = fields[0].get("vendor_id", "")
    if "avx512f" in flags and vendor == "GenuineIntel":
        lanes, isa = 16, "avx512f"
    elif {"avx2", "fma"} <= flags:
        lanes, isa = 8, "avx2+fma" + (", AVX-512 on 256-bit pipes" if "avx512f" in flags else "")
    else:
        lanes, isa = 4, "sse"
    cores = len(fields)
    gflops = cores * lanes * _FMA_PIPES * 2 * ghz
    source = "cpufreq cpuinfo_max_freq" if max_freq else "/proc/cpuinfo cpu MHz"
    return {
        "gflops": gflops, "cores": cores, "lanes": lanes, "fma_pipes": _FMA_PIPES, "ghz": ghz, "isa": isa,
        "derivation": f"{cores} cores x {lanes} float32 lanes ({isa}; {vendor or 'vendor unknown'}) x "
                      f"{_FMA_PIPES} FMA pipes x 2 FLOP x {ghz:.3f} GHz ({source}) = {gflops:.1f} GFLOP/s",
    }


def _cpufreq_max_mhz(path: str) -> float | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip()) / 1000  # kHz -> MHz
    except (OSError, ValueError):
        return None


def _matmul_case(key: str, shape_a: tuple[int, int], shape_b: tuple[int, int], rng) -> tuple[Candidate, int]:
    A = rng.standard_normal(shape_a, dtype=np.float32)
    B = rng.standard_normal(shape_b, dtype=np.float32)
    out = np.empty((shape_a[0], shape_b[1]), dtype=np.float32)
    flops = 2 * shape_a[0] * shape_a[1] * shape_b[1]
    return Candidate(key, lambda: np.matmul(A, B, out=out)), flops


def measure_limits(reps: int, spec: ModelSpec = COURSE_MODEL, m: int = 64, seed: int = 0, target_s: float = 0.1) -> dict:
    """Measure float32 matmul GFLOP/s with NumPy and the copy bandwidth, interleaved.

    Matmuls: 1024 x 1024 x 1024 (the machine's practical peak); conv1's whole im2col product
    ``(m * 64 * 64, 48) @ (48, 8)``; and the ``(8192, 48) @ (48, 8)`` blocks
    ``reference.fast_layers`` actually issues. Bandwidth: ``np.copyto`` of 64 MiB (bytes read +
    written per second).

    Returns
    -------
    dict with "matmul" (key -> {"shape", "flops", "seconds", "gflops", "gflops_best"}),
    "bandwidth_gbs" (median), "bandwidth_best_gbs" (best sample), "peak_gflops" (the best median
    matmul rate), "peak_best_gflops" (the best sample of any matmul: the measured peak),
    "im2col_gflops", "cpu" (:func:`cpu_peak`).
    """
    rng = np.random.default_rng(seed)
    a = activation_shapes(spec, m)
    K1 = spec.conv1.kernel ** 2 * spec.input_shape[2]
    rows = a["Z1"][0] * a["Z1"][1] * a["Z1"][2]
    cases = {
        "1024^3": ((1024, 1024), (1024, 1024)),
        "conv1 im2col": ((rows, K1), (K1, spec.conv1.filters)),
        "conv1 im2col block": ((8192, K1), (K1, spec.conv1.filters)),
    }
    candidates, flops = [], {}
    for key, (sa, sb) in cases.items():
        cand, f = _matmul_case(key, sa, sb, rng)
        candidates.append(cand)
        flops[key] = f
    src = rng.standard_normal(16 * 1024 * 1024, dtype=np.float32)  # 64 MiB
    dst = np.empty_like(src)
    candidates.append(Candidate("copy", lambda: np.copyto(dst, src)))
    stats = run_interleaved(candidates, reps=reps, warmup=1, target_s=target_s)
    matmul = {}
    for key, (sa, sb) in cases.items():
        s = stats[key]
        matmul[key] = {
            "shape": f"({sa[0]}, {sa[1]}) @ ({sb[0]}, {sb[1]})",
            "flops": flops[key],
            "seconds": s.to_dict(),
            "gflops": flops[key] / s.median / 1e9,
            "gflops_best": flops[key] / s.min / 1e9,
        }
    copy = stats["copy"]
    return {
        "matmul": matmul,
        "bandwidth_gbs": 2 * src.nbytes / copy.median / 1e9,
        "bandwidth_best_gbs": 2 * src.nbytes / copy.min / 1e9,
        "copy_seconds": copy.to_dict(),
        "peak_gflops": max(v["gflops"] for v in matmul.values()),
        "peak_best_gflops": max(v["gflops_best"] for v in matmul.values()),
        "cpu": cpu_peak(),
        "im2col_gflops": matmul["conv1 im2col"]["gflops"],
    }
