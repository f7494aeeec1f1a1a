"""``signs export WEIGHTS OUT.onnx``: the course model with given weights as an ONNX file.

See signs/onnx_export.py for the exporter (``torch.onnx.export``, dynamo) and the file's layout
and metadata. The file is checked by ``onnx.checker`` and, in float32, run once in onnxruntime
against the PyTorch model before the command reports success.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the model with given weights as an ONNX file (onnxruntime-checked)",
        description="Export the course ConvNet holding WEIGHTS (any format signs convert reads) "
        "as an ONNX file: input 'input' NHWC (batch, 64, 64, 3), pixels / 255, dynamic batch; "
        "output 'logits' (batch, 6); opset 18; the weights' SHA-256 and the model spec in the "
        "metadata. Made by torch.onnx.export (dynamo) from the PyTorch model; validated with "
        "onnx.checker; written atomically.",
    )
    parser.add_argument("weights", metavar="WEIGHTS",
                        help="weight file (.safetensors, .npz, .weights.h5, .pt, TF1 .ckpt)")
    parser.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="precision of the file (default float32; onnxruntime's CPU provider "
                        "has no float64 Conv, so a float64 file is checked by onnx.checker only)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUT")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from reference.fileio import check_writable
    from signs.convert import load_weights
    from reference.weights_io import params_sha256
    from signs.onnx_export import OPSET, export_onnx

    check_writable(args.out, args.force)
    params, _ = load_weights(args.weights)
    params = {name: value.astype(np.dtype(args.dtype)) for name, value in params.items()}
    out = export_onnx(params, args.out, weights_file=args.weights, force=args.force)
    print(f"signs export: wrote {out} (opset {OPSET}, {args.dtype}, input 'input' NHWC (batch, 64, 64, 3), "
          f"output 'logits'; weights sha256 {params_sha256(params)[:16]}...)")
    if args.dtype == "float32":
        from signs.onnx_backend import check_against_torch

        worst = check_against_torch(out, params)
        print(f"  onnxruntime vs PyTorch on 8 seeded inputs: max rel difference of the logits {worst:.1e}")
    return 0
