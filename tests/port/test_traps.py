"""The porting-trap diagnosis: every trap in the catalogue is named when (and only when) a port
has it; faithful ports get no trap.

Each broken "port" is the altered NumPy reference (``signs.port.altered``) run with that trap, as
an :class:`Observation`; the diagnosis must name exactly that trap (and layer). Activations whose
shape differs from the course's are dropped, as the activation matcher reports them "not found".
"""

from __future__ import annotations

from dataclasses import replace
import json

import numpy as np
import pytest

from reference import model
from reference.adam import Adam
from reference.padding import same_padding_1d
from reference.spec import COURSE_MODEL, activation_shapes, param_shapes
from signs.port.altered import Semantics, TorchAdam, forward_backward, run_steps, simulate_observation
from signs.port.traps import CATALOGUE, TRAP_IDS, _prove, diagnose
from signs.tolerances import (
    FLOAT64_PARITY,
    LOOP_VS_FAST_FLOAT32,
    LOOP_VS_FAST_FLOAT64,
    parity_tolerance,
    relative_error,
)

ODD = COURSE_MODEL.with_input(76, 64)  # 76 is not a multiple of pool1's stride 8: pool padding shows


def make(spec=COURSE_MODEL, m=2, seed=0, n_batches=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.3, shape) for k, shape in param_shapes(spec).items()}
    X = rng.random((m,) + spec.input_shape)
    Y = np.eye(spec.n_classes)[rng.integers(0, spec.n_classes, m)]
    batches = [(rng.random((m,) + spec.input_shape), np.eye(spec.n_classes)[rng.integers(0, spec.n_classes, m)])
               for _ in range(n_batches)]
    return params, X, Y, batches


def matched(obs, spec=COURSE_MODEL):
    """Drop the activations the matcher would not find (shape unlike the course's)."""
    shapes = activation_shapes(spec, m=obs.X.shape[0])
    return replace(obs, activations={k: v for k, v in obs.activations.items() if v.shape == shapes[k]})


def noisy(obs, seed, rel=3e-7):
    """Float32-sized relative noise on every computed quantity (a real framework's rounding)."""
    rng = np.random.default_rng(seed)

    def jitter(a):
        a = np.asarray(a)
        return (a * (1 + rel * rng.standard_normal(a.shape))).astype(a.dtype)

    return replace(obs, activations={k: jitter(v) for k, v in obs.activations.items()}, output=jitter(obs.output),
                   grads={k: jitter(v) for k, v in obs.grads.items()},
                   steps=[{k: jitter(v) for k, v in s.items()} for s in obs.steps])


def found(findings):
    return sorted((f.id, f.layer) for f in findings)


# ---------------------------------------------------------------------------------------------
# The altered reference at its default is the course's reference


@pytest.mark.parametrize("spec", [COURSE_MODEL, ODD.with_input(27, 35)])
@pytest.mark.parametrize("dtype, tol", [(np.float64, LOOP_VS_FAST_FLOAT64), (np.float32, LOOP_VS_FAST_FLOAT32)])
def test_default_semantics_is_reference_model(spec, dtype, tol):
    params, X, Y, _ = make(spec, m=3)
    params = {k: v.astype(dtype) for k, v in params.items()}
    X, Y = X.astype(dtype), Y.astype(dtype)
    expected = model.forward_backward(params, X, Y, spec)
    got = forward_backward(params, X, Y, Semantics(), spec)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        assert relative_error(got[name], value) <= tol, name
    assert relative_error(got["output"], expected["Z3"]) <= tol


def test_default_steps_are_reference_adam():
    params, _, _, batches = make(n_batches=3)
    current = {k: v.copy() for k, v in params.items()}
    adam = Adam.from_spec()
    for (X, Y), got in zip(batches, run_steps(params, batches)):
        adam.step(current, model.forward_backward(current, X, Y))
        for name in current:
            assert relative_error(got[name], current[name]) <= LOOP_VS_FAST_FLOAT64, name


