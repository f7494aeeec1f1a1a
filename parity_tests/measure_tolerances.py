"""Measure the worst cross-framework disagreement of every quantity over the parity suite's cases.

Usage (from the repository root)::

    python parity_tests/measure_tolerances.py [--data ../shared/data/signs] [--json]

Runs the full product of the cases test_parity_model.py samples (weights x inputs x labels x
dtype), the one-epoch Adam runs of test_parity_adam.py (free-running in both dtypes, and float32
single steps from the float64 trajectory), and a float32 near-tie probe (Glorot weights of several
seeds on the 120 real test images), and prints, per section, dtype and quantity, the largest
relative error (``signs.tolerances.relative_error``: max|a - b| / max(max|a|, max|b|)) over every
case and every pair of backends, where it occurred, the declared tolerance and their ratio.
parity_tests/README.md records its output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_helpers import (  # noqa: E402
    DTYPES,
    cast,
    INPUT_KINDS,
    LABEL_KINDS,
    WEIGHT_KINDS,
    check_case,
    load_available_backends,
    make_inputs,
    make_labels,
    make_weights,
    synthetic_train_set,
)
from reference.data.batches import epoch_mini_batches  # noqa: E402
from signs.verify.adam_steps import compare_training, train_all  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "signs"
SINGLE_STEPS = (0, 1, 8, 16)  # 0-based steps re-run in float32 from the float64 trajectory


def _record(worst: dict, report, case: str) -> None:
    """Keep, per (dtype, quantity), the largest max_rel seen and where."""
    for pair, row in report.comparisons.items():
        for name, comparison in row.items():
            key = (report.dtype, name)
            value = comparison.max_rel if comparison.max_rel is not None else float("inf")
            if key not in worst or value > worst[key]["max_rel"]:
                worst[key] = {"dtype": report.dtype, "name": name, "max_rel": value,
                              "tolerance": comparison.tolerance, "pair": "-".join(pair),
                              "case": case}


def _train_sets(data_dir: Path | None) -> dict:
    sets = {"synthetic 1080": synthetic_train_set()}
    if data_dir is not None and (data_dir / "jpg" / "train").is_dir():
        from reference.data.dataset import normalize_images, one_hot
        from reference.data.images import read_image_folder

        folder = read_image_folder(data_dir / "jpg" / "train", progress=False)
        sets["SIGNS jpg/train"] = (normalize_images(folder.X_orig, np.float64),
                                   one_hot(folder.y, dtype=np.float64))
    return sets


def measure_forward_backward(backends, weights, signs_test) -> tuple[dict, int]:
    """The full product weights x inputs x labels x dtype (test_parity_model.py runs a subset)."""
    worst: dict = {}
    cases = 0
    for weight_kind in WEIGHT_KINDS:
        for input_kind in INPUT_KINDS:
            if input_kind == "signs_test" and signs_test is None:
                continue
            X = make_inputs(input_kind, signs_test)
            for label_kind in LABEL_KINDS:
                if label_kind == "onehot" and input_kind == "signs_test":
                    Y = signs_test[1]
                else:
                    Y = make_labels(label_kind, X.shape[0], seed=1000 + X.shape[0])
                for dtype in DTYPES:
                    case = f"{weight_kind}/{input_kind}/{label_kind}"
                    report, _ = check_case(backends, weights[weight_kind], X, Y, dtype, case)
                    _record(worst, report, case)
                    cases += 1
    return worst, cases


def measure_adam(backends, weights, train_sets) -> tuple[dict, dict]:
    """Free-running epochs (both dtypes) and float32 single steps from the float64 state."""
    free: dict = {}
    single: dict = {}
    reference = next(iter(backends))
    for label, (X, Y) in train_sets.items():
        batches = epoch_mini_batches(X, Y, 0)
        for dtype in DTYPES:
            typed = [(bx.astype(dtype), by.astype(dtype)) for bx, by in batches]
            trained = train_all(backends, {k: v.astype(dtype) for k, v in weights.items()}, typed)
            _record(free, compare_training(trained, dtype), f"17 steps, {label}")
        trainer = backends[reference].Trainer(weights)
        for step, (bx, by) in enumerate(batches):
            if step in SINGLE_STEPS:
                state = trainer.get_optimizer_state()
                state32 = {"t": state["t"], "m": cast(state["m"], np.float32),
                           "v": cast(state["v"], np.float32)}
                results = train_all(backends, cast(trainer.get_params(), np.float32),
                                    [(bx.astype(np.float32), by.astype(np.float32))], state=state32)
                _record(single, compare_training(results, np.float32), f"step {step + 1}, {label}")
            trainer.step(bx, by)
    return free, single


def measure_near_ties(backends, signs_test, seeds: int) -> tuple[dict, list[str]]:
    """float32 on the 120 real test images with Glorot weights of several seeds: how often a
    near-tie in a max-pool window routes a gradient differently (dX, dW1 beyond tolerance), and
    whether signs.ties proves each such difference a tie (verdict "tie") or not (FAIL)."""
    from reference.init import glorot_init
    from signs.ties import classify_ties

    worst: dict = {}
    failing = []
    X, Y = signs_test
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    for seed in range(seeds):
        params = glorot_init(seed, dtype=np.float64)
        report, results = check_case(backends, params, X, Y, np.float32)
        _record(worst, report, f"glorot seed {seed}")
        if report.strict_ok:
            continue
        classify_ties(report, results, cast(params, np.float32), X32, Y32)
        names = sorted({c.name for c in report.failures() + report.tied()})
        confirmed = [c for tie in report.ties.values() for side, c in tie["confirmations"].items()
                     if side != "numpy"]
        agree = max((c["worst_rel"] for c in confirmed), default=0.0)
        verdict = (f"tie ({len(report.ties)} pair(s); re-routed reference agrees to {agree:.1e})"
                   if report.ok else "FAIL")
        failing.append(f"seed {seed}: {', '.join(names)}: {verdict}")
    return worst, failing


def measure(data_dir: Path | None, tie_seeds: int) -> tuple[list[tuple[str, list[dict]]], list[str]]:
    backends, skipped = load_available_backends()
    if len(backends) < 2:
        raise SystemExit(f"need at least two backends, unavailable: {skipped}")
    weights = {kind: make_weights(kind, backends) for kind in WEIGHT_KINDS}
    signs_test = None
    if data_dir is not None:
        from reference.data.dataset import load_signs

        data = load_signs(data_dir, dtype=np.float64, splits=("test",), progress=False)
        signs_test = (data.X_test, data.Y_test)
    forward, cases = measure_forward_backward(backends, weights, signs_test)
    train_sets = _train_sets(data_dir)
    free, single = measure_adam(backends, weights["course"], train_sets)
    sections = [
        (f"Forward and backward: {cases} cases (weights x inputs x labels x dtype)", forward),
        (f"Adam, 17 free-running steps ({', '.join(train_sets)})", free),
        (f"Adam, float32 single steps {[s + 1 for s in SINGLE_STEPS]} from the float64 state", single),
    ]
    notes = [f"backends {', '.join(backends)}" + (f"; skipped {skipped}" if skipped else "")]
    if signs_test is not None and tie_seeds:
        ties, failing = measure_near_ties(backends, signs_test, tie_seeds)
        sections.append((f"float32 near-tie probe: Glorot seeds 0..{tie_seeds - 1}, 120 test images",
                         ties))
        notes.append(f"near-tie probe: {len(failing)} of {tie_seeds} seeds exceed a tolerance"
                     + (": " + "; ".join(failing) if failing else ""))
    return [(title, list(rows.values())) for title, rows in sections], notes


def markdown(rows: list[dict]) -> str:
    lines = ["| dtype | quantity | worst rel. error | tolerance | worst / tol | pair | case |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row['max_rel'] / row['tolerance']:.2g}" if row["tolerance"] else "-"
        lines.append(f"| {row['dtype']} | {row['name']} | {row['max_rel']:.1e} | "
                     f"{row['tolerance']:.0e} | {ratio} | {row['pair']} | {row['case']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else None,
                        help="SIGNS data folder (default: ../shared/data/signs when present)")
    parser.add_argument("--tie-seeds", type=int, default=10,
                        help="Glorot seeds of the float32 near-tie probe on the real test images")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    sections, notes = measure(args.data, args.tie_seeds)
    if args.json:
        print(json.dumps({"notes": notes, "sections": dict(sections)}, indent=2))
        return 0
    print("\n".join(notes))
    for title, rows in sections:
        print(f"\n### {title}\n")
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
