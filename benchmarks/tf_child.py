"""TensorFlow's training step and epoch with the other oneDNN setting, in a subprocess.

``TF_ENABLE_ONEDNN_OPTS`` is read once, when TensorFlow is imported, so the benchmark's own
process can only time one setting; ``signs`` sets it to 0 unless the user set it (reproducible
float32 results). This child (``python -m benchmarks.tf_child --onednn 1 ...``) sets it before
importing TensorFlow, times the TF custom loop, Keras ``fit`` and the course's TF1 graph with the
same harness, and prints one JSON line. The parent waits meanwhile, so the two never overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["TF_KEYS", "run_tf_child", "child_main"]

TF_KEYS = ("tf", "keras_fit", "tf1")


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tf_child")
    parser.add_argument("--onednn", choices=("0", "1"), required=True)
    parser.add_argument("--data", required=True, help="npz with X (m, 64, 64, 3) and Y (m, 6), float32")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default="steps,epoch")
    args = parser.parse_args(argv)
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = args.onednn  # before TensorFlow is imported

    import numpy as np

    from benchmarks import run
    from benchmarks.env import set_tf_threads
    from reference.data.batches import epoch_mini_batches
    from reference.init import course_init

    with np.load(args.data) as data:
        X_all, Y_all = data["X"], data["Y"]
    X, Y = epoch_mini_batches(X_all, Y_all, 0)[0]
    params = course_init()
    settings = run.Settings(sections=tuple(args.sections.split(",")), reps=args.reps, quick=args.quick,
                            threads=args.threads, out=Path(os.devnull), json_out=Path(os.devnull), data=None, seed=0)
    frameworks = {"torch": None, "tf": set_tf_threads(args.threads), "unavailable": {}}
    steppers: dict = {}
    run._steppers(settings, params, X_all, Y_all, frameworks, steppers)
    steppers = {key: steppers[key] for key in TF_KEYS}
    quiet = lambda message: None
    result = {"onednn": args.onednn, "tf_threads": frameworks["tf"]}
    if "steps" in settings.sections:
        result["steps"] = run.run_steps(settings, params, X, Y, steppers, quiet)
    if "epoch" in settings.sections:
        result["epoch"] = run.run_epochs(settings, X_all, Y_all, steppers, quiet)
    print(json.dumps(result))
    return 0


def run_tf_child(onednn: str, data_path: Path, threads: int, reps: int, quick: bool, sections: list[str],
                 timeout_s: float = 600.0) -> dict:
    """Run the child; returns its JSON, or ``{"error": "..."}`` if it failed."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    cmd = [sys.executable, "-m", "benchmarks.tf_child", "--onednn", onednn, "--data", str(data_path),
           "--threads", str(threads), "--reps", str(reps), "--sections", ",".join(sections)]
    if quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


if __name__ == "__main__":
    sys.exit(child_main())
