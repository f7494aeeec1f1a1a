"""``signs train``: train the course ConvNet with any backend (the course's recipe by default)."""

from __future__ import annotations

import argparse
import sys

from reference.spec import COURSE_TRAINING, IMPROVED_TRAINING

DESCRIPTION = """\
Train the SIGNS ConvNet with the numpy, tf or torch backend.

By default this is the course's recipe: the notebook's exact initial weights, Adam with TF1's
update rule (lr 0.009, eps 1e-8), batches of 64 from the course's random_mini_batches with its seed
schedule (seed 3, incremented before each epoch), 100 epochs.

The printed "Cost after epoch N" is the course's number: the sum of the batch costs divided by
int(m / batch_size). For 1080 images that divides by 16 although there are 17 batches (the last
holds 56 images). metrics.json also records the true mean loss over the examples,
sum(batch_cost * batch_size) / m.

--recipe improved keeps the layers, the initial weights and the optimizer, and changes the learning
rate to 0.004 with a cosine decay to 0 over 150 epochs, and adds seeded data augmentation (shifts
of up to 2 pixels, brightness x[0.9, 1.1]). The course's 0.009 can kill every conv1 filter in the
first epochs (the cost then stays at ln 6 = 1.79): see signs/training/recipes.py.

--seed S seeds Glorot initial weights (--init glorot) and the augmentation (--recipe improved,
default 0). The course's initial weights and batch order are fixed, so --seed with --init course and
--recipe course is refused.

A float32 run depends on more than the recipe: how many threads split each reduction decides the
last bits of a gradient, and from the course's weights that can decide whether conv1's filters
survive the first epochs (README, "Training results"). --threads N sizes every thread pool of the
run (NumPy's BLAS, the framework's intra- and inter-op pools); --deterministic also switches on
the frameworks' deterministic kernels (torch use_deterministic_algorithms, TF
enable_op_determinism) and fixes the thread counts (to the cores available unless --threads says),
so two runs on the same machine and software are bit for bit the same. metrics.json records what
decided the run: versions, thread pools, oneDNN, TF32, determinism switches, device and the
initial weights' SHA-256. --perturb-ulp SEED moves one seeded element of the initial weights by one
ulp (the element is printed and recorded), to see how much a trajectory depends on its last bits.

The run folder (--out) receives weights.safetensors and checkpoint.npz (both rewritten after every
epoch, so a stopped run leaves the weights of its last completed epoch), metrics.json and
cost.png. --force replaces an earlier run's files only once the new run has started. Ctrl-C keeps
the checkpoint of the last completed epoch; continue
with the same options plus --resume.
"""


def register(subparsers) -> None:
    from signs.cli_args import add_data_argument

    parser = subparsers.add_parser(
        "train",
        help="train with any backend (the course's recipe by default)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=("numpy", "tf", "torch"), required=True)
    add_data_argument(parser)
    parser.add_argument("--recipe", choices=("course", "improved"), default="course",
                        help="training recipe (default: course)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs (default: {COURSE_TRAINING.num_epochs}; "
                        f"{IMPROVED_TRAINING.num_epochs} for --recipe improved)")
    parser.add_argument("--batch-size", type=int, default=COURSE_TRAINING.mini_batch_size,
                        help=f"mini-batch size (default: {COURSE_TRAINING.mini_batch_size})")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"Adam (base) learning rate (default: {COURSE_TRAINING.learning_rate}; "
                        f"{IMPROVED_TRAINING.learning_rate} for --recipe improved)")
    parser.add_argument("--init", choices=("course", "glorot"), default="course",
                        help="initial weights: the course's exact ones (default) or seeded Glorot-uniform")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of Glorot init and of the augmentation (default 0 where needed)")
    parser.add_argument("--schedule", choices=("constant", "cosine"), default=None,
                        help="learning-rate schedule (default: constant; cosine for --recipe improved)")
    parser.add_argument("--no-augment", action="store_true",
                        help="with --recipe improved: train without data augmentation")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads of every pool: BLAS and the framework's intra-/inter-op "
                        "(default: the frameworks' own, recorded in metrics.json)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic kernels and fixed thread counts: repeatable bit for bit")
    parser.add_argument("--perturb-ulp", type=int, default=None, metavar="SEED",
                        help="move one seeded element of the initial weights by one ulp")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use N evenly spaced examples of each split (quick runs, tests)")
    parser.add_argument("--eval-every", type=int, default=1, metavar="K",
                        help="record train/test accuracy every K epochs (0: only at the end; default 1)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run folder (default: a new runs/<time>-<backend>-<recipe>/ here)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint")
    parser.add_argument("--force", action="store_true", help="start over in an --out that holds a run")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="torch: N data-parallel processes (DDP; gloo on cpu, NCCL on cuda). Under "
                        "torchrun leave it out: the launcher's ranks are joined. See docs/distributed.md")
    parser.add_argument("--replicas", type=int, default=1, metavar="N",
                        help="tf: N replicas under tf.distribute.MirroredStrategy (GPUs, or N logical CPU "
                        "devices); TF_CONFIG with several workers selects MultiWorkerMirroredStrategy")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar per epoch (default: when stderr is a terminal)")
    parser.set_defaults(func=run)


