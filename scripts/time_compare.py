"""Time ``signs compare`` of a torch candidate in both dtypes with ``--steps 5``, and the framework
import it pays first, each in a fresh process; print a Markdown table for BENCHMARKS.md.

    python scripts/time_compare.py [--repeats 3] [--candidate examples/ports/course_torch.py:CourseNet]

"Import" is ``import torch, torch._dynamo`` in a fresh interpreter (``torch.optim``'s first
optimizer imports ``torch._dynamo``, a large part of the cost). "Compare" is the whole command,
wall time, in a fresh interpreter; "beyond import" is their difference, and the command's own
per-phase seconds (its ``--json-out`` "seconds": load includes importing the candidate file and so
torch) are shown too. Medians and min-max over the repeats; the load average is printed because on
a shared machine it inflates everything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wall(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, code


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f} - {max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidate", default="examples/ports/course_torch.py:CourseNet")
    parser.add_argument("--optimizer", default=None, help="FILE.py:NAME passed as --optimizer")
    args = parser.parse_args()
    load_before = os.getloadavg()
    imports, walls, phases, codes = [], [], [], set()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compare.json"
        command = [sys.executable, "-m", "signs", "compare", args.candidate, "--steps", "5",
                   "--dtype", "both", "--json-out", str(out), "--force"]
        if args.optimizer:
            command += ["--optimizer", args.optimizer]
        for _ in range(args.repeats):
            imports.append(_wall([sys.executable, "-c", "import torch, torch._dynamo"])[0])
            seconds, code = _wall(command)
            walls.append(seconds)
            codes.add(code)
            phases.append(json.loads(out.read_text())["seconds"])
    beyond = [w - i for w, i in zip(walls, imports)]
    print(f"candidate {args.candidate}, --steps 5, float64 and float32"
          + (f", --optimizer {args.optimizer}" if args.optimizer else "") + f"; exit codes {sorted(codes)}")
    print(f"load average before {tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in os.getloadavg())}\n")
    print("| measure | median (min - max) |\n|---|---|")
    print(f"| `import torch, torch._dynamo` (fresh process) | {_cell(imports)} |")
    print(f"| `signs compare ...` whole command (fresh process) | {_cell(walls)} |")
    print(f"| compare beyond the import | {_cell(beyond)} |")
    for phase in phases[0]:
        print(f"| phase `{phase}` (in-process) | {_cell([p[phase] for p in phases])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
