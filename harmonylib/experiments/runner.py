"""One runner for every paper table: a declarative :class:`ExperimentSpec` in, the table's files out.

A spec is data: the table's rows (each an arm: method × inference size × refinement × Harmony-VAE
variant), the seeds each row runs at, the datasets it is scored on, how its scores become the
paper's cells, which rows the claims record, and a caption template. :func:`run_table` does the
same five steps for every table:

1. train what is missing and infer (``predictions_for``, through :func:`score`);
2. score every (dataset, row, seed) with the authors' protocol, one per-image CSV each;
3. average a row over its seeds (:func:`mean_summary`; a seedless row is its one run);
4. record the claims' per-seed measurements (:func:`write_measurements`, :func:`update_claims`);
5. render the measured cells beside the paper's (:func:`harmonylib.tables.render_table`), fill the
   caption template and write the table (:func:`harmonylib.tables.write_table`).

The paper's specs are in :mod:`harmonylib.experiments.paper_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib import tables
from harmonylib.claim_rule import default_seeds
from harmonylib.config import PAPER_VARIANT
from harmonylib.experiments.captions import diverged_text, seed_text
from harmonylib.experiments.context import IHARMONY4, Experiment, data_note, size_note
from harmonylib.experiments.predictions import Arm, DivergedRun
from harmonylib.experiments.scoring import (
    METRICS,
    all_row,
    diverged_measurements,
    mean_summary,
    measurements,
    per_image_rows,
    provenance,
    score,
    summarize,
    update_claims,
    write_measurements,
)

SEEDS = ("training", "base", "none")  # every training seed; the base seed only; no seed (one run)
CELLS = ("subset", "fg_bin", "all")  # per subset (Table 1); per foreground bin (Table 3); the All row
CLAIMS_ORDER = ("by_row", "by_seed")  # order of the claims' rows within a dataset
ON_DIVERGED = ("raise", "nan")  # a diverged Harmony-VAE run: an error, or a NaN seed counted


def _baselines() -> dict[str, Any]:
    """Predictions makers a row may run before it is scored: name -> ``fn(samples, folder)``."""
    from harmonylib.baselines import COLOUR_TRANSFER_NAME, colour_transfer_predictions

    return {COLOUR_TRANSFER_NAME: colour_transfer_predictions}


@dataclass(frozen=True)
class Row:
    """One measured row of a table (a column of the printed table, where the paper lays it so).

    Attributes:
        key: the row's values of the spec's ``key_columns`` (``("DiffHarmony",)``, ``("E_c", "zero")``).
        method, level, variant, refine, folder: the :class:`Arm` (its inference settings).
        seeds: ``"training"`` (every training seed, averaged), ``"base"`` (the base seed only) or
            ``"none"`` (the arm has no seed: composites, a predictions folder; one run).
        claim_arm: the claims' name of the row (``harmonylib.claims.ARMS``); None: not recorded.
        slug: the row's part of its per-image CSV names; empty: the row's name.
        stand_in: the method that measures the row in the paper's method's place (Table 3's
            ``HDNet_512`` row); the table marks its cells.
        with_n: also record the foreground bins' sample counts (Table 3's ``N_samples``).
        dataset: the one dataset the row is scored on; None: every dataset of the spec.
        make: a baseline (:func:`_baselines`) that writes ``<predictions>/<dataset>-<make>`` first;
            the row then scores that folder.
    """

    key: tuple[str, ...]
    method: str
    level: str = "high"
    variant: str = PAPER_VARIANT
    refine: bool = False
    folder: str = ""
    seeds: str = "training"
    claim_arm: str | None = None
    slug: str = ""
    stand_in: str = ""
    with_n: bool = False
    dataset: str | None = None
    make: str = ""

    @property
    def name(self) -> str:
        """The row's name in summaries and captions: its key values joined by ``/``."""
        return "/".join(self.key)


