"""Plant known, realistic bugs one at a time and check that the tests named for each catch it.

    python3 scripts/mutation_check.py [--list] [--only NAME ...]

Each mutant is a text substitution in one source file (the text must occur exactly once, so a
mutant that no longer matches the code is reported as STALE, not silently skipped). The script
copies the repository's tracked and untracked-but-not-ignored files into a temporary folder,
checks that the named tests pass there unmutated, then for each mutant writes the mutated file,
runs its tests by node id and restores the file (in a ``finally``); the working tree itself is
never written. Prints one table row per mutant: caught, MISSED or STALE. Exit status 1 if any
mutant is missed or stale (or the unmutated tests fail), else 0.

Not part of CI (about 10 minutes on two busy cores); run it after changing a test that one of these
mutants names, and add a mutant with every test written to catch a bug.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    """A bug: in ``path`` (relative to the repo root), ``old`` (occurring once) becomes ``new``;
    ``tests`` are pytest node ids (file::test, all parameters) that must fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


REF_MODEL = "tests/reference/test_reference_model.py"
FAST_LOOP = "tests/reference/test_reference_fast_vs_loop.py"
TOLERANCES = "tests/test_tolerances.py"
PARITY_LAYERS = "parity_tests/test_parity_layers.py"
PARITY_MODEL = "parity_tests/test_parity_model.py"
ROUND_TRIP = "tests/weights/test_convert_roundtrip.py"
TF1 = "tests/tf_model/test_tf_tf1.py"
TORCH_OPS = "tests/torch_model/test_torch_ops.py"
TORCH_CONVERT = "tests/torch_model/test_torch_convert.py"

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "NCHW flatten in NumPy",
        "reference/model.py",
        "    return P.reshape(P.shape[0], -1)",
        "    return P.transpose(0, 3, 1, 2).reshape(P.shape[0], -1)",
        (f"{REF_MODEL}::test_layers_compose_as_documented", f"{REF_MODEL}::test_flatten_is_nhwc_order"),
    ),
    Mutant(
        "SAME padding's odd cell on the top/left",
        "reference/padding.py",
        "    return (total // 2, total - total // 2)",
        "    return (total - total // 2, total // 2)",
        (f"{FAST_LOOP}::test_conv_fast_equals_loop_and_definition", f"{FAST_LOOP}::test_pool_fast_equals_loop_and_definition"),
    ),
    Mutant(
        "max pool padded with zeros instead of -inf",
        "reference/fast_layers.py",
        "        A = max_pool_padded(pad_spatial(A_prev, g.padding, -np.inf), g)",
        "        A = max_pool_padded(pad_spatial(A_prev, g.padding, 0), g)",
        (f"{FAST_LOOP}::test_pool_fast_equals_loop_and_definition",),
    ),
    Mutant(
        "max-pool backward takes each window's gradient from its left neighbour (off by one)",
        "reference/fast_layers.py",
        "        G_rep = np.repeat(G.reshape(m * n_H, n_W, 1, n_C), g.f_w, axis=2)",
        "        G_rep = np.repeat(np.roll(G, 1, axis=2).reshape(m * n_H, n_W, 1, n_C), g.f_w, axis=2)",
        (f"{FAST_LOOP}::test_max_pool_backward_with_ties_agrees_on_untied_windows",),
    ),
    Mutant(
        "dense kernel reshaped, not transposed, both ways (round trips still exact)",
        "torch_model/ops.py",
        '    return w.t()\n\n\ndef dense_kernel_from_torch(w: Tensor) -> Tensor:\n'
        '    """``nn.Linear.weight`` (n_out, n_in) -> canonical dense kernel (n_in, n_out), a view."""\n'
        '    return w.t()',
        '    return w.reshape(w.shape[1], w.shape[0])\n\n\ndef dense_kernel_from_torch(w: Tensor) -> Tensor:\n'
        '    """``nn.Linear.weight`` (n_out, n_in) -> canonical dense kernel (n_in, n_out), a view."""\n'
        '    return w.reshape(w.shape[1], w.shape[0])',
        (f"{TORCH_OPS}::test_layout_permutes_move_each_element_where_stated",
         f"{TORCH_CONVERT}::test_elements_land_where_the_layouts_say"),
    ),
    Mutant(
        "wrong dense-layer op seed in the spec (44 for 45)",
        "reference/spec.py",
        "    dense_init_op_seed: int = 45",
        "    dense_init_op_seed: int = 44",
        (f"{TF1}::test_course_initial_weights_match_the_numpy_reproduction",),
    ),
    Mutant(
        "course init draws W3 with the conv layers' op seed",
        "reference/init.py",
        '"W3": train.dense_init_op_seed}',
        '"W3": train.conv_init_op_seed}',
        ("tests/weights/test_course_init.py::test_course_init_w3_reproduces_the_notebook_forward_propagation_printout",),
    ),
    Mutant(
        "TF1 checkpoint writer stores float64 values through float32",
        "tf_model/tf1_checkpoint.py",
        "            key: v1.Variable(value, name=",
        "            key: v1.Variable(value.astype(np.float32).astype(value.dtype), name=",
        (f"{ROUND_TRIP}::test_float64_round_trips_bitwise",),
    ),
    Mutant(
        "safetensors writer stores float64 values through float32",
        "reference/weights_io.py",
        "    tensors = {name: params[name] for name in PARAM_NAMES}",
        "    tensors = {name: params[name].astype(np.float32).astype(params[name].dtype) for name in PARAM_NAMES}",
        (f"{ROUND_TRIP}::test_float64_round_trips_bitwise",),
    ),
    *(
        Mutant(f"tolerance {name} loosened 1000x", "signs/tolerances.py", line, loose, (TOLERANCES,))
        for name, line, loose in (
            ("FLOAT64_ADAM_STEPS", "FLOAT64_ADAM_STEPS = 1e-9", "FLOAT64_ADAM_STEPS = 1e-6"),
            ("FLOAT32_ADAM_STEPS", "FLOAT32_ADAM_STEPS = 1e-4", "FLOAT32_ADAM_STEPS = 1e-1"),
            ("LOOP_VS_FAST_FLOAT64", "LOOP_VS_FAST_FLOAT64 = 1e-12", "LOOP_VS_FAST_FLOAT64 = 1e-9"),
            ("LOOP_VS_FAST_FLOAT32", "LOOP_VS_FAST_FLOAT32 = 1e-5", "LOOP_VS_FAST_FLOAT32 = 1e-2"),
            ("GRADIENT_CHECK", "GRADIENT_CHECK = 1e-7", "GRADIENT_CHECK = 1e-4"),
            ("FLOAT64_PARITY", "FLOAT64_PARITY = 1e-10", "FLOAT64_PARITY = 1e-7"),
            ("FLOAT32_PARITY['dW1']", '    "dW1": 1e-4,', '    "dW1": 1e-1,'),
        )
    ),
    Mutant(
        "signs verify's verdict ignores the float32 reports",
        "signs/verify/run.py",
        "        return len(self.backends) >= 2 and all(r.ok for r in self.reports)",
        '        return len(self.backends) >= 2 and all(r.ok for r in self.reports if r.dtype != "float32")',
        ("parity_tests/test_parity_verify_cli.py::test_a_float32_only_disagreement_fails_the_verdict",),
    ),
    Mutant(
        "torch model pools VALID whatever the spec says",
        "torch_model/model.py",
        "(pool1.name, TFMaxPool2d(pool1.window, pool1.stride, pool1.padding)),",
        '(pool1.name, TFMaxPool2d(pool1.window, pool1.stride, "valid")),',
        (f"{PARITY_MODEL}::test_forward_backward_agree_where_same_and_valid_pools_differ",),
    ),
    Mutant(
        "torch training forward flattens P2 in NCHW order",
        "torch_model/model.py",
        "        h = relu2(pool2(conv2(h)))\n        return self.classifier(h)",
        "        h = relu2(pool2(conv2(h)))\n        return self.classifier[-1](h.flatten(1))",
        (f"{PARITY_MODEL}::test_torch_training_forward_agrees_with_the_reference",),
    ),
    Mutant(
        "conv bias gradient averaged over the output cells instead of summed",
        "reference/fast_layers.py",
        "    db = matmul_long_inner(np.ones((1, dZ_rows.shape[0]), dtype=dtype), dZ_rows).reshape(1, 1, 1, g.n_C)",
        "    db = matmul_long_inner(np.ones((1, dZ_rows.shape[0]), dtype=dtype), dZ_rows).reshape(1, 1, 1, g.n_C)"
        " / dZ_rows.shape[0]",
        (f"{PARITY_LAYERS}::test_layer_forward_backward_agree",),
    ),
    Mutant(
        "the tie cases' integer inputs drawn continuous (no ties: nothing tested)",
        PARITY_LAYERS,
        "        x = rng.integers(-2, 3, size=case.input_shape).astype(case.dtype)",
        "        x = rng.standard_normal(case.input_shape).astype(case.dtype)",
        (f"{PARITY_LAYERS}::test_layer_forward_backward_agree",),
    ),
    Mutant(
        "training step's sparse dW1 keeps only positive window gradients",
        "reference/model.py",
        "    live = values != 0  # windows whose ReLU is off send nothing",
        "    live = values > 0",
        ("tests/reference/test_reference_pool_semantics.py::test_training_step_with_overlapping_and_padded_pools",),
    ),
    Mutant(
        "fused training step sends gradient through windows whose ReLU is off",
        "reference/fused.py",
        "    values = np.where(P > 0, dP, np.zeros((), dtype=conv.dtype))",
        "    values = np.where(P >= 0, dP, np.zeros((), dtype=conv.dtype))",
        ("tests/reference/test_reference_fused.py::test_weight_grad_equals_the_course_loops",),
    ),
    Mutant(
        "fused training step routes a tied window to its last maximum",
        "reference/fused.py",
        "        first = by_window.argmax(axis=2)  # (o, windows): the first maximum, row-major in the window",
        "        first = (window - 1) - by_window[:, :, ::-1].argmax(axis=2)",
        ("tests/reference/test_reference_fused.py::test_first_maximum_of_tied_windows_gets_the_gradient",),
    ),
    Mutant(
        "ReLU gradient passes at Z == 0",
        "reference/model.py",
        "    return np.where(Z > 0, dA, np.zeros((), dtype=dA.dtype))",
        "    return np.where(Z >= 0, dA, np.zeros((), dtype=dA.dtype))",
        ("tests/reference/test_reference_gradient_check.py::test_relu_gradient",),
    ),
    Mutant(
        "softmax cross-entropy gradient not divided by the batch size",
        "reference/model.py",
        "    return (softmax(Z) * Y.sum(axis=1, keepdims=True) - Y) / m",
        "    return softmax(Z) * Y.sum(axis=1, keepdims=True) - Y",
        ("tests/reference/test_reference_gradient_check.py::test_softmax_cross_entropy_gradient",),
    ),
    Mutant(
        "tied max-pool window keeps its last maximum, not its first",
        "reference/fast_layers.py",
        "    first = windows.argmax(axis=1)  # the first True",
        "    first = f_h * f_w - 1 - windows[:, ::-1].argmax(axis=1)",
        ("tests/reference/test_reference_pool_semantics.py::test_fast_first_maximum_in_row_major_order",),
    ),
    Mutant(
        "Adam without bias correction of the first moment",
        "reference/adam.py",
        "        lr_t = T(self.learning_rate) * np.sqrt(one - beta2_power) / (one - beta1_power)",
        "        lr_t = T(self.learning_rate) * np.sqrt(one - beta2_power)",
        ("tests/reference/test_reference_adam.py::test_equals_textbook_adam",),
    ),
    Mutant(
        "conv kernel HWIO -> OIHW with the spatial axes swapped",
        "torch_model/ops.py",
        "    return w.permute(3, 2, 0, 1)",
        "    return w.permute(3, 2, 1, 0)",
        (f"{TORCH_OPS}::test_layout_permutes_move_each_element_where_stated",
         f"{TORCH_CONVERT}::test_elements_land_where_the_layouts_say"),
    ),
    Mutant(
        "near-tie windows laid out with SAME padding whatever the pool's padding",
        "signs/ties.py",
        "    g = PoolGeometry(A, pool.hparameters)",
        '    g = PoolGeometry(A, dict(pool.hparameters, pad="SAME"))',
        ("parity_tests/test_parity_compare.py::test_pool_windows_route_as_the_max_pool_backward_with_any_padding",),
    ),
    Mutant(
        "model_backward ignores its max-pool routing hook",
        "reference/model.py",
        "        if route is not None:\n            route(pool, dP, dA)\n",
        "",
        (f"{REF_MODEL}::test_route_hook_runs_after_each_max_pool_backward_before_its_relu",),
    ),
)


