"""``signs compare``: run a candidate port and the NumPy reference on the same weights and inputs.

:func:`run_compare` is the whole check; ``signs/commands/compare.py`` is a thin shell around it.

1. Load the candidate (:mod:`signs.port.load`) and wrap it in its framework's adapter (torch,
   Keras, legacy TF1); map its parameters onto W1 W2 W3 b3 (:mod:`signs.port.mapping`).
2. Per dtype (float64 first: it is exact, so a semantic difference shows there undisturbed by
   rounding): give the candidate the weights (course-exact by default; extra parameters such as a
   conv bias zeroed), run one forward and backward pass, match its intermediates to Z1..Z3 and
   move everything to canonical layouts (an :class:`Observation`). The reference runs in float64
   on the same values (the float32 inputs and weights widened exactly): float64 is the ground
   truth, and a float32 candidate is judged against it with the float32 per-quantity tolerances.
3. ``--steps K``: K optimizer steps of the candidate (its own optimizer, or the framework's stock
   Adam with the course's hyperparameters) against the reference's TF1 Adam on the course's
   mini-batches, free-running from the same start; the weights after every step are compared
   (float64: all K; float32: the first, as later float32 steps are chaotic).
4. Compare with the project's one engine (:mod:`signs.compare`); when anything differs, ask the
   trap catalogue (:mod:`signs.port.traps`) which porting traps explain the candidate. TF32 is
   proven here directly: on a CUDA device with TF32 on, a failing float32 pass is re-run with TF32
   off, and agreement then is the proof. What is printed is :mod:`signs.port.report`'s.

Verdict: "agree" when every compared quantity is within tolerance and the candidate has no
parameter the course net lacks; "diverge" otherwise (exit 1). A stock ``torch.optim.Adam`` is a
divergence with ``--steps``: it is not TF1's Adam (epsilon added after bias correction), so the
weights leave the course's trajectory; the report says that forward and gradients agree and names
the ``adam-epsilon`` trap, so the user sees it is the optimizer alone.
"""

from __future__ import annotations

import time

import numpy as np

from reference.spec import ACTIVATION_NAMES, COURSE_MODEL, COURSE_TRAINING, PARAM_NAMES, ModelSpec, TrainSpec
from signs.compare import BACKWARD_ORDER, Report, compare_results, first_divergence, layer_of
from signs.port.capture import CandidateParam, Observation
from signs.port.load import CandidateSpec, call_user, framework_of, load_callable, parse_callable, parse_candidate
from signs.port.mapping import (CANONICAL_LAYOUTS, ActivationMatch, NotTheCourseModel, ParamMap,
                                map_parameters, match_activations, parse_map)
from signs.port.report import (CANDIDATE, OWN_TITLE, REFERENCE, STEP_NAMES, STOCK_ADAM, CompareOptions,
                               CompareResult, trap_dict)
from signs.tolerances import FLOAT64_PARITY, adam_tolerance
from signs.verify.adam_steps import training_batches
from signs.verify.options import course_vectors, data_inputs

__all__ = ["CompareOptions", "CompareResult", "run_compare", "load_candidate"]

# ----------------------------------------------------------------------------------------------
# Loading


def _spec_for(options: CompareOptions) -> ModelSpec:
    if options.input_size is None:
        return COURSE_MODEL
    h, w = options.input_size
    if min(h, w) < 1:
        raise ValueError(f"--input-size: expected two positive integers H W, got {h} {w}")
    return COURSE_MODEL.with_input(h, w)


def _load_weights(weights: str | None, spec: ModelSpec) -> tuple[dict[str, np.ndarray], str]:
    """Course-exact initial weights for ``spec`` (float64), or a weight file in any format."""
    if weights is None:
        from reference.init import course_init

        return course_init(spec, dtype=np.float64), "course-exact initial weights (reference.init.course_init)"
    from signs.convert import load_weights

    params, metadata = load_weights(weights, spec=spec)
    fmt = metadata.get("source_format", "")
    return ({k: np.asarray(v, dtype=np.float64) for k, v in params.items()},
            weights + (f" ({fmt})" if fmt else ""))


def _inputs(options: CompareOptions, spec: ModelSpec):
    if options.data is None:
        return course_vectors(2 if options.batch is None else options.batch, options.seed, spec)
    if options.input_size is not None:
        raise ValueError("--input-size: expected course vectors, got --data too (the SIGNS images "
                         "are 64x64)")
    return data_inputs(options.data, options.batch)


