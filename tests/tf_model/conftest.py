"""Fixtures of the tf_model tests (TensorFlow is quieted by the root conftest.py before it loads)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def course_params():
    """The course's exact initial weights (float32), from the course's own TF1 initializers."""
    from tf_model.tf1_course import course_initial_weights

    return course_initial_weights()