def _repo_files() -> list[str]:
    """Tracked files and untracked files git does not ignore (what a commit would hold)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def _copy_repo(dest: Path) -> None:
    for name in _repo_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    data = ROOT.parent / "shared" / "data" / "signs"  # the tests' default, relative to the repo
    if "SIGNS_DATA" not in env and data.exists():
        env["SIGNS_DATA"] = str(data.resolve())
    return env


def _run_tests(copy: Path, tests, env) -> tuple[bool, float]:
    """(all passed, seconds) of ``pytest -x`` over the node ids in the copy."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                            cwd=copy, env=env, capture_output=True, text=True)
    return result.returncode == 0, time.perf_counter() - start


def check(mutants, copy: Path) -> list[tuple[Mutant, str, float]]:
    """Plant each mutant in ``copy``, run its tests, restore the file: (mutant, verdict, seconds)."""
    env = _environment(copy)
    rows = []
    for mutant in mutants:
        path = copy / mutant.path
        original = path.read_text()
        if original.count(mutant.old) != 1:
            rows.append((mutant, "STALE", 0.0))
            continue
        try:
            path.write_text(original.replace(mutant.old, mutant.new))
            passed, seconds = _run_tests(copy, mutant.tests, env)
        finally:
            path.write_text(original)
        rows.append((mutant, "MISSED" if passed else "caught", seconds))
        print(f"  {rows[-1][1]:6}  {mutant.name}", file=sys.stderr, flush=True)
    return rows


