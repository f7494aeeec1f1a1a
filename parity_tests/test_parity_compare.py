"""signs.compare on synthetic results (pure NumPy, no framework): the checks can pass and fail,
the worst element is found, and the first divergence follows the order of computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reference.spec import activation_shapes, param_shapes
from signs.compare import (
    BACKWARD_ORDER,
    DIVERGENCE_ORDER,
    FORWARD_ORDER,
    assert_close,
    compare,
    compare_results,
    first_divergence,
)
from signs.tolerances import FLOAT32_PARITY, parity_tolerance
from signs.verify.forward import FORWARD_BACKWARD_NAMES

BACKENDS = ("numpy", "tf", "torch")


def synthetic_results(dtype, seed=0, noise=0.0, m=2):
    """{backend: {name: array}} with the course shapes; each backend = base + noise * randn."""
    rng = np.random.default_rng(seed)
    shapes = dict(activation_shapes(m=m))
    shapes["cost"] = ()
    grads = param_shapes()
    shapes.update({"dW1": grads["W1"], "dW2": grads["W2"], "dW3": grads["W3"], "db3": grads["b3"],
                   "dX": (m, 64, 64, 3)})
    base = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    return {
        backend: {name: np.asarray(value + noise * rng.standard_normal(value.shape)).astype(dtype)
                  for name, value in base.items()}
        for backend in BACKENDS
    }


def test_orders_cover_every_quantity_once():
    assert FORWARD_ORDER == ("Z1", "A1", "P1", "Z2", "A2", "P2", "F", "Z3", "cost")
    assert BACKWARD_ORDER == ("db3", "dW3", "dW2", "dW1", "dX")
    assert sorted(DIVERGENCE_ORDER) == sorted(FORWARD_BACKWARD_NAMES)
    assert len(set(DIVERGENCE_ORDER)) == len(DIVERGENCE_ORDER)


def test_compare_checks_shape_before_dtype_before_values():
    a = np.zeros((2, 3), np.float32)
    shape = compare("Z1", a, np.zeros((3, 2), np.float64), np.float32)
    assert shape.failure == "shape" and "shape mismatch" in shape.message()
    dtype = compare("Z1", a, np.zeros((2, 3), np.float64), np.float32)
    assert dtype.failure == "dtype" and "float64" in dtype.message()
    # Both arrays float64 but float32 expected: still a dtype failure (a backend upcast).
    both = compare("Z1", a.astype(np.float64), a.astype(np.float64), np.float32)
    assert both.failure == "dtype"


def test_compare_finds_worst_element_and_reports_both_values():
    rng = np.random.default_rng(1)
    ours = rng.standard_normal((2, 5, 4, 3))
    theirs = ours.copy()
    theirs[1, 3, 2, 0] += 2e-9  # the largest difference
    theirs[0, 0, 0, 0] += 1e-12
    result = compare("P1", ours, theirs, np.float64, labels=("numpy", "tf"))
    assert result.failure == "values"
    assert result.worst_index == (1, 3, 2, 0)
    assert result.ours_value == ours[1, 3, 2, 0] and result.theirs_value == theirs[1, 3, 2, 0]
    assert result.max_abs == pytest.approx(2e-9, rel=1e-6)
    scale = max(np.abs(ours).max(), np.abs(theirs).max())
    assert result.max_rel == pytest.approx(2e-9 / scale, rel=1e-6)
    message = result.message()
    for text in ("P1", "numpy", "tf", "(1, 3, 2, 0)", "FAIL", f"{ours[1, 3, 2, 0]:.9g}"):
        assert text in message


def test_compare_tolerance_is_per_quantity_and_dtype():
    ours = np.ones(4, np.float32)
    theirs = ours.copy()
    theirs[2] += np.float32(5e-5)  # relative error about 5e-5: inside dW1's 1e-4, outside Z1's 1e-5
    assert compare("dW1", ours, theirs, np.float32).ok
    assert not compare("Z1", ours, theirs, np.float32).ok
    assert compare("Z1", ours, theirs, np.float32).tolerance == FLOAT32_PARITY["Z1"]
    assert compare("Z1", ours, theirs, np.float32, tolerance=1e-3).ok


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_always_fail(bad):
    ours = np.zeros((3, 3))
    theirs = ours.copy()
    ours[1, 2] = bad
    theirs[1, 2] = bad  # even when both sides agree on it
    result = compare("Z3", ours, theirs, np.float64)
    assert result.failure == "non-finite" and result.worst_index == (1, 2)
    json.dumps(result.to_dict())  # NaN spelled as a string, still valid JSON


def test_scalar_cost_and_empty_arrays():
    assert compare("cost", np.float64(1.5), np.float64(1.5), np.float64).worst_index == ()
    assert not compare("cost", np.float64(1.5), np.float64(1.5 + 1e-9), np.float64).ok
    assert compare("Z1", np.zeros((0, 3)), np.zeros((0, 3)), np.float64).ok


def test_assert_close_raises_with_ours_next_to_theirs():
    assert_close("db3", np.arange(6.0), np.arange(6.0), np.float64)
    with pytest.raises(AssertionError, match=r"db3 .*index \(4,\).*ours=4 theirs=4\.1"):
        assert_close("db3", np.arange(6.0), np.arange(6.0) + np.array([0, 0, 0, 0, 0.1, 0]), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_within_tolerance_pass(dtype):
    noise = 1e-8 if dtype == np.float32 else 1e-13  # under every tolerance
    report = compare_results(synthetic_results(dtype, noise=noise), FORWARD_BACKWARD_NAMES, dtype)
    assert report.ok, report.format_table()
    assert report.pairs == [("numpy", "tf"), ("numpy", "torch"), ("tf", "torch")]
    assert first_divergence(report) is None
    report.raise_for_failure()


def test_first_divergence_is_first_forward_quantity_and_names_the_odd_backend():
    results = synthetic_results(np.float64)
    results["torch"]["P1"] = results["torch"]["P1"] + 1e-3  # pool1 and everything after it
    results["torch"]["Z3"] = results["torch"]["Z3"] + 1e-3
    results["torch"]["dW1"] = results["torch"]["dW1"] + 1e-3
    report = compare_results(results, FORWARD_BACKWARD_NAMES, np.float64)
    divergence = first_divergence(report)
    assert divergence.name == "P1" and divergence.layer == "pool1"
    assert divergence.suspect == "torch"
    assert {(c.ours, c.theirs) for c in divergence.failures} == {("numpy", "torch"), ("tf", "torch")}
    assert "torch disagrees with numpy and tf" in divergence.message()
    with pytest.raises(AssertionError, match=r"first divergence: P1 \(pool1\)"):
        report.raise_for_failure()


def test_first_divergence_follows_backprop_order():
    results = synthetic_results(np.float64)
    for name in ("dX", "dW1", "dW2"):  # all three wrong: dW2 is computed first
        results["tf"][name] = results["tf"][name] * 1.01
    report = compare_results(results, FORWARD_BACKWARD_NAMES, np.float64)
    assert first_divergence(report).name == "dW2"
    results["tf"]["db3"] = results["tf"]["db3"] * 1.01
    report = compare_results(results, FORWARD_BACKWARD_NAMES, np.float64)
    assert first_divergence(report).name == "db3"
    assert [c.name for c in report.failures()][:2] == ["db3", "db3"]


def test_no_suspect_when_all_pairs_disagree_or_only_two_backends():
    results = synthetic_results(np.float64)
    results["tf"]["Z2"] = results["tf"]["Z2"] + 1e-3
    results["torch"]["Z2"] = results["torch"]["Z2"] - 1e-3
    assert first_divergence(compare_results(results, FORWARD_BACKWARD_NAMES, np.float64)).suspect is None
    two = {k: results[k] for k in ("numpy", "tf")}
    divergence = first_divergence(compare_results(two, FORWARD_BACKWARD_NAMES, np.float64))
    assert divergence.name == "Z2" and divergence.suspect is None


def test_compare_results_refuses_missing_quantities_and_single_backend():
    results = synthetic_results(np.float64)
    del results["tf"]["dX"]
    with pytest.raises(ValueError, match=r"results_by_backend\['tf'\].*dX"):
        compare_results(results, FORWARD_BACKWARD_NAMES, np.float64)
    with pytest.raises(ValueError, match="at least 2 backends"):
        compare_results({"numpy": results["numpy"]}, FORWARD_BACKWARD_NAMES, np.float64)


def test_table_fits_100_columns_and_marks_the_failing_pair():
    results = synthetic_results(np.float32, noise=1e-9, m=64)
    results["tf"]["A2"] = results["tf"]["A2"] + np.float32(1e-2)
    report = compare_results(results, FORWARD_BACKWARD_NAMES, np.float32, title="float32 check")
    table = report.format_table()
    assert max(len(line) for line in table.splitlines()) <= 100
    row = next(line for line in table.splitlines() if line.startswith("A2 "))
    assert row.endswith("FAIL") and row.count("*") == 2  # numpy-tf and tf-torch
    assert "(64,64,64,8)" in table
    dumped = json.loads(json.dumps(report.to_dict()))
    assert dumped["first_divergence"]["name"] == "A2" and dumped["ok"] is False
    assert [row["name"] for row in dumped["rows"]] == list(FORWARD_BACKWARD_NAMES)


def test_parity_tolerance_table_is_complete():
    for name in FORWARD_BACKWARD_NAMES:
        assert parity_tolerance(name, np.float32) <= 1e-4
        assert parity_tolerance(name, np.float64) <= 1e-10


def test_pool_argmax_is_the_first_maximum_with_same_padding():
    from reference.spec import PoolSpec
    from signs.ties import pool_argmax

    A = np.array([[1, 3, 3, 0, 2], [3, 0, 2, 2, 2], [1, 1, 1, 4, 4]], float).reshape(1, 3, 5, 1)
    # window 2, stride 2, SAME on (3, 5): output (2, 3); padding (0, 1) rows, (0, 1) cols at the end.
    argmax = pool_argmax(A, PoolSpec("p", window=2, stride=2, padding="SAME"))[0, :, :, 0]
    # Window (0, 0) = [[1, 3], [3, 0]] -> first 3 at cell 1; (0, 1) = [[3, 0], [2, 2]] -> 0;
    # (0, 2) = [[2, -inf], [2, -inf]] -> 0; (1, 0) = [[1, 1], [-inf, -inf]] -> 0;
    # (1, 1) = [[1, 4], ...] -> 1; (1, 2) = [[4, -inf], ...] -> 0.
    np.testing.assert_array_equal(argmax, [[1, 0, 0], [0, 1, 0]])


def test_near_tie_notes_name_the_pool_and_pair():
    from reference.spec import COURSE_MODEL
    from signs.verify.forward import near_tie_notes

    rng = np.random.default_rng(4)
    A1 = rng.random((1, 64, 64, 8)).astype(np.float32)
    A2 = rng.random((1, 8, 8, 16)).astype(np.float32)
    results = {b: {"A1": A1.copy(), "A2": A2.copy()} for b in BACKENDS}
    assert near_tie_notes(results, COURSE_MODEL) == []
    # A near-tie in pool1 window (0, 0) of channel 5, resolved differently by torch's rounding.
    below = np.float32(2.0) - np.float32(1e-7)
    for backend in ("numpy", "tf"):
        results[backend]["A1"][0, 0, 0, 5] = 2.0
        results[backend]["A1"][0, 3, 3, 5] = below
    results["torch"]["A1"][0, 0, 0, 5] = below
    results["torch"]["A1"][0, 3, 3, 5] = 2.0
    notes = near_tie_notes(results, COURSE_MODEL)
    assert len(notes) == 2 and all(n.startswith("pool1 ") for n in notes)
    assert "numpy vs torch" in notes[0] and "tf vs torch" in notes[1] and "(0, 0, 0, 5)" in notes[0]
