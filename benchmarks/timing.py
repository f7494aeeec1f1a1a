"""Interleaved wall-clock timing: candidates run A B C A B C ... after a warm-up, medians reported.

Interleaving spreads any slow phase of a shared machine (another process waking up, a frequency
change) over every candidate instead of charging it to whichever one happened to run then.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

__all__ = ["Candidate", "Stats", "calibrate_inner", "run_interleaved", "time_once"]


@dataclass
class Candidate:
    """One thing to time.

    Attributes
    ----------
    key : short identifier, unique within its group (e.g. "torch")
    fn : one call of the timed operation; its result is ignored
    inner : calls per sample (the sample is their mean); ``None`` calibrates it after the warm-up
    scale : factor applied to the per-call time (e.g. 64 / 2 for a loop timed on 2 images)
    sample : optional replacement for the default sampler: returns one per-call time in seconds
        (used when a call must time itself, e.g. ``model.fit`` with a batch callback)
    warmup : take part in the warm-up rounds (pure-Python loops gain nothing from one)
    """

    key: str
    fn: Callable[[], object] | None = None
    inner: int | None = None
    scale: float = 1.0
    sample: Callable[[], float] | None = None
    warmup: bool = True


@dataclass
class Stats:
    """Per-call times in seconds over the repetitions."""

    median: float
    min: float
    max: float
    samples: list[float] = field(default_factory=list)
    inner: int = 1
    scale: float = 1.0

    @classmethod
    def of(cls, samples: list[float], inner: int = 1, scale: float = 1.0) -> "Stats":
        if not samples:
            raise ValueError("samples: expected at least one timing, got none")
        return cls(statistics.median(samples), min(samples), max(samples), list(samples), inner, scale)

    def to_dict(self) -> dict:
        return asdict(self)


def time_once(fn: Callable[[], object]) -> float:
    """Wall time in seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def calibrate_inner(fn: Callable[[], object], target_s: float, max_inner: int = 1000) -> int:
    """Calls per sample so that one sample lasts about ``target_s`` (at least 1)."""
    once = time_once(fn)
    if once <= 0:
        return max_inner
    return int(min(max_inner, max(1, math.ceil(target_s / once))))


def _sample(candidate: Candidate) -> float:
    """One per-call time (seconds, already scaled) of ``candidate``."""
    if candidate.sample is not None:
        return candidate.sample() * candidate.scale
    inner = candidate.inner or 1
    fn = candidate.fn
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner * candidate.scale


def run_interleaved(
    candidates: list[Candidate], reps: int, warmup: int = 1, target_s: float = 0.05, gap_s: float = 0.0
) -> dict[str, Stats]:
    """Time ``candidates`` in rounds A B C A B C ...; ``reps`` samples each after ``warmup`` rounds.

    Parameters
    ----------
    candidates : the things to time; keys must be unique
    reps : samples per candidate (the median and min-max are over these)
    warmup : untimed rounds first (tracing, allocator and cache warm-up)
    target_s : duration aimed at for one sample when a candidate's ``inner`` is ``None``
    gap_s : pause before each sample when candidates alternate. Thread pools keep spinning for a
        while after a call (OpenBLAS's workers for tens of ms); on a machine with few cores that
        spinning would be charged to the next candidate.

    Returns
    -------
    dict key -> Stats (seconds per call)
    """
    keys = [c.key for c in candidates]
    if len(set(keys)) != len(keys):
        raise ValueError(f"candidates: expected unique keys, got {keys}")
    if reps < 1:
        raise ValueError(f"reps: expected at least 1, got {reps}")
    pause = (lambda: time.sleep(gap_s)) if gap_s > 0 and len(candidates) > 1 else (lambda: None)
    for _ in range(max(0, warmup)):
        for c in candidates:
            if c.warmup:
                pause()
                _sample(c) if c.sample is not None else c.fn()
    for c in candidates:
        if c.sample is None and c.inner is None:
            pause()
            c.inner = calibrate_inner(c.fn, target_s)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(reps):
        for c in candidates:
            pause()
            samples[c.key].append(_sample(c))
    return {c.key: Stats.of(samples[c.key], c.inner or 1, c.scale) for c in candidates}