@dataclass(frozen=True)
class ExperimentSpec:
    """One paper table as data; :func:`run_table` runs it.

    Attributes:
        table: the paper's table number (reported values and layout: ``harmonylib.tables.SPECS``).
        key_columns: the table's key columns that a row's ``key`` fills (besides dataset, fg_bin).
        cells: how a row's summary becomes cells: ``"subset"`` (every subset and All),
            ``"fg_bin"`` (the All row per foreground bin, per dataset) or ``"all"`` (the All row).
        rows: the measured rows, in table order.
        caption: a ``str.format`` template; fields: ``paper`` (the paper's caption), ``seeds``
            (:func:`seed_text` with ``retrained``), ``size_note``, ``data_note``, ``base_seed``,
            ``diverged`` (:func:`diverged_text`), and every key of ``notes``.
        notebook: the notebook named in the provenance.
        datasets: the datasets scored, in order; one without samples is skipped.
        claims_order: within a dataset, the claims' rows ``"by_row"`` (then seed) or
            ``"by_seed"`` (then row; a seedless row first).
        on_diverged: a diverged Harmony-VAE run ``"raise"``\\ s, or (``"nan"``) is left out of
            its row's mean, recorded as a NaN seed and named in the caption.
        retrained: what a training seed retrains, for the caption's seed sentence.
        notes: more caption fields, made by the spec's builder from its options.
    """

    table: int
    key_columns: tuple[str, ...]
    cells: str
    rows: tuple[Row, ...]
    caption: str
    notebook: str
    datasets: tuple[str, ...] = (IHARMONY4,)
    claims_order: str = "by_row"
    on_diverged: str = "raise"
    retrained: str = "the Harmony-VAE is"
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("cells", self.cells, CELLS),
            ("claims_order", self.claims_order, CLAIMS_ORDER),
            ("on_diverged", self.on_diverged, ON_DIVERGED),
        ):
            if value not in allowed:
                raise ValueError(f"table {self.table}: {name} {value!r}; allowed: {', '.join(allowed)}")
        for row in self.rows:
            if row.seeds not in SEEDS:
                raise ValueError(
                    f"table {self.table}, row {row.name!r}: seeds {row.seeds!r}; allowed: {SEEDS}"
                )
            if len(row.key) != len(self.key_columns):
                raise ValueError(
                    f"table {self.table}, row {row.name!r}: key {row.key} does not fill {self.key_columns}"
                )
            if row.make and row.make not in _baselines():
                raise ValueError(
                    f"table {self.table}: unknown baseline {row.make!r}; allowed: {list(_baselines())}"
                )

    @property
    def experiment(self) -> str:
        """The experiment's name in claims files and per-image CSVs: ``table<N>``."""
        return f"table{self.table}"


@dataclass
class TableResult:
    """What a table function returns: the rendered table, the files, and the key numbers."""

    table: pd.DataFrame
    paths: dict[str, Path]
    summary: dict[str, Any]
    measurements: Path | None = None
    caption: str = ""


def _row_seeds(row: Row, seeds: Sequence[int], base_seed: int) -> list[int | None]:
    return {"training": list(seeds), "base": [base_seed], "none": [None]}[row.seeds]


def _arm(exp: Experiment, row: Row, seed: int | None, samples: Sequence, dataset: str) -> Arm:
    """The row's arm at ``seed``; a ``make`` row's baseline folder is written first."""
    if row.make:
        folder = exp.predictions_dir / f"{dataset.replace(' ', '')}-{row.make}"
        _baselines()[row.make](samples, folder)
        return Arm("folder", folder=str(folder))
    return Arm(row.method, row.level, 0 if seed is None else seed, row.variant, row.refine, row.folder)


def _cells(spec: ExperimentSpec, row: Row, dataset: str, summary: pd.DataFrame | None) -> pd.DataFrame:
    """The row's measured cells for ``tables.render_table``; ``summary`` None: every seed diverged."""
    keys = dict(zip(spec.key_columns, row.key, strict=True))
    if summary is None:  # shown as NaN where the cell is the All row; otherwise left unmeasured
        nan = [{**keys, "metric": m, "value": float("nan")} for m in METRICS]
        return pd.DataFrame(nan if spec.cells == "all" else [])
    if spec.cells == "subset":
        return tables.measured_from_summary(summary, **keys)
    if spec.cells == "all":
        return pd.DataFrame([{**keys, "metric": m, "value": v} for m, v in all_row(summary).items()])
    cells = []
    for _, b in summary[summary["subset"] == "All"].iterrows():  # one per foreground bin
        where = {"dataset": dataset, "fg_bin": b["fg_bin"]}
        if row.with_n:
            n_keys = dict.fromkeys(keys, "N_samples")
            cells.append({**where, **n_keys, "metric": "N_samples", "value": float(b["n"])})
        for m in METRICS:
            cells.append({**where, **keys, "metric": m, "value": float(b[m]), tables.STAND_IN: row.stand_in})
    return pd.DataFrame(cells)


@dataclass
class _Claims:
    """The claims' rows of one table, each with its sort key (dataset, then row/seed by the spec)."""

    entries: list[tuple[tuple[int, int, int], pd.DataFrame, pd.DataFrame | None]] = field(
        default_factory=list
    )

    def add(self, order: tuple[int, int, int], rows: pd.DataFrame, per_image: pd.DataFrame | None) -> None:
        self.entries.append((order, rows, per_image))

    def write(self, exp: Experiment, experiment: str) -> Path:
        entries = sorted(self.entries, key=lambda e: e[0])  # stable: equal keys keep their order
        return write_measurements(
            exp, experiment, [e[1] for e in entries], [e[2] for e in entries if e[2] is not None]
        )


