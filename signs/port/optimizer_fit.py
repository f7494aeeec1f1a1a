"""Which Adam did a candidate run? Its form (TF1 or torch epsilon) and hyperparameters, estimated
from its weights after each step and the gradients at the weights each step started from.

Step 1 reveals the learning rate alone: with m = (1 - b1) g and v = (1 - b2) g^2 the TF1 update is
``lr * g / (|g| + eps / sqrt(1 - b2))`` (torch's: ``lr * g / (|g| + eps)``), the betas cancel. Later
steps reveal the betas, found by a grid search over (log(1 - beta1), log(1 - beta2)) that replays
the steps on the candidate's own trajectory; every estimate is then rounded to the fewest
significant digits that still replay the steps. These are candidates only: the diagnosis proves
each by a fresh run of the altered reference (``signs.port.traps``). Pure NumPy.
"""

from __future__ import annotations

import numpy as np

from signs.port import altered
from signs.port.altered import Semantics
from signs.tolerances import adam_tolerance

__all__ = ["optimizer_alternatives"]

COURSE = Semantics()
KERAS_EPSILON = 1e-7  # keras.optimizers.Adam's default epsilon


def _trajectory(case, sem: Semantics):
    """Flat start weights (N,), gradients (K, N), observed weights (K, N), per-element scale (N,)."""
    obs = case.obs
    names = [n for n in obs.steps[0] if n in ("W1", "W2", "W3", "b3") or (sem.conv_bias and n in ("b1", "b2"))]
    start = {**case.params, **case.biases}
    starts = [start] + [{n: np.asarray(s[n], np.float64) for n in s} for s in obs.steps[:-1]]
    grads = []
    for current, (X, Y) in zip(starts, case.batches):
        biases = {k: current[k] for k in ("b1", "b2") if k in current}
        params = {k: current[k] for k in ("W1", "W2", "W3", "b3")}
        g = altered.forward_backward(params, X, Y, sem, case.spec, biases=biases, need_dX=False)
        grads.append(np.concatenate([g["d" + n].ravel() for n in names]))
    observed = np.array([np.concatenate([np.asarray(s[n], np.float64).ravel() for n in names]) for s in obs.steps])
    scale = np.concatenate([np.full(np.size(obs.steps[-1][n]), np.abs(np.asarray(obs.steps[-1][n])).max() or 1.0)
                            for n in names])
    return np.concatenate([start[n].ravel() for n in names]), np.array(grads), observed, scale


