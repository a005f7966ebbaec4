"""The claims' declared rule, version 2: a Student-t bound over seeds, a photo bootstrap per seed, TOST.

:mod:`harmonylib.claims` turns measurements into one signed difference ``d`` per (claim, seed),
oriented so that ``d > 0`` is the paper's direction; this module decides what those numbers show.

Why version 2 (it replaces "HOLDS if mean > 2·SE", which was declared before mini v1 was
measured; this version is declared after mini v1 and before the final mini runs). With 3 seeds,
mean / SE is Student-t with 2 degrees of freedom, so "mean > 2·SE" is a one-sided p of about 0.09,
not the 0.025 it approaches with many seeds. And each seed's ``d`` is itself a mean over one test
set whose composites are not independent: several are cut from one photo (the built-in data cuts
every test image from one of a few held-out photos; iHarmony4 makes several composites per real
image), so a test-set bootstrap must resample photos, not images. The rule needs both sources of
noise ruled out:

* **directional** claims: HOLDS if (a) the one-sided 95 % Student-t lower bound over seeds,
  ``mean − t(0.95, n−1)·SE``, is above 0 (t = 2.92 at 3 seeds), and (b) for every seed, the
  one-sided 95 % lower bound of a paired bootstrap of that seed's per-image values, resampling
  photos (clusters) with all their composites, is above 0. DOES NOT HOLD mirrors it (both upper
  bounds below 0). Anything else is INCONCLUSIVE; without per-image values (b) cannot be checked
  and the verdict is INCONCLUSIVE at best.
* **equivalence** claims ("negligible", "comparable"): TOST, two one-sided tests at 5 %: HOLDS if
  the 90 % two-sided t-interval over seeds lies inside ``(−bound, +bound)``; DOES NOT HOLD if it
  lies wholly outside (beyond ``+bound`` or below ``−bound``); else INCONCLUSIVE. ``bound`` is
  declared on the claim, with its reason, before measuring.

The bootstrap is a percentile bootstrap of the claim's statistic, ``Σ coef · mean(arm)``, where
each arm's mean is over its own images (claim 4's bins hold different images); resampling photos
with replacement gives every image its photo's draw count as weight, so pairs stay paired. It
draws from an explicit, seeded ``numpy.random.Generator``, :data:`N_RESAMPLES` times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

RULE_VERSION = 2
CONFIDENCE = 0.95  # one-sided; the TOST 90 % two-sided interval has the same two ends
N_RESAMPLES = 2000  # bootstrap resamples per (claim, seed)
BOOTSTRAP_SEED = 0  # the base of every bootstrap stream (derived per claim and seed)
N_MIN = 3  # seeds needed for a verdict

HOLDS = "HOLDS"
DOES_NOT_HOLD = "DOES NOT HOLD"
INCONCLUSIVE = "INCONCLUSIVE"
INSUFFICIENT = "INSUFFICIENT SEEDS"


def default_seeds(cfg, seeds: Sequence[int] | None = None) -> list[int]:
    """Training seeds of a claims experiment: ``seeds`` as given; else one (``cfg.seed``) on smoke
    and :data:`N_MIN` from ``cfg.seed`` otherwise (a verdict needs :data:`N_MIN`; smoke stays fast).

    ``cfg`` is a :class:`harmonylib.config.Config` (its ``seed`` and ``profile``).
    """
    if seeds:
        return [int(s) for s in seeds]
    return [cfg.seed] if cfg.profile == "smoke" else [cfg.seed + i for i in range(N_MIN)]


REPORTED = "REPORTED (no verdict)"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INSUFFICIENT, REPORTED)
DIRECTIONAL = "directional"
EQUIVALENCE = "equivalence"
KINDS = (DIRECTIONAL, EQUIVALENCE)


def t_critical(n: int, confidence: float = CONFIDENCE) -> float:
    """Student-t quantile ``t(confidence, n − 1)`` (2.92 for n = 3); NaN when ``n < 2``."""
    return float(stats.t.ppf(confidence, n - 1)) if n >= 2 else float("nan")


class SeedStats(NamedTuple):
    """Summary of one claim's per-seed differences (finite ones only)."""

    mean: float
    se: float  # sd (ddof 1) / sqrt(n); NaN when n < 2
    n: int  # finite values
    n_nan: int  # non-finite values, counted and left out
    lower: float  # mean − t·SE: one-sided 95 % lower bound = lower end of the 90 % interval
    upper: float  # mean + t·SE
    t_crit: float


