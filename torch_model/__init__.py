"""The course SIGNS ConvNet in PyTorch, with TensorFlow's semantics.

Modules: ``ops`` (TF-SAME conv/pool ops, layout permutes, ``no_tf32``), ``model``
(``SignsConvNet``), ``optim`` (``TF1Adam``), ``convert`` (canonical params <-> state dicts) and
``backend`` (the ``signs.backends`` interface). Importing this package imports torch; it never
imports tensorflow.
"""

from torch_model.model import SignsConvNet
from torch_model.optim import TF1Adam

__all__ = ["SignsConvNet", "TF1Adam"]
