"""One module per ``signs`` subcommand, each with ``register(subparsers)``.

A command module imports nothing heavy at module level: frameworks are imported inside ``run``.
"""

COMMANDS = (
    "verify",
    "compare",
    "init",
    "convert",
    "import_images",
    "train",
    "evaluate",
    "predict",
    "bench",
    "export",
)
