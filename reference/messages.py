"""One-line messages: exceptions and lists of offending items, as the CLI prints them."""

from __future__ import annotations

from typing import Sequence

__all__ = ["one_line", "listing"]

MAX_LISTED = 5  # how many offending items a message names before "and N more"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (h5py and PIL messages can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def listing(items: Sequence[str]) -> str:
    """The first :data:`MAX_LISTED` items joined by "; ", then "and N more" if there are more."""
    shown = "; ".join(items[:MAX_LISTED])
    return shown + (f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
