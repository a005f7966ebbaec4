"""The paper's tables: reported values as data, measured values beside them, rendered to files.

The reported values of Tables 1-5 of DiffHarmony++ live in ``harmonylib/reported/tableN.csv``,
one tidy row per printed cell, transcribed exactly as printed (``value`` is the printed text,
``status`` says how to read it):

* ``reported`` - a number printed by the paper;
* ``missing``  - printed as "-" (the paper has no value);
* ``nan``      - printed as "NaN" (the paper reports a NaN, e.g. a diverged run in Table 5);
* ``derived``  - not printed, computed from numbers the paper gives (see the ``note``).

``reported(n)`` loads one table. ``render_table(measured, n)`` merges measured values with it
(``delta = measured - reported``), and ``write_table`` writes ``tableN.csv`` (tidy,
machine-readable), ``tableN.md`` and ``tableN.tex`` (the paper's layout, each cell
"measured (paper)"), and ``tableN.provenance.json``, all atomically. ``read_table`` re-loads a
written csv.

Stand-ins. A measured cell may carry a ``stand_in``: the method that measured it in place of the
paper's, when the paper's is not available (Table 3's ``HDNet_512`` row is measured with
``PixelHarmonizer``: HDNet_512's code and weights are not public). The column is written to the
csv (empty for cells measured with the paper's own method, or not measured), and the Markdown and
LaTeX cells of such a row carry a dagger explained in the legend, so that no file shows a
stand-in's number under the paper's name alone.

Example::

    from harmonylib import tables
    from harmonylib.paths import results_dir

    measured = pd.DataFrame({"subset": ["All"] * 3, "model": ["DiffHarmony++"] * 3,
                             "metric": ["PSNR", "MSE", "fMSE"], "value": [41.2, 15.1, 160.3]})
    df = tables.render_table(measured, 1)
    tables.write_table(df, 1, results_dir("mini", "tables"), config=cfg_dict,
                       seeds={"seed": 0}, files={"test_list": "data/.../test.txt"})

Modules, one concern each: :mod:`~harmonylib.tables.specs` (each table's keys and layout, the
reported cells), :mod:`~harmonylib.tables.render` (measured beside reported),
:mod:`~harmonylib.tables.formats` (cells, Markdown, LaTeX) and :mod:`~harmonylib.tables.files`
(writing and reading the files). Every name is importable from ``harmonylib.tables``.
"""

from __future__ import annotations

from harmonylib.tables.files import read_table, table_stem, write_table
from harmonylib.tables.formats import format_cell, format_reported, format_value, to_latex, to_markdown
from harmonylib.tables.render import measured_from_summary, render_table
from harmonylib.tables.specs import (
    METRICS,
    NOT_IN_PAPER,
    REPORTED_DIR,
    SPECS,
    STAND_IN,
    STAND_IN_MARK,
    STATUSES,
    TableSpec,
    key_columns,
    reported,
)

__all__ = [
    "METRICS",
    "NOT_IN_PAPER",
    "REPORTED_DIR",
    "SPECS",
    "STAND_IN",
    "STAND_IN_MARK",
    "STATUSES",
    "TableSpec",
    "format_cell",
    "format_reported",
    "format_value",
    "key_columns",
    "measured_from_summary",
    "read_table",
    "render_table",
    "reported",
    "table_stem",
    "to_latex",
    "to_markdown",
    "write_table",
]
