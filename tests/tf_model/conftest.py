"""Fixtures of the tf_model tests. TensorFlow's C++ logging is silenced before TF is imported."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the `signs` CLI runs TF (signs/cli.py)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def course_params():
    """The course's exact initial weights (float32), from the course's own TF1 initializers."""
    from tf_model.tf1_course import course_initial_weights

    return course_initial_weights()
