"""What the command line prints: one-line messages (exceptions, lists of offending items) and
whether to show a progress bar."""

from __future__ import annotations

import sys
from typing import Sequence

__all__ = ["one_line", "listing", "use_progress"]

MAX_LISTED = 5  # how many offending items a message names before "and N more"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (h5py and PIL messages can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def listing(items: Sequence[str]) -> str:
    """The first :data:`MAX_LISTED` items joined by "; ", then "and N more" if there are more."""
    shown = "; ".join(items[:MAX_LISTED])
    return shown + (f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def use_progress(progress: bool | None) -> bool:
    """Show a progress bar? ``None`` means: only when stderr (where tqdm writes) is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)
