"""The course ConvNet as a Keras 3 functional model, as a user would write it.

Check it against the course's reference with::

    signs compare examples/ports/course_keras.py:course_model --steps 5

Keras keeps TensorFlow's layouts (NHWC, HWIO kernels, Dense kernel (in, out)) and SAME padding,
so the course's weights fit unchanged; the one thing to remember is ``use_bias=False`` on the convs.
Keras' stock Adam uses TF1's epsilon placement, so ``--steps`` agrees with no ``--optimizer``.
"""

import keras


def course_model() -> keras.Model:
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 4, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(8, 8, padding="same")(x)
    x = keras.layers.Conv2D(16, 2, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(4, 4, padding="same")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(6)(x)
    return keras.Model(inputs, outputs)