def test_torch_adam_form_is_torch_optim_adam():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((5, 3))
    grads = [rng.standard_normal((5, 3)) * 10.0 ** -k for k in range(4)]  # small gradients: eps matters
    ours = {"W": w0.copy()}
    adam = TorchAdam(0.009, 0.9, 0.999, 1e-8)
    theirs = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.Adam([theirs], lr=0.009, betas=(0.9, 0.999), eps=1e-8)
    for g in grads:
        adam.step(ours, {"dW": g})
        theirs.grad = torch.tensor(g)
        opt.step()
    assert relative_error(ours["W"], theirs.detach().numpy()) <= LOOP_VS_FAST_FLOAT64


# ---------------------------------------------------------------------------------------------
# Every trap is named, with its layer

SINGLE_PASS_TRAPS = [
    # (trap id, layer, semantics changes, spec)
    ("same-padding-side", "conv1", {"conv1_padding": "before"}, COURSE_MODEL),
    ("same-padding-side", "conv2", {"conv2_padding": "before"}, COURSE_MODEL),
    ("same-padding-side", "conv1", {"conv1_padding": "symmetric-floor"}, COURSE_MODEL),  # nn.Conv2d(padding=1)
    ("padding-mode", "conv1", {"conv1_padding": "valid"}, COURSE_MODEL),
    ("padding-mode", "conv2", {"conv2_padding": "valid"}, COURSE_MODEL),
    ("pool-padding", "pool1", {"pool1_padding": "valid"}, ODD),  # torch's MaxPool2d(8): floor
    ("pool-padding", "pool1", {"pool1_padding": "after"}, ODD),  # ceil_mode=True
    ("pool-padding", "pool2", {"pool2_padding": "after"}, ODD),
    ("flatten-order", "dense", {"flatten": "NCHW"}, COURSE_MODEL),
    ("softmax-output", "dense", {"output": "probabilities"}, COURSE_MODEL),
    ("loss-reduction", None, {"reduction": "sum"}, COURSE_MODEL),
]


@pytest.mark.parametrize("trap, layer, changes, spec", SINGLE_PASS_TRAPS,
                         ids=[f"{t[0]}-{t[1]}-{list(t[2].values())[0]}" for t in SINGLE_PASS_TRAPS])
def test_single_pass_trap_is_named(trap, layer, changes, spec):
    params, X, Y, _ = make(spec)
    obs = matched(simulate_observation(params, X, Y, Semantics(**changes), spec), spec)
    findings = diagnose(obs)
    assert found(findings) == [(trap, layer)]
    evidence = findings[0].evidence
    assert evidence["error_vs_altered"] <= evidence["tolerance"] < float(evidence["error_vs_reference"])
    assert findings[0].fix
    json.dumps(findings[0].to_dict(), allow_nan=False)  # the JSON report carries it as is


@pytest.mark.parametrize("trap, layer, changes, spec", [SINGLE_PASS_TRAPS[i] for i in (0, 3, 8, 10)])
def test_float32_trap_is_named_through_rounding(trap, layer, changes, spec):
    params, X, Y, _ = make(spec, seed=4)
    obs = simulate_observation(params, X, Y, Semantics(**changes), spec, dtype=np.float32)
    assert found(diagnose(noisy(matched(obs, spec), seed=4))) == [(trap, layer)]


def test_two_traps_together_are_named():
    params, X, Y, _ = make(seed=2)
    obs = matched(simulate_observation(params, X, Y, Semantics(conv1_padding="before", conv2_padding="before")))
    findings = diagnose(obs)
    assert found(findings) == [("same-padding-side", "conv1"), ("same-padding-side", "conv2")]
    assert findings[0].evidence["combined_with"] == ["same-padding-side", "same-padding-side"]


