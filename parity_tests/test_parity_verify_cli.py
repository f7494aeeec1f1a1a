"""``signs verify`` end to end through ``signs.cli.main``: exit codes, table, JSON, options, and a
clean message (no traceback) when a framework is missing."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import signs.verify.options
from signs.backends import BackendUnavailable
from signs.cli import main
from signs.verify.forward import FORWARD_BACKWARD_NAMES
from signs.verify.options import VerifyOptions
from signs.verify.run import run_verification


def run_cli(capsys, *argv):
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


def test_a_disagreeing_backend_exits_1_and_names_the_layer(parity_backends, capsys, monkeypatch):
    """One backend whose pool1 output is off by 1e-3 (and everything after it, consistently)."""
    victim = list(parity_backends)[-1]
    real = signs.verify.options.get_backend

    def forward_backward(params, X, Y, **kwargs):
        results = real(victim).forward_backward(params, X, Y, **kwargs)
        results["P1"] = results["P1"] + results["P1"].dtype.type(1e-3)
        return results

    def get_backend(name):
        if name == victim:
            return types.SimpleNamespace(NAME=victim, forward_backward=forward_backward)
        return real(name)

    monkeypatch.setattr(signs.verify.options, "get_backend", get_backend)
    code, out, _ = run_cli(capsys, "--dtype", "float64")
    assert code == 1
    assert "first divergence: P1 (pool1)" in out
    assert verdict(out).startswith("verdict: FAIL") and "P1 (pool1)" in verdict(out)
    if len(parity_backends) == 3:
        assert f"{victim} disagrees with" in out


def test_verify_library_call_matches_cli(parity_backends):
    result = run_verification(VerifyOptions(dtypes=("float64",)))
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
