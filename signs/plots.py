"""Figures and text tables of the training and evaluation commands.

Figures are drawn with Matplotlib's object API on an Agg canvas (no ``pyplot``, no display, no
global state) and written atomically with ``reference.fileio.atomic_path``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from reference.fileio import atomic_path

__all__ = ["save_cost_plot", "save_confusion_plot", "format_confusion_table"]


def _new_figure(width: float, height: float):
    """A Figure attached to an Agg canvas (imported lazily: ``import signs`` stays light)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, path: str | os.PathLike, force: bool) -> Path:
    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        figure.savefig(tmp, format="png")
    return path


def save_cost_plot(
    path: str | os.PathLike,
    costs: Sequence[float],
    learning_rate: float,
    *,
    mean_losses: Sequence[float] | None = None,
    force: bool = True,
) -> Path:
    """The course's cost figure: one point per epoch, titled ``"Learning rate =0.009"``.

    The course plots the cost it appends after *every* epoch but labels the axis
    "iterations (per tens)"; this figure labels it with what it is, the epoch.

    Parameters
    ----------
    costs : sequence of float, length n_epochs
        The course's epoch cost (sum of batch costs / int(m / mini_batch_size)).
    learning_rate : float
        Shown in the title exactly as the course prints it (``str(learning_rate)``).
    mean_losses : sequence of float, optional
        The true mean loss over the examples of each epoch, drawn dashed for comparison.
    """
    figure = _new_figure(6.4, 4.8)
    axes = figure.add_subplot()
    epochs = np.arange(len(costs))
    axes.plot(epochs, np.asarray(costs, dtype=np.float64), label="course cost (sum / int(m / batch))")
    if mean_losses is not None:
        axes.plot(epochs, np.asarray(mean_losses, dtype=np.float64), "--", label="mean loss over examples")
        axes.legend()
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("cost")
    axes.set_xlabel("epoch")
    axes.set_title("Learning rate =" + str(learning_rate))
    return _save_png(figure, path, force)


def save_confusion_plot(
    path: str | os.PathLike,
    matrices: dict[str, np.ndarray],
    class_names: Sequence[str],
    *,
    force: bool = False,
) -> Path:
    """One heat map per split (e.g. ``{"train": C, "test": C}``), counts written in the cells.

    Parameters
    ----------
    matrices : dict[str, np.ndarray]
        Confusion matrices (n_classes, n_classes) of counts; row = true class, column = predicted.
    class_names : sequence of str, length n_classes
    """
    figure = _new_figure(4.6 * len(matrices), 4.4)
    for index, (split, matrix) in enumerate(matrices.items(), start=1):
        axes = figure.add_subplot(1, len(matrices), index)
        axes.imshow(matrix, cmap="Blues")
        ticks = np.arange(len(class_names))
        axes.set_xticks(ticks, labels=list(class_names))
        axes.set_yticks(ticks, labels=list(class_names))
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        accuracy = np.trace(matrix) / max(int(matrix.sum()), 1)
        axes.set_title(f"{split}: accuracy {accuracy:.4f}")
        threshold = matrix.max() / 2 if matrix.size else 0
        for row in range(matrix.shape[0]):
            for col in range(matrix.shape[1]):
                axes.text(
                    col, row, str(int(matrix[row, col])), ha="center", va="center",
                    color="white" if matrix[row, col] > threshold else "black",
                )
    figure.tight_layout()
    return _save_png(figure, path, force)


def format_confusion_table(matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """A confusion matrix as a text table: rows true class, columns predicted, then recall per row.

    Parameters
    ----------
    matrix : np.ndarray, shape (n_classes, n_classes), integer counts
    class_names : sequence of str, length n_classes
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(class_names):
        raise ValueError(
            f"matrix: expected shape ({len(class_names)}, {len(class_names)}), got {matrix.shape}"
        )
    width = max(6, *(len(str(name)) for name in class_names), len(str(int(matrix.max(initial=0)))))
    header = "true\\pred".ljust(10) + "".join(str(n).rjust(width + 1) for n in class_names) + "  accuracy"
    lines = [header]
    for index, (name, row) in enumerate(zip(class_names, matrix)):
        total = int(row.sum())
        recall = f"{row[index] / total:.4f}" if total else "   n/a"
        lines.append(str(name).ljust(10) + "".join(str(int(c)).rjust(width + 1) for c in row) + "  " + recall)
    return "\n".join(lines)
