"""Train every backend with the course recipe (course init + several Glorot seeds) and an improved
recipe, and the course recipe from the course-exact weights over thread counts and 1-ulp
perturbations of those weights; summarise final cost and train/test accuracy as Markdown tables.

    python scripts/train_matrix.py --data ../shared/data/signs --out runs/matrix
    python scripts/train_matrix.py --sections spread --jobs 2      # only the spread, two at a time

Each run is one ``signs train`` subprocess (so one backend's framework never slows another's);
finished runs (``metrics.json`` with status "complete") are reused, so an interrupted matrix
resumes where it stopped. Sections:

``seeds``
    course recipe from the course-exact weights and from Glorot seeds (``--seeds``), the
    frameworks' default thread counts (recorded in each metrics.json).
``improved``
    the improved recipe from the course-exact weights, default thread counts.
``spread``
    the course recipe from the course-exact weights with ``--threads`` 1 and 2 (``--threads-list``),
    each unperturbed and with ``--perturb-ulp`` seeds 0 and 1 (``--ulp-seeds``): how much a float32
    run depends on the summation order and on the last bit of its start. Accuracy only at the end
    (``--eval-every 0``, which does not change the trajectory).

The tables go to ``<out>/RESULTS.md`` and are what README.md and docs/training-results.md quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("numpy", "tf", "torch")
SECTIONS = ("seeds", "improved", "spread")
CHANCE_COST = 1.8  # a run whose final course cost stays above this has collapsed to chance (ln 6 = 1.79)


@dataclass(frozen=True)
class Run:
    """One ``signs train`` run of the matrix: its folder and its options beyond the backend's."""

    folder: str
    backend: str
    extra: tuple[str, ...] = ()


def completed(out: Path, run: Run) -> dict | None:
    """The metrics of a complete run in ``out/run.folder``, else None."""
    metrics_path = out / run.folder / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        if metrics.get("status") == "complete":
            return metrics
    return None


def run_one(out: Path, data: str, run: Run) -> dict:
    """Train ``run`` into ``out/run.folder`` unless a complete run is there; its metrics."""
    done = completed(out, run)
    if done is not None:
        return done
    folder = out / run.folder
    metrics_path = folder / "metrics.json"
    command = [sys.executable, "-m", "signs", "train", "--backend", run.backend, "--data", data,
               "--out", str(folder), "--force", "--no-progress", *run.extra]
    print(" ".join(command), flush=True)
    log = folder.with_name(folder.name + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream:
        subprocess.run(command, check=True, stdout=stream, stderr=subprocess.STDOUT)
    return json.loads(metrics_path.read_text())


def run_all(out: Path, data: str, runs: list[Run], jobs: int, train: bool = True) -> dict[str, dict]:
    """Every run's metrics by folder, ``jobs`` runs at a time (in list order); with ``train``
    False only the runs already complete."""
    if not train:
        found = {run.folder: completed(out, run) for run in runs}
        return {folder: metrics for folder, metrics in found.items() if metrics is not None}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda run: run_one(out, data, run), runs))
    return {run.folder: metrics for run, metrics in zip(runs, results)}


def spread_runs(backends, threads_list, ulp_seeds) -> list[Run]:
    """The spread section's runs, unperturbed ones first (they matter most if time runs out)."""
    runs = []
    for ulp in (None, *ulp_seeds):
        for backend in backends:
            for threads in threads_list:
                extra = ("--threads", str(threads), "--eval-every", "0")
                name = f"spread/{backend}-t{threads}"
                if ulp is not None:
                    extra += ("--perturb-ulp", str(ulp))
                    name += f"-ulp{ulp}"
                runs.append(Run(name, backend, extra))
    return runs


def stat(values, fmt: str) -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def final_cost(run: dict) -> float:
    return run["epochs"][-1]["course_cost"]


def summary_row(label: str, runs: list[dict]) -> str:
    final = [r["final"] for r in runs]
    return (f"| {label} | {len(runs)} | {stat([final_cost(r) for r in runs], '{:.3f}')} "
            f"| {stat([f['train_accuracy'] for f in final], '{:.3f}')} "
            f"| {stat([f['test_accuracy'] for f in final], '{:.3f}')} |")


def run_row(backend: str, label: str, run: dict) -> str:
    return (f"| {backend} | {label} | {final_cost(run):.3f} | {run['final']['train_accuracy']:.3f} "
            f"| {run['final']['test_accuracy']:.3f} |")


def thread_label(run: dict) -> str:
    """The thread counts a run used, from its metrics.json (older runs did not record them)."""
    environment = run.get("environment")
    if not environment:
        return "not recorded"
    pools = environment.get("torch") or environment.get("tf")
    blas = [pool["num_threads"] for pool in environment.get("blas", []) if pool["user_api"] == "blas"]
    parts = [f"BLAS {blas[0]}"] if blas else []
    if pools:
        parts.append(f"intra-op {pools['intra_op_threads']}, inter-op {pools['inter_op_threads']}")
    return ", ".join(parts)


