"""scripts/mutation_check.py's planted bugs still apply: each mutant's text occurs exactly once in
its file and its tests exist (refactors moved two of them out from under the script once)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mutants():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "scripts" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["mutation_check"]
    return module.MUTANTS


@pytest.mark.parametrize("mutant", _mutants(), ids=lambda m: m.name)
def test_each_planted_bug_still_applies(mutant):
    path = ROOT / mutant.path
    assert path.is_file(), f"{mutant.name}: expected the file {mutant.path}"
    assert path.read_text().count(mutant.old) == 1, f"{mutant.name}: expected its text once in {mutant.path}"
    for test in mutant.tests:
        assert (ROOT / test.split("::")[0]).is_file(), f"{mutant.name}: expected the test file of {test}"
