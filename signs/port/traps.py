"""The proof that a porting trap (signs.port.catalogue) explains a candidate's divergence.

A trap is a known porting mistake: an alteration of the course's semantics
(:class:`signs.port.altered.Semantics`) or of a weight conversion. :func:`diagnose` re-runs the
reference under each alteration and reports a trap only when the candidate agrees with the altered
reference within tolerance on *every* quantity it has, where it disagreed with the true one (and
the alteration itself moves each such quantity beyond tolerance). Anything less is not reported:
a false alarm is a defect like a missed bug. Pure NumPy.

Tolerances: ``signs.tolerances.parity_tolerance`` per quantity and dtype (the model output uses
Z3's), ``adam_tolerance`` for weights (after steps, and own weights against expected ones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import math
from typing import Mapping

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, GRADIENT_NAMES, PARAM_NAMES, activation_shapes
from signs.compare import _json_float
from signs.port import altered
from signs.port.altered import Semantics, conv_amounts, pool_amounts
from signs.port.capture import Observation
from signs.port.catalogue import CATALOGUE, TRAP_IDS, Trap
from signs.port.optimizer_fit import optimizer_alternatives
from signs.tolerances import TF32_PARITY, adam_tolerance, parity_tolerance, relative_error

__all__ = ["Trap", "CATALOGUE", "TRAP_IDS", "TrapFinding", "diagnose", "tf32_enabled"]


@dataclass(frozen=True)
class TrapFinding:
    """A proven trap: ``evidence`` holds the deciding quantity, its error against the true and the
    altered reference, the tolerance, and every compared quantity under "quantities"."""

    id: str
    layer: str | None
    evidence: dict
    fix: str

    def to_dict(self) -> dict:
        return {"id": self.id, "layer": self.layer, "evidence": self.evidence, "fix": self.fix}


@dataclass(frozen=True, eq=False)  # hashed by identity: a catalogue entry built for this case
class _Alteration:
    trap: str
    layer: str | None
    variant: str
    changes: dict  # Semantics fields
    fix: str
    alone: bool = True  # changes something by itself at the course's sizes (else only in a pair)


# ---------------------------------------------------------------------------------------------
# Quantities and errors


def _error(a, b) -> float:
    """``relative_error``, inf for a missing quantity, a shape mismatch or a non-finite value."""
    if a is None or b is None or np.shape(a) != np.shape(b):
        return math.inf
    e = relative_error(a, b)
    return e if math.isfinite(e) else math.inf


def _observed_single(obs: Observation) -> dict:
    """name -> (candidate array, tolerance) for one forward/backward pass."""
    out = {n: (obs.activations[n], parity_tolerance(n, obs.dtype)) for n in ACTIVATION_NAMES if n in obs.activations}
    out["output"] = (obs.output, parity_tolerance("Z3", obs.dtype))
    out["cost"] = (np.asarray(obs.cost), parity_tolerance("cost", obs.dtype))
    out.update({n: (obs.grads[n], parity_tolerance(n, obs.dtype)) for n in GRADIENT_NAMES if n in obs.grads})
    return out


def _observed_steps(obs: Observation) -> dict:
    """"step{k}.{name}" -> (candidate weights after step k, Adam tolerance)."""
    tol = adam_tolerance(obs.dtype)
    return {f"step{k + 1}.{n}": (arr, tol) for k, step in enumerate(obs.steps) for n, arr in step.items()}


def _steps_as_quantities(steps: list[dict]) -> dict:
    return {f"step{k + 1}.{n}": arr for k, step in enumerate(steps) for n, arr in step.items()}


@dataclass
class _Proof:
    explains: bool
    rows: dict  # name -> {"vs_reference", "vs_altered", "altered_vs_reference", "tolerance"}
    agreeing: int  # quantities failing against the truth that the alteration fixes


def _prove(observed: dict, truth: dict, alt: dict) -> _Proof:
    """Does ``alt`` explain the candidate? ``observed``: name -> (candidate array, tolerance);
    ``truth`` / ``alt``: name -> the true / altered reference's array (float64).

    It does when some quantity diverged from the truth, every quantity agrees with ``alt``, and
    ``alt`` itself differs from the truth beyond tolerance on each quantity that diverged.
    """
    rows, explains, agreeing, diverged = {}, True, 0, False
    for name, (arr, tol) in observed.items():
        e_true, e_alt, sep = _error(arr, truth.get(name)), _error(arr, alt.get(name)), _error(alt.get(name), truth.get(name))
        rows[name] = {"vs_reference": e_true, "vs_altered": e_alt, "altered_vs_reference": sep, "tolerance": tol}
        if e_alt > tol:
            explains = False
        if e_true > tol:
            diverged = True
            if sep <= tol:  # the alteration does not move this quantity: it cannot explain it
                explains = False
            elif e_alt <= tol:
                agreeing += 1
    return _Proof(explains and diverged, rows, agreeing)


def _evidence(proof: _Proof, variant: str, **more) -> dict:
    """The first quantity that diverged from the true reference, and every row."""
    first = next(n for n, r in proof.rows.items() if r["vs_reference"] > r["tolerance"])
    r = proof.rows[first]
    return {"quantity": first, "error_vs_reference": _json_float(r["vs_reference"]),
            "error_vs_altered": _json_float(r["vs_altered"]), "tolerance": r["tolerance"], "variant": variant,
            **more, "quantities": {n: {k: _json_float(v) for k, v in row.items()} for n, row in proof.rows.items()}}


# ---------------------------------------------------------------------------------------------
# The case under diagnosis, in float64


class _Case:
    """The observation's inputs in float64, the conv biases it started from, and the runs of the
    altered reference on them (single pass, steps)."""

    def __init__(self, obs: Observation, spec):
        self.obs = obs
        self.spec = spec or COURSE_MODEL.with_input(obs.X.shape[1], obs.X.shape[2])
        self.params = {k: np.asarray(obs.params[k], np.float64) for k in PARAM_NAMES}
        self.X, self.Y = np.asarray(obs.X, np.float64), np.asarray(obs.Y, np.float64)
        own = obs.own_params is not None  # without own weights the candidate's extra biases ran as zeros
        self.biases = {k: (np.asarray(obs.extra[k], np.float64) if own else np.zeros(np.shape(obs.extra[k])))
                       for k in ("b1", "b2") if k in obs.extra}
        if len(obs.batches) != len(obs.steps):
            raise ValueError(f"observation.batches: expected one (X, Y) per step ({len(obs.steps)}), "
                             f"got {len(obs.batches)}")
        self.batches = [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in obs.batches]
        self.need_dX = "dX" in obs.grads

    def single(self, sem: Semantics, backward: bool = True) -> dict:
        return altered.forward_backward(self.params, self.X, self.Y, sem, self.spec, biases=self.biases,
                                        need_dX=self.need_dX, backward=backward)

    def steps(self, sem: Semantics) -> dict:
        return _steps_as_quantities(altered.run_steps(self.params, self.batches, sem, self.spec, biases=self.biases))


# ---------------------------------------------------------------------------------------------
# Structural alterations (one forward/backward pass)


def _pad_words(amounts) -> str:
    """torch's spelling of ((top, bottom), (left, right)): F.pad takes (left, right, top, bottom)."""
    (t, b), (l, r) = amounts
    return f"F.pad(x, ({l}, {r}, {t}, {b}))" if t or b or l or r else "nothing (VALID)"