def build_recipe(args: argparse.Namespace):
    """The Recipe the command-line options describe."""
    from signs.training.recipes import Augmentation, make_recipe

    if args.no_augment and args.recipe != "improved":
        raise ValueError("--no-augment: only meaningful with --recipe improved (the course recipe does not augment)")
    augmentation = Augmentation() if args.recipe == "improved" and not args.no_augment else None
    seed = args.seed
    if seed is None and (args.init == "glorot" or augmentation is not None):
        seed = 0
    overrides = {
        "mini_batch_size": args.batch_size,
        "init": args.init,
        "seed": seed,
        "augmentation": augmentation,
        "perturb_ulp": args.perturb_ulp,
    }
    if args.lr is not None:
        overrides["learning_rate"] = args.lr
    if args.epochs is not None:
        overrides["num_epochs"] = args.epochs
    if args.schedule is not None:
        overrides["schedule"] = args.schedule
    return make_recipe(args.recipe, **overrides)


def threads_text(config) -> str:
    """How the run's thread pools are set, in words (``RunConfig`` threads and deterministic)."""
    if config.threads is not None:
        text = f"{config.threads} thread{'s' if config.threads > 1 else ''} per pool"
    elif config.deterministic:
        text = "one thread per available core in every pool"
    else:
        text = "the frameworks' default threads"
    return text + (", deterministic" if config.deterministic else "")


def run(args: argparse.Namespace) -> int:
    from signs.distributed.launch import distributed_train

    code = distributed_train(args, run_one)  # None: an ordinary single-process run
    return run_one(args) if code is None else code


def run_one(args: argparse.Namespace, parallel=None) -> int:
    """The command in this process; ``parallel`` (signs.distributed) wraps the driver's train()."""
    from reference.data.dataset import load_signs
    from signs.training.driver import NonFiniteLoss, RunConfig, TrainingInterrupted, train
    from signs.training.run_folder import check_run_folder, default_out_dir
    from signs.training.metrics import subset

    if args.resume and args.out is None:
        raise ValueError("--resume: needs --out DIR, the run folder to continue")
    recipe = build_recipe(args)
    config = RunConfig(backend=args.backend, recipe=recipe, dtype=args.dtype, device=args.device,
                       eval_every=args.eval_every, threads=args.threads, deterministic=args.deterministic)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit: expected a positive integer, got {args.limit}")
    out_dir = args.out if args.out is not None else default_out_dir(args.backend, recipe.name)
    check_run_folder(config, out_dir, resume=args.resume, force=args.force)  # before the slow part
    data = subset(load_signs(args.data, dtype=args.dtype, max_images=args.max_images), args.limit)
    print("data used:")
    print(data.describe())
    if args.limit is not None:
        print(f"(--limit {args.limit}: {data.X_train.shape[0]} train and {data.X_test.shape[0]} "
              "test examples, evenly spaced)")
    print(f"backend {args.backend}, {args.dtype}, {args.device}; recipe {recipe.name} "
          f"(init {recipe.init}, lr {recipe.train.learning_rate}, {recipe.schedule} schedule, batch "
          f"{recipe.train.mini_batch_size}, {recipe.train.num_epochs} epochs"
          + (f", augmentation, seed {recipe.seed}" if recipe.augmentation else
             f", seed {recipe.seed}" if recipe.seed is not None else "") + f"); {threads_text(config)}; "
          f"output: {out_dir}")
    try:
        train_run = train if parallel is None else parallel.wrap(train)
        result = train_run(config, data, out_dir, resume=args.resume, force=args.force, progress=args.progress)
    except TrainingInterrupted as exc:
        print(f"signs train: {exc}", file=sys.stderr)
        return 130
    except NonFiniteLoss as exc:
        print(f"signs train: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return 0
