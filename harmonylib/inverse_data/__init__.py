"""Data made by the inverse model: Table 2's augmented training sets and the Human Harmony dataset.

The two experiments of paper §4 that use the inverse harmonization model (real image + mask in,
composite out), as steps: :func:`harmonylib.experiments.table2` runs Table 2's (notebook
``05_table2``), :func:`harmonylib.experiments.human_harmony_dataset` the Human Harmony build's
(notebook ``11_build_human_harmony``). The building blocks live in :mod:`harmonylib.augment`
(generation, γ-mixing, classifier selection), :mod:`harmonylib.human_harmony_build` (the Human
Harmony stages that use the models) and :mod:`harmonylib.data.human_harmony` (the source reader);
this package decides where things go, which models are used and how the runs are configured.

Table 2 (§5.3.2), per subset S in ``augment.table2_subsets`` (Hday2night, HFlickr):

1. K candidates per (real, mask) pair of S's training split from the inverse pipeline;
2. ⌈γ·N2/N1⌉ of them per pair (γ = 1) mixed into S's training list
   (steps 1-2: :mod:`~harmonylib.inverse_data.table2_data`);
3. a *base* and an *augmented* DiffHarmony UNet trained on S alike (same steps and batch);
4. each predicting S's original test split (steps 3-4: :mod:`~harmonylib.inverse_data.table2_runs`),
   scored, averaged over seeds and recorded for the claims by the runner's functions
   (:func:`harmonylib.experiments.table2`);
5. the table's caption, files and findings (:mod:`~harmonylib.inverse_data.table2_table`).

Human Harmony (§4.2, §5.1.2): the source release, the build's stages (in order:
:func:`build_human_harmony`) and the foreground-ratio statistics
(:mod:`~harmonylib.inverse_data.human_harmony`).

Every public name is importable from ``harmonylib.inverse_data``.

Layout under the results root (``results/<profile>`` or a notebook's ``out_dir``)::

    runs/table2-<S>-{base,augmented}-seed<n>/          ensure_trained run folders, one per training seed
    table2/generated-<key>/                            candidates, manifest, IHD_train.txt (added entries), MIX.json
    table2/predictions/<S>-<setting>-<hash>/<stem>.png predictions (INFERENCE.json, DONE)
    tables/table2.{csv,md,tex,provenance.json}         the table
    tables/per_image/table2_<S>_<setting>_seed<n>.csv  per-image scores
    tables/table2_candidates.csv                       candidate fidelity per subset and source
    data/imaterialist-fixture/                         the stand-in release (smoke, mini)
    data/HumanHarmony/                                 the Human Harmony root
"""

from harmonylib.inverse_data.common import GEN_ROOT_NAME, results_root
from harmonylib.inverse_data.human_harmony import (
    FG_RATIO_STATS_FILE,
    FG_RATIOS_FILE,
    HUMAN_HARMONY_DONE,
    HumanHarmonyBuild,
    build_human_harmony,
    default_human_harmony_root,
    describe_filter,
    ensure_human_harmony,
    generate_human_harmony_candidates,
    harmony_classifier,
    imaterialist_source,
    is_human_harmony_built,
    mark_human_harmony_done,
    read_fg_ratio_stats,
    write_fg_ratio_stats,
)
from harmonylib.inverse_data.table2_data import (
    AugmentedData,
    SubsetMix,
    generate_table2_data,
    table2_candidate_fidelity,
    write_candidate_fidelity,
)
from harmonylib.inverse_data.table2_runs import (
    SETTINGS,
    Table2Run,
    predict_table2,
    runs_frame,
    table2_inference_settings,
    table2_pipeline,
    table2_run_config,
    table2_schedule,
    train_table2,
)
from harmonylib.inverse_data.table2_table import (
    composite_scores,
    table2_caption,
    table2_findings,
    table2_training_note,
    write_table2,
)

__all__ = [
    "FG_RATIOS_FILE",
    "FG_RATIO_STATS_FILE",
    "GEN_ROOT_NAME",
    "HUMAN_HARMONY_DONE",
    "SETTINGS",
    "AugmentedData",
    "HumanHarmonyBuild",
    "SubsetMix",
    "Table2Run",
    "build_human_harmony",
    "composite_scores",
    "default_human_harmony_root",
    "describe_filter",
    "ensure_human_harmony",
    "generate_human_harmony_candidates",
    "generate_table2_data",
    "harmony_classifier",
    "imaterialist_source",
    "is_human_harmony_built",
    "mark_human_harmony_done",
    "predict_table2",
    "read_fg_ratio_stats",
    "results_root",
    "runs_frame",
    "table2_candidate_fidelity",
    "table2_caption",
    "table2_training_note",
    "table2_findings",
    "table2_inference_settings",
    "table2_pipeline",
    "table2_run_config",
    "table2_schedule",
    "train_table2",
    "write_candidate_fidelity",
    "write_fg_ratio_stats",
    "write_table2",
]
