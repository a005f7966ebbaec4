"""Table 2 (data augmentation with the inverse model) through the runner's steps.

Table 2 is not a grid of arms over one test split, so it is not an :class:`ExperimentSpec`: its
rows are UNets trained on one subset each, from data the inverse model generates first. Its
steps are Table 1's, with the runner's functions wherever a step is the same
(:func:`~harmonylib.experiments.runner.run_table`):

1. train what is missing and infer: the inverse pipeline, its generated data and the base and
   augmented UNets per subset and training seed (:mod:`harmonylib.inverse_data`), each predicting
   its subset's original test split (:func:`harmonylib.inverse_data.predict_table2`);
2. score every run with the authors' protocol, one per-image CSV each
   (``tables/per_image/table2_<S>_<setting>_seed<n>.csv``, :func:`.scoring.write_per_image`);
3. average a cell over its seeds (:func:`.scoring.mean_summary`, as every table);
4. record the claims' per-seed measurements (:func:`.scoring.measurements`,
   :func:`.scoring.per_image_rows`, :func:`.scoring.write_measurements`, :func:`.scoring.update_claims`);
5. render the measured cells beside the paper's (:func:`harmonylib.tables.render_table`) and write
   the table with its caption and provenance (:func:`harmonylib.inverse_data.write_table2`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harmonylib import tables
from harmonylib.claim_rule import default_seeds
from harmonylib.experiments.context import Experiment
from harmonylib.experiments.runner import TableResult
from harmonylib.experiments.scoring import (
    mean_summary,
    measurements,
    per_image_rows,
    summarize,
    update_claims,
    write_measurements,
    write_per_image,
)

EXPERIMENT = "table2"  # the claims' experiment and the per-image CSVs' prefix


@dataclass
class Table2Result(TableResult):
    """:class:`TableResult` plus what Table 2's notebook shows on the way.

    Attributes:
        data: the generated data and the mix per subset (``inverse_data.AugmentedData``).
        fidelity: the candidates' fidelity per subset and source (``tables/table2_candidates.csv``).
        runs: ``{(subset, setting, seed): inverse_data.Table2Run}``.
        per_image: every run's per-image scores (``run``, ``setting``, ``seed`` first).
        composite: the composites' own per-subset scores, the floor a useful model must beat.
        findings: per subset and metric, whether the augmented model beats the base one.
        inverse_sources: where the inverse pipeline's components came from (``assembly_sources``).
    """

    data: Any = None
    fidelity: pd.DataFrame | None = None
    runs: dict = field(default_factory=dict)
    per_image: pd.DataFrame | None = None
    composite: pd.DataFrame | None = None
    findings: pd.DataFrame | None = None
    inverse_sources: dict = field(default_factory=dict)


def measured_table2(per_image: pd.DataFrame) -> pd.DataFrame:
    """Tidy measured cells (``subset``, ``setting``, ``metric``, ``value``) from per-image scores:
    each cell is the mean over training seeds (in seed order) of the seed's subset mean
    (:func:`.scoring.mean_summary`, as every table's cells)."""
    if "seed" not in per_image.columns:  # a frame of one run's seed
        per_image = per_image.assign(seed=0)
    parts = []
    for (setting, subset), g in per_image.groupby(["setting", "subset"], sort=False):
        summary = mean_summary([gs for _, gs in g.groupby("seed", sort=True)])
        parts.append(tables.measured_from_summary(summary[summary["subset"] == subset], setting=setting))
    return pd.concat(parts, ignore_index=True)


def render_table2(per_image: pd.DataFrame) -> pd.DataFrame:
    """Table 2: measured beside reported (``tables.render_table(..., 2)``)."""
    return tables.render_table(measured_table2(per_image), 2)


def score_table2_run(exp: Experiment, run: Any, batch_size: int = 16) -> pd.DataFrame:
    """One run's per-image scores on its subset's test split (predicted if missing), also its CSV."""
    from harmonylib.evaluation import evaluate_predictions
    from harmonylib.inverse_data import predict_table2

    test, preds = predict_table2(exp.cfg, run, exp.out, batch_size=batch_size, progress=exp.progress)
    df = evaluate_predictions(test, preds, exp.cfg.eval, cache=exp.cache, progress=exp.progress)
    name = f"{EXPERIMENT}-{run.subset}-{run.setting}-seed{run.seed}"  # the run folder's name
    df.insert(0, "seed", run.seed)
    df.insert(0, "setting", run.setting)
    df.insert(0, "run", name)
    write_per_image(exp, df, f"{EXPERIMENT}_{run.subset}_{run.setting}_seed{run.seed}")
    return df


def table2(
    exp: Experiment,
    seeds: Sequence[int] | None = None,
    *,
    inverse: Any = None,
    batch_size: int = 16,
) -> Table2Result:
    """Generate, train, infer, score, average, record the claims and write Table 2.

    Args:
        exp: from :func:`~harmonylib.experiments.setup` (its ``cfg.seed`` is the generation seed).
        seeds: training seeds of the UNets (default :func:`default_seeds`).
        inverse: the inverse ``DiffHarmonyPipeline``; None: ``assemble_pipeline(cfg, "inverse",
            harmony_vae=True)`` (its runs trained if missing).
        batch_size: inference batch size.

    Returns:
        A :class:`Table2Result`; its ``summary`` maps ``"<subset>/<setting>/<metric>"`` to the
        measured cell.
    """
    from harmonylib import inverse_data

    cfg, out = exp.cfg, exp.out
    seeds = default_seeds(cfg, seeds)
    if inverse is None:
        from harmonylib.assemble import assemble_pipeline

        inverse = assemble_pipeline(cfg, "inverse", harmony_vae=True, out_dir=out, progress=exp.progress)
    # 1. the generated data and the trained runs (each reused when finished)
    data = inverse_data.generate_table2_data(cfg, inverse, out, progress=exp.progress)
    fidelity, _ = inverse_data.write_candidate_fidelity(cfg, data, out)
    runs = inverse_data.train_table2(cfg, data, out, seeds=seeds, progress=exp.progress)
    # 2. infer and score every run
    frames = {key: score_table2_run(exp, run, batch_size) for key, run in runs.items()}
    per_image = pd.concat(frames.values(), ignore_index=True)
    # 4. the claims: one measurement per (subset, setting, training seed), arms "<subset>/<setting>"
    meas, pim = [], []
    for (subset, setting, seed), df in frames.items():
        arm = f"{subset}/{setting}"
        meas.append(measurements(summarize(df), EXPERIMENT, arm, seed, "training", subset=subset))
        pim.append(per_image_rows(exp, df, EXPERIMENT, arm, seed, "training"))
    m = write_measurements(exp, EXPERIMENT, meas, pim)
    update_claims(out)
    # 3, 5. the mean over seeds beside the paper's, and the table's files
    table = render_table2(per_image)
    composite = inverse_data.composite_scores(cfg)
    paths = inverse_data.write_table2(cfg, table, runs, data, out, composite=composite)
    summary = {f"{r.subset}/{r.setting}/{r.metric}": r.measured for r in table.itertuples()}
    return Table2Result(
        table,
        paths,
        summary,
        m,
        inverse_data.table2_caption(cfg, runs, data),
        data=data,
        fidelity=fidelity,
        runs=runs,
        per_image=per_image,
        composite=composite,
        findings=inverse_data.table2_findings(table),
        inverse_sources=dict(getattr(inverse, "assembly_sources", {}) or {}),
    )
