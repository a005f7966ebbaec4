"""The paper's experiments, one function per table or figure; the notebooks only call these.

Every table (1, 3, 4, 5) is a declarative :class:`ExperimentSpec` (:mod:`.paper_tables`: rows
of arms × training seeds × datasets × inference settings, the claims they feed, a caption
template) run by one :func:`run_table` (:mod:`.runner`), which

* trains what it needs (:mod:`.trained`: ``ensure_trained``, a finished run is reused);
* makes the predictions it scores (:mod:`.predictions`: ``predict_split``, cached by the settings
  hash in a :class:`harmonylib.cache.CacheFolder`, so finished inference is skipped; sharded under
  ``accelerate launch``);
* writes one per-image metric CSV per (table, dataset, row, arm) under
  ``<out>/tables/per_image/`` (:mod:`.scoring`), so every table can be re-aggregated without
  re-running inference;
* writes its claim measurements to ``<out>/claims/<experiment>.csv`` (and their per-image values,
  with each composite's source photo, to ``<out>/claims/per_image/<experiment>.csv``, for the
  claims' photo bootstrap); :func:`update_claims` merges the measurements into
  ``<out>/claims_measurements.csv`` and regenerates ``<out>/claims.md``;
* writes the table with :func:`harmonylib.tables.write_table` (measured beside reported, delta,
  provenance), its caption filled from the spec's template.

Table 2 (the inverse model's augmented data) is :func:`table2` (:mod:`.table2`): its data and
runs come from :mod:`harmonylib.inverse_data`, and it is scored, averaged, recorded for the claims
and rendered with the runner's functions. Figure 2, one-composite harmonization and the
qualitative grids are :mod:`.qualitative`. The Human Harmony dataset is built by
:func:`human_harmony_dataset` (notebook 11; its stages are :mod:`harmonylib.inverse_data`'s), and
the root the other notebooks use is :func:`resolve_human_harmony_root`.

Inference settings (paper §5.2, §5.3.3, §5.4; one place, :func:`inference_settings`):

* square squash to R_inf, 5 Euler-ancestral steps, outputs resized to 256, background not pasted
  (the evaluator pastes the ground-truth background, as the authors);
* R_inf: Table 1 / Table 3 / Table 4 "1024" use the *high* size, Table 4 "512" and Table 5 the
  *low* size: the ``r_inf_low`` / ``r_inf_high`` rungs of the profile's resolution ladder
  (``cfg.ladder``, :mod:`harmonylib.ladder`; paper 512 / 1024, mini 64 / 128 through an f4 VAE, the
  same latent values per content value) -- see :func:`size_note`, quoted in every caption;
* Table 1 "Ours" = Table 4 "1024 ✓" and Table 5 E_c+D/zero = Table 4 "512 ✓": the same settings
  hash, so the same prediction folder is scored once per table, never re-made.

Seeds. ``seeds`` are *training* seeds: for each seed ``s`` the Harmony-VAE (every Table 5
variant) and the pixel baseline are trained with ``cfg.seed = s``, and the test predictions of
that arm are sampled with seed ``s``. The DiffHarmony UNet is the profile's (adopted, or trained
once at the base seed): the paper adopts it (§5.2). The plain-VAE arms (DiffHarmony) are sampled
with the same seed ``s``, so each (plain, Harmony-VAE) pair shares its latents and differs only in
the decoder; in the claims CSV they are recorded under training seed ``s`` as the measurement
paired with that seed. A table cell is the mean over seeds; the per-seed values are in the claims
CSV and the per-image CSVs.

Every public name of the submodules is importable from ``harmonylib.experiments``.
"""

from harmonylib.claim_rule import default_seeds  # the claims own it (Table 2 uses it too)
from harmonylib.config import PAPER_VARIANT
from harmonylib.experiments.captions import diverged_text, seed_text, unet_note
from harmonylib.experiments.context import (
    CLAIMS_DIR,
    HUMAN_HARMONY,
    IHARMONY4,
    MEASUREMENTS_FILE,
    PIXEL_ARM,
    STEPS,
    Experiment,
    data_note,
    inference_sizes,
    setup,
    size_note,
)
from harmonylib.experiments.helpers import finite, save_image, write_json
from harmonylib.experiments.human_harmony import (
    HumanHarmonyResult,
    human_harmony_dataset,
    human_harmony_mask_sources,
    human_harmony_samples,
    resolve_human_harmony_root,
)
from harmonylib.experiments.paper_tables import (
    TABLE4_ROWS,
    TABLE5_CELLS,
    table1,
    table1_spec,
    table3,
    table3_spec,
    table4,
    table4_spec,
    table5,
    table5_spec,
)
from harmonylib.experiments.predictions import (
    CEILINGS,
    Arm,
    DivergedRun,
    ceiling_predictions,
    inference_settings,
    predictions_for,
    write_pixel_predictions,
)
from harmonylib.experiments.qualitative import (
    FIGURE2_STEM,
    comparison_rows,
    figure2,
    figures_3_4,
    grid_title,
    harmonize,
    pick_samples,
    sample_labels,
)
from harmonylib.experiments.runner import ExperimentSpec, Row, TableResult, run_table
from harmonylib.experiments.scoring import (
    all_row,
    mean_summary,
    photo_clusters,
    score,
    update_claims,
    write_measurements,
    write_per_image,
)
from harmonylib.experiments.table2 import (
    Table2Result,
    measured_table2,
    render_table2,
    score_table2_run,
    table2,
)
from harmonylib.experiments.trained import (
    base_components,
    harmony_vae_run,
    make_pipeline,
    pixel_baseline_run,
    refinement_run,
    stage1_callable,
    unet_key,
)

__all__ = [
    "CEILINGS",
    "CLAIMS_DIR",
    "FIGURE2_STEM",
    "HUMAN_HARMONY",
    "IHARMONY4",
    "MEASUREMENTS_FILE",
    "PAPER_VARIANT",
    "PIXEL_ARM",
    "STEPS",
    "TABLE4_ROWS",
    "TABLE5_CELLS",
    "Arm",
    "DivergedRun",
    "Experiment",
    "ExperimentSpec",
    "HumanHarmonyResult",
    "Row",
    "Table2Result",
    "TableResult",
    "all_row",
    "base_components",
    "ceiling_predictions",
    "comparison_rows",
    "data_note",
    "default_seeds",
    "diverged_text",
    "figure2",
    "figures_3_4",
    "finite",
    "grid_title",
    "harmonize",
    "harmony_vae_run",
    "human_harmony_dataset",
    "human_harmony_mask_sources",
    "human_harmony_samples",
    "inference_settings",
    "inference_sizes",
    "make_pipeline",
    "mean_summary",
    "measured_table2",
    "photo_clusters",
    "pick_samples",
    "pixel_baseline_run",
    "predictions_for",
    "refinement_run",
    "render_table2",
    "resolve_human_harmony_root",
    "run_table",
    "sample_labels",
    "save_image",
    "score",
    "score_table2_run",
    "seed_text",
    "setup",
    "size_note",
    "stage1_callable",
    "table1",
    "table1_spec",
    "table2",
    "table3",
    "table3_spec",
    "table4",
    "table4_spec",
    "table5",
    "table5_spec",
    "unet_key",
    "unet_note",
    "update_claims",
    "write_json",
    "write_measurements",
    "write_per_image",
    "write_pixel_predictions",
]
