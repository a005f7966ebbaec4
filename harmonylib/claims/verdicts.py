"""Measurements -> one signed difference per (claim, seed) -> each claim's verdict, effect and size.

:func:`claim_differences` combines a claim's arms per seed (the sign is the claim's, set once in
:mod:`harmonylib.claims.catalogue`); :func:`build_claims` applies the declared rule
(:func:`harmonylib.claim_rule.claim_verdict`, with each seed's photo bootstrap from
:func:`seed_bootstraps`) and sets beside it the paper's own effect and ours. A claim an arm of
which has no value at all is NOT MEASURED (never an error, never left out); a claim the built data
were made to show (Figure 2) is BY CONSTRUCTION.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmonylib.claim_rule import (
    BOOTSTRAP_SEED,
    DIRECTIONAL,
    N_RESAMPLES,
    REPORTED,
    Bootstrap,
    Verdict,
    claim_verdict,
    cluster_bootstrap,
    seed_stats,
)
from harmonylib.claims.catalogue import CLAIMS, NONE_VARIES, SAMPLING_VARIES, SEEDS_VARY
from harmonylib.claims.measurements import read_measurements, read_per_image
from harmonylib.claims.paper import effect_ratio, fmt, paper_reference
from harmonylib.claims.schema import BY_CONSTRUCTION, NOT_MEASURED, PAPER_METRIC, Claim
from harmonylib.reproducibility import numpy_rng

# build_claims's columns, in order (claims.csv has them all).
COLUMNS = (
    "claim", "statement", "source", "where", "quote", "kind", "bound", "bound_reason", "metric",
    "contrast", "seed_kinds", "n_min", "n_seeds", "seed_kinds_used", "seeds_vary", "n", "n_nan",
    "n_incomplete", "mean", "se", "t_crit", "lower", "upper", "boot_lower", "boot_upper", "clusters",
    "verdict", "reason", "paper_effect", "effect", "effect_ratio", "paper_text", "per_seed",
)  # fmt: skip


def seed_bootstraps(
    claim: Claim,
    per_image: pd.DataFrame,
    seeds: Sequence[tuple[str, int, float]],
    n_resamples: int = N_RESAMPLES,
) -> list[Bootstrap | None]:
    """The photo bootstrap of each of a claim's seeds, from the per-image rows (condition (b)).

    Args:
        claim: the claim.
        per_image: :func:`read_per_image`'s frame.
        seeds: ``(seed_kind, seed, d)`` of each finite, complete seed; ``d`` from the measurements.
        n_resamples: bootstrap resamples.

    Returns:
        One :class:`Bootstrap` per seed, ``None`` where an arm has no per-image rows for it.

    Raises:
        ValueError: the per-image rows give another ``d`` than the measurements (files of
            different runs).
    """
    sub = per_image[per_image["experiment"] == claim.experiment]
    groups = {k: g for k, g in sub.groupby(["arm", "seed_kind", "seed"], dropna=False, sort=False)}
    # an arm evaluated once (seed_kind none: the Composite row, a given baseline) serves every seed
    fixed = {arm: g for (arm, kind, _), g in groups.items() if kind == "none"}
    out: list[Bootstrap | None] = []
    for kind, seed, d in seeds:
        terms = []
        for arm, coef in claim.terms:
            g = groups.get((arm, kind, seed), fixed.get(arm))
            if g is None:
                break
            terms.append(
                (g[claim.metric].to_numpy(np.float64), g["cluster"].to_numpy(), claim.direction * coef)
            )
        else:
            rng = numpy_rng(BOOTSTRAP_SEED, "claims-bootstrap", claim.id, kind, int(seed))
            b = cluster_bootstrap(terms, rng, n_resamples)
            if not math.isclose(b.estimate, d, rel_tol=1e-6, abs_tol=1e-6):
                raise ValueError(
                    f"claim {claim.id}, {kind} seed {seed}: the per-image values give d = {b.estimate:.6g}, "
                    f"the measurements d = {d:.6g}; they come from different runs"
                )
            out.append(b)
            continue
        out.append(None)
    return out


def claim_differences(
    measurements: str | os.PathLike | pd.DataFrame, claims: Sequence[Claim] = CLAIMS
) -> pd.DataFrame:
    """The signed difference ``d`` of every (claim, seed), from raw measurements.

    Returns:
        Columns ``claim``, ``seed_kind``, ``seed``, ``d`` (NaN where an arm's value is NaN) and
        ``complete`` (False where the seed lacks an arm; ``d`` is NaN there and the row is not
        counted), one row per (claim, seed) met in the claim's arms, sorted by claim order and seed.
    """
    df = read_measurements(measurements)
    rows = []
    for claim in claims:
        arms = [a for a, _ in claim.terms]
        sub = df[
            (df["experiment"] == claim.experiment) & (df["metric"] == claim.metric) & df["arm"].isin(arms)
        ]
        fixed = {r["arm"]: r["value"] for _, r in sub[sub["seed_kind"] == "none"].iterrows()}
        seeded = sub[sub["seed_kind"].isin(claim.seed_kinds)]
        for (kind, seed), g in seeded.groupby(["seed_kind", "seed"], sort=True):
            here = dict(zip(g["arm"], g["value"], strict=True))
            vals = [here.get(a, fixed.get(a)) for a in arms]
            complete = all(v is not None for v in vals)
            d = (
                claim.direction * sum(c * v for (_, c), v in zip(claim.terms, vals, strict=True))
                if complete
                else float("nan")
            )
            rows.append(
                {"claim": claim.id, "seed_kind": kind, "seed": int(seed), "d": float(d), "complete": complete}
            )
    return pd.DataFrame(rows, columns=["claim", "seed_kind", "seed", "d", "complete"])


def missing_arms(claim: Claim, measurements: pd.DataFrame) -> list[str]:
    """The claim's arms with no value at all for its metric (any seed kind): why it is NOT MEASURED."""
    sub = measurements[
        (measurements["experiment"] == claim.experiment) & (measurements["metric"] == claim.metric)
    ]
    have = set(sub["arm"])
    return [a for a in claim.arms if a not in have]


def seeds_vary(claim: Claim, kinds_used: Sequence[str], fixed_arms: Sequence[str]) -> str:
    """What varied across the claim's seeds, from the seed kinds its measurements carry.

    ``training`` seeds: the experiment's text (:data:`~harmonylib.claims.catalogue.SEEDS_VARY`,
    how ``harmonylib.experiments`` makes them); ``sampling``: the sampling only; arms measured
    once (seed kind ``none``) are named as such.
    """
    if claim.by_construction:
        return "nothing measured"
    parts = []
    if "training" in kinds_used:
        parts.append(SEEDS_VARY.get(claim.experiment, "the models retrained per seed"))
    if "sampling" in kinds_used:
        parts.append(SAMPLING_VARIES)
    if fixed_arms:
        parts.append(f"{', '.join(fixed_arms)}: {NONE_VARIES}")
    return "; ".join(parts) if parts else "no seed measured"


def _row(claim: Claim, **values) -> dict:
    paper, paper_text = paper_reference(claim)
    row = {
        "claim": claim.id,
        "statement": claim.statement,
        "source": claim.source,
        "where": claim.where,
        "quote": claim.quote,
        "kind": claim.kind,
        "bound": claim.bound if claim.bound is not None else float("nan"),
        "bound_reason": claim.bound_reason,
        "metric": PAPER_METRIC[claim.metric] if claim.terms else "—",
        "contrast": claim.contrast_text(),
        "seed_kinds": "+".join(claim.seed_kinds),
        "n_min": claim.n_min,
        "n_seeds": 0, "seed_kinds_used": "", "seeds_vary": "", "n": 0, "n_nan": 0, "n_incomplete": 0,
        "mean": float("nan"), "se": float("nan"), "t_crit": float("nan"), "lower": float("nan"),
        "upper": float("nan"), "boot_lower": float("nan"), "boot_upper": float("nan"), "clusters": "",
        "verdict": "", "reason": "", "per_seed": "",
        "paper_effect": paper,
        "paper_text": paper_text,
    }  # fmt: skip
    row.update(values)
    row["effect"] = row["mean"]
    row["effect_ratio"] = effect_ratio(row["mean"], paper)
    return {c: row[c] for c in COLUMNS}


def build_claims(
    per_seed_csv: str | os.PathLike | pd.DataFrame,
    per_image: str | os.PathLike | pd.DataFrame | Sequence[str | os.PathLike | pd.DataFrame] | None = None,
    claims: Sequence[Claim] = CLAIMS,
    n_resamples: int = N_RESAMPLES,
) -> pd.DataFrame:
    """Every claim's verdict from a measurements CSV and per-image CSVs (:mod:`harmonylib.claims.measurements`).

    Args:
        per_seed_csv: the measurements CSV (or its DataFrame): one raw number per
            (experiment, arm, metric, seed).
        per_image: per-image CSV(s) or frame(s) for condition (b); None: none (directional
            claims then read INCONCLUSIVE at best, with that reason).
        claims: the claims to judge (default :data:`~harmonylib.claims.catalogue.CLAIMS`).
        n_resamples: bootstrap resamples per (claim, seed).

    Returns:
        One row per claim, columns :data:`COLUMNS`: the claim (``statement``, ``quote`` and
        ``where`` in the paper, ``kind``, ``bound``, ``contrast``: ``d`` as an expression), the
        seeds (``n_seeds`` complete of the needed kinds, ``seed_kinds_used``, ``seeds_vary``: what
        varied across them, ``n`` finite, ``n_nan``, ``n_incomplete``), the statistics (``mean``
        ± ``se``, ``t_crit``, ``lower`` / ``upper`` = mean ∓ t·SE, ``boot_lower`` /
        ``boot_upper``: the least favourable seed's bootstrap bounds, ``clusters``: what was
        resampled), ``verdict`` and ``reason``, the sizes (``paper_effect``: the paper's ``d``;
        ``effect``: ours, the mean; ``effect_ratio`` = effect / paper_effect; ``paper_text``) and
        ``per_seed`` (``kind:seed=d [bootstrap lo, hi]; ...``).
    """
    meas = read_measurements(per_seed_csv)
    diffs = claim_differences(meas, [c for c in claims if c.terms])
    pim = read_per_image(per_image) if per_image is not None else None
    out = []
    for claim in claims:
        if claim.by_construction:
            out.append(_row(claim, verdict=BY_CONSTRUCTION, reason=claim.by_construction,
                            seeds_vary=seeds_vary(claim, (), ())))  # fmt: skip
            continue
        missing = missing_arms(claim, meas)
        if missing:
            reason = f"no {PAPER_METRIC[claim.metric]} of {', '.join(missing)} ({claim.experiment}) in the measurements"
            out.append(_row(claim, verdict=NOT_MEASURED, reason=reason, seeds_vary="nothing measured"))
            continue
        mine = diffs[diffs["claim"] == claim.id]
        done = mine[mine["complete"]]
        values = done["d"].to_numpy(np.float64)
        finite = done[np.isfinite(values)]
        boots: list[Bootstrap | None] | None = None
        if pim is not None and claim.verdict and claim.kind == DIRECTIONAL:
            boots = seed_bootstraps(
                claim,
                pim,
                list(zip(finite["seed_kind"], finite["seed"], finite["d"], strict=True)),
                n_resamples,
            )
        if claim.verdict:
            v = claim_verdict(values, claim.n_min, boots, claim.kind, claim.bound)
        else:
            s = seed_stats(values)
            v = Verdict(s.mean, s.se, s.n, REPORTED, s.n_nan, s.lower, s.upper, "reported without a verdict")
        have = [b for b in boots or [] if b is not None]
        boot_text = {}  # (seed_kind, seed) -> " [lo, hi]" of its bootstrap
        for r, b in zip(finite.itertuples(), boots or [], strict=False):  # boots: one per finite seed
            boot_text[(r.seed_kind, r.seed)] = (
                f" [{fmt(b.lower, 3)}, {fmt(b.upper, 3)}]" if b is not None else " [no per-image values]"
            )
        kinds_used = sorted(set(done["seed_kind"]))
        sub = meas[(meas["experiment"] == claim.experiment) & (meas["metric"] == claim.metric)]
        fixed = [a for a in claim.arms if ((sub["arm"] == a) & (sub["seed_kind"] == "none")).any()]
        out.append(
            _row(
                claim,
                n_seeds=int(len(done)),
                seed_kinds_used="+".join(kinds_used),
                seeds_vary=seeds_vary(claim, kinds_used, fixed),
                n=v.n,
                n_nan=v.n_nan,
                n_incomplete=int((~mine["complete"]).sum()),
                mean=v.mean,
                se=v.se,
                t_crit=seed_stats(values).t_crit,
                lower=v.lower,
                upper=v.upper,
                boot_lower=min((b.lower for b in have), default=float("nan")),
                boot_upper=max((b.upper for b in have), default=float("nan")),
                clusters=_cluster_text(pim, claim) if pim is not None else "",
                verdict=v.verdict,
                reason=v.reason,
                per_seed="; ".join(
                    f"{r.seed_kind}:{r.seed}={fmt(r.d, 3)}{boot_text.get((r.seed_kind, r.seed), '')}"
                    for r in done.itertuples()
                ),
            )
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def _cluster_text(pim: pd.DataFrame, claim: Claim) -> str:
    """What condition (b) resampled for a claim, e.g. ``3 source photos (400 images)``."""
    arms = set(claim.arms)
    sub = pim[(pim["experiment"] == claim.experiment) & pim["arm"].isin(arms)]
    if sub.empty:
        return ""
    kinds = sorted(set(sub["cluster_kind"]))
    n = sub["cluster"].nunique()
    text = f"{n} {' / '.join(k + 's' for k in kinds)} ({sub['image'].nunique()} images)"
    if "real image" in kinds:
        text += "; the source photo is unknown, so the real image stands in for it"
    return text
