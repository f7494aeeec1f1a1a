"""``signs export``: the ONNX file's interface, metadata and checks, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'signs-parity[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install 'signs-parity[onnx]')")

import onnx  # noqa: E402

from reference.init import glorot_init  # noqa: E402
from reference.weights_io import save_npz  # noqa: E402
from signs.cli import main  # noqa: E402
from reference.weights_io import params_sha256  # noqa: E402
from signs.onnx_export import file_sha256  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(weights path, params, OUT.onnx) written once by `signs export` in float32."""
    folder = tmp_path_factory.mktemp("export")
    params = glorot_init(5, dtype=np.float32)
    weights = folder / "w.npz"
    save_npz(params, weights)
    out = folder / "model.onnx"
    assert main(["export", str(weights), str(out)]) == 0
    return weights, params, out


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_interface_nhwc_input_dynamic_batch_logits_output(exported):
    _, _, out = exported
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    (inp,), (output,) = model.graph.input, model.graph.output
    assert inp.name == "input" and output.name == "logits"
    assert isinstance(_dims(inp)[0], str) and _dims(inp)[1:] == [64, 64, 3]  # NHWC, symbolic batch
    assert _dims(output)[1:] == [6]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {o.domain: o.version for o in model.opset_import}[""] >= 17


def test_metadata_names_the_weights_and_the_spec(exported):
    weights, params, out = exported
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert metadata["signs.weights_sha256"] == params_sha256(params)
    assert metadata["signs.weights_file_sha256"] == file_sha256(weights)
    assert '"input_shape": [64, 64, 3]' in metadata["signs.model_spec"]


def test_params_sha256_depends_on_values_not_on_the_file_format():
    params = glorot_init(5, dtype=np.float32)
    changed = {**params, "b3": params["b3"] + np.float32(1e-7)}
    assert params_sha256(params) == params_sha256({k: v.copy() for k, v in params.items()})
    assert params_sha256(params) != params_sha256(changed)
    assert params_sha256(params) != params_sha256({k: v.astype(np.float64) for k, v in params.items()})


def test_batch_is_dynamic_in_onnxruntime(exported):
    import onnxruntime as ort

    from reference.backend import predict_logits

    _, params, out = exported
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for m in (1, 5):
        X = np.random.RandomState(m).rand(m, 64, 64, 3).astype(np.float32)
        logits = session.run(["logits"], {"input": X})[0]
        np.testing.assert_allclose(logits, predict_logits(params, X), rtol=0, atol=1e-5)


def test_refuses_to_overwrite_without_force(exported, capsys):
    weights, _, out = exported
    before = out.read_bytes()
    assert main(["export", str(weights), str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before


def test_float64_file_is_valid_onnx_with_double_input(exported, tmp_path, capsys):
    weights, _, _ = exported
    out = tmp_path / "model64.onnx"
    assert main(["export", str(weights), str(out), "--dtype", "float64"]) == 0
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


@pytest.mark.parametrize("argv, message", [
    (["nowhere.npz", "x.onnx"], "nowhere.npz"),
    (["WEIGHTS", "model.txt"], "expected a file name ending in .onnx"),
])
def test_bad_arguments_are_one_line_errors(exported, tmp_path, capsys, argv, message):
    weights, _, _ = exported
    argv = [str(weights) if a == "WEIGHTS" else str(tmp_path / a) if a.endswith((".onnx", ".txt")) else a
            for a in argv]
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
