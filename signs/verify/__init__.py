"""Three-way verification: the same weights and inputs through NumPy, TensorFlow and PyTorch.

``signs verify`` (signs/commands/verify.py) is a thin shell around :func:`~signs.verify.run.run_verification`.
With no options it checks the course-exact initial weights (``reference.init.course_init``) on
the course's test vectors in float32 and float64:

    np.random.seed(1)
    X = np.random.randn(2, 64, 64, 3)        # the course's forward_propagation test input
    Y = one_hot(argmax(np.random.randn(2, 6)))

The course's test cell fed ``Y = np.random.randn(2, 6)`` itself. Those labels are not a
distribution (they are negative and do not sum to one), and for such labels the frameworks'
gradients legitimately differ: TensorFlow's ``softmax_cross_entropy_with_logits`` backpropagates
``softmax(Z) - Y``, the derivative of ``-sum(Y log softmax(Z))`` is ``softmax(Z) * sum(Y) - Y``.
The backend interface accepts one-hot or soft labels only, so we keep the course's draw (the same
random stream, so ``X`` is bit for bit the course's) and turn each row into the one-hot label of
its largest entry.

Every backend's ``forward_backward`` output is compared between every pair of backends with
:mod:`signs.compare`: activations Z1..Z3, the cost, and the gradients in the order backprop
computes them (db3 dW3 dW2 dW1 dX). ``steps=K`` also runs K Adam steps of each backend's
``Trainer`` on the same mini-batches and compares per-step costs, weights and Adam moments: in
float64 free-running from the same weights; in float32 one step at a time from the same state
(the float64 trajectory's, rounded), because a float32 trajectory is chaotic (see
:func:`~signs.verify.adam_steps.single_steps_report`).

Modules: :mod:`~signs.verify.options` (options, weights and inputs),
:mod:`~signs.verify.forward` (forward/backward checks), :mod:`~signs.verify.adam_steps` (Adam-step
checks) and :mod:`~signs.verify.run` (the whole check and its verdict).

Nothing here imports a framework at module level; ``signs.backends.get_backend`` imports each one
when it is asked for.
"""
