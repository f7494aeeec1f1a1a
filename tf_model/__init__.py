"""TensorFlow 2 / Keras 3 implementation of the course ConvNet, and the course's TF1 code.

Modules (import them directly; this package imports nothing, so ``import tf_model`` is cheap):

``tf_model.model``          the Keras functional model, its Adam and an activation model
``tf_model.backend``        the ``signs.backends`` interface: forward_backward, predict_logits, Trainer
``tf_model.convert``        canonical params <-> live Keras model and ``.weights.h5`` files
``tf_model.tf1_course``     the course notebook's TF1 graph through ``tf.compat.v1``
``tf_model.tf1_checkpoint`` TF1 checkpoints (course variable names, Adam slots) read and write
"""
