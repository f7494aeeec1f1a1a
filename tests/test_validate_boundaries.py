"""reference/validate.py at every backend's boundary: the same refusals, the same messages.

Each backend is checked where data enters it (Trainer, set_learning_rate, set_optimizer_state,
forward_backward). The infinite learning rate test catches a backend that trains on lr = inf
(torch's Trainer did, before the one validation module).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from reference.init import glorot_init
from reference.spec import COURSE_MODEL, COURSE_TRAINING
from signs.backends import BACKENDS, BackendUnavailable, get_backend


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request):
    try:
        return get_backend(request.param)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def params():
    return glorot_init(0, COURSE_MODEL, dtype=np.float32)


@pytest.mark.parametrize("lr", [np.inf, np.nan, 0.0, -1.0])
def test_trainer_refuses_a_learning_rate_that_is_not_finite_and_positive(backend, params, lr):
    with pytest.raises(ValueError, match=r"^train\.learning_rate: expected a finite number > 0, got "):
        backend.Trainer(params, train=replace(COURSE_TRAINING, learning_rate=lr))


def test_set_learning_rate_refuses_infinity(backend, params):
    trainer = backend.Trainer(params)
    with pytest.raises(ValueError, match=r"^lr: expected a finite number > 0, got inf$"):
        trainer.set_learning_rate(float("inf"))


def test_bad_optimizer_state_is_refused_with_one_message(backend, params):
    trainer = backend.Trainer(params)
    state = trainer.get_optimizer_state()
    with pytest.raises(ValueError, match=r"^state\['t'\]: expected a non-negative integer, got -1$"):
        trainer.set_optimizer_state({**state, "t": -1})
    wide = {name: value.astype(np.float64) for name, value in state["m"].items()}
    with pytest.raises(ValueError, match=r"^state\['m'\]: expected dtype float32 \(the params'\), got float64$"):
        trainer.set_optimizer_state({**state, "m": wide})


def test_bad_batch_is_refused_with_one_message(backend, params):
    X = np.zeros((2, 64, 64, 3), np.float32)
    Y = np.eye(6, dtype=np.float32)[:2]
    with pytest.raises(ValueError, match=r"^X: expected a NumPy array of shape \(m, 64, 64, 3\) NHWC, "
                       r"got \(2, 3, 64, 64\)$"):
        backend.forward_backward(params, X.transpose(0, 3, 1, 2).copy(), Y)
    with pytest.raises(ValueError, match=r"^Y: expected a NumPy array of shape \(2, 6\), got \(2, 5\)$"):
        backend.forward_backward(params, X, Y[:, :5])
