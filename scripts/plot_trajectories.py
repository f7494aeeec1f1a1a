"""Overlay the per-epoch course cost of several ``signs train`` runs (one curve per run folder).

    python scripts/plot_trajectories.py runs/f64-numpy runs/f64-tf runs/f64-torch --out docs/trajectories-float64.png

Each curve is labelled with its backend, dtype, and (where metrics.json records them) its thread
count and 1-ulp perturbation seed.

Prints, per epoch, the largest relative difference between the runs' costs, so the figure's claim
("the curves coincide") comes with its number.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reference.fileio import atomic_path  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="Course recipe, same initial weights")
    parser.add_argument("--epochs", type=int, default=None, help="plot only the first N epochs")
    args = parser.parse_args()
    curves = {}
    for run in args.runs:
        metrics = json.loads((run / "metrics.json").read_text())
        details = [metrics["dtype"]]
        threads = (metrics.get("run_settings") or {}).get("threads")
        if threads:  # recorded since signs train --threads
            details.append(f"{threads} thread{'s' if threads > 1 else ''}")
        if metrics.get("perturbation"):
            details.append(f"1-ulp seed {metrics['perturbation']['seed']}")
        label = f"{metrics['backend']} ({', '.join(details)})"
        curves[label] = [epoch["course_cost"] for epoch in metrics["epochs"]][: args.epochs]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, costs in curves.items():
        axis.plot(range(len(costs)), costs, label=label, linewidth=1.2)
    axis.set_xlabel("epoch")
    axis.set_ylabel("course cost")
    axis.set_title(args.title)
    axis.legend()
    with atomic_path(args.out, force=True) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    n = min(len(c) for c in curves.values())
    worst = []
    for epoch in range(n):
        values = [c[epoch] for c in curves.values()]
        worst.append((max(values) - min(values)) / max(abs(v) for v in values))
    for epoch in sorted({0, 1, 4, 9, 19, 29, 49, 99} & set(range(n))):
        print(f"epoch {epoch:3d}: max relative cost difference across runs {worst[epoch]:.1e}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
