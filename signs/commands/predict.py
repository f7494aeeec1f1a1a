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
    note : str or None, what conversion was done.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Pillow cannot read it; one line naming the file.
    """
    import numpy as np
    from PIL import Image, ImageOps

    from reference.data.dataset import normalize_images
    from reference.data.layout import IMAGE_SHAPE

    n_H, n_W, _ = IMAGE_SHAPE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    note = None
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "RGB" or image.size != (n_W, n_H):
                note = (f"{path} is {image.size[0]}x{image.size[1]} {image.mode}: centre-cropped and "
                        f"resized to {n_W}x{n_H} RGB (Lanczos)")
                image = ImageOps.fit(image.convert("RGB"), (n_W, n_H), method=Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not a readable image ({message})") from exc
    return normalize_images(pixels[None], dtype)[0], note


def softmax(logits):
    """Row-wise softmax of (m, n_classes) logits, computed in float64."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)  # exp cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from reference.spec import COURSE_MODEL, COURSE_TRAINING
    from signs.backends import get_backend
    from signs.convert import load_weights

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
        logits = backend.predict_logits(params, np.stack(inputs), spec=COURSE_MODEL, device=args.device)
        probabilities = softmax(logits)
        classes = COURSE_TRAINING.classes
        header = "  ".join(f"p({c})".rjust(6) for c in classes)
        print(f"{'image':<40} class  {header}")
        for name, p in zip(names, probabilities):
            best = int(np.argmax(p))
            print(f"{name:<40} {classes[best]:>5}  " + "  ".join(f"{v:6.4f}" for v in p))
    return 2 if failed else 0