def seed_stats(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> SeedStats:
    """Mean, SE and the Student-t bounds of per-seed differences (NaN/inf left out, counted)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else float("nan")
    se = float(finite.std(ddof=1) / math.sqrt(n)) if n >= 2 else float("nan")
    t = t_critical(n, confidence)
    return SeedStats(mean, se, n, int(v.size - n), mean - t * se, mean + t * se, t)


class Bootstrap(NamedTuple):
    """A cluster bootstrap of one seed's statistic."""

    estimate: float  # the statistic on the data as measured (every cluster once)
    lower: float  # the (1 − confidence) quantile of the resampled statistic; NaN if undefined
    upper: float  # the confidence quantile
    n_clusters: int
    n_undefined: int  # resamples in which an arm had no images (the bounds are then NaN)


def cluster_bootstrap(
    terms: Sequence[tuple[np.ndarray, np.ndarray, float]],
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Bootstrap:
    """Percentile bootstrap of ``Σ coef · mean(values)``, resampling clusters with replacement.

    Args:
        terms: one ``(values, clusters, coef)`` per arm: per-image values ``(N_t,)`` (non-finite
            ones are not part of that arm's mean, as in ``harmonylib.evaluation.aggregate``), the
            cluster (photo) of each image ``(N_t,)``, and the arm's signed coefficient. Arms that
            share images share their clusters' draws, so a paired difference stays paired.
        rng: the explicit generator all draws come from.
        n_resamples: bootstrap resamples.
        confidence: one-sided level of each bound.

    Returns:
        :class:`Bootstrap`. Pass each image as its own cluster for the ordinary image bootstrap.
    """
    if not terms:
        raise ValueError("cluster_bootstrap needs at least one term")
    labels = [np.asarray(c).astype(str) for _, c, _ in terms]
    names, codes = np.unique(np.concatenate(labels), return_inverse=True)
    n_clusters = len(names)
    # Draw counts of every cluster in every resample: (B, C); each row sums to C.
    counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_resamples)
    counts = counts.astype(np.float64)
    stat, est = np.zeros(n_resamples), 0.0
    start = 0
    for (values, _, coef), lab in zip(terms, labels, strict=True):
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape != lab.shape:
            raise ValueError(f"values {v.shape} and clusters {lab.shape} differ in shape")
        code = codes[start : start + v.size]
        start += v.size
        ok = np.isfinite(v)
        sums = np.bincount(code[ok], weights=v[ok], minlength=n_clusters)  # (C,)
        sizes = np.bincount(code[ok], minlength=n_clusters).astype(np.float64)  # (C,)
        with np.errstate(invalid="ignore", divide="ignore"):
            stat += coef * (counts @ sums) / (counts @ sizes)  # (B,); 0/0 = NaN: arm left empty
            est += coef * sums.sum() / sizes.sum()
    undefined = int((~np.isfinite(stat)).sum())
    if undefined:
        lo = hi = float("nan")
    else:
        lo, hi = (float(q) for q in np.quantile(stat, [1.0 - confidence, confidence]))
    return Bootstrap(float(est), lo, hi, n_clusters, undefined)


class Verdict(NamedTuple):
    """The rule applied to one claim."""

    mean: float
    se: float
    n: int  # finite per-seed values used
    verdict: str  # one of VERDICTS
    n_nan: int = 0
    lower: float = float("nan")  # mean − t·SE
    upper: float = float("nan")  # mean + t·SE
    reason: str = ""


def claim_verdict(
    values: Sequence[float] | np.ndarray,
    n_min: int = N_MIN,
    bootstraps: Sequence[Bootstrap | None] | None = None,
    kind: str = DIRECTIONAL,
    bound: float | None = None,
) -> Verdict:
    """Apply the declared rule to one claim.

    Args:
        values: one ``d`` per seed, ``d > 0`` in the paper's direction; NaN/inf = diverged run.
        n_min: seeds needed for a verdict (at least 2, for a standard error).
        bootstraps: directional claims: one :class:`Bootstrap` per *finite* value, in order
            (``None`` where that seed has no per-image values); ``None``: none available.
        kind: ``directional`` or ``equivalence``.
        bound: the equivalence margin (> 0), in the claim's metric; equivalence claims only.

    Returns:
        :class:`Verdict`. Fewer than ``n_min`` values at all gives INSUFFICIENT SEEDS; fewer than
        ``n_min`` finite ones INCONCLUSIVE; otherwise the rule of the module docstring. ``reason``
        says which condition decided.
    """
    if n_min < 2:
        raise ValueError(f"n_min must be at least 2 (a standard error needs 2 values), got {n_min}")
    if kind not in KINDS:
        raise ValueError(f"unknown claim kind {kind!r}; allowed: {list(KINDS)}")
    s = seed_stats(values)
    total = s.n + s.n_nan

    def out(verdict: str, reason: str) -> Verdict:
        return Verdict(s.mean, s.se, s.n, verdict, s.n_nan, s.lower, s.upper, reason)

    if total < n_min:
        return out(INSUFFICIENT, f"{total} seed(s) measured, {n_min} needed")
    if s.n < n_min:
        return out(INCONCLUSIVE, f"{s.n} finite seed(s) of {total}, {n_min} needed")
    t = f"t({CONFIDENCE:g}, {s.n - 1}) = {s.t_crit:.2f}"
    if kind == EQUIVALENCE:
        if bound is None or not bound > 0:
            raise ValueError(f"an equivalence claim needs a declared bound > 0, got {bound}")
        interval = f"90% t-interval [{s.lower:+.3g}, {s.upper:+.3g}] ({t})"
        if -bound < s.lower and s.upper < bound:
            return out(HOLDS, f"{interval} inside ±{bound:g}")
        if s.lower > bound or s.upper < -bound:
            return out(DOES_NOT_HOLD, f"{interval} wholly outside ±{bound:g}")
        return out(INCONCLUSIVE, f"{interval} overlaps a bound ±{bound:g}")
    # directional: (a) over seeds, then (b) every seed's photo bootstrap
    if s.lower > 0:
        sign, side = +1, "lower"
    elif s.upper < 0:
        sign, side = -1, "upper"
    else:
        return out(INCONCLUSIVE, f"(a) t-bounds [{s.lower:+.3g}, {s.upper:+.3g}] ({t}) include 0")
    a = f"(a) t {side} bound {s.lower if sign > 0 else s.upper:+.3g} ({t})"
    boots = list(bootstraps) if bootstraps is not None else []
    if len(boots) != s.n or any(b is None for b in boots):
        have = sum(b is not None for b in boots)
        return out(INCONCLUSIVE, f"{a}; (b) not checked: per-image values for {have} of {s.n} seeds")
    bad = [
        i
        for i, b in enumerate(boots)
        if not (b.lower > 0 if sign > 0 else b.upper < 0)  # NaN (undefined) fails too
    ]
    if bad:
        shown = ", ".join(f"{b.lower if sign > 0 else b.upper:+.3g}" for b in (boots[i] for i in bad))
        return out(
            INCONCLUSIVE, f"{a}; (b) bootstrap {side} bound of {len(bad)} seed(s) on the wrong side: {shown}"
        )
    worst = min(b.lower for b in boots) if sign > 0 else max(b.upper for b in boots)
    return out(
        HOLDS if sign > 0 else DOES_NOT_HOLD,
        f"{a}; (b) every seed's bootstrap {side} bound {'above' if sign > 0 else 'below'} 0 "
        f"(worst {worst:+.3g})",
    )
