"""``signs init OUT [--course | --seed S]``: write initial weights in any format."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write initial weights (course-exact or seeded Glorot)",
        description="Write initial weights. --course reproduces the course notebook's TF1 starting "
        "point bit for bit (tf.set_random_seed(1), xavier_initializer(seed=0), fully_connected's "
        "default initializer); --seed S draws seeded Glorot-uniform weights instead.",
    )
    parser.add_argument("out", help="output file; the format follows the name (.safetensors, .npz, .weights.h5, .pt, .ckpt)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--course", action="store_true", help="course-exact TF1 initial weights (the default)")
    which.add_argument("--seed", type=int, help="seeded Glorot-uniform weights (NumPy default_rng(S))")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--to", dest="fmt", choices=("safetensors", "npz", "keras", "torch", "tf1"), help="override the format")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reference.init import course_init, glorot_init
    from signs.convert import describe, save_weights

    if args.seed is None:
        params, init = course_init(dtype=args.dtype), "course"
    else:
        params, init = glorot_init(args.seed, dtype=args.dtype), f"glorot seed {args.seed}"
    fmt = save_weights(params, args.out, args.fmt, metadata={"init": init}, force=args.force)
    print(f"wrote {args.out} ({fmt}, {init} init, {args.dtype}):")
    print(describe(params))
    return 0