def _structural(case: _Case) -> list[_Alteration]:
    """Every single structural alteration that changes something at this input size."""
    spec, X = case.spec, case.X
    out: list[_Alteration] = []
    sizes = {"conv1": X.shape[1:3]}
    shapes = activation_shapes(spec, m=1)
    sizes["pool1"], sizes["conv2"], sizes["pool2"] = shapes["A1"][1:3], shapes["P1"][1:3], shapes["A2"][1:3]
    for i, layer in ((1, spec.conv1), (2, spec.conv2)):
        n_h, n_w = sizes[layer.name]
        tf = ((conv_amounts("tf", n_h, layer.kernel, layer.stride)), conv_amounts("tf", n_w, layer.kernel, layer.stride))
        seen = {tf}
        for kind in ("before", "symmetric-floor", "symmetric-ceil", "valid"):
            amounts = (conv_amounts(kind, n_h, layer.kernel, layer.stride), conv_amounts(kind, n_w, layer.kernel, layer.stride))
            if amounts in seen or (kind != "valid" and amounts == ((0, 0), (0, 0))):
                continue
            seen.add(amounts)
            trap = "padding-mode" if kind == "valid" else "same-padding-side"
            fix = (f"pad {layer.name} SAME as TF: {_pad_words(tf)} (extra row/column after), "
                   f"or nn.Conv2d(..., padding='same') / Conv2D(..., padding='same'); the port pads {_pad_words(amounts)}")
            out.append(_Alteration(trap, layer.name, f"{kind} padding {amounts}", {f"conv{i}_padding": kind}, fix))
    for i, layer in ((1, spec.pool1), (2, spec.pool2)):
        n_h, n_w = sizes[layer.name]
        tf = (pool_amounts("tf", n_h, layer.window, layer.stride), pool_amounts("tf", n_w, layer.window, layer.stride))
        # Listed even where they change nothing at the course's sizes: after a conv alteration that
        # changes the size (torch's padding=2 on conv1 gives 65x65) they pair with it.
        pad = f"pad {_pad_words(tf)} with value=float('-inf'), then " if tf != ((0, 0), (0, 0)) else ""
        fix = (f"pool {layer.name} SAME as TF (ceil(n / {layer.stride}) outputs): {pad}F.max_pool2d(x, {layer.window}, "
               f"{layer.stride}) (Keras MaxPooling2D(padding='same'))")
        words = {"zeros": "SAME padded with zeros instead of -inf", "after": "ceil_mode=True (all padding after)",
                 "valid": "floor output size, no padding"}
        for kind, variant in words.items():
            amounts = (pool_amounts(kind, n_h, layer.window, layer.stride), pool_amounts(kind, n_w, layer.window, layer.stride))
            alone = amounts != tf if kind != "zeros" else tf != ((0, 0), (0, 0))
            out.append(_Alteration("pool-padding", layer.name, variant, {f"pool{i}_padding": kind}, fix, alone))
    out.append(_Alteration("flatten-order", spec.dense_name, "dense reads NCHW-flattened features",
                           {"flatten": "NCHW"}, CATALOGUE["flatten-order"].fix))
    if case.biases:
        out.append(_Alteration("conv-bias", None, f"conv biases {sorted(case.biases)}", {"conv_bias": True},
                               CATALOGUE["conv-bias"].fix))
    out.append(_Alteration("softmax-output", spec.dense_name, "model returns probabilities; softmax applied twice",
                           {"output": "probabilities"}, CATALOGUE["softmax-output"].fix))
    if case.X.shape[0] > 1:
        out.append(_Alteration("loss-reduction", None, "loss summed over the batch", {"reduction": "sum"},
                               CATALOGUE["loss-reduction"].fix))
    return out


