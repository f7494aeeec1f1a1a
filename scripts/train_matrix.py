"""Train every backend with the course recipe (course init + several Glorot seeds) and an improved
recipe, then summarise final cost, train/test accuracy and wall time as a Markdown table.

    python scripts/train_matrix.py --data ../shared/data/signs --out runs/matrix

Each run is one ``signs train`` subprocess (so one backend's framework never slows another's);
finished runs (``metrics.json`` with status "complete") are reused, so an interrupted matrix
resumes where it stopped. The table goes to ``<out>/RESULTS.md`` and is what README.md quotes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BACKENDS = ("numpy", "tf", "torch")


def run_one(out: Path, data: str, backend: str, extra: list[str]) -> dict:
    metrics_path = out / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        if metrics.get("status") == "complete":
            return metrics
    command = [sys.executable, "-m", "signs", "train", "--backend", backend, "--data", data,
               "--out", str(out), "--force", "--no-progress", *extra]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return json.loads(metrics_path.read_text())


def summary_row(label: str, runs: list[dict]) -> str:
    def stat(values, fmt):
        if len(values) == 1:
            return fmt.format(values[0])
        return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"

    final = [r["final"] for r in runs]
    cost = [r["epochs"][-1]["course_cost"] for r in runs]
    return (f"| {label} | {len(runs)} | {stat(cost, '{:.3f}')} | {stat([f['train_accuracy'] for f in final], '{:.3f}')} "
            f"| {stat([f['test_accuracy'] for f in final], '{:.3f}')} | {stat([r['wall_time_s'] for r in runs], '{:.0f}')} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/signs")
    parser.add_argument("--out", default="runs/matrix")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS))
    parser.add_argument("--skip-improved", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    lines = ["| backend, recipe | runs | final course cost | train accuracy | test accuracy | wall time (s) |",
             "|---|---|---|---|---|---|"]
    per_run = ["| backend | init | final course cost | train accuracy | test accuracy | wall time (s) |", "|---|---|---|---|---|---|"]
    for backend in args.backends:
        course = run_one(out / f"{backend}-course", args.data, backend, [])
        seeded = [run_one(out / f"{backend}-glorot{s}", args.data, backend, ["--init", "glorot", "--seed", str(s)])
                  for s in args.seeds]
        lines.append(summary_row(f"{backend}, course recipe, course init", [course]))
        lines.append(summary_row(f"{backend}, course recipe, Glorot seeds {args.seeds}", seeded))
        for label, run in [("course", course)] + [(f"glorot {s}", r) for s, r in zip(args.seeds, seeded)]:
            per_run.append(f"| {backend} | {label} | {run['epochs'][-1]['course_cost']:.3f} | "
                           f"{run['final']['train_accuracy']:.3f} | {run['final']['test_accuracy']:.3f} | {run['wall_time_s']:.0f} |")
        if not args.skip_improved:
            improved = run_one(out / f"{backend}-improved", args.data, backend, ["--recipe", "improved"])
            lines.append(summary_row(f"{backend}, improved recipe, course init", [improved]))
            per_run.append(f"| {backend} | improved | {improved['epochs'][-1]['course_cost']:.3f} | "
                           f"{improved['final']['train_accuracy']:.3f} | {improved['final']['test_accuracy']:.3f} | "
                           f"{improved['wall_time_s']:.0f} |")
    text = "\n".join(["# Training results", "", *lines, "", "## Every run", "", *per_run, ""])
    (out / "RESULTS.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