def _user_callable(text: str | None, option: str):
    if text is None:
        return None
    path, name = parse_callable(text, option)
    return load_callable(path, name, option)


class _TF1Adapter:
    """A legacy TF1 candidate (:mod:`signs.port.tf1_candidate`): canonical names and layouts."""

    framework = "tf1"
    layouts = CANONICAL_LAYOUTS
    input_layout = "NHWC"
    to_nhwc = None

    def __init__(self, tf1, spec: ModelSpec) -> None:
        self.tf1, self.spec = tf1, spec

    def detect_layout(self, X, dtype) -> str:
        return "NHWC"

    def parameters(self, X, dtype) -> list[CandidateParam]:
        from reference.spec import param_shapes

        return [CandidateParam(n, np.zeros(s, dtype=dtype), i)
                for i, (n, s) in enumerate(param_shapes(self.spec).items())]

    def own_weights(self) -> dict[str, np.ndarray]:
        """The weights the file initialises itself (its ``initialize_parameters``), float64."""
        own = self.tf1.initial_params(self.spec.input_shape, self.spec.n_classes)
        return {n: np.asarray(v, dtype=np.float64) for n, v in own.items()}

    def run(self, params, X, Y, dtype):
        return self.tf1.run(dict(params), X, Y, np.dtype(dtype))

    def steps(self, params, batches, dtype, train: TrainSpec = COURSE_TRAINING):
        return self.tf1.steps(dict(params), list(batches), np.dtype(dtype),
                              learning_rate=train.learning_rate, beta1=train.beta1,
                              beta2=train.beta2, epsilon=train.epsilon)


def load_candidate(options: CompareOptions, spec: ModelSpec):
    """The adapter for ``options.candidate`` (torch, Keras or TF1); ValueError if it is none."""
    candidate: CandidateSpec = parse_candidate(options.candidate)
    loss = _user_callable(options.loss, "--loss")
    optimizer = _user_callable(options.optimizer, "--optimizer")
    if candidate.kind == "tf1":
        if optimizer is not None or loss is not None:
            raise ValueError("--optimizer/--loss: expected a torch or Keras candidate; legacy TF1 "
                             "code brings its own compute_cost and runs TF1's Adam")
        from signs.port.tf1_candidate import load_tf1_candidate

        return _TF1Adapter(load_tf1_candidate(candidate.path), spec)
    if candidate.kind == "keras":
        from signs.port.keras_adapter import KerasCandidate, load_keras_file

        return KerasCandidate(load_keras_file(candidate.path), loss=loss, optimizer=optimizer,
                              device=options.device, spec=spec)
    factory = load_callable(candidate.path, candidate.name, "CANDIDATE")
    model = call_user(factory, (), "CANDIDATE")
    framework = framework_of(model)
    if framework == "torch":
        from signs.port.torch_adapter import TorchCandidate

        return TorchCandidate(model, loss=loss, optimizer=optimizer, device=options.device, spec=spec)
    if framework == "keras":
        from signs.port.keras_adapter import KerasCandidate

        return KerasCandidate(model, build=factory, loss=loss, optimizer=optimizer,
                              device=options.device, spec=spec)
    raise ValueError(f"CANDIDATE: expected {candidate.name}() to return a torch.nn.Module or a "
                     f"keras.Model, got {type(model).__module__}.{type(model).__name__}")


# ----------------------------------------------------------------------------------------------
# Running


def _reference_run(params: dict, X: np.ndarray, Y: np.ndarray, spec: ModelSpec) -> dict:
    """The NumPy reference in float64: activations, cost, gradients."""
    from reference.model import forward_backward

    params64 = {n: np.asarray(params[n], dtype=np.float64) for n in PARAM_NAMES}
    return forward_backward(params64, X.astype(np.float64), Y.astype(np.float64), spec)


def _reference_steps(params: dict, batches, spec: ModelSpec, train: TrainSpec) -> tuple[list[dict], list[float]]:
    """The reference's K TF1-Adam steps in float64: weights after each step and each cost."""
    from reference.backend import Trainer

    trainer = Trainer({n: np.asarray(params[n], dtype=np.float64) for n in PARAM_NAMES},
                      train=train, spec=spec)
    after, costs = [], []
    for X, Y in batches:
        costs.append(trainer.step(X.astype(np.float64), Y.astype(np.float64)))
        after.append(trainer.get_params())
    return after, costs


