"""How every ``harmonylib`` verb's ``--help`` looks: descriptions kept as written, defaults shown.

Kept apart from :mod:`harmonylib.cli` so that a module offering a ``python -m`` alias can use it
without importing the command line that sits above it.
"""

from __future__ import annotations

import argparse
import copy


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; each option's default appended unless it says nothing.

    A default of None or False (an unset path, a flag) tells the reader nothing, and an option
    whose help already gives its default in words is not told twice.
    """

    @staticmethod
    def _tells(action: argparse.Action) -> bool:
        d = action.default  # identity, not equality: a default of 0 is worth showing, False is not
        return (
            bool(action.option_strings)
            and not any(d is x for x in (None, False, argparse.SUPPRESS))
            and d != []
        )

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and self._tells(action):  # argparse skips help-less options
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not self._tells(action) or "default" in text.lower():
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help always uses :class:`HelpFormatter` (sub-parsers included)."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)
