"""The paper's claims, tested across seeds with a rule declared before measuring.

``claims.md`` is generated, never typed: :func:`build_claims` reads one CSV of per-seed
measurements, computes one signed difference per (claim, seed), and gives each claim a verdict by
:func:`~harmonylib.claim_rule.claim_verdict`; :func:`write_claims` renders the result.

The package, one concern a module:

* :mod:`~harmonylib.claims.schema`: what a claim is (:class:`Claim`), the arms, metrics and seed
  kinds measurements use (:data:`ARMS`);
* :mod:`~harmonylib.claims.catalogue`: the paper's claims in its own words (:data:`CLAIMS`), and
  what a seed varies per experiment (:data:`SEEDS_VARY`);
* :mod:`~harmonylib.claims.registry`: every reported table row and Figure 2, with its claims or
  the reason none is drawn (:data:`REGISTRY`);
* :mod:`~harmonylib.claims.rule_text`: the declared rule in words (:data:`RULE`; the statistics
  are :mod:`harmonylib.claim_rule`'s, rule version 2);
* :mod:`~harmonylib.claims.measurements`: the measurements and per-image CSVs (their columns
  are documented there), read and checked;
* :mod:`~harmonylib.claims.paper`: the paper's own effect of a claim, from its tables;
* :mod:`~harmonylib.claims.verdicts`: differences, verdicts, effects and their ratio;
* :mod:`~harmonylib.claims.render`: ``claims.md``, ``claims.csv``, provenance, the command line;
* :mod:`~harmonylib.claims.files`: where each experiment's measurements go, and their merge
  (:func:`update_claims`).

Example::

    rows = claims.measurements_from_summary(aggregate(df), "table1", "DiffHarmony++",
                                            seed=0, seed_kind="training")
    ...  # all arms, all seeds, to one CSV
    claims.rebuild_claims("results/mini/claims_measurements.csv", "results/mini",
                          per_image=sorted(Path("results/mini/claims/per_image").glob("*.csv")))
"""

from __future__ import annotations

from harmonylib.claim_rule import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    DIRECTIONAL,
    DOES_NOT_HOLD,
    EQUIVALENCE,
    HOLDS,
    INCONCLUSIVE,
    INSUFFICIENT,
    KINDS,
    N_MIN,
    N_RESAMPLES,
    REPORTED,
    RULE_VERSION,
    VERDICTS,
    Bootstrap,
    Verdict,
    claim_verdict,
    cluster_bootstrap,
    seed_stats,
)
from harmonylib.claims.catalogue import CLAIMS, SEEDS_VARY
from harmonylib.claims.files import CLAIMS_DIR, MEASUREMENTS_FILE, update_claims, write_measurements
from harmonylib.claims.measurements import (
    measurements_from_summary,
    per_image_from_frame,
    read_measurements,
    read_per_image,
)
from harmonylib.claims.paper import effect_ratio, paper_reference
from harmonylib.claims.registry import REGISTRY, Entry, uncovered_rows
from harmonylib.claims.render import main, rebuild_claims, to_markdown, write_claims
from harmonylib.claims.rule_text import RULE
from harmonylib.claims.schema import (
    ARMS,
    BY_CONSTRUCTION,
    CLUSTER_KINDS,
    HUMAN_HARMONY_ARM,
    MEASUREMENT_COLUMNS,
    METRIC_DIRECTION,
    NOT_MEASURED,
    PER_IMAGE_COLUMNS,
    SEED_KINDS,
    Claim,
)
from harmonylib.claims.verdicts import COLUMNS, build_claims, claim_differences, missing_arms, seed_bootstraps

__all__ = [
    "CLAIMS_DIR", "HUMAN_HARMONY_ARM", "MEASUREMENTS_FILE", "update_claims", "write_measurements",
    "ARMS", "BOOTSTRAP_SEED", "BY_CONSTRUCTION", "CLAIMS", "CLUSTER_KINDS", "COLUMNS", "CONFIDENCE",
    "DIRECTIONAL", "DOES_NOT_HOLD", "EQUIVALENCE", "HOLDS", "INCONCLUSIVE", "INSUFFICIENT", "KINDS",
    "MEASUREMENT_COLUMNS", "METRIC_DIRECTION", "NOT_MEASURED", "N_MIN", "N_RESAMPLES",
    "PER_IMAGE_COLUMNS", "REGISTRY", "REPORTED", "RULE", "RULE_VERSION", "SEEDS_VARY", "SEED_KINDS",
    "VERDICTS", "Bootstrap", "Claim", "Entry", "Verdict", "build_claims", "claim_differences",
    "claim_verdict", "cluster_bootstrap", "effect_ratio", "main", "measurements_from_summary",
    "missing_arms", "paper_reference", "per_image_from_frame", "read_measurements", "read_per_image",
    "rebuild_claims", "seed_bootstraps", "seed_stats", "to_markdown", "uncovered_rows", "write_claims",
]  # fmt: skip