def _forward_results(obs: Observation, reference: dict, dtype: np.dtype) -> dict[str, dict]:
    """{candidate: ..., reference: ...}: every quantity both have, in ``dtype``, in report order."""
    names = [n for n in ACTIVATION_NAMES if n in obs.activations] + ["cost"]
    names += [n for n in BACKWARD_ORDER if n in obs.grads]
    candidate = {**obs.activations, "cost": np.asarray(obs.cost, dtype=dtype), **obs.grads}
    return {CANDIDATE: {n: np.asarray(candidate[n]).astype(dtype) for n in names},
            REFERENCE: {n: np.asarray(reference[n]).astype(dtype) for n in names}}


def _forward_report(obs: Observation, reference: dict, dtype: np.dtype) -> Report:
    results = _forward_results(obs, reference, dtype)
    names = list(results[CANDIDATE])
    title = f"{dtype.name}: forward and backward, batch {obs.X.shape[0]}"
    return compare_results(results, names, dtype, title=title)


def _classify_near_ties(report: Report, obs: Observation, reference: dict, dtype: np.dtype,
                        spec: ModelSpec) -> None:
    """float32 gradient failures that are only max-pool near-ties, proven as ``signs verify``
    proves them (:func:`signs.ties.classify_ties`: every forward quantity agrees, each differing
    window is within the tie band, and the reference re-routed the candidate's way agrees with
    it); they then show as "tie*" and pass. Needs the candidate's A1 and A2 (its routing)."""
    if report.ok or dtype != np.float32 or not {"A1", "A2"} <= set(obs.activations):
        return
    from signs.ties import classify_ties

    params = {n: np.asarray(obs.params[n], dtype=dtype) for n in PARAM_NAMES}
    classify_ties(report, _forward_results(obs, reference, dtype), params, obs.X.astype(dtype),
                  obs.Y.astype(dtype), spec)


def _steps_report(obs: Observation, ref_after: list[dict], ref_costs: list[float],
                  dtype: np.dtype, title: str) -> Report:
    """Weights after each step stacked (K, ...) per parameter, and the K costs."""
    ours = {"costs": np.asarray(obs.step_costs, dtype=dtype)}
    theirs = {"costs": np.asarray(ref_costs, dtype=dtype)}
    for name in PARAM_NAMES:
        ours[name] = np.stack([np.asarray(s[name]) for s in obs.steps]).astype(dtype)
        theirs[name] = np.stack([s[name] for s in ref_after]).astype(dtype)
    tolerances = {name: adam_tolerance(dtype) for name in STEP_NAMES}
    return compare_results({CANDIDATE: ours, REFERENCE: theirs}, STEP_NAMES, dtype,
                           tolerances=tolerances, title=title)


def _own_weights_report(own: dict, expected: dict) -> Report:
    ours = {n: np.asarray(own[n], dtype=np.float64) for n in PARAM_NAMES}
    theirs = {n: np.asarray(expected[n], dtype=np.float64) for n in PARAM_NAMES}
    return compare_results({CANDIDATE: ours, REFERENCE: theirs}, PARAM_NAMES, np.float64,
                           tolerances={n: FLOAT64_PARITY for n in PARAM_NAMES},
                           title=f"{OWN_TITLE} vs --weights, canonical layout")


def _observe(adapter, mapping: ParamMap, own: dict, canonical: dict, X, Y, dtype: np.dtype,
             reference: dict) -> tuple[Observation, ActivationMatch]:
    """Run the candidate once and express what it computed in canonical names and layouts;
    also which captured tensor became which activation."""
    run = adapter.run(own, X.astype(dtype), Y.astype(dtype), dtype)
    ref_typed = {n: np.asarray(reference[n]).astype(dtype) for n in ACTIVATION_NAMES}
    match = match_activations(run.captured, ref_typed, dtype, to_nhwc=adapter.to_nhwc)
    grads = mapping.to_canonical(run.param_grads, prefix="d")
    if run.input_grad is not None:
        dX = run.input_grad
        grads["dX"] = adapter.to_nhwc(dX) if run.input_layout == "NCHW" else dX
    return Observation(
        dtype=dtype, X=X.astype(dtype).astype(np.float64), Y=Y.astype(dtype).astype(np.float64),
        params={n: np.asarray(canonical[n]).astype(dtype) for n in PARAM_NAMES},
        extra={e: np.asarray(canonical[e]).astype(dtype) for e in mapping.extra if e in canonical},
        activations=match.arrays, output=run.output, cost=run.loss,
        grads={n: np.asarray(g) for n, g in grads.items()}, settings=dict(run.settings),
    ), match