def perturbation_label(run: dict) -> str:
    info = run.get("perturbation")
    if not info:
        return "none"
    index = ",".join(str(i) for i in info["index"])
    return f"seed {info['seed']}: {info['name']}[{index}] +1 ulp"


def epochs_to_leave_chance(run: dict) -> str:
    """The first epoch (from 0) whose course cost is below ``CHANCE_COST``, or "never"."""
    for record in run["epochs"]:
        if record["course_cost"] < CHANCE_COST:
            return str(record["epoch"])
    return "never"


def spread_tables(runs: list[Run], results: dict[str, dict]) -> list[str]:
    lines = ["## Course recipe, course-exact weights: thread counts and 1-ulp perturbations", "",
             "| backend | threads | initial weights | final course cost | train accuracy | test accuracy "
             "| first epoch below 1.8 | weights SHA-256 (first 12) |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        if run.folder not in results:
            lines.append(f"| {run.backend} | {run.extra[1]} | {'none' if len(run.extra) < 6 else 'seed ' + run.extra[5]} "
                         "| not run | | | | |")
            continue
        metrics = results[run.folder]
        threads = metrics["run_settings"]["threads"]
        sha = metrics["environment"].get("initial_weights_sha256", "")[:12]
        lines.append(f"| {run.backend} | {threads} | {perturbation_label(metrics)} | {final_cost(metrics):.3f} "
                     f"| {metrics['final']['train_accuracy']:.3f} | {metrics['final']['test_accuracy']:.3f} "
                     f"| {epochs_to_leave_chance(metrics)} | `{sha}` |")
    lines += ["", "| backend | runs | collapsed to chance | final course cost | train accuracy | test accuracy |",
              "|---|---|---|---|---|---|"]
    for backend in dict.fromkeys(run.backend for run in runs):
        mine = [results[run.folder] for run in runs if run.backend == backend and run.folder in results]
        if not mine:
            continue
        collapsed = sum(final_cost(m) >= CHANCE_COST for m in mine)
        final = [m["final"] for m in mine]
        lines.append(f"| {backend} | {len(mine)} | {collapsed} | {stat([final_cost(m) for m in mine], '{:.3f}')} "
                     f"| {stat([f['train_accuracy'] for f in final], '{:.3f}')} "
                     f"| {stat([f['test_accuracy'] for f in final], '{:.3f}')} |")
    return lines


def seed_tables(out: Path, data: str, backends, seeds, improved: bool, jobs: int) -> list[str]:
    summary = ["| backend, recipe | runs | final course cost | train accuracy | test accuracy |",
               "|---|---|---|---|---|"]
    per_run = ["| backend | init | final course cost | train accuracy | test accuracy |", "|---|---|---|---|---|"]
    for backend in backends:
        runs = [Run(f"{backend}-course", backend)]
        runs += [Run(f"{backend}-glorot{s}", backend, ("--init", "glorot", "--seed", str(s))) for s in seeds]
        if improved:
            runs.append(Run(f"{backend}-improved", backend, ("--recipe", "improved")))
        results = run_all(out, data, runs, jobs)
        course, seeded = results[f"{backend}-course"], [results[f"{backend}-glorot{s}"] for s in seeds]
        summary.append(summary_row(f"{backend}, course recipe, course init", [course]))
        summary.append(summary_row(f"{backend}, course recipe, Glorot seeds {list(seeds)}", seeded))
        per_run.append(run_row(backend, "course", course))
        per_run += [run_row(backend, f"glorot {s}", r) for s, r in zip(seeds, seeded)]
        if improved:
            summary.append(summary_row(f"{backend}, improved recipe, course init", [results[f"{backend}-improved"]]))
            per_run.append(run_row(backend, "improved", results[f"{backend}-improved"]))
        per_run.append(f"| {backend} | (threads) | {thread_label(course)} | | |")
    return ["## Course init, Glorot seeds, improved recipe (default threads)", "", *summary, "",
            "### Every run", "", *per_run]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/signs")
    parser.add_argument("--out", default="runs/matrix")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS))
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {SECTIONS} (default: all)")
    parser.add_argument("--threads-list", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--ulp-seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tabulate the runs already complete (the spread marks the others)")
    args = parser.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: expected names from {SECTIONS}, got {unknown}")
    if args.report_only and set(sections) - {"spread"}:
        parser.error("--report-only: only with --sections spread")
    out = Path(args.out)
    lines = ["# Training results", ""]
    if "seeds" in sections or "improved" in sections:
        lines += seed_tables(out, args.data, args.backends, args.seeds if "seeds" in sections else [],
                             "improved" in sections, args.jobs) + [""]
    if "spread" in sections:
        runs = spread_runs(args.backends, args.threads_list, args.ulp_seeds)
        lines += spread_tables(runs, run_all(out, args.data, runs, args.jobs, train=not args.report_only)) + [""]
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
