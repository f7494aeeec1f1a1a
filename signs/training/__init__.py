"""The training driver shared by every backend: the course's recipe, checkpoints, resume, metrics.

Modules: :mod:`~signs.training.recipes` (what decides a trajectory: the course's and the improved
recipe, schedules, augmentation, initial weights), :mod:`~signs.training.metrics` (accuracy,
confusion matrix, the course's cost divisor), :mod:`~signs.training.driver` (:func:`~signs.training.driver.train`, its
epoch loop, checkpoints and resume), :mod:`~signs.training.run_folder` (the run folder's files,
checked before any work and written atomically as the run goes) and :mod:`~signs.training.summary` (metrics.json, cost.png).
"""