def _table(rows) -> str:
    lines = ["| # | planted bug | file | tests | result | s |", "|---|---|---|---|---|---|"]
    for k, (mutant, verdict, seconds) in enumerate(rows, 1):
        tests = ", ".join(t.split("::")[-1] for t in mutant.tests)
        lines.append(f"| {k} | {mutant.name} | {mutant.path} | {tests} | {verdict} | {seconds:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run the mutants whose name contains NAME")
    args = parser.parse_args(argv)
    mutants = MUTANTS
    if args.only:
        mutants = tuple(m for m in MUTANTS if any(word.lower() in m.name.lower() for word in args.only))
    if args.list or not mutants:
        print("\n".join(f"{m.name}  [{m.path}]" for m in mutants) or "no mutant matches --only")
        return 0 if mutants else 2
    with tempfile.TemporaryDirectory(prefix="mutation_check_") as tmp:
        copy = Path(tmp) / ROOT.name
        _copy_repo(copy)
        tests = sorted({t for m in mutants for t in m.tests})
        passed, seconds = _run_tests(copy, tests, _environment(copy))
        if not passed:
            print(f"the unmutated tests fail ({seconds:.0f} s): fix them first:\n  " + "\n  ".join(tests))
            return 1
        rows = check(mutants, copy)
    print(_table(rows))
    missed = [m.name for m, verdict, _ in rows if verdict != "caught"]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} planted bugs caught" + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
