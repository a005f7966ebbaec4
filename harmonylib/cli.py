"""The ``harmonylib`` command line: one sub-command per concern, each owned by its module.

Each module listed in ``_COMMANDS`` exposes ``add_parser(subparsers)``, which registers its
sub-command and sets ``func`` (called with the parsed namespace, returning an exit code).
Modules are imported lazily, so ``harmonylib --help`` stays fast and a broken optional
module does not take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module that implements it
_COMMANDS = {
    "build-data": "harmonylib.data.builtin",
    "lists": "harmonylib.data.iharmony4",
    "shrink": "harmonylib.data.shrink",
    "evaluate": "harmonylib.evaluation",
    "harmonize": "harmonylib.harmonize_cli",
    "augment": "harmonylib.augment",
    "human-harmony": "harmonylib.data.human_harmony",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harmonylib", description="DiffHarmony++ replication: data, inference and evaluation."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # not built yet
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
