"""``signs compare`` end to end: correct ports agree with no trap, every broken port names its trap.

The candidates are files a user could have written (tests/port/candidates/, examples/ports/),
run through :func:`signs.port.session.run_compare` (the library function the command wraps) and,
for the exit codes, JSON and one-line errors, through ``signs.cli.main`` in-process. Trap tests
run float64 only (the exact ground truth, where a semantic difference is clearest) on the
course's two vectors; steps tests take two steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signs.cli import main
from signs.port.session import CompareOptions, run_compare

ROOT = Path(__file__).resolve().parents[2]
TORCH = ROOT / "tests" / "port" / "candidates" / "torch_ports.py"
KERAS = ROOT / "tests" / "port" / "candidates" / "keras_ports.py"
EXAMPLES = ROOT / "examples" / "ports"
F64 = ("float64",)


def compare(candidate: str, **options):
    options.setdefault("dtypes", F64)
    return run_compare(CompareOptions(candidate, **options))


def trap_ids(result) -> set[tuple[str, str | None]]:
    return {(t.id, t.layer) for t in result.traps}


# ---------------------------------------------------------------------------------------------
# Correct ports: agree, no trap (a false alarm is a defect)


@pytest.mark.parametrize("candidate, layout", [
    (f"{EXAMPLES}/course_torch.py:CourseNet", "NCHW"),
    (f"{EXAMPLES}/course_torch.py:CourseNetSamePadding", "NCHW"),
    (f"{TORCH}:correct", "NCHW"),
    (f"{TORCH}:functional_nhwc", "NHWC"),
    (f"{TORCH}:same_padding", "NCHW"),
])
def test_correct_torch_ports_agree_in_both_dtypes(candidate, layout):
    result = compare(candidate, dtypes=("float64", "float32"))
    assert result.verdict == "agree", result.format_text()
    assert result.exit_code == 0 and result.traps == []
    assert result.input_layout == layout
    assert len(result.reports) == 2


def test_functional_port_activations_are_found_inside_forward():
    """F.conv2d, F.max_pool2d, torch.relu, reshape and x @ W are captured although no module
    computes them; relu(maxpool(z)) gives P1 directly, so A1 and A2 are honestly not found."""
    result = compare(f"{TORCH}:functional_nhwc")
    assert result.not_found["float64"] == ["A1", "A2"]
    labels = result.activations["float64"]
    assert labels["Z1"].startswith("conv2d") and labels["F"].startswith("reshape")
    assert labels["Z3"].startswith("matmul")


def test_tf1_adam_steps_of_a_correct_torch_port_agree():
    result = compare(f"{EXAMPLES}/course_torch.py:CourseNet", steps=2,
                     optimizer=f"{EXAMPLES}/course_torch.py:tf1_adam", dtypes=("float64", "float32"))
    assert result.verdict == "agree", result.format_text()
    assert [r.title.split(":")[0] for r in result.reports] == ["float64"] * 2 + ["float32"] * 2


def test_own_weights_converted_correctly_agree():
    result = compare(f"{TORCH}:converted_correctly", own_weights=True)
    assert result.verdict == "agree", result.format_text()
    assert result.reports[0].title.startswith("own weights")


# ---------------------------------------------------------------------------------------------
# One broken port per trap


@pytest.mark.parametrize("candidate, options, trap, layer", [
    ("padding_before", {}, "same-padding-side", "conv1"),
    ("flatten_nchw", {}, "flatten-order", "dense"),
    ("softmax_output", {}, "softmax-output", "dense"),
    ("pool_ceil", {"input_size": (60, 60)}, "pool-padding", "pool1"),
    ("conv_bias", {}, "conv-bias", None),
    ("conv_bias", {"steps": 2, "optimizer": f"{TORCH}:tf1_adam"}, "conv-bias", None),
    ("correct", {"loss": f"{TORCH}:sum_loss"}, "loss-reduction", None),
    ("correct", {"steps": 2}, "adam-epsilon", None),
    ("correct", {"steps": 2, "optimizer": f"{TORCH}:tf1_adam_lr_001"}, "optimizer-hyperparameters", None),
    ("converted_kernel_hw_swapped", {"own_weights": True}, "kernel-layout", "conv1"),
    ("converted_dense_rows_nchw", {"own_weights": True}, "dense-layout", "dense"),
])
def test_each_torch_trap_is_named(candidate, options, trap, layer):
    result = compare(f"{TORCH}:{candidate}", **options)
    assert result.verdict == "diverge" and result.exit_code == 1
    assert (trap, layer) in trap_ids(result), result.format_text()
    assert len({t.id for t in result.traps}) == 1, result.format_text()


def test_stock_torch_adam_is_a_divergence_of_the_optimizer_alone():
    result = compare(f"{TORCH}:correct", steps=2)
    assert result.reports[0].ok and not result.reports[1].ok
    assert "only the optimizer steps differ" in result.verdict_line()


def test_a_pool_trap_hidden_at_64_is_not_reported():
    """64 is a multiple of every stride: ceil_mode changes nothing there, so nothing is reported."""
    result = compare(f"{TORCH}:pool_ceil")
    assert result.verdict == "agree" and result.traps == []


# ---------------------------------------------------------------------------------------------
# Keras


@pytest.fixture(scope="module")
def keras_example():
    return compare(f"{EXAMPLES}/course_keras.py:course_model", steps=2, dtypes=("float64", "float32"))


def test_keras_example_agrees_with_stock_adam(keras_example):
    assert keras_example.verdict == "agree", keras_example.format_text()
    assert keras_example.framework == "keras" and len(keras_example.reports) == 4


def test_keras_fused_relu_hides_z_but_agrees():
    result = compare(f"{KERAS}:sequential_fused_relu")
    assert result.verdict == "agree", result.format_text()
    assert result.not_found["float64"] == ["Z1", "Z2"]


def test_saved_keras_file_is_loaded_safely_and_agrees(tmp_path):
    from signs.port.load import call_user, load_callable, parse_callable

    path = tmp_path / "port.keras"
    call_user(load_callable(*parse_callable(f"{KERAS}:correct", "test"), "test"), (), "test").save(path)
    result = compare(str(path), dtypes=("float64", "float32"))
    assert result.verdict == "agree", result.format_text()


@pytest.mark.parametrize("candidate, options, trap, layer", [
    ("conv1_valid", {}, "padding-mode", "conv1"),
    ("default_bias", {}, "conv-bias", None),
    ("correct", {"steps": 2, "optimizer": f"{KERAS}:adam_default_epsilon"}, "adam-epsilon", None),
])
def test_keras_traps_are_named(candidate, options, trap, layer):
    result = compare(f"{KERAS}:{candidate}", **options)
    assert result.verdict == "diverge"
    assert (trap, layer) in trap_ids(result), result.format_text()


def test_tf1_course_code_agrees():
    result = compare(str(EXAMPLES / "course_tf1.py"), steps=1)
    assert result.verdict == "agree", result.format_text()
    assert result.framework == "tf1"


# ---------------------------------------------------------------------------------------------
# The command: exit codes, JSON, one-line errors


def test_cli_json_of_a_diverging_port(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["compare", f"{TORCH}:padding_before", "--dtype", "float64", "--json-out", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["verdict"] == "diverge" and report["first_divergence"] == "Z1"
    trap = report["traps"][0]
    assert trap["id"] == "same-padding-side" and trap["layer"] == "conv1"
    assert trap["fix"] and trap["evidence"]["error_vs_altered"] <= trap["evidence"]["tolerance"]
    z1 = next(r for r in report["rows"] if r["name"] == "Z1")
    assert z1["verdict"] == "FAIL" and len(z1["worst_index"]) == 4
    assert "same-padding-side (conv1)" in capsys.readouterr().out


def test_cli_agreeing_port_exits_0_with_json(capsys):
    assert main(["compare", f"{TORCH}:correct", "--dtype", "float64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "agree" and report["first_divergence"] is None
    assert report["traps"] == [] and {r["name"] for r in report["rows"]} >= {"Z1", "dX", "cost"}


def test_help_says_the_file_is_executed(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "executed as Python" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv, words", [
    (["missing.py:Net"], "no such file"),
    ([f"{TORCH}:nothing_here"], "callables defined there"),
    ([f"{TORCH}:sum_loss"], "raised TypeError"),
    ([f"{TORCH}:correct", "--map", "fc.weight=W9"], "--map"),
    ([f"{TORCH}:correct", "--map", "nope=W1"], "no candidate parameter named nope"),
    ([f"{TORCH}:correct", "--loss", f"{TORCH}:missing"], "--loss"),
    ([f"{ROOT}/README.md"], "CANDIDATE: expected"),
])
def test_bad_candidates_are_one_line_errors(argv, words, capsys):
    assert main(["compare", *argv, "--dtype", "float64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("signs compare: error:") and len(err.splitlines()) == 1
    assert words in err


def test_keras_stock_adam_with_python_numbers_agrees_in_float64():
    """Keras rounds Python-number betas to float32 in its bias correction; in a float64 run that is
    an artifact, not the port's: the float64 steps must still agree (and say what was done)."""
    result = compare(f"{KERAS}:correct", steps=2, optimizer=f"{KERAS}:adam_course")
    assert result.verdict == "agree", result.format_text()
    assert any("float64 constants" in note for note in result.notes)