MAX_PAIR_SEEDS = 3  # alterations that fix the most quantities, each paired with every other one


def _try(case: _Case, observed: dict, truth: dict, alterations: tuple) -> tuple[_Proof, Semantics] | None:
    """The proof for these alterations together; None when they clash or cannot run."""
    changes: dict = {}
    for a in alterations:
        if set(a.changes) & set(changes):
            return None
        changes.update(a.changes)
    sem = Semantics(**changes)
    try:
        forward = case.single(sem, backward=False)
        quick = _prove({n: v for n, v in observed.items() if n in forward}, truth, forward)
        if any(r["vs_altered"] > r["tolerance"] for r in quick.rows.values()):
            return quick, sem  # a forward quantity already disagrees: skip the backward
        return _prove(observed, truth, case.single(sem)), sem
    except ValueError:  # the alteration changes the shapes so that the course's W3 cannot be used
        return None


def _structural_bases(case: _Case, observed: dict, truth: dict) -> list[tuple[tuple, Semantics, _Proof]]:
    """Alterations (one, else two) under which the single pass agrees everywhere."""
    singles = _structural(case)
    results = {a: _try(case, observed, truth, (a,)) for a in singles if a.alone}
    tried = {a: t for a, t in results.items() if t is not None}
    found = [((a,), sem, proof) for a, (proof, sem) in tried.items() if proof.explains]
    if found:
        return found
    seeds = sorted((a for a in tried if tried[a][0].agreeing), key=lambda a: -tried[a][0].agreeing)[:MAX_PAIR_SEEDS]
    pairs = {frozenset((s, o)) for s in seeds for o in singles if o is not s}
    # A conv alteration that changes the sizes so that W3 no longer fits needs the pool that restores them.
    pools = [a for a in singles if a.trap == "pool-padding"]
    pairs |= {frozenset((u, p)) for u in results if results[u] is None for p in pools}
    for pair in sorted(pairs, key=lambda pr: sorted(singles.index(a) for a in pr)):
        pair = tuple(sorted(pair, key=singles.index))
        result = _try(case, observed, truth, pair)
        if result is not None and result[0].explains:
            found.append((pair, result[1], result[0]))
    return found


