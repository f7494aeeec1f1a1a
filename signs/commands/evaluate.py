"""``signs evaluate``: accuracy, per-class accuracy and confusion matrices of a weight file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CONFUSION_PLOT_NAME = "confusion_matrix.png"
EVALUATION_NAME = "evaluation.json"


def register(subparsers) -> None:
    from signs.cli_args import add_data_argument

    parser = subparsers.add_parser(
        "evaluate",
        help="train/test accuracy, per-class accuracy and confusion matrices of a weight file",
        description="Evaluate weights (any format signs convert reads) on the train and test splits: "
        "accuracy, per-class accuracy and a confusion matrix (rows: true class, columns: predicted), "
        f"printed and saved as {CONFUSION_PLOT_NAME} and {EVALUATION_NAME} in --out.",
    )
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="weight file (.safetensors, .npz, .weights.h5, .pt, TF1 checkpoint)")
    parser.add_argument("--backend", choices=("numpy", "tf", "torch"), default="numpy",
                        help="implementation computing the logits (default: numpy)")
    add_data_argument(parser)
    parser.add_argument("--split", choices=("train", "test", "both"), default="both",
                        help="which splits to evaluate (default: both)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use N evenly spaced examples of each split")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the confusion-matrix PNG and evaluation.json "
                        "(default: the weight file's folder)")
    parser.add_argument("--force", action="store_true", help="overwrite earlier evaluation files")
    parser.set_defaults(func=run)


def split_report(backend, params, X, Y, *, device: str, n_classes: int) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of one split (X (m, 64, 64, 3), Y (m, 6))."""
    import numpy as np

    from signs.training.metrics import confusion_matrix, predict_classes

    true = np.argmax(Y, axis=1)
    predicted = predict_classes(backend, params, X, device=device)
    matrix = confusion_matrix(true, predicted, n_classes)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {
        "examples": int(true.size),
        "accuracy": float(np.mean(predicted == true)),
        "per_class_accuracy": [float(a) for a in per_class],
        "confusion_matrix": matrix.tolist(),
    }


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from reference.data.dataset import load_signs
    from reference.data.layout import SPLITS
    from reference.fileio import atomic_path, check_writable
    from signs.backends import get_backend
    from signs.convert import load_weights
    from signs.plots import format_confusion_table, save_confusion_plot
    from signs.training.metrics import subset

    weights = Path(args.weights)
    out_dir = Path(args.out) if args.out is not None else weights.parent
    plot_path, json_path = out_dir / CONFUSION_PLOT_NAME, out_dir / EVALUATION_NAME
    for path in (plot_path, json_path):
        check_writable(path, args.force)  # fail before the work
    params, _metadata = load_weights(weights)
    dtype = next(iter(params.values())).dtype
    splits = SPLITS if args.split == "both" else (args.split,)
    data = subset(load_signs(args.data, dtype=dtype, splits=splits), args.limit)
    backend = get_backend(args.backend)
    n_classes = len(data.classes)
    class_names = [str(int(c)) for c in data.classes]

    print(f"weights: {weights} ({dtype}); backend {args.backend} on {args.device}")
    print("data used:")
    print(data.describe())
    reports, matrices = {}, {}
    for split in splits:
        X = data.X_train if split == "train" else data.X_test
        Y = data.Y_train if split == "train" else data.Y_test
        report = split_report(backend, params, X, Y, device=args.device, n_classes=n_classes)
        reports[split] = report
        matrices[split] = np.asarray(report["confusion_matrix"])
        print(f"\n{split.capitalize()} Accuracy: {report['accuracy']:.6f} ({report['examples']} images)")
        print(format_confusion_table(matrices[split], class_names))

    out_dir.mkdir(parents=True, exist_ok=True)
    save_confusion_plot(plot_path, matrices, class_names, force=args.force)
    summary = {
        "weights": str(weights.resolve()),
        "backend": args.backend,
        "device": args.device,
        "dtype": str(dtype),
        "data": {split: str(Path(data.sources[split]).resolve()) for split in splits},
        "limit": args.limit,
        "classes": class_names,
        "splits": reports,
    }
    with atomic_path(json_path, force=args.force) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {plot_path}, {json_path}")
    return 0
