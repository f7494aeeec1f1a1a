"""What a benchmark run does: its sections, options and resolved :class:`Settings`.

Light to import (no NumPy, no framework): ``signs bench`` builds its help from it.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SECTION_HELP",
    "SECTIONS",
    "project_dir",
    "Settings",
    "describe_sections",
    "add_arguments",
    "parse_sections",
    "settings_from_args",
]

# The sections of a run (``--only``), in the order they run and are reported; the one list.
SECTION_HELP: dict[str, str] = {
    "limit": "float32 matmul GFLOP/s and copy bandwidth with NumPy; the model's FLOPs; the lower bounds",
    "layers": "per layer (conv1 pool1 conv2 pool2 dense), forward and backward: the course's loops (on a "
    "few images, scaled to 64), fast NumPy, PyTorch, TensorFlow (tf.function)",
    "steps": "one training step (forward, backward, Adam): NumPy, PyTorch, TF custom loop, Keras fit, the "
    "course's TF1 graph through tf.compat.v1",
    "epoch": "one epoch of the course's mini-batches per backend (images/s, 100-epoch projection)",
    "memory": "peak resident memory of one epoch per backend, each in a subprocess",
    "profile": "PyTorch: torch.profiler of a step and prototype variants of the step",
    "inference": "images/s of the logits on the 120 test images, batch 1 and 120: NumPy, PyTorch, "
    "TensorFlow, onnxruntime (benchmarks/inference.py)",
}
SECTIONS: tuple[str, ...] = tuple(SECTION_HELP)


def describe_sections(width: int = 100) -> str:
    """The section list as help text: one wrapped entry per section, names in a column."""
    return "\n".join(
        textwrap.fill(help_text, width=width, initial_indent=f"  {name:<8} ", subsequent_indent=" " * 11)
        for name, help_text in SECTION_HELP.items()
    )

DEFAULT_REPS = 7
QUICK_REPS = 2


def project_dir() -> Path:
    """The project folder (holding pyproject.toml), else the current directory."""
    from reference.data.paths import project_root

    return project_root() or Path.cwd()


def default_out() -> Path:
    return project_dir() / "BENCHMARKS.md"


def default_json_out() -> Path:
    return project_dir() / "benchmarks" / "results.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``signs bench`` and ``python -m benchmarks``."""
    parser.add_argument("--quick", action="store_true",
                        help=f"few repetitions and images ({QUICK_REPS} reps; for smoke tests)")
    parser.add_argument("--reps", type=int, default=None, metavar="N",
                        help=f"timed repetitions per candidate (default {DEFAULT_REPS}; {QUICK_REPS} with --quick)")
    parser.add_argument("--only", default=",".join(SECTIONS), metavar="LIST",
                        help=f"comma-separated sections to run, from {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help=f"Markdown report (default: {default_out()})")
    parser.add_argument("--json-out", default=None, metavar="FILE",
                        help=f"JSON results (default: {default_json_out()} when --out is the default, "
                        "else FILE.json beside --out)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="threads for PyTorch (intra/inter-op), TensorFlow (intra/inter-op) and the NumPy "
                        f"reference's block workers (default: os.cpu_count() = {os.cpu_count()})")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="SIGNS data folder (default: $SIGNS_DATA, else ../shared/data/signs beside the "
                        "project); without it seeded random images are used")
    parser.add_argument("--seed", type=int, default=0, help="seed of random images and upstream gradients")


def parse_sections(text: str) -> tuple[str, ...]:
    """``"layers,steps"`` -> ("layers", "steps") in canonical order; ValueError for unknown names."""
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise ValueError(f"--only: expected a comma-separated list from {','.join(SECTIONS)}, got {text!r}")
    return tuple(s for s in SECTIONS if s in names)


@dataclass
class Settings:
    """Everything a run needs, resolved from the options."""

    sections: tuple[str, ...]
    reps: int
    quick: bool
    threads: int
    out: Path
    json_out: Path
    data: str | None
    seed: int
    command: str = "signs bench"

    @property
    def warmup(self) -> int:
        return 1

    @property
    def epoch_reps(self) -> int:
        # 3 were too few on this VM: an epoch that allocates fresh large buffers swings 2-4x.
        return 1 if self.quick else max(1, min(7, self.reps))

    @property
    def loop_images(self) -> dict[str, int]:
        """Images the course's loop layers are timed on (then scaled to 64)."""
        if self.quick:
            return {"conv1": 1, "pool1": 2, "conv2": 4, "pool2": 16}
        return {"conv1": 2, "pool1": 8, "conv2": 16, "pool2": 64}

    @property
    def target_s(self) -> float:
        """Duration aimed at for one timing sample of a fast operation."""
        return 0.02 if self.quick else 0.1

    @property
    def gap_s(self) -> float:
        """Pause between alternating candidates (lets the last one's threads stop spinning)."""
        return 0.02 if self.quick else 0.05

    @property
    def step_target_s(self) -> float:
        return 0.05 if self.quick else 0.4

    @property
    def profile_steps(self) -> int:
        return 3 if self.quick else 10


def command_line(args: argparse.Namespace, prog: str = "signs bench") -> str:
    """The options that differ from the defaults, as a command line (recorded in the report)."""
    parts = [prog]
    if args.quick:
        parts.append("--quick")
    if args.reps is not None:
        parts += ["--reps", str(args.reps)]
    if parse_sections(args.only) != SECTIONS:
        parts += ["--only", ",".join(parse_sections(args.only))]
    for option, value in (("--out", args.out), ("--json-out", args.json_out), ("--data", args.data)):
        if value:
            parts += [option, str(value)]
    if args.threads != (os.cpu_count() or 1):
        parts += ["--threads", str(args.threads)]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    return " ".join(parts)


def settings_from_args(args: argparse.Namespace, prog: str = "signs bench") -> Settings:
    """Validate the options (ValueError naming the option) and resolve defaults."""
    sections = parse_sections(args.only)
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else DEFAULT_REPS)
    if reps < 1:
        raise ValueError(f"--reps: expected a positive integer, got {reps}")
    if args.threads < 1:
        raise ValueError(f"--threads: expected a positive integer, got {args.threads}")
    out = Path(args.out) if args.out else default_out()
    if args.json_out:
        json_out = Path(args.json_out)
    elif args.out is None:
        json_out = default_json_out()
    else:
        json_out = out.with_suffix(".json") if out.suffix != ".json" else out.with_name(out.name + ".results.json")
    return Settings(sections, reps, bool(args.quick), int(args.threads), out, json_out, args.data, int(args.seed),
                    command_line(args, prog))
