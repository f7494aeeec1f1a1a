"""Find and import what ``signs compare`` is asked to run: the candidate, its optimizer, its loss.

A CANDIDATE argument is one of

- ``FILE.py:NAME``: ``NAME()`` (no arguments) returns a ``torch.nn.Module`` or a ``keras.Model``;
- ``FILE.keras``: a saved Keras model, loaded with ``safe_mode=True`` (no arbitrary code);
- ``FILE.py``: legacy TF1 code defining ``forward_propagation(X, parameters)`` (and optionally
  ``compute_cost(Z3, Y)``), run in graph mode by :mod:`signs.port.tf1_candidate`.

``FILE.py`` is *executed* as Python, as ``python FILE.py`` would execute it up to its
``if __name__ == "__main__"`` block, by :func:`signs.port.script.import_script`: its folder goes
first on ``sys.path`` so it may import its neighbours. Only run files you trust.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from signs.port.script import describe_exception, import_script

__all__ = ["CandidateSpec", "parse_candidate", "parse_callable", "load_callable", "call_user",
           "framework_of"]


@dataclass(frozen=True)
class CandidateSpec:
    """A parsed CANDIDATE argument. ``kind``: "factory" (FILE.py:NAME), "keras" or "tf1"."""

    path: Path
    name: str | None
    kind: str

    def describe(self) -> str:
        return f"{self.path}:{self.name}" if self.name else str(self.path)


def _split(text: str, what: str) -> tuple[Path, str | None]:
    """"dir/file.py:NAME" -> (Path, "NAME"); a colon inside a Windows drive is not a separator."""
    path, sep, name = text.rpartition(":")
    if not sep or "/" in name or "\\" in name or not path or name.endswith((".py", ".keras")):
        return Path(text), None
    if not name.isidentifier():
        raise ValueError(f"{what}: expected FILE.py:NAME with NAME a Python identifier, got {text!r}")
    return Path(path), name


def parse_candidate(text: str) -> CandidateSpec:
    """Parse ``FILE.py:NAME``, ``FILE.keras`` or ``FILE.py``; FileNotFoundError if FILE is absent."""
    path, name = _split(text, "CANDIDATE")
    if path.suffix == ".keras":
        if name is not None:
            raise ValueError(f"CANDIDATE: expected FILE.keras without :NAME, got {text!r}")
        kind = "keras"
    elif path.suffix == ".py":
        kind = "factory" if name else "tf1"
    else:
        raise ValueError(f"CANDIDATE: expected FILE.py:NAME, FILE.keras or FILE.py (TF1 code), "
                         f"got {text!r}")
    if not path.is_file():
        raise FileNotFoundError(f"CANDIDATE: {path}: no such file")
    return CandidateSpec(path, name, kind)


def parse_callable(text: str, option: str) -> tuple[Path, str]:
    """``--optimizer``/``--loss`` ``FILE.py:NAME`` -> (path, name)."""
    path, name = _split(text, option)
    if name is None or path.suffix != ".py":
        raise ValueError(f"{option}: expected FILE.py:NAME, got {text!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{option}: {path}: no such file")
    return path, name


def load_callable(path: Path, name: str, what: str) -> Callable[..., Any]:
    """``name`` from the script ``path``; ValueError listing the callables it has if absent."""
    module = import_script(path, argument=what)
    value = getattr(module, name, None)
    if not callable(value):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ValueError(f"{what}: expected a callable {name!r} in {path.name}, got "
                         f"{'nothing by that name' if value is None else type(value).__name__}; "
                         f"callables defined there: {', '.join(found) or 'none'}")
    return value


def call_user(function: Callable[..., Any], args: tuple, what: str) -> Any:
    """Call the user's ``function``; anything it raises becomes a one-line ValueError naming it."""
    try:
        return function(*args)
    except Exception as exc:  # user code: report, never a traceback
        raise ValueError(f"{what}: {getattr(function, '__name__', type(function).__name__)}() raised "
                         f"{describe_exception(exc)}") from exc


def framework_of(obj: object) -> str | None:
    """"torch" for a ``torch.nn.Module``, "keras" for a ``keras.Model``, else None.

    Only frameworks the candidate's file already imported are asked (``sys.modules``), so telling
    them apart never imports TensorFlow for a torch candidate or the reverse.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "torch"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(obj, keras.Model):
        return "keras"
    return None
