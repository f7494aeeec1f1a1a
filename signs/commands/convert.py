"""``signs convert SRC DST``: move one set of weights between formats, bitwise exact."""

from __future__ import annotations

import argparse

_FORMATS = ("safetensors", "npz", "keras", "torch", "tf1")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert weights between safetensors, npz, Keras, PyTorch and TF1 checkpoints",
        description="Convert weights between formats. The format follows each path's name "
        "(.safetensors, .npz, .weights.h5, .pt/.pth, TF1 checkpoint prefix .ckpt); --from/--to override. "
        "Every conversion is bitwise exact; a TF1 checkpoint's optimizer slots are ignored.",
    )
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--from", dest="src_fmt", choices=_FORMATS)
    parser.add_argument("--to", dest="dst_fmt", choices=_FORMATS)
    parser.add_argument("--force", action="store_true", help="overwrite an existing destination")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="convert weights holding NaN or inf (refused by default: every other "
                        "command refuses to use them)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from signs.convert import describe, detect_format, load_weights, save_weights

    src_fmt = args.src_fmt or detect_format(args.src)
    params, metadata = load_weights(args.src, src_fmt, allow_nonfinite=args.allow_nonfinite)
    carried = {k: v for k, v in metadata.items() if k not in ("format_version", "layout", "dtype", "source")}
    carried["converted_from"] = f"{src_fmt}:{args.src}"
    dst_fmt = save_weights(params, args.dst, args.dst_fmt, metadata=carried, force=args.force)
    print(f"converted {args.src} ({src_fmt}) -> {args.dst} ({dst_fmt}):")
    print(describe(params))
    return 0
