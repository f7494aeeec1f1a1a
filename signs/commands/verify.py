"""``signs verify``: prove that NumPy, TensorFlow and PyTorch compute the same network.

With no options: the course-exact initial weights and the course's test vectors, float32 and
float64, forward and backward, every pair of backends. Exit status 0 when every quantity agrees
within its tolerance (signs/tolerances.py), 1 when one does not, 2 when fewer than two backends
are available (or an option, weight file or data folder is bad). A float32 gradient difference
that is proven to be only a max-pool near-tie (signs/ties.py) shows as "tie*" with an explanation
and passes, unless --strict.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from signs.cli_args import add_check_input_arguments, add_max_images_argument

    parser = subparsers.add_parser(
        "verify",
        help="run the same weights through NumPy, TF and PyTorch and compare every layer",
        description="Run one set of weights through NumPy, TensorFlow and PyTorch, forward and "
        "backward, and compare every activation (Z1 A1 P1 Z2 A2 P2 F Z3), the cost and every "
        "gradient (db3 dW3 dW2 dW1 dX) between each pair of backends. Default: the course-exact "
        "initial weights on the course's test vectors (np.random.seed(1); randn(2, 64, 64, 3), "
        "one-hot labels), float32 and float64. Exit 0 if all agree, 1 if not, 2 if fewer than two "
        "backends are available. float32 gradients that differ only because a max-pool window's "
        "two largest cells are a near-tie (proven by re-routing the NumPy reference) show as "
        "tie* and pass unless --strict.",
    )
    add_check_input_arguments(parser, "to verify")
    add_max_images_argument(parser)
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                        help="precision(s) to check (default: both)")
    parser.add_argument("--steps", type=int, default=0, metavar="K",
                        help="also compare K Adam steps of each backend's Trainer on the same "
                        "mini-batches (costs, weights, Adam state): float64 free-running, float32 "
                        "one step at a time from the float64 states")
    parser.add_argument("--replicas", type=int, default=1, metavar="N",
                        help="with --steps K: also train N-way data-parallel (torch DDP, tf "
                        "MirroredStrategy) and compare each weight with one process (docs/distributed.md)")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help="comma-separated backends to compare, at least two of numpy, tf, torch, "
                        "onnx (the exported file in onnxruntime: forward only, float32), keras-torch "
                        "and keras-jax (the tf_model Keras model on Keras' torch / JAX backend, each in "
                        "a subprocess); default: every one that is installed, listing the others "
                        "with the pip extra that adds them")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="device for TF and PyTorch (default: cpu); NumPy always runs on the CPU")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the course vectors (default: 1, the course's)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1) on float32 gradient differences that are proven "
                        "max-pool near-ties (verdict tie*); by default they pass, explained")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout instead of the tables")
    parser.add_argument("--json-out", metavar="FILE", help="also write the JSON result to FILE")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --json-out FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reference.fileio import atomic_path, check_writable
    from signs.verify.options import DEFAULT_BACKENDS, VerifyOptions, parse_backends, parse_dtypes
    from signs.verify.run import run_verification

    options = VerifyOptions(
        backends=DEFAULT_BACKENDS if args.backends is None else parse_backends(args.backends),
        dtypes=parse_dtypes(args.dtype),
        weights=args.weights,
        data=args.data,
        batch=args.batch,
        steps=args.steps,
        device=args.device,
        seed=args.seed,
        strict=args.strict,
        max_images=args.max_images,
    )
    if args.json_out:
        check_writable(args.json_out, args.force)  # refuse before spending time on the check
    if args.replicas < 1 or (args.replicas > 1 and args.steps < 1):
        raise ValueError(f"--replicas: expected a positive integer, and --steps K >= 1 with N > 1 (the Adam "
                         f"steps to compare), got --replicas {args.replicas} --steps {args.steps}")
    result = run_verification(options)
    parallel = _data_parallel(options, args.replicas)
    text = result.to_json() if parallel is None else _with_rows(result.to_json(), parallel)
    if args.json_out:
        with atomic_path(args.json_out, force=args.force) as tmp:
            tmp.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(result.format_text())
        if parallel is not None:
            from signs.distributed.parity import format_rows

            print(format_rows(parallel))
    if result.exit_code == 2:
        # signs.cli prints a ValueError as one "signs verify: error: ..." line and exits 2.
        raise ValueError(result.verdict().removeprefix("verdict: NOT RUN: "))
    if result.exit_code == 0 and parallel is not None and not all(row["ok"] for row in parallel):
        return 1
    return result.exit_code


def _data_parallel(options, replicas: int) -> list[dict] | None:
    """The rows of the data-parallel section (None without --replicas N > 1)."""
    if replicas == 1:
        return None
    from signs.distributed.parity import verify_data_parallel

    return verify_data_parallel(options, replicas)


def _with_rows(json_text: str, rows: list[dict]) -> str:
    """The verify JSON with the data-parallel rows under "data_parallel"."""
    import json

    document = json.loads(json_text)
    document["data_parallel"] = rows
    return json.dumps(document, indent=2)