def _replay_errors(form, lr, beta1, beta2, eps, w0, G, observed, scale) -> np.ndarray:
    """Worst relative weight error over the steps for each (lr[i], beta1[i], beta2[i]), (P,) each
    (a scalar broadcasts); inf where the replay is not finite."""
    lr, b1, b2 = (np.atleast_1d(np.asarray(x, np.float64))[:, None] for x in (lr, beta1, beta2))
    shape = (max(lr.shape[0], b1.shape[0], b2.shape[0]), w0.size)
    m, v = np.zeros(shape), np.zeros(shape)
    w = np.broadcast_to(w0, shape).copy()
    worst = np.zeros(shape[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t, g in enumerate(G, start=1):
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            if form == "tf1":
                w -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
            else:
                w -= lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
            worst = np.maximum(worst, (np.abs(w - observed[t - 1]) / scale).max(axis=1))
    return np.where(np.isfinite(worst), worst, np.inf)


def _learning_rate(form, beta2, eps, w0, G, observed) -> float:
    delta, g = w0 - observed[0], G[0]
    shift = eps / np.sqrt(1 - beta2) if form == "tf1" else eps
    big = np.abs(g) >= 0.5 * np.abs(g).max()
    return float(np.median(delta[big] * (np.abs(g[big]) + shift) / g[big]))


REFINEMENTS = 10  # grid rounds, each 5x finer: log10(1 - beta) to about 1e-7


def _betas(form, lr, eps, traj) -> tuple[float, float]:
    """Grid search in (log10(1 - beta1), log10(1 - beta2)), refined around the best."""
    lo1, hi1, lo2, hi2, n = -4.0, 0.0, -6.0, -0.5, 41
    for _ in range(REFINEMENTS):
        u1, u2 = np.meshgrid(np.linspace(lo1, hi1, n), np.linspace(lo2, hi2, n), indexing="ij")
        b1, b2 = 1 - 10.0 ** u1.ravel(), 1 - 10.0 ** u2.ravel()
        best = int(np.argmin(_replay_errors(form, lr, b1, b2, eps, *traj)))
        step1, step2 = (hi1 - lo1) / (n - 1), (hi2 - lo2) / (n - 1)
        c1, c2 = u1.ravel()[best], u2.ravel()[best]
        lo1, hi1, lo2, hi2, n = c1 - 2 * step1, min(0.0, c1 + 2 * step1), c2 - 2 * step2, c2 + 2 * step2, 21
    return float(b1[best]), float(b2[best])


def _rounded(value: float) -> np.ndarray:
    """``value`` at 1..6 significant digits, then unrounded."""
    return np.array([float(f"{value:.{d}g}") for d in range(1, 7)] + [value])


def estimate(case, sem: Semantics, form: str, traj=None):
    """(learning_rate, beta1, beta2, replay error) for Adam of ``form`` ("tf1"/"torch"), each
    rounded to the fewest significant digits that still replay the steps within tolerance."""
    traj = traj if traj is not None else _trajectory(case, sem)
    tol = adam_tolerance(case.obs.dtype)
    eps = sem.epsilon
    lr = _learning_rate(form, COURSE.beta2, eps, *traj[:3])
    b1, b2 = COURSE.beta1, COURSE.beta2
    if len(case.obs.steps) > 1:  # one step does not determine the betas
        b1, b2 = _betas(form, lr, eps, traj)
        lr = _learning_rate(form, b2, eps, *traj[:3])
    # Every combination of roundings at once; the simplest one that replays wins.
    grid = np.array(np.meshgrid(_rounded(lr), _rounded(b1), _rounded(b2), indexing="ij")).reshape(3, -1)
    digits = np.array(np.meshgrid(*[np.arange(7)] * 3, indexing="ij")).reshape(3, -1).sum(axis=0)
    errors = _replay_errors(form, grid[0], grid[1], grid[2], eps, *traj)
    ok = np.flatnonzero(errors <= tol)
    pick = ok[np.argmin(digits[ok])] if ok.size else int(np.argmin(errors))
    return float(grid[0, pick]), float(grid[1, pick]), float(grid[2, pick]), float(errors[pick])


def optimizer_alternatives(case, sem: Semantics) -> list[tuple[list[tuple[str, str, dict, str]], dict]]:
    """Optimizer alterations of ``sem`` that replay the candidate's steps within the Adam tolerance.

    Returns [(alterations, evidence)]: each alteration ``(trap id, variant, Semantics changes, fix)``.
    """
    tol = adam_tolerance(case.obs.dtype)
    traj = _trajectory(case, sem)
    out = []

    def replays(form, eps, lr=sem.learning_rate, b1=sem.beta1, b2=sem.beta2):
        return _replay_errors(form, lr, [b1], [b2], eps, *traj)[0] <= tol

    torch_form = ("adam-epsilon", "torch.optim.Adam: epsilon added after the bias correction", {"adam": "torch"},
                  "use TF1's Adam form (Keras' Adam computes it), or in torch pass eps=1e-8 * sqrt(1 - beta2**t) each step")
    if replays("torch", sem.epsilon):
        out.append(([torch_form], {}))
    if replays("tf1", KERAS_EPSILON):
        out.append(([("adam-epsilon", f"epsilon {KERAS_EPSILON:g} (Keras' default)", {"epsilon": KERAS_EPSILON},
                      f"pass epsilon={COURSE.epsilon:g} (keras.optimizers.Adam defaults to {KERAS_EPSILON:g})")], {}))
    if out:
        return out
    for form in ("tf1", "torch"):
        lr, b1, b2, error = estimate(case, sem, form, traj)
        if error > tol or (lr, b1, b2) == (sem.learning_rate, sem.beta1, sem.beta2):
            continue
        words = f"learning_rate={lr:g}, beta1={b1:g}, beta2={b2:g}"
        identified = "" if len(case.obs.steps) > 1 else " (one step: the betas are not identifiable, the course's assumed)"
        hyper = ("optimizer-hyperparameters", f"estimated {words}{identified}",
                 {"learning_rate": lr, "beta1": b1, "beta2": b2},
                 f"use the course's Adam(lr={COURSE.learning_rate:g}, betas=({COURSE.beta1:g}, {COURSE.beta2:g})); "
                 f"the port's steps match {words}")
        evidence = {"estimated": {"learning_rate": lr, "beta1": b1, "beta2": b2, "adam_form": form},
                    "course": {"learning_rate": COURSE.learning_rate, "beta1": COURSE.beta1, "beta2": COURSE.beta2}}
        out.append(([hyper] if form == "tf1" else [torch_form, hyper], evidence))
        break
    return out