def _tf32_rerun(adapter, mapping, own, typed, X, Y, dtype, reference, obs, report) -> list:
    """TF32 proven the direct way: the framework says TF32 is on (on CUDA) and the same candidate
    re-run with TF32 off agrees with the reference where it did not. Returns [] or one finding."""
    from signs.port.traps import CATALOGUE, TrapFinding, tf32_enabled

    if dtype != np.float32 or not tf32_enabled(obs.settings) or not hasattr(adapter, "tf32_off"):
        return []
    with adapter.tf32_off():
        rerun = _forward_report(_observe(adapter, mapping, own, typed, X, Y, dtype, reference)[0],
                                reference, dtype)
    if not rerun.ok:
        return []
    first = first_divergence(report)
    before = first.failures[0].max_rel
    after = rerun.comparisons[rerun.pairs[0]][first.name].max_rel
    flags = ", ".join(f"{k}={v}" for k, v in obs.settings.items() if "tf32" in k or "float_32" in k)
    return [TrapFinding("tf32", None, {
        "quantity": first.name, "error_vs_reference": before, "error_vs_altered": after,
        "tolerance": first.failures[0].tolerance,
        "variant": f"TF32 on {obs.settings.get('device')} ({flags}); the candidate re-run with TF32 "
                   "off agrees with the reference", "altered": "the candidate with TF32 off"},
        CATALOGUE["tf32"].fix)]


def run_compare(options: CompareOptions, *, train: TrainSpec = COURSE_TRAINING) -> CompareResult:
    """The whole check (see the module docstring). ValueError/FileNotFoundError for bad input."""
    if options.steps < 0:
        raise ValueError(f"--steps: expected a non-negative integer, got {options.steps}")
    spec = _spec_for(options)
    expected, weights_text = _load_weights(options.weights, spec)
    inputs = _inputs(options, spec)
    overrides = parse_map(options.param_map)
    start = time.perf_counter()
    adapter = load_candidate(options, spec)
    X, Y = inputs.X, inputs.Y
    dtypes = [np.dtype(d) for d in sorted(options.dtypes, key=lambda d: d != "float64")]
    layout = adapter.detect_layout(X.astype(dtypes[0]), dtypes[0])
    try:
        mapping = map_parameters(adapter.parameters(X.astype(dtypes[0]), dtypes[0]), adapter.layouts,
                                 overrides=overrides, spec=spec)
    except NotTheCourseModel as exc:
        result = CompareResult(options, parse_candidate(options.candidate).describe(),
                               adapter.framework, layout, weights_text, inputs.description, "-", {})
        result.mismatch = str(exc).removeprefix("candidate: ")
        return result
    if options.own_weights:
        own64 = adapter.own_weights()
        canonical = mapping.to_canonical(own64)
        weights_text = f"the candidate's own weights (--own-weights), checked against {weights_text}"
    else:
        own64 = mapping.to_candidate(expected, np.float64)
        canonical = {**{n: expected[n] for n in PARAM_NAMES},
                     **{e: np.zeros(mapping.shapes[n]) for e, n in mapping.extra.items()}}
    result = CompareResult(options, parse_candidate(options.candidate).describe(), adapter.framework,
                           layout, weights_text, inputs.description, mapping.describe(),
                           dict(mapping.extra))
    result.seconds["load"] = time.perf_counter() - start
    if options.own_weights:
        result.reports.append(_own_weights_report(canonical, expected))
    batches = training_batches(X, Y, options.steps, train) if options.steps else []
    for dtype in dtypes:
        start = time.perf_counter()
        own = {n: np.asarray(v).astype(dtype) for n, v in own64.items()}
        typed = {n: np.asarray(v).astype(dtype) for n, v in canonical.items()}
        reference = _reference_run(typed, X.astype(dtype), Y.astype(dtype), spec)
        obs, match = _observe(adapter, mapping, own, typed, X, Y, dtype, reference)
        result.activations[dtype.name] = match.labels
        result.not_found[dtype.name] = match.not_found
        if options.own_weights:
            obs.own_params = {n: np.asarray(canonical[n]) for n in PARAM_NAMES}
            obs.expected_params = {n: np.asarray(expected[n]) for n in PARAM_NAMES}
        report = _forward_report(obs, reference, dtype)
        _classify_near_ties(report, obs, reference, dtype, spec)
        result.reports.append(report)
        if not report.ok:
            result.traps += _tf32_rerun(adapter, mapping, own, typed, X, Y, dtype, reference, obs, report)
        if batches:
            # float32 judges the first step only: from the same weights and a zero optimizer
            # state it is one well-defined update, whereas a free-running float32 trajectory is
            # chaotic (a rounding-level difference moves a max-pool argmax or a ReLU kink, and
            # Adam's normalised update turns it into a full step: seen here on the real images
            # with Glorot seed 3, W1 6.5e-4 apart after 5 steps of a correct port). float64 is
            # exact enough to judge all K steps.
            judged = batches if dtype == np.float64 else batches[:1]
            typed_batches = [(bx.astype(dtype), by.astype(dtype)) for bx, by in judged]
            steps = adapter.steps(own, typed_batches, dtype, train)
            obs.batches = [(bx.astype(np.float64), by.astype(np.float64)) for bx, by in typed_batches]
            obs.steps = [mapping.to_canonical(after) for after in steps.params_after]
            obs.step_costs = list(steps.losses)
            ref_after, ref_costs = _reference_steps(typed, obs.batches, spec, train)
            optimizer = "its --optimizer" if options.optimizer else STOCK_ADAM[adapter.framework]
            title = f"{dtype.name}: {options.steps} optimizer steps ({optimizer}), free-running"
            if len(judged) < len(batches):
                title = (f"{dtype.name}: optimizer step 1 of {options.steps} ({optimizer}); later "
                         "float32 steps are not judged (chaotic), float64 judges them")
            result.reports.append(_steps_report(obs, ref_after, ref_costs, dtype, title))
        result.observations.append(obs)
        result.seconds[dtype.name] = time.perf_counter() - start
    result.notes += sorted(set(getattr(adapter, "notes", [])))
    start = time.perf_counter()
    result.traps = _diagnose(result, spec)
    result.seconds["diagnosis"] = time.perf_counter() - start
    return result


