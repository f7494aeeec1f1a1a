"""``signs verify`` end to end through ``signs.cli.main``: exit codes, table, JSON, options, and a
clean message (no traceback) when a framework is missing."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import signs.verify.options
from signs.backends import NATIVE_BACKENDS, BackendUnavailable
from signs.cli import main
from signs.verify.forward import FORWARD_BACKWARD_NAMES
from signs.verify.options import VerifyOptions
from signs.verify.run import run_verification


def run_cli(capsys, *argv):
    """``signs verify`` on the three native frameworks unless ``argv`` names --backends (the
    runtimes onnx, keras-torch, keras-jax have their own tests below and in test_parity_runtimes)."""
    if "--backends" not in argv:
        argv = ("--backends", ",".join(NATIVE_BACKENDS), *argv)
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verdict(out: str) -> str:
    """The last paragraph of the output (the verdict, possibly wrapped), on one line."""
    return " ".join(out.strip().split("\n\n")[-1].split())


def fake_missing(monkeypatch, *missing):
    """Make get_backend raise BackendUnavailable for ``missing``, as if they were not installed."""
    real = signs.verify.options.get_backend

    def get_backend(name):
        if name in missing:
            raise BackendUnavailable(
                f"backend {name!r} is unavailable: No module named 'fake_{name}'. Install {name}."
            )
        return real(name)

    monkeypatch.setattr(signs.verify.options, "get_backend", get_backend)


def test_default_verify_passes_and_prints_one_row_per_quantity(parity_backends, capsys):
    code, out, err = run_cli(capsys)
    assert code == 0, out + err
    assert "course-exact initial weights" in out and "np.random.seed(1)" in out
    for dtype in ("float32", "float64"):
        assert f"{dtype}: forward and backward, batch 2" in out
    for name in FORWARD_BACKWARD_NAMES:
        assert sum(line.split()[0] == name for line in out.splitlines() if line.strip()) == 2
    assert "verdict: OK" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_output_parses_and_matches_the_checks(parity_backends, capsys, tmp_path):
    out_file = tmp_path / "verify.json"
    code, out, _ = run_cli(capsys, "--json", "--dtype", "float64", "--json-out", str(out_file))
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads(out_file.read_text())
    assert printed["ok"] is True and printed["exit_code"] == 0 and printed["dtypes"] == ["float64"]
    (report,) = printed["reports"]
    assert [row["name"] for row in report["rows"]] == list(FORWARD_BACKWARD_NAMES)
    for row in report["rows"]:
        for pair in row["pairs"].values():
            assert pair["ok"] and pair["max_rel"] <= pair["tolerance"] == 1e-10
    # --json-out refuses to overwrite without --force (checked before any work).
    code, _, err = run_cli(capsys, "--dtype", "float64", "--json-out", str(out_file))
    assert code == 2 and "already exists" in err


def test_two_backends_chosen_on_the_command_line(parity_backends, capsys):
    if not {"numpy", "torch"} <= set(parity_backends):
        pytest.skip("needs numpy and torch")
    code, out, _ = run_cli(capsys, "--backends", "numpy,torch", "--dtype", "float32", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["backends"] == ["numpy", "torch"] and result["skipped"] == {}
    assert result["reports"][0]["pairs"] == ["numpy-torch"]


def test_steps_compare_adam_state(parity_backends, capsys):
    code, out, _ = run_cli(capsys, "--steps", "2")
    assert code == 0, out
    assert "float64: 2 Adam steps, free-running" in out
    assert "float32: 2 single Adam steps from the float64 states" in out
    assert "float32: 2 Adam steps, free-running (a description, not a check" in out
    pairs = len(parity_backends) * (len(parity_backends) - 1) // 2
    assert sum(": together for " in line or ": part at step " in line for line in out.splitlines()) == pairs
    for name in ("costs", "m.W1", "v.b3"):
        assert any(line.startswith(f"{name} ") for line in out.splitlines())


def test_weights_file_and_real_data(parity_backends, capsys, tmp_path, signs_data_dir):
    from reference.init import glorot_init
    from signs.convert import save_weights

    path = tmp_path / "glorot.safetensors"
    save_weights(glorot_init(3), path)
    # float64: in float32 a near-tie in a max-pool window of a real photo can route one gradient
    # element differently in different frameworks (see parity_tests/README.md).
    code, out, _ = run_cli(capsys, "--weights", str(path), "--data", str(signs_data_dir),
                           "--batch", "16", "--dtype", "float64")
    assert code == 0, out
    assert str(path) in out and "test images" in out and "batch 16" in out


def test_missing_framework_is_reported_and_the_other_two_verified(parity_backends, capsys,
                                                                   monkeypatch):
    if not {"numpy", "torch"} <= set(parity_backends):
        pytest.skip("needs numpy and torch")
    fake_missing(monkeypatch, "tf")
    code, out, err = run_cli(capsys, "--dtype", "float64")
    assert code == 0
    assert "skipped tf: backend 'tf' is unavailable: No module named 'fake_tf'. Install tf." in out
    assert "Traceback" not in out + err
    assert "numpy-torch" in out and "numpy-tf" not in out
    assert verdict(out).startswith("verdict: OK") and "skipped tf" in verdict(out)


def test_fewer_than_two_backends_exits_2_with_a_message(capsys, monkeypatch):
    fake_missing(monkeypatch, "tf", "torch")
    code, out, err = run_cli(capsys)
    assert code == 2
    assert "need at least two backends" in err and "Traceback" not in out + err
    assert "skipped torch" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backends", "numpy"], "at least two backends"),
        (["--backends", "numpy,jax"], "jax"),
        (["--backends", "numpy,numpy"], "distinct"),
        (["--batch", "0"], "--batch"),
        (["--steps", "-1"], "--steps"),
        (["--weights", "nowhere.safetensors"], "nowhere"),
    ],
)
def test_bad_options_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def plant_victim(monkeypatch, victim: str, change) -> None:
    """Make backend ``victim`` return ``change(results, X)`` from its forward_backward."""
    real = signs.verify.options.get_backend

    def forward_backward(params, X, Y, **kwargs):
        return change(real(victim).forward_backward(params, X, Y, **kwargs), X)

    def get_backend(name):
        if name == victim:
            return types.SimpleNamespace(NAME=victim, forward_backward=forward_backward)
        return real(name)

    monkeypatch.setattr(signs.verify.options, "get_backend", get_backend)


def test_a_disagreeing_backend_exits_1_and_names_the_layer(parity_backends, capsys, monkeypatch):
    """One backend whose pool1 output is off by 1e-3 (and everything after it, consistently)."""
    victim = list(parity_backends)[-1]

    def shift_p1(results, X):
        results["P1"] = results["P1"] + results["P1"].dtype.type(1e-3)
        return results

    plant_victim(monkeypatch, victim, shift_p1)
    code, out, _ = run_cli(capsys, "--dtype", "float64")
    assert code == 1
    assert "first divergence: P1 (pool1)" in out
    assert verdict(out).startswith("verdict: FAIL") and "P1 (pool1)" in verdict(out)
    if len(parity_backends) == 3:
        assert f"{victim} disagrees with" in out


def test_a_float32_only_disagreement_fails_the_verdict(parity_backends, capsys, monkeypatch):
    """The course vectors (no data needed): float64 agrees, float32 logits are off by 1e-2 in
    one backend. The verdict must count the float32 report."""

    def shift_float32_logits(results, X):
        if X.dtype == np.float32:
            results["Z3"] = results["Z3"] + np.float32(1e-2)
        return results

    plant_victim(monkeypatch, list(parity_backends)[-1], shift_float32_logits)
    code, out, _ = run_cli(capsys, "--dtype", "both", "--json")
    printed = json.loads(out)
    assert code == 1 and printed["exit_code"] == 1 and printed["ok"] is False
    code, out, _ = run_cli(capsys, "--dtype", "both")
    assert code == 1
    assert verdict(out).startswith("verdict: FAIL: 1 of 2 checks fail")
    assert "float32: forward and backward, batch 2: Z3" in verdict(out)


def test_verify_library_call_matches_cli(parity_backends):
    result = run_verification(VerifyOptions(backends=NATIVE_BACKENDS, dtypes=("float64",)))
    assert result.exit_code == 0 and result.batch == 2
    report = result.reports[0]
    assert report.backends == tuple(parity_backends)
    assert report.worst("Z1") <= 1e-10 and np.isfinite(report.worst("dX"))


def test_cuda_request_without_a_gpu_is_one_clean_error(parity_backends, capsys):
    import importlib

    torch = importlib.import_module("torch") if "torch" in parity_backends else None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out, err = run_cli(capsys, "--device", "cuda", "--dtype", "float32")
    assert code == 2
    assert "device" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in out + err


def test_default_verify_checks_every_installed_runtime(parity_backends, runtime_backends, capsys):
    """No --backends: all six when installed; onnx rows of the cost and gradients are n/a, onnx is
    not run in float64 (said so), the Keras backends are said to run in subprocesses, keras-torch's
    float64 dense difference is known* (keras#23704) and passes; tables stay within 100 columns."""
    code = main(["verify"])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in runtime_backends:
        assert name in out.splitlines()[0]
    if "onnx" in runtime_backends:
        assert "onnx float64: not checked: onnxruntime's CPU provider has no float64 Conv kernel" in " ".join(out.split())
        dX_rows = [line for line in out.splitlines() if line.startswith("dX ") and "n/a" in line]
        assert dX_rows
    for name in ("keras-torch", "keras-jax"):
        if name in runtime_backends:
            assert f"{name}: the tf_model Keras model in a subprocess with KERAS_BACKEND={name[6:]}" in out
    if "keras-torch" in runtime_backends:
        assert "known*" in out and "keras-team/keras/issues/23704" in " ".join(out.split())
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_marks_inference_runtime_gradients_not_applicable(parity_backends, runtime_backends, capsys):
    if "onnx" not in runtime_backends:
        pytest.skip("onnx is not installed")
    code, out, _ = run_cli(capsys, "--backends", "numpy,onnx", "--dtype", "float32", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["reports"][0]["rows"]}
    assert rows["Z3"]["verdict"] == "ok" and rows["Z3"]["pairs"]["numpy-onnx"]["max_rel"] < 1e-5
    for name in ("cost", "db3", "dW3", "dW2", "dW1", "dX"):
        assert rows[name]["verdict"] == "n/a"
        assert rows[name]["pairs"]["numpy-onnx"]["not_applicable"] == "n/a (inference runtime)"


def test_missing_runtime_is_listed_with_its_pip_extra(parity_backends, capsys, monkeypatch):
    """keras-jax without jax: skipped, naming the extra; the others are still checked."""
    import importlib.util
    import sys

    import signs.keras_backends

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(signs.keras_backends.importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real_find_spec(name, *a))
    monkeypatch.delitem(sys.modules, "signs.keras_jax_backend", raising=False)
    code, out, _ = run_cli(capsys, "--backends", "numpy,torch,keras-jax", "--dtype", "float32")
    assert code == 0
    text = " ".join(out.split())
    assert "skipped keras-jax: backend 'keras-jax' is unavailable: keras-jax needs jax" in text
    assert "pip install 'signs-parity[jax,tf]'" in text
