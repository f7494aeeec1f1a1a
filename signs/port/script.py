"""Import a user's ``FILE.py`` the way ``python FILE.py`` sees its imports, and leave the process as it was.

A candidate port is a user's file: it may ``import`` its neighbours (``cnn_utils.py`` beside it), and
its name may clash with a module already loaded (a ``model.py``). :func:`import_script`

- puts the file's folder first on ``sys.path`` while the file is imported (as a script run has it);
- hides, for that time, already-loaded modules whose names the folder defines, so the file gets its
  neighbours, not a same-named module of ours;
- imports the file under its own stem (not ``"__main__"``: an ``if __name__ == "__main__":`` block,
  where scripts keep their training and tests, does not run);
- afterwards restores ``sys.path`` and removes the file and its neighbours from ``sys.modules`` (the
  returned module keeps working: its functions hold their globals), putting back what it hid.

``redirects`` hands chosen modules to the ``import`` statements *of files in the candidate's folder*
only (e.g. ``"tensorflow"`` -> a TF1 namespace, for legacy code): every other module, including a
library imported for the first time meanwhile, imports the real thing. Only imports executed while
the file is being imported are redirected (a module-level ``import tensorflow as tf``, the usual
form); an ``import`` statement inside a function, run later, gets the real module.

The file is executed as Python: only run files you trust.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Iterator, Mapping

__all__ = ["import_script", "describe_exception"]


def describe_exception(exc: BaseException) -> str:
    """``"KeyError: 'W7'"``: the exception's type and the first line of its message (for one-line errors)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _local_module_names(folder: Path) -> set[str]:
    """Top-level module names the folder defines: ``*.py`` stems and package directories."""
    names = {path.stem for path in folder.glob("*.py")}
    names |= {path.name for path in folder.iterdir() if (path / "__init__.py").is_file()}
    return names


def _is_local(module_name: str, local_names: set[str]) -> bool:
    return module_name.partition(".")[0] in local_names


def _inside(folder: Path, importer_globals) -> bool:
    """Whether the module whose globals are ``importer_globals`` is a file in ``folder`` (or below)."""
    file = (importer_globals or {}).get("__file__")
    if not file:
        return False
    try:
        return Path(file).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _imports_redirected(folder: Path, redirects: Mapping[str, types.ModuleType]) -> Iterator[None]:
    """Serve ``redirects[name]`` to ``import name`` statements executed by files in ``folder``.

    ``import a.b as x`` asks ``__import__("a.b")`` for the top package ``a`` and then reads ``.b``
    from it, so a dotted name without a ``fromlist`` returns ``redirects[top]``; ``from a.b import
    c`` gets ``redirects["a.b"]``.
    """
    if not redirects:
        yield
        return
    real_import = builtins.__import__

    def redirecting_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in redirects and _inside(folder, globals):
            return redirects[name] if fromlist else redirects[name.partition(".")[0]]
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = redirecting_import
    try:
        yield
    finally:
        builtins.__import__ = real_import


@contextlib.contextmanager
def _script_environment(folder: Path) -> Iterator[None]:
    """``sys.path`` with ``folder`` first and same-named modules hidden; both restored on exit."""
    saved_path = list(sys.path)
    local_names = _local_module_names(folder)
    hidden = {name: module for name, module in sys.modules.items() if _is_local(name, local_names)}
    for name in hidden:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in [name for name in sys.modules if _is_local(name, local_names)]:
            del sys.modules[name]
        sys.modules.update(hidden)


def import_script(path, *, redirects: Mapping[str, types.ModuleType] | None = None,
                  argument: str = "candidate") -> types.ModuleType:
    """Import ``path`` (a ``.py`` file) as a script would see its imports; see the module docstring.

    Parameters
    ----------
    path : the file.
    redirects : module name -> module served to the file's (and its neighbours') imports of that name;
        a dotted name needs its top package too (``"tensorflow.contrib"`` with ``"tensorflow"``).
    argument : how error messages name the file's argument.

    Raises
    ------
    FileNotFoundError : no such file. ValueError : not a ``.py`` file, or importing it raised (one
        line naming the file and the exception).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: expected an existing FILE.py, got {str(path)!r} (no such file)")
    if path.suffix != ".py":
        raise ValueError(f"{argument}: expected a Python file FILE.py, got {str(path)!r}")
    folder = path.resolve().parent
    for name in redirects or {}:
        if "." in name and name.partition(".")[0] not in redirects:
            raise ValueError(f"redirects: expected the top package of {name!r} redirected too, got {sorted(redirects)}")
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    with _script_environment(folder), _imports_redirected(folder, redirects or {}):
        sys.modules[module_name] = module  # as an import would: the file may look itself up
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # a user's file may raise anything, or call sys.exit()
            raise ValueError(f"{argument}: importing {str(path)!r} raised {describe_exception(exc)}") from exc
    return module
