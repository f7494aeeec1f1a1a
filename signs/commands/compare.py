"""``signs compare CANDIDATE``: check a user's own port of the course ConvNet against the reference.

CANDIDATE is ``FILE.py:NAME`` (``NAME()`` returns a ``torch.nn.Module`` or a ``keras.Model``),
``FILE.keras`` (loaded with ``safe_mode=True``) or ``FILE.py`` (legacy TF1 code with the course's
``forward_propagation``). FILE.py is executed as Python. Exit 0 when everything agrees within the
tolerances of signs/tolerances.py, 1 when anything diverges or the model is not the course's, 2
for usage errors and candidates that cannot be run. The work is in :mod:`signs.port.session`.
"""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Run your own port of the course ConvNet (PyTorch, Keras, or legacy TF1 code) and the NumPy "
    "reference on the same weights and inputs; compare every activation (Z1 A1 P1 Z2 A2 P2 F Z3), "
    "the loss, every gradient (db3 dW3 dW2 dW1 dX) and, with --steps, the weights after each "
    "optimizer step; report the first divergence and the porting traps that explain it. "
    "CANDIDATE is FILE.py:NAME (NAME() returns a torch.nn.Module or keras.Model), FILE.keras "
    "(loaded with safe_mode=True) or FILE.py (TF1 code defining forward_propagation(X, parameters) "
    "and optionally compute_cost(Z3, Y); tf.contrib.layers is supplied). WARNING: FILE.py, and the "
    "files of --optimizer and --loss, are executed as Python, with their folder first on sys.path: "
    "run only code you trust. Exit 0 if everything agrees, 1 if anything diverges or the model is "
    "not the course's, 2 for usage errors and candidates that cannot be run."
)


def register(subparsers) -> None:
    from signs.cli_args import add_check_input_arguments

    parser = subparsers.add_parser(
        "compare", help="check your own port of the course net against the reference and name the "
        "porting trap behind any difference (executes the candidate file)",
        description=DESCRIPTION)
    parser.add_argument("candidate", metavar="CANDIDATE",
                        help="FILE.py:NAME, FILE.keras or FILE.py (TF1); FILE.py is executed")
    add_check_input_arguments(parser, "to give the candidate")
    parser.add_argument("--own-weights", action="store_true",
                        help="keep the weights the candidate was built or loaded with, move them to "
                        "canonical layout and compare them with --weights too (a checkpoint "
                        "conversion check)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                        help="precision(s) to check (default: both; float64 is the ground truth)")
    parser.add_argument("--steps", type=int, default=0, metavar="K",
                        help="also run K optimizer steps on the course's mini-batches and compare "
                        "the weights after each step with the reference's TF1 Adam")
    parser.add_argument("--optimizer", metavar="FILE.py:NAME",
                        help="NAME(model) returns the candidate's optimizer (executed); default: "
                        "the framework's stock Adam, lr 0.009, betas 0.9/0.999, eps 1e-8 (torch's "
                        "Adam differs from TF1's in where epsilon goes: the adam-epsilon trap)")
    parser.add_argument("--loss", metavar="FILE.py:NAME",
                        help="NAME(output, labels) returns the candidate's scalar loss, labels "
                        "one-hot (m, 6) (executed); default: the framework's softmax "
                        "cross-entropy on the output, mean over the batch")
    parser.add_argument("--map", dest="param_map", metavar="NAME=W1,...",
                        help="name the candidate's parameters for W1, W2, W3, b3 when they cannot "
                        "be told apart, e.g. --map convA.weight=W1,convB.weight=W2")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="course vectors of another image size (e.g. 60 60, not divisible by "
                        "the pool strides, to expose pool padding)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="device for the candidate (default: cpu); the reference runs on the CPU")
    parser.add_argument("--seed", type=int, default=1, help="seed of the course vectors (default: 1)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1) on float32 gradient differences proven to be max-pool "
                        "near-ties (tie*), which pass by default, as in signs verify")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead")
    parser.add_argument("--json-out", metavar="FILE", help="also write the JSON result to FILE")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --json-out FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reference.fileio import atomic_path, check_writable
    from signs.port.session import CompareOptions, run_compare
    from signs.verify.options import parse_dtypes

    options = CompareOptions(
        candidate=args.candidate, weights=args.weights, own_weights=args.own_weights,
        data=args.data, batch=args.batch, dtypes=parse_dtypes(args.dtype), steps=args.steps,
        optimizer=args.optimizer, loss=args.loss,
        input_size=tuple(args.input_size) if args.input_size else None, device=args.device,
        param_map=args.param_map, seed=args.seed, strict=args.strict,
    )
    if args.batch is not None and args.batch < 1:
        raise ValueError(f"--batch: expected a positive integer, got {args.batch}")
    if args.json_out:
        check_writable(args.json_out, args.force)  # refuse before running anything
    result = run_compare(options)
    if args.json_out:
        with atomic_path(args.json_out, force=args.force) as tmp:
            tmp.write_text(result.to_json() + "\n")
    print(result.to_json() if args.json else result.format_text())
    return result.exit_code
