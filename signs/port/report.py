"""What ``signs compare`` is asked (:class:`CompareOptions`) and what it answers
(:class:`CompareResult`): the text report, the verdict and exit code, the JSON.

The verdict is "agree" when every compared quantity is within its tolerance and the candidate's
parameters are the course net's; "diverge" otherwise (exit 1). The text shows, per check, the
candidate next to the reference with the worst element and its index (``signs.compare``'s one-pair
table), then the first divergence and the proven traps with their evidence and fix.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

import numpy as np

from reference.spec import PARAM_NAMES
from signs.compare import Report, first_divergence, format_number, format_pair_table, layer_of
from signs.port.capture import Observation

__all__ = ["REFERENCE", "CANDIDATE", "OWN_TITLE", "STEP_NAMES", "STOCK_ADAM", "CompareOptions",
           "CompareResult", "trap_dict"]

REFERENCE, CANDIDATE = "reference", "candidate"
OWN_TITLE = "own weights (--own-weights)"  # the report of the candidate's weights vs --weights
STEP_NAMES: tuple[str, ...] = ("costs",) + PARAM_NAMES  # rows of a steps report: (K, ...) each
# The optimizer a candidate steps with when no --optimizer is given, per framework.
STOCK_ADAM = {"torch": "stock torch.optim.Adam", "keras": "stock keras.optimizers.Adam",
              "tf1": "tf.compat.v1.train.AdamOptimizer"}


@dataclass(frozen=True)
class CompareOptions:
    """What ``signs compare`` runs; the defaults are ``signs compare CANDIDATE`` with no options."""

    candidate: str
    weights: str | None = None
    own_weights: bool = False
    data: str | None = None
    batch: int | None = None
    dtypes: tuple[str, ...] = ("float64", "float32")
    steps: int = 0
    optimizer: str | None = None
    loss: str | None = None
    input_size: tuple[int, int] | None = None
    device: str = "cpu"
    param_map: str | None = None
    seed: int = 1
    strict: bool = False  # proven float32 max-pool near-ties ("tie*") fail too


@dataclass
class CompareResult:
    """Everything ``signs compare`` prints, as data."""

    options: CompareOptions
    candidate: str
    framework: str
    input_layout: str
    weights: str
    inputs: str
    mapping: str
    extra: dict[str, str]
    activations: dict[str, dict[str, str]] = field(default_factory=dict)  # dtype -> name -> label
    not_found: dict[str, list[str]] = field(default_factory=dict)  # dtype -> names
    reports: list[Report] = field(default_factory=list)
    traps: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    mismatch: str | None = None  # why the candidate's parameters are not the course net's

    @property
    def diverges(self) -> bool:
        """Anything fails (proven float32 max-pool near-ties pass, unless ``options.strict``)."""
        failed = any(not (r.strict_ok if self.options.strict else r.ok) for r in self.reports)
        return bool(self.extra) or self.mismatch is not None or failed

    @property
    def n_ties(self) -> int:
        return sum(len(r.tied()) for r in self.reports)

    @property
    def verdict(self) -> str:
        return "diverge" if self.diverges else "agree"

    @property
    def exit_code(self) -> int:
        return 1 if self.diverges else 0

    def first_divergence(self) -> tuple[Report, Any] | None:
        """The first failing quantity of the first failing report (own weights, float64, float32)."""
        for report in self.reports:
            divergence = first_divergence(report)
            if divergence is not None:
                return report, divergence
        return None

    # ------------------------------------------------------------------------------ text
    def format_text(self) -> str:
        lines = [
            _wrap(f"signs compare: {self.candidate} ({self.framework}, {self.input_layout} input) "
                  f"on {self.options.device}"),
            _wrap(f"  weights: {self.weights}"),
            _wrap(f"  inputs:  {self.inputs}"),
            _wrap(f"  parameters: {self.mapping}"),
        ]
        if self.mismatch:
            lines.append(_wrap(f"  the candidate's model is not the course's: {self.mismatch}"))
        if self.extra:
            kept = "kept (--own-weights)" if self.options.own_weights else "set to zero"
            lines.append(_wrap(f"  not in the course net, {kept}: "
                               + ", ".join(f"{k}={v}" for k, v in self.extra.items())))
        first_dtype = next(iter(self.activations), None)
        if first_dtype is not None:
            found = self.activations[first_dtype]
            lines.append(_wrap("  activations: " + "; ".join(f"{n}={label}" for n, label in found.items())))
        for report in self.reports:
            extra_rows = [(n, "not found in the candidate") for n in self.not_found.get(report.dtype, ())
                          if "forward" in report.title]
            lines += ["", format_pair_table(report, (CANDIDATE, REFERENCE), extra_rows)]
            lines += [_wrap(line) for line in report.summary().splitlines()]
        lines += [_wrap(note) for note in self.notes]
        divergence = self.first_divergence()
        if divergence is not None:
            report, d = divergence
            layer = d.layer.replace(" after the steps", "") if report.title.startswith(OWN_TITLE) else d.layer
            lines += ["", _wrap(f"first divergence: {d.name} ({layer}) in '{report.title}'")]
            lines += [_wrap(f"  {c.message()}") for c in d.failures]
        if self.traps:
            lines += ["", "porting traps that explain the candidate (proven by re-running the reference):"]
            for trap in self.traps:
                t = trap_dict(trap)
                layer = f" ({t['layer']})" if t.get("layer") else ""
                lines.append(_wrap(f"  {t['id']}{layer}: {_evidence_text(t['evidence'])}"))
                lines.append(_wrap(f"      fix: {t['fix']}"))
        elif self.diverges and (divergence is not None or self.extra or self.mismatch):
            lines += ["", "porting traps: unexplained (no trap in the catalogue explains the candidate)"]
        lines += ["", _wrap(self.verdict_line())]
        return "\n".join(lines)

    def verdict_line(self) -> str:
        if not self.diverges:
            ties = (f"; {self.n_ties} gradient comparison(s) differ only by proven float32 "
                    "max-pool near-ties (tie*; --strict fails them)") if self.n_ties else ""
            return (f"verdict: agree: every compared quantity is within tolerance "
                    f"({len(self.reports)} checks){ties}")
        parts = []
        divergence = self.first_divergence()
        if divergence is None and self.n_ties and self.options.strict:
            parts.append(f"--strict: {self.n_ties} gradient comparison(s) differ by proven float32 "
                         "max-pool near-ties (tie*)")
        if divergence is not None:
            parts.append(f"first divergence {divergence[1].name} ({divergence[0].title})")
        if self.extra:
            parts.append(f"parameters the course net lacks: {', '.join(self.extra)}")
        if self.mismatch:
            parts.append("the candidate's parameters are not the course net's (nothing compared)")
        forward_ok = all(r.ok for r in self.reports if "forward" in r.title)
        if forward_ok and any(not r.ok for r in self.reports if "optimizer step" in r.title):
            parts.append("forward and gradients agree; only the optimizer steps differ")
        ids = sorted({trap_dict(t)["id"] for t in self.traps})
        if ids or divergence is not None or self.extra or self.mismatch:
            parts.append(f"explained by {', '.join(ids)}" if ids else "unexplained")
        return "verdict: diverge: " + "; ".join(parts)

    # ------------------------------------------------------------------------------ JSON
    def rows(self) -> list[dict]:
        rows = []
        for report in self.reports:
            (pair,) = report.pairs
            for name in report.names:
                c = report.comparisons[pair][name].to_dict()
                rows.append({
                    "check": report.title, "name": name, "dtype": report.dtype,
                    "layer": layer_of(name), "shape": c["shape"], "max_abs": c["max_abs"],
                    "max_rel": c["max_rel"], "tolerance": c["tolerance"],
                    "worst_index": c["worst_index"], "candidate": c["ours_value"],
                    "reference": c["theirs_value"], "verdict": report.verdict_of(pair, name),
                    "failure": c["failure"],
                })
        return rows

    def to_dict(self) -> dict:
        divergence = self.first_divergence()
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "strict": self.options.strict,
            "ties": self.n_ties,
            "first_divergence": (divergence[1].name if divergence is not None
                                 else "parameters" if self.mismatch else None),
            "model_mismatch": self.mismatch,
            "first_divergence_check": None if divergence is None else divergence[0].title,
            "candidate": self.candidate,
            "framework": self.framework,
            "input_layout": self.input_layout,
            "device": self.options.device,
            "weights": self.weights,
            "inputs": self.inputs,
            "parameters": self.mapping,
            "extra_parameters": dict(self.extra),
            "activations": self.activations,
            "not_found": self.not_found,
            "dtypes": list(self.options.dtypes),
            "steps": self.options.steps,
            "rows": self.rows(),
            "traps": [trap_dict(t) for t in self.traps],
            "notes": list(self.notes),
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def trap_dict(trap) -> dict:
    """A trap finding as a JSON-able dict with at least id, layer, evidence, fix."""
    if hasattr(trap, "to_dict"):
        return trap.to_dict()
    if is_dataclass(trap):
        return asdict(trap)
    return dict(trap)


def _evidence_text(evidence) -> str:
    """One sentence from a finding's evidence: the variant, and the deciding quantity's error
    against the true reference and against the reference with the trap put in."""
    if not isinstance(evidence, dict):
        return str(evidence)
    quantity = evidence.get("quantity")
    before, after = evidence.get("error_vs_reference"), evidence.get("error_vs_altered")
    # The catalogue spells variants "trap@layer: what"; the id and layer are printed already.
    text = str(evidence.get("variant", ""))
    text = " + ".join(re.sub(r"^[a-z0-9-]+(@\w+)?: ", "", part) for part in text.split(" + "))
    if quantity is not None:
        number = lambda v: v if isinstance(v, str) else format_number(v)
        text += (f"; {quantity}: rel error {number(before)} against the reference, "
                 + (f"{number(after)} against the reference with this trap "
                    if after is not None else "")
                 + f"(tol {format_number(evidence.get('tolerance'), 0)})")
    return text


def _wrap(line: str, width: int = 100) -> str:
    return textwrap.fill(line, width=width, subsequent_indent="      ", break_long_words=False,
                         break_on_hyphens=False)
