"""The whole network in every pair of frameworks: same weights, same inputs, same numbers.

For each kind of weights (course-exact init, seeded Glorot, after a few Adam steps), each input set
(the course's randn(2, 64, 64, 3), random batches of 1, 7 and 64, the real SIGNS test images),
one-hot and soft labels, float32 and float64: every activation Z1 A1 P1 Z2 A2 P2 F Z3, the cost and
the gradients db3 dW3 dW2 dW1 dX agree between numpy-tf, numpy-torch and tf-torch within
signs.tolerances (float64: 1e-10 relative to the tensor's scale).
"""

from __future__ import annotations

import numpy as np
import pytest

from parity_helpers import (
    DTYPES,
    INPUT_KINDS,
    LABEL_KINDS,
    WEIGHT_KINDS,
    cast,
    check_case,
    make_inputs,
    make_labels,
)
from reference.spec import ACTIVATION_NAMES, activation_shapes, param_shapes
from signs.compare import compare_results
from signs.tolerances import FLOAT64_PARITY
from signs.verify.forward import forward_backward_all
from signs.verify.options import course_vectors


def _labels(kind: str, inputs: str, m: int, signs_test) -> np.ndarray:
    if kind == "onehot" and inputs == "signs_test":
        return signs_test[1]  # the real labels
    return make_labels(kind, m, seed=1000 + m)


def _model_cases() -> list[tuple[str, str, str]]:
    """(weights, inputs, labels): every combination on the small inputs (course vectors, 1, 7
    images); the two large ones (64 random images, the 120 real test images) with a few kinds of
    weights and both kinds of labels between them, to keep the suite fast (measure_tolerances.py
    runs the full product)."""
    cases = [(w, i, lab) for w in WEIGHT_KINDS for i in ("course", "random1", "random7")
             for lab in LABEL_KINDS]
    cases += [("course", "random64", "onehot"), ("glorot", "random64", "soft"),
              ("trained", "random64", "onehot")]
    cases += [("course", "signs_test", "onehot"), ("trained", "signs_test", "soft")]
    return cases


MODEL_CASES = _model_cases()


def test_model_cases_cover_every_kind():
    assert {c[0] for c in MODEL_CASES} == set(WEIGHT_KINDS)
    assert {c[1] for c in MODEL_CASES} == set(INPUT_KINDS)
    for inputs in INPUT_KINDS:
        assert {c[2] for c in MODEL_CASES if c[1] == inputs} == set(LABEL_KINDS)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("weights, inputs, labels", MODEL_CASES,
                         ids=["-".join(case) for case in MODEL_CASES])
def test_forward_backward_agree(request, parity_backends, shared_weights, weights, inputs, labels,
                                dtype):
    signs_test = request.getfixturevalue("signs_test_arrays") if inputs == "signs_test" else None
    X = make_inputs(inputs, signs_test)
    Y = _labels(labels, inputs, X.shape[0], signs_test)
    title = f"{weights} weights, {inputs} inputs, {labels} labels, {np.dtype(dtype).name}"
    report, _ = check_case(parity_backends, shared_weights[weights], X, Y, dtype, title)
    report.raise_for_failure()


def test_outputs_have_spec_shapes_and_dtype(parity_backends, shared_weights):
    """Shapes come from reference.spec, not from another backend that could share a mistake."""
    m = 3
    X, Y = make_inputs("random7")[:m], make_labels("soft", m, seed=5)
    expected = dict(activation_shapes(m=m), cost=())
    expected.update({f"d{name}": shape for name, shape in param_shapes().items()})
    expected["dX"] = X.shape
    for dtype in DTYPES:
        results = forward_backward_all(parity_backends, cast(shared_weights["glorot"], dtype),
                                       X.astype(dtype), Y.astype(dtype))
        for backend, outputs in results.items():
            for name, shape in expected.items():
                assert outputs[name].shape == shape, (backend, name)
                assert outputs[name].dtype == dtype, (backend, name)


def test_course_randn_labels_forward_and_cost_agree(parity_backends, shared_weights):
    """The course's own cell: Y = randn(2, 6) (not a distribution). The cost
    -mean(sum(Y * log softmax(Z3))) is defined for any Y, so forward and cost must agree; the
    gradients are not compared (TF backpropagates softmax - Y, which assumes rows sum to 1)."""
    rng = np.random.RandomState(1)
    X, Y = rng.randn(2, 64, 64, 3), rng.randn(2, 6)
    np.testing.assert_array_equal(X, course_vectors().X)  # the same stream as the course
    names = tuple(ACTIVATION_NAMES) + ("cost",)
    for dtype in DTYPES:
        results = forward_backward_all(parity_backends, cast(shared_weights["course"], dtype),
                                       X.astype(dtype), Y.astype(dtype))
        compare_results(results, names, dtype, title="course randn labels").raise_for_failure()


def test_float64_outputs_are_computed_in_float64(parity_backends, shared_weights):
    """A float64 result that is exactly float32-representable was computed in float32 and cast:
    every backend's float64 outputs must carry more precision than float32 can hold."""
    X, Y = make_inputs("random7"), make_labels("onehot", 7, seed=3)
    report, results = check_case(parity_backends, shared_weights["trained"], X, Y, np.float64)
    report.raise_for_failure()
    for backend, outputs in results.items():
        for name in ("Z1", "Z3", "cost", "dW1", "dX"):
            value = outputs[name]
            rounded = value.astype(np.float32).astype(np.float64)
            scale = np.abs(value).max()
            assert np.abs(rounded - value).max() / scale > 100 * FLOAT64_PARITY, (backend, name)
