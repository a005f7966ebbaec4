"""The ``harmonylib`` command line: ``harmonylib <verb> [options]``, one verb per concern.

A verb's module is imported only when that verb runs, so ``harmonylib --help`` stays fast, and a
module that fails to import fails loudly, naming itself, instead of its verb vanishing. Two kinds
of module serve a verb:

- ``add_parser(subparsers)`` registers the verb and sets ``func`` (called with the parsed
  namespace, returning an exit code);
- ``main(argv, prog)`` parses its own arguments; the same function serves the
  ``python -m harmonylib.X`` alias.

Every verb's ``--help`` shows its defaults (:class:`harmonylib.cli_format.HelpFormatter`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harmonylib.cli_format import Parser

# verb -> (module, entry point: "add_parser" or the name of a main(argv, prog) function, summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "build-data": (
        "harmonylib.data.builtin",
        "add_parser",
        "build the built-in dataset of a profile (smoke, mini)",
    ),
    "lists": (
        "harmonylib.data.iharmony4",
        "add_parser",
        "validate iHarmony4 split lists; regenerate combined lists",
    ),
    "shrink": (
        "harmonylib.data.shrink",
        "add_parser",
        "copy an iHarmony4 root with large subsets pre-shrunk",
    ),
    "augment": ("harmonylib.augment", "add_parser", "inverse-model data augmentation (§4.1)"),
    "human-harmony": (
        "harmonylib.human_harmony_build",
        "add_parser",
        "build the Human Harmony dataset (§4.2)",
    ),
    "pretrain": ("harmonylib.training.pretrain", "main", "the mini pretraining recipe (base weights)"),
    "train": ("harmonylib.training.__main__", "main", "train one recipe of a profile (resumable)"),
    "retrain": (
        "harmonylib.retrain",
        "main",
        "re-make the released mini checkpoints from the base weights; compare hashes",
    ),
    "diagnostics": (
        "harmonylib.diagnostics.__main__",
        "main",
        "x0 error, VAE ceilings, pixel baseline per split",
    ),
    "assemble": ("harmonylib.assemble", "main", "assemble a DiffHarmony(++) pipeline from trained runs"),
    "harmonize": ("harmonylib.harmonize_cli", "add_parser", "harmonize composites with a pipeline"),
    "evaluate": ("harmonylib.evaluation", "add_parser", "score a folder of predictions (MSE, PSNR, fMSE)"),
    "tables": ("harmonylib.readme", "tables_main", "merge the claims and regenerate the README block"),
}


def _top_parser() -> argparse.ArgumentParser:
    """The verbs and their summaries, without importing any verb's module."""
    parser = Parser(
        prog="harmonylib",
        description="DiffHarmony++ replication: data, training, inference, evaluation and tables.\n"
        "`harmonylib VERB --help` gives a verb's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="VERB")
    for verb, (_, _, summary) in COMMANDS.items():
        sub.add_parser(verb, help=summary, add_help=False)
    return parser


def load_command(verb: str):
    """The module that serves ``verb``. An import error is re-raised, after a line naming it."""
    module = COMMANDS[verb][0]
    try:
        return importlib.import_module(module)
    except Exception as exc:
        print(f"harmonylib {verb}: cannot import {module}: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        top = _top_parser()
        top.parse_args(argv)  # --help exits 0; an unknown verb exits 2 with argparse's message
        top.print_help()
        return 2
    verb = argv[0]
    mod = load_command(verb)
    entry = COMMANDS[verb][1]
    try:
        if entry != "add_parser":
            return int(getattr(mod, entry)(argv[1:], prog=f"harmonylib {verb}") or 0)
        parser = Parser(prog="harmonylib")
        mod.add_parser(parser.add_subparsers(dest="command", metavar="VERB"))
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