# ---------------------------------------------------------------------------------------------
# TF32 (no GPU here: its rounding is emulated on the CPU and the settings reported as CUDA's)


@pytest.fixture
def cuda_with_tf32(monkeypatch):
    """The torch adapter reports what torch says on a CUDA device with TF32 enabled."""
    from signs.port import torch_adapter

    def settings(device):
        return {"framework": "torch", "device": "cuda:0", "cuda": True,
                "torch.backends.cuda.matmul.allow_tf32": True,
                "torch.backends.cudnn.allow_tf32": True}

    monkeypatch.setattr(torch_adapter, "torch_settings", settings)


def test_tf32_rounding_on_cuda_is_named(cuda_with_tf32):
    result = compare(f"{TORCH}:tf32_emulated", dtypes=("float32",))
    assert result.verdict == "diverge"
    assert ("tf32", None) in trap_ids(result), result.format_text()


def test_tf32_settings_alone_do_not_make_a_trap(cuda_with_tf32):
    """TF32 on, but the numbers are IEEE float32's: nothing diverges, nothing is reported."""
    result = compare(f"{TORCH}:correct", dtypes=("float32",))
    assert result.verdict == "agree" and result.traps == [], result.format_text()


def test_tf32_on_does_not_hide_a_real_trap(cuda_with_tf32):
    """A padding bug on a TF32 device: the re-run without TF32 still diverges, so TF32 is not
    blamed; the padding trap is."""
    result = compare(f"{TORCH}:padding_before", dtypes=("float32",))
    assert {t.id for t in result.traps} == {"same-padding-side"}, result.format_text()


