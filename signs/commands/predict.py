"""``signs predict``: the class and the six probabilities of each image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a weight file",
        description="Print the predicted class (number of fingers) and the softmax probabilities of "
        "every image. Images that are not 64x64 RGB are centre-cropped to a square and resized to "
        "64x64 with Lanczos filtering (as `signs import-images --resize` does), with a note.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any size, any Pillow format)")
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="weight file (.safetensors, .npz, .weights.h5, .pt, TF1 checkpoint)")
    parser.add_argument("--backend", choices=("numpy", "tf", "torch"), default="numpy",
                        help="implementation computing the logits (default: numpy)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.set_defaults(func=run)


def read_image(path: Path, dtype):
    """One image as the network's input and a note if it had to be converted.

    Returns
    -------
    x : np.ndarray (64, 64, 3) HWC RGB in [0, 1], ``dtype`` (``uint8 / 255.`` as for training).
    note : str or None, what conversion was done (see ``reference.data.images.read_image``).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Pillow cannot read it; one line naming the file.
    """
    from reference.data.dataset import normalize_images
    from reference.data.images import read_image as read_pixels
    from reference.data.layout import IMAGE_SHAPE

    n_H, n_W, _ = IMAGE_SHAPE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    pixels, found = read_pixels(path, resize=True)
    note = None if found is None else (f"{path} is {found}: centre-cropped and resized to {n_W}x{n_H} RGB "
                                       "(Lanczos)")
    return normalize_images(pixels[None], dtype)[0], note


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from reference.model import softmax
    from reference.spec import COURSE_TRAINING
    from signs.backends import get_backend
    from signs.convert import load_weights
    from signs.training.metrics import predict_logits

    params, _metadata = load_weights(args.weights)
    dtype = next(iter(params.values())).dtype
    print(f"weights: {args.weights} ({dtype}); backend {args.backend} on {args.device}; no data files used")
    inputs, names, failed = [], [], 0
    for name in args.images:
        try:
            x, note = read_image(Path(name), dtype)
        except (FileNotFoundError, ValueError) as exc:
            print(f"signs predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if note:
            print(f"note: {note}")
        inputs.append(x)
        names.append(name)
    if inputs:
        backend = get_backend(args.backend)
        logits = predict_logits(backend, params, np.stack(inputs), device=args.device)
        probabilities = softmax(np.asarray(logits, dtype=np.float64))
        classes = COURSE_TRAINING.classes
        header = "  ".join(f"p({c})".rjust(6) for c in classes)
        print(f"{'image':<40} class  {header}")
        for name, p in zip(names, probabilities):
            best = int(np.argmax(p))
            print(f"{name:<40} {classes[best]:>5}  " + "  ".join(f"{v:6.4f}" for v in p))
    return 2 if failed else 0