def test_conv_padding_that_changes_sizes_is_named_by_what_it_computes():
    # nn.Conv2d(3, 8, 4, padding=2) -> 65x65, then nn.MaxPool2d(8) floors back to 8x8, dropping the
    # last row and column: exactly a conv padded (2, 1), the extra row/column *before*.
    params, X, Y, _ = make(seed=3)
    obs = matched(simulate_observation(params, X, Y, Semantics(conv1_padding="symmetric-ceil", pool1_padding="valid")))
    (finding,) = diagnose(obs)
    assert (finding.id, finding.layer) == ("same-padding-side", "conv1")
    assert finding.evidence["variant"].startswith("same-padding-side@conv1: before padding ((2, 1), (2, 1))")


def test_conv_bias_with_own_weights_is_named():
    params, X, Y, _ = make(seed=5)
    rng = np.random.default_rng(5)
    biases = {"b1": rng.normal(0, 0.1, 8), "b2": rng.normal(0, 0.1, 16)}
    obs = simulate_observation(params, X, Y, Semantics(conv_bias=True), biases=biases,
                               own_params=params, expected_params=params)
    assert found(diagnose(obs)) == [("conv-bias", None)]


STEP_TRAPS = [
    ("conv-bias", {"conv_bias": True}),  # zero-initialised conv biases that train
    ("adam-epsilon", {"adam": "torch"}),
    ("adam-epsilon", {"epsilon": 1e-7}),
    ("optimizer-hyperparameters", {"learning_rate": 0.001}),
]