# ---------------------------------------------------------------------------------------------
# Weight conversions (--own-weights)


def _weight_variants(name: str, expected: np.ndarray, spec) -> list[tuple[str, str, np.ndarray]]:
    """(trap id, variant, what a wrong conversion of ``expected`` gives), same shape."""
    if name in ("W1", "W2") and expected.shape[0] == expected.shape[1]:
        return [("kernel-layout", "H and W transposed", expected.transpose(1, 0, 2, 3)),
                ("kernel-layout", "kernel flipped in H and W", expected[::-1, ::-1])]
    if name == "W3":
        _, H, W, C = activation_shapes(spec, m=1)["P2"]
        n_out = expected.shape[1]
        # rows (h, w, c) NHWC -> rows (c, h, w) NCHW
        nchw = expected.reshape(H, W, C, n_out).transpose(2, 0, 1, 3).reshape(-1, n_out)
        return [("dense-layout", "rows in NCHW flatten order", nchw),
                ("dense-layout", "Linear weight (out, in) reshaped instead of transposed", expected.T.reshape(expected.shape)),
                ("dense-layout", "W3 reshaped to (out, in) instead of transposed", expected.reshape(n_out, -1).T)]
    return []


def _weight_findings(obs: Observation, spec) -> list[TrapFinding]:
    if obs.own_params is None or obs.expected_params is None:
        return []
    tol = adam_tolerance(obs.dtype)
    findings = []
    for name in PARAM_NAMES:
        own, expected = obs.own_params.get(name), obs.expected_params.get(name)
        if own is None or expected is None:
            continue
        e_true = _error(own, expected)
        if e_true <= tol:
            continue
        for trap, variant, wrong in _weight_variants(name, np.asarray(expected, np.float64), spec):
            e_alt = _error(own, wrong)
            if e_alt <= tol < _error(wrong, expected):
                layer = {"W1": spec.conv1.name, "W2": spec.conv2.name}.get(name, spec.dense_name)
                findings.append(TrapFinding(trap, layer, {
                    "quantity": name, "error_vs_reference": _json_float(e_true), "error_vs_altered": _json_float(e_alt),
                    "tolerance": tol, "variant": variant}, CATALOGUE[trap].fix))
    return findings


# ---------------------------------------------------------------------------------------------
# TF32


def tf32_enabled(settings: Mapping) -> bool:
    """True when ``settings`` say the device is CUDA and a TF32 flag is on.

    Read: "device" (e.g. "cuda:0") and every key containing "tf32" or "tensor_float_32" (e.g. "tf32",
    "torch.backends.cudnn.allow_tf32", "tensor_float_32_execution").
    """
    device = str(settings.get("device", "")).lower()
    flags = [v for k, v in settings.items() if "tf32" in k.lower() or "tensor_float_32" in k.lower()]
    return device.startswith(("cuda", "gpu", "/gpu")) and any(bool(v) for v in flags)


def _tf32_finding(obs: Observation, observed: dict, truth: dict) -> list[TrapFinding]:
    """TF32 cannot be re-run here; it is proven by the settings plus every error within TF32's
    rounding (``TF32_PARITY``) while some exceed float32's."""
    if np.dtype(obs.dtype) != np.float32 or not tf32_enabled(obs.settings):
        return []
    rows = {n: (_error(a, truth.get(n)), tol) for n, (a, tol) in observed.items()}
    failing = [n for n, (e, tol) in rows.items() if e > tol]
    if not failing or any(e > TF32_PARITY for e, _ in rows.values()):
        return []
    first = failing[0]
    return [TrapFinding("tf32", None, {
        "quantity": first, "error_vs_reference": rows[first][0], "error_vs_altered": None, "tolerance": rows[first][1],
        "tf32_bound": TF32_PARITY, "worst_error": max(e for e, _ in rows.values()),
        "settings": {k: str(v) for k, v in obs.settings.items()}}, CATALOGUE["tf32"].fix)]


# ---------------------------------------------------------------------------------------------
# The diagnosis


def _findings_for(alterations: tuple, proof: _Proof, extra_evidence: dict | None = None) -> list[TrapFinding]:
    variant = " + ".join(f"{a.trap}{'@' + a.layer if a.layer else ''}: {a.variant}" for a in alterations)
    more = {"combined_with": [a.trap for a in alterations]} if len(alterations) > 1 else {}
    evidence = _evidence(proof, variant, **more, **(extra_evidence or {}))
    return [TrapFinding(a.trap, a.layer, evidence, a.fix) for a in alterations]


