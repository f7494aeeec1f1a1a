"""``signs bench``: the quick layer sweep runs and writes the expected tables; the FLOP counting
and the target verdicts are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import limits, targets
from benchmarks.settings import parse_sections
from reference.spec import COURSE_MODEL

LAYERS = ("conv1", "pool1", "conv2", "pool2", "dense")


def test_quick_layer_sweep_writes_markdown_and_json(tmp_path):
    out = tmp_path / "B.md"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "signs", "bench", "--quick", "--only", "layers", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    results = json.loads((tmp_path / "B.json").read_text())  # --out B.md puts the JSON beside it

    rows = {(r["layer"], r["direction"], r["impl"]): r for r in results["layers"]}
    impls = {"numpy"} | {name for name in ("torch", "tf") if name not in results["meta"]["unavailable"]}
    for layer in LAYERS:
        for direction in ("forward", "backward"):
            expected = impls | ({"loops"} if layer != "dense" else set())
            got = {impl for (l, d, impl) in rows if (l, d) == (layer, direction)}
            assert got == expected, (layer, direction)
            for impl in expected:
                seconds = rows[(layer, direction, impl)]["seconds"]
                assert 0 < seconds["min"] <= seconds["median"] <= seconds["max"]
                # the Markdown table has one row per layer, pass and implementation
                label = targets.LAYER_IMPLS[impl]
                assert any(line.startswith(f"| {layer} | {direction} | {label}") for line in text.splitlines()), (layer, direction, impl)
    assert rows[("conv1", "forward", "loops")]["images"] == 1  # quick: conv1's loops on one image, scaled
    assert "| conv1 | forward | course loops (1 img x64) |" in text
    assert "## Machine limit" in text and "**Limit** of one step" in text and "CPU peak from its own numbers" in text
    assert "fast NumPy conv1 forward+backward >= 300x" in text
    assert "steps" not in results and "memory" not in results


def test_step_flops_follow_the_stated_counting():
    m = 64
    conv1 = 2 * m * 64 * 64 * (4 * 4 * 3) * 8  # 2*m*H_out*W_out*f*f*C_in*C_out
    conv2 = 2 * m * 8 * 8 * (2 * 2 * 8) * 16
    dense = 2 * m * 64 * 6
    work = limits.layer_work(COURSE_MODEL, m)
    assert work["conv1"]["forward"]["flops"] == conv1 == 201_326_592
    assert work["conv1"]["backward"]["flops"] == 2 * conv1  # dX and dW
    assert work["conv1"]["backward"]["train_flops"] == conv1  # training never needs conv1's dX
    assert work["conv2"]["backward"]["train_flops"] == 2 * conv2
    assert work["pool1"]["forward"]["flops"] == 0 and work["pool1"]["forward"]["bytes"] == 4 * m * (64 * 64 * 8 + 8 * 8 * 8)
    total = limits.step_flops(COURSE_MODEL, m)["total"]
    assert total == (conv1 + conv2 + dense + m * 6) + (conv1 + 2 * conv2 + 2 * dense + m * 6)


def _fake_results(numpy_s, torch_s, loops_s, fast_s):
    seconds = lambda s: {"median": s, "min": s, "max": s, "samples": [s, s, s]}
    return {
        "work": {"step_flops": {"total": 4e8}, "step_flops_per_image": {"total": 4e8 / 64}},
        "limit": {"peak_gflops": 100.0, "im2col_gflops": 10.0, "bandwidth_gbs": 10.0},
        "layers": [{"layer": "conv1", "direction": d, "impl": impl, "seconds": seconds(s)}
                   for d in ("forward", "backward") for impl, s in (("loops", loops_s), ("numpy", fast_s))],
        "steps": [{"backend": "numpy", "seconds": seconds(numpy_s)}, {"backend": "torch", "seconds": seconds(torch_s)}],
    }


def test_targets_report_met_and_missed_with_margins():
    by_name = {t["target"]: t for t in targets.evaluate_targets(_fake_results(0.03, 0.02, 6.0, 0.01))}
    assert by_name["conv1 fast vs loops"]["met"] and by_name["conv1 fast vs loops"]["value"] == pytest.approx(600)
    assert by_name["NumPy step vs PyTorch"]["met"] and "1.00x headroom" in by_name["NumPy step vs PyTorch"]["verdict"]
    # bound = 4e8 FLOP / 100 GFLOP/s = 4 ms: PyTorch at 20 ms is 5x, missed by 5/3 = 1.67x
    torch_target = by_name["PyTorch step vs bound"]
    assert torch_target["met"] is False and torch_target["value"] == pytest.approx(5.0)
    assert torch_target["verdict"] == "missed by 1.67x"
    assert by_name["TF custom-loop step vs bound"]["met"] is None  # not measured
    slow = {t["target"]: t for t in targets.evaluate_targets(_fake_results(0.05, 0.02, 1.0, 0.01))}
    assert slow["conv1 fast vs loops"]["verdict"] == "missed: 3.00x short"
    assert slow["NumPy step vs PyTorch"]["met"] is False


def test_step_bytes_are_every_activation_once_conv1_without_dX():
    m, f32 = 64, 4
    x, z1, p1 = m * 64 * 64 * 3 * f32, m * 64 * 64 * 8 * f32, m * 8 * 8 * 8 * f32
    w1 = 4 * 4 * 3 * 8 * f32
    work = limits.layer_work(COURSE_MODEL, m)
    assert work["conv1"]["backward"]["train_bytes"] == x + 2 * w1 + z1  # read x, W1, dZ1; write dW1
    conv1_pool1 = (x + w1 + z1) + (x + 2 * w1 + z1) + (z1 + p1) + (2 * z1 + p1)
    total = limits.step_bytes(COURSE_MODEL, m)
    assert conv1_pool1 < total < conv1_pool1 + 2 * 2**20  # conv2, pool2 and dense move under 2 MiB more
    assert 45 * 2**20 < total < 50 * 2**20


def test_the_limit_is_the_larger_of_the_flop_and_byte_bounds():
    results = _fake_results(0.03, 0.02, 6.0, 0.01)
    results["work"].update(step_bytes=50e6, step_bytes_per_image=50e6 / 64)
    results["limit"].update(cpu={"gflops": 200.0}, peak_best_gflops=150.0, bandwidth_best_gbs=10.0)
    b = targets.bounds(results)  # FLOPs: 4e8 / 200e9 = 2 ms; bytes: 50e6 / 10e9 = 5 ms
    assert b["flop_step_s"] == pytest.approx(2e-3) and b["byte_step_s"] == pytest.approx(5e-3)
    assert b["step_s"] == pytest.approx(5e-3)
    results["limit"].update(bandwidth_best_gbs=100.0, peak_best_gflops=400.0)  # a faster sample than the CPU's number
    b = targets.bounds(results)
    assert b["peak_gflops"] == 400.0 and b["step_s"] == pytest.approx(1e-3)


@pytest.mark.parametrize("vendor, lanes", [("AuthenticAMD", 8), ("GenuineIntel", 16)])
def test_cpu_peak_is_cores_times_fma_lanes_times_frequency(tmp_path, vendor, lanes):
    block = f"processor\t: {{}}\nvendor_id\t: {vendor}\ncpu MHz\t\t: 2500.000\nflags\t\t: sse avx2 fma avx512f\n"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("\n".join(block.format(k) for k in range(2)))
    peak = limits.cpu_peak(str(cpuinfo), cpufreq_path=str(tmp_path / "absent"))
    assert peak["cores"] == 2 and peak["lanes"] == lanes
    assert peak["gflops"] == pytest.approx(2 * lanes * 2 * 2 * 2.5)  # cores x lanes x pipes x FMA x GHz
    (tmp_path / "max").write_text("3000000\n")  # kHz: a cpufreq maximum wins over cpu MHz
    assert limits.cpu_peak(str(cpuinfo), cpufreq_path=str(tmp_path / "max"))["ghz"] == pytest.approx(3.0)


def test_only_rejects_unknown_sections():
    assert parse_sections("steps, layers") == ("layers", "steps")
    with pytest.raises(ValueError, match="--only: expected a comma-separated list"):
        parse_sections("layers,gpu")


def test_the_report_keeps_the_hand_measured_sections():
    """Regenerating BENCHMARKS.md must not drop the sections `signs bench` does not measure
    (benchmarks/by_hand.md: the compare timing and data-parallel images/s)."""
    import json

    from benchmarks.report import BY_HAND, render_markdown

    results = json.loads((BY_HAND.parent / "results.json").read_text(encoding="utf-8"))
    text = render_markdown(results)
    assert "## signs compare (measured separately" in text
    assert "## Data-parallel training (hand-measured" in text
    assert "<!--" not in text


def test_paired_ratio_compares_samples_of_the_same_round():
    """The median of per-round ratios, not the ratio of medians: with A = [1, 2, 3] and
    B = [3, 1, 2] the rounds say 1/3, 2 and 1.5 (median 1.5) while the medians are equal (1.0)."""
    from benchmarks.targets import paired_ratio

    rows = [{"backend": "a", "seconds": {"samples": [1.0, 2.0, 3.0]}},
            {"backend": "b", "seconds": {"samples": [3.0, 1.0, 2.0]}},
            {"backend": "c", "seconds": {"samples": [10.0, 15.0, 15.0]}}]
    assert paired_ratio(rows, "a", "b") == pytest.approx(1.5)
    assert paired_ratio(rows, "a", "c") == pytest.approx(2.0 / 15.0)  # rounds: 0.1, 2/15, 0.2
    assert paired_ratio(rows, "a", "missing") is None and paired_ratio(None, "a", "b") is None
