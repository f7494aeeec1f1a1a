"""Keras ports of the course net for the signs compare tests: correct ones in two styles and broken
variants, each mistake as a user would make it."""

import keras


def _model(conv1_padding="same", use_bias=False, final_activation=None) -> keras.Model:
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 4, padding=conv1_padding, use_bias=use_bias)(inputs)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D(8, 8, padding="same")(x)
    x = keras.layers.Conv2D(16, 2, padding="same", use_bias=use_bias)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(4, 4, padding="same")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(6, activation=final_activation)(x))


def correct() -> keras.Model:
    return _model()


def sequential_fused_relu() -> keras.Model:
    """Correct, Sequential, ReLU fused into the convs (Z1 and Z2 are then not observable)."""
    return keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(8, 4, padding="same", use_bias=False, activation="relu"),
        keras.layers.MaxPooling2D(8, 8, padding="same"),
        keras.layers.Conv2D(16, 2, padding="same", use_bias=False, activation="relu"),
        keras.layers.MaxPooling2D(4, 4, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(6),
    ])


def conv1_valid() -> keras.Model:
    """padding-mode: Conv2D's default padding='valid' on conv1."""
    return _model(conv1_padding="valid")


def default_bias() -> keras.Model:
    """conv-bias: Conv2D's default use_bias=True."""
    return _model(use_bias=True)


def softmax_output() -> keras.Model:
    """softmax-output: Dense(6, activation='softmax') with a from_logits loss."""
    return _model(final_activation="softmax")


def adam_default_epsilon(model):
    """adam-epsilon: Keras' default epsilon 1e-7 instead of the course's 1e-8."""
    return keras.optimizers.Adam(learning_rate=0.009)


def adam_lr_001(model):
    """optimizer-hyperparameters: Keras' default learning rate 0.001."""
    return keras.optimizers.Adam(learning_rate=0.001, epsilon=1e-8)


def adam_course(model):
    """The course's Adam written with Keras' stock class and plain Python numbers (correct)."""
    return keras.optimizers.Adam(learning_rate=0.009, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