@pytest.mark.parametrize("trap, changes", STEP_TRAPS, ids=[f"{t}-{list(c)[0]}" for t, c in STEP_TRAPS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_trap_is_named(trap, changes, dtype):
    params, X, Y, batches = make(seed=6, n_batches=2)
    biases = {"b1": np.zeros(8), "b2": np.zeros(16)} if changes.get("conv_bias") else None
    obs = simulate_observation(params, X, Y, Semantics(**changes), batches=batches, biases=biases, dtype=dtype)
    assert found(diagnose(noisy(obs, seed=6) if dtype == np.float32 else obs)) == [(trap, None)]


def test_optimizer_hyperparameters_are_estimated():
    params, X, Y, batches = make(seed=7, n_batches=3)
    obs = simulate_observation(params, X, Y, Semantics(learning_rate=0.01, beta1=0.95, beta2=0.99), batches=batches)
    (finding,) = diagnose(obs)
    assert finding.id == "optimizer-hyperparameters"
    assert finding.evidence["estimated"] == {"learning_rate": 0.01, "beta1": 0.95, "beta2": 0.99, "adam_form": "tf1"}


def test_torch_adam_with_another_learning_rate_names_both():
    params, X, Y, batches = make(seed=8, n_batches=2)
    obs = simulate_observation(params, X, Y, Semantics(adam="torch", learning_rate=0.001), batches=batches)
    assert found(diagnose(obs)) == [("adam-epsilon", None), ("optimizer-hyperparameters", None)]


def _wrong(name, params, how):
    """A conversion mistake applied to canonical ``params[name]``."""
    w = params[name]
    if how == "transposed":
        return w.transpose(1, 0, 2, 3)  # HWIO -> WHIO: OIHW permuted (3, 2, 1, 0)
    if how == "flipped":
        return w[::-1, ::-1]
    if how == "nchw-rows":
        _, H, W, C = activation_shapes(COURSE_MODEL)["P2"]
        return w.reshape(H, W, C, 6).transpose(2, 0, 1, 3).reshape(-1, 6)  # rows (h, w, c) -> (c, h, w)
    return w.T.reshape(w.shape)  # a Linear weight (6, 64) reshaped to (64, 6) instead of transposed


@pytest.mark.parametrize("name, how, trap, layer", [
    ("W1", "transposed", "kernel-layout", "conv1"), ("W2", "flipped", "kernel-layout", "conv2"),
    ("W3", "nchw-rows", "dense-layout", "dense"), ("W3", "reshaped", "dense-layout", "dense")])
def test_weight_conversion_trap_is_named(name, how, trap, layer):
    expected, X, Y, _ = make(seed=9)
    own = {**expected, name: _wrong(name, expected, how)}
    obs = simulate_observation(own, X, Y, own_params=own, expected_params=expected)
    assert found(diagnose(obs)) == [(trap, layer)]


def test_tf32_is_named_only_on_cuda_with_tf32_on():
    params, X, Y, _ = make(seed=10)
    obs = simulate_observation(params, X, Y, dtype=np.float32,
                               settings={"device": "cuda:0", "torch.backends.cudnn.allow_tf32": True})
    tf32_like = noisy(obs, seed=10, rel=1e-3)  # TF32's 10-bit mantissa
    assert found(diagnose(tf32_like)) == [("tf32", None)]
    assert diagnose(replace(tf32_like, settings={"device": "cpu", "tf32": True})) == []
    assert diagnose(replace(tf32_like, settings={"device": "cuda:0", "tf32": False})) == []


def test_every_catalogue_trap_is_tested_and_has_a_fix():
    tested = {t[0] for t in SINGLE_PASS_TRAPS} | {t[0] for t in STEP_TRAPS} | {"kernel-layout", "dense-layout", "tf32"}
    assert tested == set(TRAP_IDS)
    assert all(CATALOGUE[t].fix and CATALOGUE[t].mistake for t in TRAP_IDS)


# ---------------------------------------------------------------------------------------------
# No false alarms


@pytest.mark.parametrize("seed", range(4))
def test_faithful_float32_port_gets_no_trap(seed):
    params, X, Y, batches = make(seed=seed, m=3, n_batches=2)
    obs = simulate_observation(params, X, Y, dtype=np.float32, batches=batches,
                               settings={"device": "cuda:0", "tf32": True})
    assert diagnose(noisy(obs, seed)) == []


def test_steps_without_their_batches_are_refused():
    params, X, Y, batches = make(n_batches=2)
    obs = simulate_observation(params, X, Y, batches=batches)
    with pytest.raises(ValueError, match="observation.batches: expected one"):
        diagnose(replace(obs, batches=batches[:1]))


def test_unexplained_divergence_gets_no_trap():
    params, X, Y, _ = make(seed=11)
    obs = simulate_observation(params, X, Y)
    broken = replace(obs, grads={**obs.grads, "dW2": obs.grads["dW2"] * 1.01})  # no catalogue trap does this
    assert diagnose(broken) == []


def test_an_alteration_that_does_not_move_a_quantity_cannot_explain_it():
    # float32 cost tolerance 1e-5: the candidate is 1.5e-5 off the truth; an "alteration" moving
    # the cost by 0.8e-5 toward it would leave it within tolerance, but proves nothing.
    tol = parity_tolerance("cost", np.float32)
    observed = {"cost": (np.asarray(1.0 + 1.5 * tol), tol)}
    truth, nudged = {"cost": np.asarray(1.0)}, {"cost": np.asarray(1.0 + 0.8 * tol)}
    assert not _prove(observed, truth, nudged).explains
    assert _prove(observed, truth, {"cost": np.asarray(1.0 + 1.4 * tol)}).explains


def test_consistent_nchw_port_gets_no_trap():
    # Own weights with W3's rows in NCHW order, read by an NCHW flatten: F W3 is the course's.
    expected, X, Y, _ = make(seed=12)
    own = {**expected, "W3": _wrong("W3", expected, "nchw-rows")}
    obs = simulate_observation(own, X, Y, Semantics(flatten="NCHW"), own_params=own, expected_params=expected)
    assert diagnose(obs) == []


def test_invisible_pool_padding_is_not_claimed():
    # At 64x64 every pool window is whole: a floor-sized pool computes the course's numbers.
    params, X, Y, _ = make(seed=13)
    assert diagnose(simulate_observation(params, X, Y, Semantics(pool1_padding="valid", pool2_padding="after"))) == []


# ---------------------------------------------------------------------------------------------
# The altered reference computes what a real (torch) port with the trap computes


def _torch_port(params, X, Y, sem: Semantics, spec, biases):
    """The course net written in torch with the alterations of ``sem``: activations Z1 P1 Z3, the
    output, the cost and the gradients, back in canonical layouts."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    b = {k: torch.tensor(v, requires_grad=True) for k, v in (biases or {}).items()}
    x = torch.tensor(X).permute(0, 3, 1, 2).requires_grad_()  # NHWC -> NCHW

    def conv(a, W, bias, kind):
        w = W.permute(3, 2, 0, 1)  # HWIO -> OIHW
        if kind == "tf":
            return F.conv2d(a, w, bias, padding="same")  # torch pads the extra row/column after, as TF
        if kind == "symmetric-floor":
            return F.conv2d(a, w, bias, padding=(W.shape[0] - 1) // 2)
        if kind == "valid":
            return F.conv2d(a, w, bias)
        total = W.shape[0] - 1  # "before": the extra one first
        return F.conv2d(F.pad(a, (total - total // 2, total // 2) * 2), w, bias)

    def pool(a, layer, kind):
        if kind == "valid":
            return F.max_pool2d(a, layer.window, layer.stride)  # floor output size
        if kind == "after":
            return F.max_pool2d(a, layer.window, layer.stride, ceil_mode=True)
        pads = [side for n in (a.shape[3], a.shape[2]) for side in same_padding_1d(n, layer.window, layer.stride)]
        return F.max_pool2d(F.pad(a, pads, value=float("-inf")), layer.window, layer.stride)

    z1 = conv(x, t["W1"], b.get("b1"), sem.conv1_padding)
    p1 = pool(torch.relu(z1), spec.pool1, sem.pool1_padding)
    z2 = conv(p1, t["W2"], b.get("b2"), sem.conv2_padding)
    p2 = pool(torch.relu(z2), spec.pool2, sem.pool2_padding)
    f = p2.flatten(1) if sem.flatten == "NCHW" else p2.permute(0, 2, 3, 1).flatten(1)
    z3 = f @ t["W3"] + t["b3"]
    out = torch.softmax(z3, dim=1) if sem.output == "probabilities" else z3
    cost = F.cross_entropy(out, torch.tensor(Y.argmax(axis=1)), reduction=sem.reduction)
    cost.backward()
    hwio = (0, 2, 3, 1)  # NCHW -> NHWC
    result = {"Z1": z1.permute(*hwio), "P1": p1.permute(*hwio), "Z3": z3, "output": out, "cost": cost,
              "dX": x.grad.permute(*hwio), **{"d" + k: v.grad for k, v in {**t, **b}.items()}}
    return {k: v.detach().numpy() for k, v in result.items()}


TORCH_PORTS = [
    ({}, COURSE_MODEL), ({"conv1_padding": "before", "conv2_padding": "before"}, COURSE_MODEL),
    ({"conv1_padding": "symmetric-floor"}, COURSE_MODEL), ({"conv2_padding": "valid"}, COURSE_MODEL),
    ({"pool1_padding": "valid"}, ODD), ({"pool1_padding": "after", "pool2_padding": "after"}, ODD),
    ({"flatten": "NCHW"}, COURSE_MODEL), ({"output": "probabilities"}, COURSE_MODEL),
    ({"reduction": "sum"}, COURSE_MODEL), ({"conv_bias": True}, COURSE_MODEL),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note on the extra copy
@pytest.mark.parametrize("changes, spec", TORCH_PORTS, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "course"
                                                             for c, _ in TORCH_PORTS])
def test_altered_reference_is_what_a_torch_port_computes(changes, spec):
    params, X, Y, _ = make(spec, m=3, seed=14)
    sem = Semantics(**changes)
    rng = np.random.default_rng(14)
    biases = {"b1": rng.normal(0, 0.1, 8), "b2": rng.normal(0, 0.1, 16)} if sem.conv_bias else None
    ours = forward_backward(params, X, Y, sem, spec, biases=biases)
    theirs = _torch_port(params, X, Y, sem, spec, biases)
    for name, value in theirs.items():
        assert relative_error(ours[name], value) <= FLOAT64_PARITY, name
