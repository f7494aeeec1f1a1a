"""The runtimes outside the three frameworks: the exported ONNX file in onnxruntime (forward only,
float32) and the tf_model Keras model on Keras 3's torch and JAX backends (one subprocess each per
test session), against NumPy, TensorFlow and PyTorch, every quantity, with the tolerances of
signs.tolerances.RUNTIME_PARITY.

Shapes are kept to a few (batch 2 and 7) because every new shape costs the JAX backend a
compilation of each op (seconds each on a loaded 2-core machine).
"""

from __future__ import annotations

import numpy as np
import pytest

from parity_helpers import runtime_report
from reference.spec import ACTIVATION_NAMES
from signs.compare import compare_results
from signs.tolerances import RUNTIME_PARITY
from signs.upstream import classify_keras_float64_matmul
from signs.verify.forward import FORWARD_BACKWARD_NAMES
from signs.verify.options import cast_arrays, course_vectors

RUNTIMES = ("onnx", "keras-torch", "keras-jax")
# Each (weights, dtype) costs onnx an export, each (batch, dtype) the JAX backend compilations.
CASES = [("course", "course", np.float32), ("course", "course", np.float64),
         ("glorot", "random7", np.float32), ("trained", "course", np.float64)]


def _inputs(kind: str, dtype):
    if kind == "course":
        inputs = course_vectors(2)
        X, Y = inputs.X, inputs.Y
    else:  # random7: seven U[0, 1) images (pixels / 255 scale), one-hot labels
        rng = np.random.RandomState(11)
        X = rng.rand(7, 64, 64, 3)
        Y = np.eye(6)[rng.randint(0, 6, size=7)]
    return X.astype(dtype), Y.astype(dtype)


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
@pytest.mark.parametrize("weights,inputs,dtype", CASES, ids=lambda v: getattr(v, "__name__", v))
def test_runtime_agrees_with_every_framework(runtime, all_three_backends, shared_weights, weights,
                                             inputs, dtype):
    name, module = runtime
    if np.dtype(dtype).name not in RUNTIME_PARITY[name]["dtypes"]:
        pytest.skip(f"{name} is not checked in {np.dtype(dtype).name} ({module.UNSUPPORTED_DTYPES})")
    params = cast_arrays(shared_weights[weights], dtype)
    X, Y = _inputs(inputs, dtype)
    report = runtime_report(name, module, all_three_backends, params, X, Y)
    report.raise_for_failure()
    checked = [n for n in report.names if report.verdict_of(("numpy", name), n) != "n/a"]
    assert checked == [n for n in FORWARD_BACKWARD_NAMES if n in RUNTIME_PARITY[name]["names"]]


@pytest.mark.parametrize("runtime", ["keras-torch"], indirect=True)
def test_keras_torch_float64_dense_is_known_upstream_defect_not_hidden(runtime, all_three_backends,
                                                                       shared_weights):
    """keras-torch float64 differs from the others from Z3 on (keras#23704): proven known*, which
    --strict fails; if Keras fixes it, this test says so (then remove the classification)."""
    name, module = runtime
    if module.float64_matmul_dtype() != "float32":
        pytest.fail("keras.ops.matmul keeps float64 on torch now: keras#23704 is fixed in this Keras; "
                    "drop signs.upstream's classification")
    params = cast_arrays(shared_weights["course"], np.float64)
    X, Y = _inputs("course", np.float64)
    report = runtime_report(name, module, all_three_backends, params, X, Y)
    assert report.ok and not report.strict_ok
    assert set(report.known) == {(other, name) for other in all_three_backends}
    assert all(report.verdict_of(("numpy", name), n) == "ok" for n in ACTIVATION_NAMES[:-1])


def test_known_verdict_needs_the_proof():
    """Planted: a keras-torch F off by 1e-9 (before the dense layer), or a Z3 off by 1e-3 (far
    beyond float32 rounding), or a Keras whose matmul keeps float64: each stays FAIL."""
    rng = np.random.RandomState(0)
    base = {n: rng.rand(2, 4) for n in ("F", "Z3")}
    dense_in_float32 = {"F": base["F"].copy(), "Z3": base["Z3"] * (1 + 3e-8)}
    far_off = {"F": base["F"].copy(), "Z3": base["Z3"] * (1 + 1e-3)}
    early = {"F": base["F"] * (1 + 1e-9), "Z3": base["Z3"] * (1 + 3e-8)}

    def known(candidate, matmul="float32"):
        report = compare_results({"numpy": base, "keras-torch": candidate}, ("F", "Z3"), np.float64)
        return classify_keras_float64_matmul(report, "keras-torch", matmul)

    assert known(dense_in_float32)[("numpy", "keras-torch")]["names"] == ["Z3"]
    assert known(far_off) == {}
    assert known(early) == {}
    assert known(dense_in_float32, matmul="float64") == {}


@pytest.mark.data
@pytest.mark.parametrize("runtime", ["onnx"], indirect=True)
def test_exported_onnx_file_gives_reference_logits_on_signs_test_images(runtime, signs_test_arrays, tmp_path):
    """`signs export` of Glorot weights, the file run in onnxruntime on the 120 real test images
    (X / 255, float32): the logits are the NumPy reference's within the Z3 tolerance, and the
    predicted classes are the same."""
    import onnx
    import onnxruntime as ort

    from reference.backend import predict_logits
    from reference.init import glorot_init
    from reference.weights_io import save_safetensors
    from signs.cli import main
    from reference.weights_io import params_sha256
    from signs.tolerances import onnx_tolerance, relative_error

    params = glorot_init(3, dtype=np.float32)
    weights = tmp_path / "w.safetensors"
    save_safetensors(params, weights)
    out = tmp_path / "model.onnx"
    assert main(["export", str(weights), str(out)]) == 0
    model = onnx.load(str(out))
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["signs.weights_sha256"] == params_sha256(params)
    assert model.opset_import[0].version >= 17
    X = signs_test_arrays[0].astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    logits = session.run(["logits"], {"input": X})[0]
    reference = predict_logits(params, X)
    assert relative_error(logits, reference) <= onnx_tolerance("Z3", np.float32)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), np.argmax(reference, axis=1))