# ---------------------------------------------------------------------------------------------
# Real images


@pytest.fixture(scope="module")
def glorot0_near_tie(signs_data_dir, tmp_path_factory):
    """Glorot seed 0 on the 120 test images: one pool1 window (sample 72) whose two cells are
    3e-8 apart; torch's float32 routes it to the other cell than the float64 truth, so dW1 and dX
    of a correct float32 port differ by up to 1.6e-4 and 8e-2 (relative)."""
    from reference.init import glorot_init
    from signs.convert import save_weights

    weights = tmp_path_factory.mktemp("tie") / "glorot0.safetensors"
    save_weights(glorot_init(0), str(weights))
    return dict(data=str(signs_data_dir), weights=str(weights), dtypes=("float32",))


def test_a_proven_near_tie_passes_as_tie(glorot0_near_tie):
    result = compare(f"{EXAMPLES}/course_torch.py:CourseNet", **glorot0_near_tie)
    assert result.verdict == "agree" and result.n_ties == 2, result.format_text()
    assert {c.name for c in result.reports[0].tied()} == {"dW1", "dX"}


def test_strict_fails_a_near_tie(glorot0_near_tie):
    result = compare(f"{EXAMPLES}/course_torch.py:CourseNet", strict=True, **glorot0_near_tie)
    assert result.verdict == "diverge" and result.traps == []
    assert "--strict" in result.verdict_line()


def test_real_near_tie_is_not_a_false_alarm(signs_data_dir, tmp_path):
    """Glorot seed 2 on the 120 test images has a pool1 window whose two cells are 2 float32 ulps
    apart (parity_tests/test_parity_ties.py): NumPy float32 routes it one way, torch the other.
    Against the float64 truth a correct float32 port must still agree."""
    from reference.init import glorot_init
    from signs.convert import save_weights

    weights = tmp_path / "glorot2.safetensors"
    save_weights(glorot_init(2), str(weights))
    result = compare(f"{EXAMPLES}/course_torch.py:CourseNet", data=str(signs_data_dir),
                     weights=str(weights), dtypes=("float32",))
    assert result.verdict == "agree", result.format_text()
    assert result.observations[0].X.shape[0] == 120