def _score_row(
    exp: Experiment,
    spec: ExperimentSpec,
    row: Row,
    seeds: Sequence[int],
    where: tuple[int, int],
    dataset: str,
    samples: Sequence,
    claims: _Claims,
    diverged: dict[str, list[int]],
) -> list[pd.DataFrame]:
    """Score ``row`` on ``dataset`` at each of its seeds; record its claims; return the per-seed scores.

    ``where`` is (dataset index, row index) in the spec, for the claims' order.
    """
    by_bins = spec.cells == "fg_bin"
    # the claims' bootstrap clusters: the split's source photos, elsewhere each pair's real image
    clusters = None if dataset == IHARMONY4 else ({x.name: x.real_id for x in samples}, "real image")
    d, r = where
    frames = []
    for s, seed in enumerate(_row_seeds(row, seeds, exp.cfg.seed)):
        order = (d, r, s) if spec.claims_order == "by_row" else (d, -1 if seed is None else s, r)
        arm = _arm(exp, row, seed, samples, dataset)
        try:
            df = score(exp, arm, spec.experiment, row.slug or row.name, samples, dataset)
        except DivergedRun:
            if spec.on_diverged == "raise" or seed is None:
                raise
            diverged.setdefault(row.name, []).append(seed)
            if row.claim_arm is not None:
                claims.add(order, diverged_measurements(spec.experiment, row.claim_arm, seed), None)
            continue
        frames.append(df)
        if row.claim_arm is not None:
            kind = "none" if seed is None else "training"
            claims.add(
                order,
                measurements(summarize(df, by_bins), spec.experiment, row.claim_arm, seed, kind),
                per_image_rows(exp, df, spec.experiment, row.claim_arm, seed, kind, by_bins, clusters),
            )
    return frames


def run_table(
    exp: Experiment,
    spec: ExperimentSpec,
    seeds: Sequence[int] | None = None,
    datasets: Mapping[str, Sequence] | None = None,
) -> TableResult:
    """Train, infer, score, average, record the claims and write the table of ``spec``.

    Args:
        exp: from :func:`~harmonylib.experiments.setup`.
        spec: the table (:mod:`harmonylib.experiments.paper_tables`).
        seeds: training seeds (default :func:`default_seeds`).
        datasets: samples of the spec's datasets other than the experiment's own split
            (``iHarmony4``: ``exp.samples``); a dataset without samples is skipped.

    Returns:
        The rendered table, its files, the claims measurements file, the caption, and a summary:
        row name -> All-row PSNR / MSE / fMSE (``cells`` "subset" / "all"; with ``n_diverged``
        when ``on_diverged`` is "nan"), or dataset -> row name -> fg bin -> n / psnr / mse / fmse.
    """
    seeds = default_seeds(exp.cfg, seeds)
    samples_of = {IHARMONY4: exp.samples, **dict(datasets or {})}
    by_bins = spec.cells == "fg_bin"
    cells, claims, summaries = [], _Claims(), {}
    diverged: dict[str, list[int]] = {}
    for d, dataset in enumerate(spec.datasets):
        samples = samples_of.get(dataset)
        if not samples:
            continue
        for r, row in enumerate(spec.rows):
            if row.dataset not in (None, dataset):
                continue
            frames = _score_row(exp, spec, row, seeds, (d, r), dataset, samples, claims, diverged)
            # a seedless row is its one run; a seeded row the mean over its seeds
            summary = None
            if frames:
                summary = (
                    summarize(frames[0], by_bins) if row.seeds == "none" else mean_summary(frames, by_bins)
                )
            cells.append(_cells(spec, row, dataset, summary))
            if by_bins:
                if summary is not None:
                    all_bins = summary[summary["subset"] == "All"].set_index("fg_bin")
                    summaries.setdefault(dataset, {})[row.name] = all_bins[["n", *METRICS]].to_dict("index")
            else:
                vals = all_row(summary) if summary is not None else dict.fromkeys(METRICS, float("nan"))
                extra = {"n_diverged": len(diverged.get(row.name, []))} if spec.on_diverged == "nan" else {}
                summaries[row.name] = {**vals, **extra}
    table = tables.render_table(pd.concat(cells, ignore_index=True), spec.table)
    caption = spec.caption.format(
        paper=tables.SPECS[spec.table].caption,
        seeds=seed_text(seeds, exp.cfg, spec.retrained),
        size_note=size_note(exp.cfg),
        data_note=data_note(exp),
        base_seed=exp.cfg.seed,
        diverged=diverged_text(diverged),
        **spec.notes,
    )
    prov = provenance(exp, seeds, notebook=spec.notebook)
    paths = tables.write_table(table, spec.table, exp.tables_dir, caption=caption, provenance=prov)
    m = claims.write(exp, spec.experiment)
    update_claims(exp.out)
    return TableResult(table, paths, summaries, m, caption)