def _forward_reports(result: CompareResult) -> list[Report]:
    return [r for r in result.reports if "forward and backward" in r.title]


def _diagnose(result: CompareResult, spec: ModelSpec) -> list:
    """Every trap that explains any dtype's observation, each (id, layer) once, float64's first."""
    if not result.diverges and not any(o.settings.get("cuda") for o in result.observations):
        return list(result.traps)
    from signs.port.traps import diagnose

    from signs.port.traps import CATALOGUE, TrapFinding

    found = list(result.traps)  # proven while running (TF32 by a re-run)
    seen = {(trap_dict(t)["id"], trap_dict(t).get("layer")) for t in found}
    biases = [e for e in ("b1", "b2") if e in result.extra]
    if biases and not result.options.steps:
        # Zeroed, the biases change nothing in one pass, so no re-run can show them; that the
        # candidate has them is the proof (with --steps they train, and the diagnosis re-runs).
        owners = ", ".join(f"{result.extra[b]} ({layer_of(w)})" for b, w in zip(("b1", "b2"), ("Z1", "Z2"))
                           if b in biases)
        found.append(TrapFinding("conv-bias", None, {
            "quantity": None, "variant": f"the candidate's convs have biases: {owners}; zeroed for "
            "this comparison (--steps shows them train away from the course's weights)"},
            CATALOGUE["conv-bias"].fix))
        seen.add(("conv-bias", None))
    for obs, report in zip(result.observations, _forward_reports(result)):
        (pair,) = report.pairs
        # A shape failure has no number: it diverges as much as anything can.
        errors = {n: (np.inf if c.max_rel is None or not np.isfinite(c.max_rel) else c.max_rel)
                  for n, c in report.comparisons[pair].items()}
        for trap in diagnose(obs, errors, spec=spec):
            t = trap_dict(trap)
            key = (t["id"], t.get("layer"))
            if key not in seen:
                seen.add(key)
                found.append(trap)
    return found
