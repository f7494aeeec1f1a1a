"""TF1Adam against the TF1 ApplyAdam formula written in NumPy; torch.optim.Adam differs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from signs.tolerances import relative_error
from torch_model.optim import TF1Adam

LR, BETA1, BETA2, EPS = 0.009, 0.9, 0.999, 1e-8
SHAPES = [(4, 4, 3, 8), (64, 6), (6,)]


def numpy_tf1_adam(w, grads, lr=LR, b1=BETA1, b2=BETA2, eps=EPS):
    """TF1 ApplyAdam in float64: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1);
    v += (g^2 - v)(1 - b2); w -= m lr_t / (sqrt(v) + eps). Returns (w, m, v)."""
    w = w.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        w -= (m * lr_t) / (np.sqrt(v) + eps)
    return w, m, v


def _run(optimizer_cls, w0, grads, **kwargs):
    params = [torch.tensor(w) for w in w0]
    opt = optimizer_cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
    return params, opt


def _problem(seed, steps, grad_scale=1.0):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[grad_scale * rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return w0, grads


def test_tf1_adam_matches_numpy_formula_float64():
    w0, grads = _problem(seed=0, steps=12)
    params, opt = _run(TF1Adam, w0, grads, lr=LR, betas=(BETA1, BETA2), eps=EPS)
    for i, p in enumerate(params):
        w, m, v = numpy_tf1_adam(w0[i], [g[i] for g in grads])
        state = opt.state[p]
        assert state["step"] == 12
        assert relative_error(p.numpy(), w) <= 1e-15  # the same IEEE operations in the same order
        assert relative_error(state["exp_avg"].numpy(), m) <= 1e-15
        assert relative_error(state["exp_avg_sq"].numpy(), v) <= 1e-15


def test_tf1_adam_float32_tracks_float64_formula():
    w0, grads = _problem(seed=1, steps=5)
    w0_32 = [w.astype(np.float32) for w in w0]
    grads_32 = [[g.astype(np.float32) for g in gs] for gs in grads]
    params, _ = _run(TF1Adam, w0_32, grads_32)
    for i, p in enumerate(params):
        assert p.dtype == torch.float32
        want, _, _ = numpy_tf1_adam(w0_32[i].astype(np.float64), [g[i].astype(np.float64) for g in grads_32])
        assert relative_error(p.numpy(), want) <= 1e-6


def test_torch_adam_differs_measurably():
    """torch adds eps to the bias-corrected sqrt(v_hat): with gradients ~1e-3 the updates differ ~1e-4."""
    w0, grads = _problem(seed=2, steps=3, grad_scale=1e-3)
    tf1, _ = _run(TF1Adam, w0, grads)
    ref, _ = _run(torch.optim.Adam, w0, grads, lr=LR, betas=(BETA1, BETA2), eps=EPS)
    for i in range(len(SHAPES)):
        update_tf1 = tf1[i].numpy() - w0[i]
        update_torch = ref[i].numpy() - w0[i]
        assert relative_error(update_tf1, update_torch) > 1e-5
    # With eps = 0 the two rules are the same algorithm: only eps's placement differs.
    tf1, _ = _run(TF1Adam, w0, grads, eps=0.0)
    ref, _ = _run(torch.optim.Adam, w0, grads, lr=LR, betas=(BETA1, BETA2), eps=0.0)
    for i in range(len(SHAPES)):
        assert relative_error(tf1[i].numpy() - w0[i], ref[i].numpy() - w0[i]) <= 1e-12


def test_state_dict_round_trip_gives_identical_next_step():
    w0, grads = _problem(seed=3, steps=4)
    a_params, a_opt = _run(TF1Adam, w0, grads[:3])
    b_params = [p.detach().clone() for p in a_params]
    b_opt = TF1Adam(b_params)
    b_opt.load_state_dict(copy.deepcopy(a_opt.state_dict()))  # as if saved; load shares tensors
    for params, opt in ((a_params, a_opt), (b_params, b_opt)):
        for p, g in zip(params, grads[3]):
            p.grad = torch.tensor(g)
        opt.step()
    for a, b in zip(a_params, b_params):
        assert torch.equal(a, b)
    assert b_opt.state[b_params[0]]["step"] == 4


def test_params_without_grad_are_skipped():
    w = torch.ones(3, dtype=torch.float64)
    opt = TF1Adam([w])
    opt.step()
    assert torch.equal(w, torch.ones(3, dtype=torch.float64)) and not opt.state[w]


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"betas": (1.0, 0.9)}, "betas"),
    ({"betas": (0.9,)}, "betas"), ({"eps": -1e-8}, "eps"),
])
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TF1Adam([torch.zeros(2, requires_grad=True)], **kwargs)
