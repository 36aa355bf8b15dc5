"""One module per CLI task; each exposes ``add_arguments(parser)`` and ``run(args) -> exit code``."""