# ---------------------------------------------------------------------------------------------
# Parameter mapping: ambiguity, --map, missing tensors


def test_two_possible_w1_is_an_error_listing_both(capsys):
    assert main(["compare", f"{TORCH}:with_auxiliary_conv", "--dtype", "float64"]) == 2
    err = capsys.readouterr().err
    assert "2 parameters could be the course's W1 (conv1.weight, aux.weight" in err and "--map" in err


def test_map_settles_the_ambiguity_and_the_leftover_is_reported():
    result = compare(f"{TORCH}:with_auxiliary_conv", param_map="conv1.weight=W1")
    assert result.extra == {"aux.weight": "aux.weight"}
    assert result.reports[0].ok and result.verdict == "diverge"  # the model is not the course's
    assert "W1=conv1.weight" in result.mapping


def test_missing_dense_bias_means_the_model_is_not_the_courses(capsys):
    """It runs, so it is no usage error (2): its model is not the course's (1), listed."""
    assert main(["compare", f"{TORCH}:no_dense_bias", "--dtype", "float64", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "diverge" and report["first_divergence"] == "parameters"
    assert "found no parameter for the course's b3" in report["model_mismatch"]
    assert "fc.weight (6, 64)" in report["model_mismatch"]


def test_another_tie_break_is_unexplained_not_misattributed(tmp_path):
    """Flat image regions make exactly tied pool windows; a pool that sends their gradient to the
    last maximum (TF and torch: the first) differs in dX alone, in float64 too. No trap of the
    catalogue is that, so none may be reported."""
    import h5py
    import numpy as np

    images = np.full((2, 64, 64, 3), 128, dtype=np.uint8)
    images[:, 20:40, 10:50] = np.random.default_rng(0).integers(0, 255, (2, 20, 40, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "test_signs.h5", "w") as f:
        f["test_set_x"], f["test_set_y"], f["list_classes"] = images, np.array([0, 1]), np.arange(6)
    result = compare(f"{TORCH}:last_maximum_pool", data=str(tmp_path))
    assert result.verdict == "diverge" and result.first_divergence()[1].name == "dX"
    assert result.traps == [], result.format_text()


def test_json_out_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "report.json"
    out.write_text("keep me")
    assert main(["compare", f"{TORCH}:correct", "--dtype", "float64", "--json-out", str(out)]) == 2
    assert out.read_text() == "keep me" and "--force" in capsys.readouterr().err
    assert main(["compare", f"{TORCH}:correct", "--dtype", "float64", "--json-out", str(out),
                 "--force"]) == 0
    assert json.loads(out.read_text())["verdict"] == "agree"


@pytest.mark.parametrize("candidate", [f"{TORCH}:correct", f"{KERAS}:correct"])
def test_cuda_without_a_gpu_is_a_one_line_error(candidate, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["compare", candidate, "--device", "cuda", "--dtype", "float64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("signs compare: error:") and len(err.splitlines()) == 1


def test_float32_steps_judge_the_first_step_only(signs_data_dir, tmp_path):
    """Glorot seed 3 on the test images: a correct port's free-running float32 trajectory is
    6.5e-4 (W1) from the truth after 5 steps by rounding alone (chaos; float64 agrees to 1e-14).
    float32 judges step 1, float64 all five."""
    from reference.init import glorot_init
    from signs.convert import save_weights

    weights = tmp_path / "glorot3.safetensors"
    save_weights(glorot_init(3), str(weights))
    result = compare(f"{EXAMPLES}/course_torch.py:CourseNet", data=str(signs_data_dir), batch=64,
                     weights=str(weights), steps=5, optimizer=f"{EXAMPLES}/course_torch.py:tf1_adam",
                     dtypes=("float64", "float32"))
    assert result.verdict == "agree", result.format_text()
    steps64, steps32 = result.reports[1], result.reports[3]
    assert steps64.comparisons[steps64.pairs[0]]["W1"].ours_shape[0] == 5
    assert steps32.comparisons[steps32.pairs[0]]["W1"].ours_shape[0] == 1
