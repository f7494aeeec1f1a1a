"""Backend ``keras-jax``: the ``tf_model`` Keras model on Keras 3's jax backend, in a subprocess.

The ``signs.backends`` interface (forward_backward, predict_logits; no Trainer) over
:mod:`signs.keras_backends`, which explains the subprocess and the ``.weights.h5`` hand-over.
Importing this module raises ImportError when the child could not run here.
"""

from __future__ import annotations

from functools import partial

from signs import keras_backends

NAME = "keras-jax"
NOTE = keras_backends.SUBPROCESS_NOTE.format(backend="jax")

keras_backends.require(NAME)

forward_backward = partial(keras_backends.forward_backward, NAME)
predict_logits = partial(keras_backends.predict_logits, NAME)
float64_matmul_dtype = partial(keras_backends.float64_matmul_dtype, NAME)