def _step_options(case: _Case, alterations: tuple, sem: Semantics):
    """(alterations, semantics, extra evidence) to try on the steps, cheapest first: the base, a
    trained conv bias, then the optimizers that replay the candidate's steps."""
    yield alterations, sem, {}
    if case.biases and not sem.conv_bias:
        bias = _Alteration("conv-bias", None, f"conv biases {sorted(case.biases)} trained",
                           {"conv_bias": True}, CATALOGUE["conv-bias"].fix)
        yield alterations + (bias,), replace(sem, conv_bias=True), {}
    for specs, more in optimizer_alternatives(case, sem):
        opts = tuple(_Alteration(trap, None, variant, changes, fix) for trap, variant, changes, fix in specs)
        merged = {k: v for opt in opts for k, v in opt.changes.items()}
        yield alterations + opts, replace(sem, **merged), more


def _step_findings(case: _Case, bases, observed_single: dict, truth_single: dict, truth_steps: dict) -> list[TrapFinding]:
    """Bases that also reproduce the steps, or do so with a conv bias or another optimizer."""
    observed = {**observed_single, **_observed_steps(case.obs)}
    truth = {**truth_single, **truth_steps}
    findings: list[TrapFinding] = []
    for alterations, sem, _ in bases:
        singles = {sem.conv_bias: case.single(sem) if alterations else truth_single}
        for alts, option_sem, more in _step_options(case, alterations, sem):
            if not alts:
                continue  # the course's own semantics: the steps already diverged from them
            if option_sem.conv_bias not in singles:
                singles[option_sem.conv_bias] = case.single(option_sem)
            proof = _prove(observed, truth, {**singles[option_sem.conv_bias], **case.steps(option_sem)})
            if proof.explains:
                findings += _findings_for(alts, proof, more)
                break
    return findings


def diagnose(observation: Observation, reference_errors: Mapping[str, float] | None = None, *,
             spec=None) -> list[TrapFinding]:
    """Every catalogue trap that explains ``observation``; [] when none does or nothing diverges.

    Parameters
    ----------
    observation : the candidate's run in canonical names and layouts
    reference_errors : optional {quantity: relative error against the true float64 reference}, as the
        comparison engine measured them (activation names, "output", "cost", gradient names); when
        given and none exceeds its tolerance (and no own weight differs), nothing is recomputed
    spec : the model spec (default: the course's, at the observation's input size)

    Returns
    -------
    findings : TrapFinding per proven trap (a combination of two gives two findings sharing their
        evidence), weight-conversion traps first.
    """
    case = _Case(observation, spec)
    weights = _weight_findings(observation, case.spec)
    observed = _observed_single(observation)
    if reference_errors is not None and not any(
            reference_errors.get(n, 0.0) > tol for n, (_, tol) in observed.items()) and not observation.steps:
        return weights
    findings: list[TrapFinding] = []
    truth = case.single(Semantics())
    diverged = any(_error(a, truth.get(n)) > tol for n, (a, tol) in observed.items())
    bases = _structural_bases(case, observed, truth) if diverged else [((), Semantics(), None)]
    if observation.steps:
        truth_steps = case.steps(Semantics())
        steps_observed = _observed_steps(observation)
        steps_diverged = any(_error(a, truth_steps.get(n)) > tol for n, (a, tol) in steps_observed.items())
        if steps_diverged or diverged:
            findings += _step_findings(case, bases, observed, truth, truth_steps)
        observed, truth = {**observed, **steps_observed}, {**truth, **truth_steps}
    else:
        findings += [f for alterations, _, proof in bases if alterations for f in _findings_for(alterations, proof)]
    if not findings:
        findings = _tf32_finding(observation, observed, truth)
    return _cancel_consistent_layouts(weights + findings)


def _cancel_consistent_layouts(findings: list[TrapFinding]) -> list[TrapFinding]:
    """W3 converted with NCHW rows *and* a dense reading NCHW features is a consistent port (the
    product F W3 is the course's): neither is a trap, only the mapping of W3 missed the order."""
    ids = {(f.id, f.evidence.get("variant")) for f in findings}
    if ("dense-layout", "rows in NCHW flatten order") in ids and any(f.id == "flatten-order" for f in findings):
        return [f for f in findings if f.id != "flatten-order"
                and (f.id, f.evidence.get("variant")) != ("dense-layout", "rows in NCHW flatten order")]
    return findings
