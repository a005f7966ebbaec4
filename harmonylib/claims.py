"""The paper's claims, tested across seeds with a rule declared before measuring.

``claims.md`` is generated, never typed: :func:`build_claims` reads one CSV of per-seed
measurements, computes one signed difference per (claim, seed), and gives each claim a verdict by
:func:`claim_verdict`; :func:`write_claims` renders the result.

The declared rule (:data:`RULE`, printed first in ``claims.md``)
-----------------------------------------------------------------
Each seed gives one signed difference ``d``, oriented so that ``d > 0`` is the paper's direction
(higher PSNR; lower MSE / fMSE). Over the ``n`` seeds whose ``d`` is finite, ``mean`` and
``SE = sd / sqrt(n)`` (sample sd, ddof = 1). A claim

* HOLDS if ``mean > 2·SE``; DOES NOT HOLD if ``mean < −2·SE``; else it is INCONCLUSIVE;
* gets INSUFFICIENT SEEDS (no verdict) when fewer than ``n_min`` seeds of the kind it needs were
  measured: claims 1-3 need ``n_min = 3`` *training* seeds; claim 4 may vary sampling seeds only;
* NaN: a seed whose ``d`` is not finite (a diverged run, e.g. Table 5's random init, or a failed
  evaluation) is counted and reported, and left out of mean and SE; if fewer than ``n_min`` finite
  seeds remain, the claim is INCONCLUSIVE. (A diverged random-init run is evidence of the
  instability the paper reports, but the rule does not count it as a win; the count is shown.)
* claim 5 (where DiffHarmony++ stands against the Composite row) is REPORTED, without a verdict.

The measurements CSV (one row per measured number)
---------------------------------------------------
``experiment, arm, metric, seed_kind, seed, value``:

* ``experiment``: ``table1`` | ``table3`` | ``table4`` | ``table5``; ``arm``: one of that
  experiment's :data:`ARMS` (e.g. ``DiffHarmony++``, ``low/harmony_vae``, ``E_c/random``,
  ``PixelHarmonizer/15-100%``); ``metric``: ``psnr`` | ``mse`` | ``fmse`` (the evaluator's
  means over the test set, or over a foreground-ratio bin for ``table3``);
* ``seed_kind``: ``training`` (the model was retrained with this seed), ``sampling`` (one trained
  model, this sampling seed), or ``none`` with ``seed`` empty (a deterministic number, such as the
  Composite row or a baseline evaluated once; it is used for every seed of a claim);
* ``value``: a float; ``nan`` marks a diverged run.

Raw numbers, not differences, go in the CSV; the differencing (and its sign) is done here, from
:data:`CLAIMS`, once. A seed that lacks one of a claim's arms is *incomplete*: left out, counted.

Example::

    rows = claims.measurements_from_summary(aggregate(df), "table1", "DiffHarmony++",
                                            seed=0, seed_kind="training")
    ...  # all arms, all seeds, to one CSV
    claims.rebuild_claims("results/mini/claims_measurements.csv", "results/mini")
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from harmonylib import provenance as _prov
from harmonylib import tables
from harmonylib.io import atomic_write_json, atomic_write_text
from harmonylib.provenance import sha256_file

HOLDS = "HOLDS"
DOES_NOT_HOLD = "DOES NOT HOLD"
INCONCLUSIVE = "INCONCLUSIVE"
INSUFFICIENT = "INSUFFICIENT SEEDS"
REPORTED = "REPORTED (no verdict)"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INSUFFICIENT, REPORTED)

N_SE = 2.0  # the rule's threshold, in standard errors
N_MIN = 3  # seeds needed for a verdict
SEED_KINDS = ("training", "sampling", "none")
METRIC_DIRECTION = {"psnr": +1.0, "mse": -1.0, "fmse": -1.0}  # +1: higher is better
_PAPER_METRIC = {"psnr": "PSNR", "mse": "MSE", "fmse": "fMSE"}
MEASUREMENT_COLUMNS = ("experiment", "arm", "metric", "seed_kind", "seed", "value")

RULE = (
    "Each seed gives one signed difference d, oriented so that d > 0 is the paper's direction "
    "(higher PSNR; lower MSE/fMSE). Over the n seeds with a finite d: mean, and SE = sd/sqrt(n) "
    "(sample sd, ddof 1).",
    f"**{HOLDS}** if mean > 2·SE; **{DOES_NOT_HOLD}** if mean < −2·SE; otherwise **{INCONCLUSIVE}**.",
    f"**{INSUFFICIENT}** (no verdict) if fewer than n_min seeds of the needed kind were measured: "
    "claims 1-3 need n_min = 3 training seeds (the model retrained per seed); claim 4 may vary "
    "sampling seeds only.",
    "NaN: a seed whose d is not finite (a diverged run, e.g. Table 5's random init) is counted "
    "(column NaN) and left out of mean and SE; with fewer than n_min finite seeds left the claim "
    f"is {INCONCLUSIVE}. A seed lacking one of the claim's arms is incomplete: left out, counted.",
    "Metrics, declared with the rule: PSNR for claims 1a, 2, 3a-3c and 5a; fMSE for 1b, 4 and 5b; "
    "each a mean over the whole test set (claim 4: over a foreground-ratio bin).",
    "'≥' claims are tested like '>' (a tie reads INCONCLUSIVE). Claim 5 is reported without a verdict.",
    "The rule is fixed in code (harmonylib/claims.py: RULE, CLAIMS) and was written before any "
    "seed was measured; its git history shows any later change.",
)


# --------------------------------------------------------------------------------------------
# 1. The claims, as data
# --------------------------------------------------------------------------------------------

# experiment -> arm -> (paper table, that table's key columns) of the paper's matching cell.
ARMS: dict[str, dict[str, tuple[int, dict[str, str]]]] = {
    "table1": {m: (1, {"subset": "All", "model": m}) for m in ("DiffHarmony++", "DiffHarmony", "Composite")},
    # Table 4's 512px / 1024px are "low" / "high" here: the mini profile infers at other sizes.
    "table4": {
        f"{level}/{vae}": (4, {"setting": f"{res}/{vae}"})
        for level, res in (("low", "512"), ("high", "1024"))
        for vae in ("plain", "harmony_vae")
    },
    "table5": {
        f"{p}/{i}": (5, {"params": p, "init": i}) for p in ("E_c", "E_c+D") for i in ("zero", "random")
    },
    # PixelHarmonizer stands in for HDNet_512 (harmonylib.models.pixel_baseline).
    "table3": {
        f"{ours}/{b}": (3, {"dataset": "iHarmony4", "fg_bin": b, "model": paper})
        for ours, paper in (("DiffHarmony++", "DiffHarmony++"), ("PixelHarmonizer", "HDNet_512"))
        for b in ("0-5%", "5-15%", "15-100%")
    },
}


@dataclass(frozen=True)
class Claim:
    """One testable claim: ``d = direction(metric) · Σ coef · metric[arm]`` per seed."""

    id: str
    statement: str
    source: str
    experiment: str
    metric: str
    terms: tuple[tuple[str, float], ...]  # (arm, coefficient)
    seed_kinds: tuple[str, ...]  # seed kinds that count towards n_min
    n_min: int = N_MIN
    verdict: bool = True  # False: reported only

    @property
    def direction(self) -> float:
        return METRIC_DIRECTION[self.metric]

    def __post_init__(self) -> None:
        coefs = [c for _, c in self.terms]
        if len(coefs) % 2 or any(a != -b for a, b in zip(coefs[::2], coefs[1::2], strict=True)):
            raise ValueError(f"claim {self.id}: terms must come in (+c, -c) pairs, got {coefs}")

    def contrast_text(self) -> str:
        """``d`` as an expression in the paper's metric names, e.g. ``−(fMSE[A] − fMSE[B])``."""
        name = _PAPER_METRIC[self.metric]
        text = ""
        pairs = list(zip(self.terms[::2], self.terms[1::2], strict=True))
        for i, ((a, c), (b, _)) in enumerate(pairs):
            s = c * self.direction  # the pair is s · (X[a] − X[b])
            body = f"{name}[{a}] − {name}[{b}]"
            if abs(s) != 1:
                body = f"{abs(s):g}·({body})"
            elif len(pairs) > 1 or s < 0:
                body = f"({body})"
            if i == 0:
                text = body if s > 0 else "−" + body
            else:
                text += (" + " if s > 0 else " − ") + body
        return text


_TRAINING = ("training",)
_ANY = ("training", "sampling")
_VS_DH = (("DiffHarmony++", 1.0), ("DiffHarmony", -1.0))
_VAE_GAIN = (("low/harmony_vae", 1.0), ("low/plain", -1.0), ("high/harmony_vae", -1.0), ("high/plain", 1.0))
_BIN_TREND = (  # (fMSE[pixel] − fMSE[latent]) in the largest bin minus the same in the smallest
    ("PixelHarmonizer/15-100%", -1.0),
    ("DiffHarmony++/15-100%", 1.0),
    ("PixelHarmonizer/0-5%", 1.0),
    ("DiffHarmony++/0-5%", -1.0),
)
_VS_COMPOSITE = (("DiffHarmony++", 1.0), ("Composite", -1.0))

CLAIMS: tuple[Claim, ...] = (
    Claim("1a", "DiffHarmony++ beats DiffHarmony on PSNR", "Table 1", "table1", "psnr", _VS_DH, _TRAINING),
    Claim("1b", "DiffHarmony++ beats DiffHarmony on fMSE", "Table 1", "table1", "fmse", _VS_DH, _TRAINING),
    Claim(
        "2",
        "The Harmony-VAE PSNR gain is larger at the lower inference resolution",
        "Table 4",
        "table4",
        "psnr",
        _VAE_GAIN,
        _TRAINING,
    ),
    Claim(
        "3a",
        "Zero init beats random init (finetuning E_c+D), PSNR",
        "Table 5",
        "table5",
        "psnr",
        (("E_c+D/zero", 1.0), ("E_c+D/random", -1.0)),
        _TRAINING,
    ),
    Claim(
        "3b",
        "Zero init beats random init (finetuning E_c only; the paper's random run gave NaN), PSNR",
        "Table 5",
        "table5",
        "psnr",
        (("E_c/zero", 1.0), ("E_c/random", -1.0)),
        _TRAINING,
    ),
    Claim(
        "3c",
        "Finetuning E_c+D is at least as good as E_c alone (zero init), PSNR",
        "Table 5",
        "table5",
        "psnr",
        (("E_c+D/zero", 1.0), ("E_c/zero", -1.0)),
        _TRAINING,
    ),
    Claim(
        "4",
        "The latent model's fMSE advantage over the pixel baseline grows with the foreground ratio "
        "(15-100% bin minus 0-5% bin; pixel baseline = PixelHarmonizer for HDNet_512)",
        "Table 3",
        "table3",
        "fmse",
        _BIN_TREND,
        _ANY,
    ),
    Claim(
        "5a",
        "DiffHarmony++ vs the Composite row, PSNR",
        "Table 1",
        "table1",
        "psnr",
        _VS_COMPOSITE,
        _ANY,
        verdict=False,
    ),
    Claim(
        "5b",
        "DiffHarmony++ vs the Composite row, fMSE",
        "Table 1",
        "table1",
        "fmse",
        _VS_COMPOSITE,
        _ANY,
        verdict=False,
    ),
)


def paper_reference(claim: Claim) -> tuple[float, str]:
    """The paper's own ``d`` for a claim, from its reported tables, and a text with the inputs.

    Returns:
        ``(d, text)``; ``d`` is NaN when a cell is NaN in the paper (Table 5, E_c random init).
    """
    parts, total = [], 0.0
    for arm, coef in claim.terms:
        table, keys = ARMS[claim.experiment][arm]
        rep = tables.reported(table)
        sel = rep["metric"] == _PAPER_METRIC[claim.metric]
        for k, v in keys.items():
            sel &= rep[k] == v
        row = rep[sel].iloc[0]
        shown = row["printed"] if row["status"] in ("reported", "nan") else f"{row['value']:g}"
        label = keys.get("model", keys.get("setting", arm))
        if claim.experiment == "table3":
            label = f"{keys['model']} {keys['fg_bin']}"
        elif claim.experiment == "table5":
            label = arm
        parts.append(f"{label} {shown}")
        total += coef * float(row["value"])
    d = claim.direction * total
    return d, f"{_fmt(d)} ({', '.join(parts)})"


# --------------------------------------------------------------------------------------------
# 2. The verdict of one claim
# --------------------------------------------------------------------------------------------


class Verdict(NamedTuple):
    """The declared rule applied to one claim's per-seed differences."""

    mean: float  # over finite values
    se: float  # sd (ddof 1) / sqrt(n); NaN when n < 2
    n: int  # finite values used
    verdict: str  # one of VERDICTS
    n_nan: int = 0  # non-finite values, counted and left out


def claim_verdict(values: Sequence[float] | np.ndarray, n_min: int = N_MIN) -> Verdict:
    """Apply :data:`RULE` to one claim's signed per-seed differences.

    Args:
        values: one ``d`` per seed, ``d > 0`` in the paper's direction; NaN/inf = diverged run.
        n_min: seeds needed for a verdict (at least 2, for a standard error).

    Returns:
        ``Verdict(mean, se, n, verdict, n_nan)``. Fewer than ``n_min`` values at all gives
        INSUFFICIENT SEEDS; fewer than ``n_min`` finite ones INCONCLUSIVE; else HOLDS if
        ``mean > 2·SE``, DOES NOT HOLD if ``mean < −2·SE``, INCONCLUSIVE otherwise.
    """
    if n_min < 2:
        raise ValueError(f"n_min must be at least 2 (a standard error needs 2 values), got {n_min}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    n, n_nan = int(finite.size), int(v.size - finite.size)
    mean = float(finite.mean()) if n else float("nan")
    se = float(finite.std(ddof=1) / math.sqrt(n)) if n >= 2 else float("nan")
    if v.size < n_min:
        verdict = INSUFFICIENT
    elif n < n_min:
        verdict = INCONCLUSIVE
    elif mean > N_SE * se:
        verdict = HOLDS
    elif mean < -N_SE * se:
        verdict = DOES_NOT_HOLD
    else:
        verdict = INCONCLUSIVE
    return Verdict(mean, se, n, verdict, n_nan)


# --------------------------------------------------------------------------------------------
# 3. Measurements -> per-seed differences -> claims
# --------------------------------------------------------------------------------------------


def read_measurements(path_or_df: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Load and check a measurements CSV (see the module docstring for its columns).

    Raises:
        ValueError: a missing column, unknown experiment/arm/metric/seed kind, a seed given for
            ``none`` or missing for another kind, or two values for one (experiment, arm, metric,
            seed_kind, seed).
    """
    df = path_or_df.copy() if isinstance(path_or_df, pd.DataFrame) else pd.read_csv(path_or_df)
    missing = [c for c in MEASUREMENT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"measurements lack column(s) {missing}; need {list(MEASUREMENT_COLUMNS)}")
    df = df[list(MEASUREMENT_COLUMNS)].copy()
    for col in ("experiment", "arm", "metric", "seed_kind"):
        df[col] = df[col].astype(str).str.strip()
    df["metric"] = df["metric"].str.lower()
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    df["seed"] = pd.to_numeric(df["seed"], errors="raise")
    for _, r in df.iterrows():
        if r["experiment"] not in ARMS:
            raise ValueError(f"unknown experiment {r['experiment']!r}; allowed: {list(ARMS)}")
        if r["arm"] not in ARMS[r["experiment"]]:
            raise ValueError(
                f"unknown arm {r['arm']!r} of {r['experiment']}; allowed: {list(ARMS[r['experiment']])}"
            )
        if r["metric"] not in METRIC_DIRECTION:
            raise ValueError(f"unknown metric {r['metric']!r}; allowed: {list(METRIC_DIRECTION)}")
        if r["seed_kind"] not in SEED_KINDS:
            raise ValueError(f"unknown seed_kind {r['seed_kind']!r}; allowed: {list(SEED_KINDS)}")
        has_seed = not pd.isna(r["seed"])
        if has_seed == (r["seed_kind"] == "none"):
            raise ValueError(
                f"{r['experiment']}/{r['arm']}: seed_kind 'none' takes an empty seed, other kinds an integer one"
            )
    key = ["experiment", "arm", "metric", "seed_kind", "seed"]
    dup = df.duplicated(key, keep=False)
    if dup.any():
        raise ValueError(f"several values for {df.loc[dup, key].iloc[0].to_dict()}")
    return df


def claim_differences(measurements: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """The signed difference ``d`` of every (claim, seed), from raw measurements.

    Returns:
        Columns ``claim``, ``seed_kind``, ``seed``, ``d`` (NaN where an arm's value is NaN) and
        ``complete`` (False where the seed lacks an arm; ``d`` is NaN there and the row is not
        counted), one row per (claim, seed) met in the claim's arms, sorted by claim order and seed.
    """
    df = read_measurements(measurements)
    rows = []
    for claim in CLAIMS:
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


def _fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    return f"{x:+.{digits}f}"


def build_claims(per_seed_csv: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Every claim's verdict from a measurements CSV (see the module docstring).

    Args:
        per_seed_csv: the measurements CSV (or its DataFrame): one raw number per
            (experiment, arm, metric, seed).

    Returns:
        One row per claim of :data:`CLAIMS`: ``claim``, ``statement``, ``source``, ``metric``,
        ``contrast`` (``d`` as an expression), ``seed_kinds``, ``n_min``, ``n_seeds`` (complete
        seeds of the needed kinds), ``n`` (finite), ``n_nan``, ``n_incomplete``, ``mean``, ``se``,
        ``verdict``, ``paper`` (the paper's ``d``), ``paper_text``, ``per_seed``
        (``kind:seed=d; ...``).
    """
    diffs = claim_differences(per_seed_csv)
    out = []
    for claim in CLAIMS:
        mine = diffs[diffs["claim"] == claim.id]
        done = mine[mine["complete"]]
        values = done["d"].to_numpy(np.float64)
        if claim.verdict:
            v = claim_verdict(values, claim.n_min)
        else:
            finite = values[np.isfinite(values)]
            v = Verdict(
                float(finite.mean()) if finite.size else float("nan"),
                float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size >= 2 else float("nan"),
                int(finite.size),
                REPORTED,
                int(values.size - finite.size),
            )
        paper, paper_text = paper_reference(claim)
        out.append(
            {
                "claim": claim.id,
                "statement": claim.statement,
                "source": claim.source,
                "metric": _PAPER_METRIC[claim.metric],
                "contrast": claim.contrast_text(),
                "seed_kinds": "+".join(claim.seed_kinds),
                "n_min": claim.n_min,
                "n_seeds": int(len(done)),
                "seed_kinds_used": "+".join(sorted(set(done["seed_kind"]))),
                "n": v.n,
                "n_nan": v.n_nan,
                "n_incomplete": int((~mine["complete"]).sum()),
                "mean": v.mean,
                "se": v.se,
                "verdict": v.verdict,
                "paper": paper,
                "paper_text": paper_text,
                "per_seed": "; ".join(f"{r.seed_kind}:{r.seed}={_fmt(r.d, 3)}" for r in done.itertuples()),
            }
        )
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# 4. Files
# --------------------------------------------------------------------------------------------


def to_markdown(df: pd.DataFrame, title: str = "Claims") -> str:
    """``claims.md``: the declared rule first, then one row per claim, then per-seed values."""

    def esc(s: Any) -> str:
        return str(s).replace("|", "\\|")

    lines = [
        f"# {title}",
        "",
        "Generated by `harmonylib.claims` from per-seed measurements; do not edit.",
        "",
    ]
    lines += ["## Declared rule", ""] + [f"- {r}" for r in RULE] + [""]
    lines += ["## Claims", ""]
    lines.append(
        "| claim | statement | source | d = (paper's direction > 0) | seeds | n | NaN | mean ± SE | paper | verdict |"
    )
    lines.append("|:---|:---|:---|:---|:---|---:|---:|---:|:---|:---|")
    for r in df.itertuples():
        se = "NaN" if pd.isna(r.se) else f"{r.se:.2f}"
        if r.verdict == REPORTED:
            needs = "no minimum"
        elif r.seed_kinds == "training":
            needs = f"needs {r.n_min} training"
        else:
            needs = f"needs {r.n_min}, any kind"
        used = r.seed_kinds_used if isinstance(r.seed_kinds_used, str) and r.seed_kinds_used else "seeds"
        seeds = f"{r.n_seeds} {used} ({needs})" + (f", {r.n_incomplete} incomplete" if r.n_incomplete else "")
        cells = [
            r.claim,
            r.statement,
            r.source,
            r.contrast,
            seeds,
            r.n,
            r.n_nan,
            f"{_fmt(r.mean)} ± {se}",
            r.paper_text,
            f"**{r.verdict}**",
        ]
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    lines += ["", "## Per-seed values of d", ""]
    for r in df.itertuples():
        lines.append(f"- **{r.claim}**: {r.per_seed or '(none)'}")
    return "\n".join(lines) + "\n"


def write_claims(
    df: pd.DataFrame,
    out_md: str | os.PathLike,
    out_csv: str | os.PathLike,
    provenance: Mapping[str, Any] | None = None,
    title: str = "Claims",
    per_seed: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``claims.md``, ``claims.csv`` and ``<md stem>.provenance.json``, each atomically.

    The provenance file is written last, with the SHA-256 of the other two, so its presence
    means they are complete.

    Args:
        df: the output of :func:`build_claims`.
        out_md, out_csv: destinations.
        provenance: a record from ``harmonylib.provenance.provenance`` (seeds, config, the
            measurements CSV's hash); a bare one is made if None.
        title: the Markdown title.
        per_seed: :func:`claim_differences`'s output; if given, written as
            ``<csv stem>_per_seed.csv`` (one row per (claim, seed)).

    Returns:
        ``{"md": ..., "csv": ..., ["per_seed": ...,] "provenance": ...}`` paths.
    """
    out_md, out_csv = Path(out_md), Path(out_csv)
    paths = {"md": out_md, "csv": out_csv}
    atomic_write_text(out_csv, df.to_csv(index=False, lineterminator="\n", na_rep="nan"))
    if per_seed is not None:
        paths["per_seed"] = out_csv.with_name(out_csv.stem + "_per_seed.csv")
        atomic_write_text(paths["per_seed"], per_seed.to_csv(index=False, lineterminator="\n", na_rep="nan"))
    atomic_write_text(out_md, to_markdown(df, title))
    record = dict(provenance) if provenance is not None else _prov.provenance()
    record.update(
        rule=list(RULE),
        outputs={k: {"path": p.name, "sha256": sha256_file(p)} for k, p in paths.items()},
    )
    paths["provenance"] = out_md.with_name(out_md.stem + ".provenance.json")
    atomic_write_json(paths["provenance"], record)
    return paths


def rebuild_claims(
    measurements_csv: str | os.PathLike, out_dir: str | os.PathLike, title: str = "Claims", **extra: Any
) -> dict[str, Path]:
    """``out_dir/claims.md``, ``claims.csv`` and ``claims_per_seed.csv`` from a measurements CSV.

    The measurements CSV's SHA-256 goes into ``claims.provenance.json``.
    """
    out_dir = Path(out_dir)
    df = build_claims(measurements_csv)
    record = _prov.provenance(files={"measurements": measurements_csv}, **extra)
    per_seed = claim_differences(measurements_csv)
    return write_claims(df, out_dir / "claims.md", out_dir / "claims.csv", record, title, per_seed=per_seed)


def measurements_from_summary(
    summary: pd.DataFrame,
    experiment: str,
    arm: str,
    seed: int | None,
    seed_kind: str,
    metrics: Sequence[str] = ("psnr", "mse", "fmse"),
    subset: str = "All",
) -> pd.DataFrame:
    """Measurement rows from an evaluation summary, ready to concatenate into the CSV.

    Args:
        summary: ``harmonylib.evaluation.aggregate(df)`` (rows per subset), or
            ``aggregate_by_fg_bins(df)`` (rows per subset and ``fg_bin``; each bin becomes the
            arm ``<arm>/<fg_bin>``, as Table 3's arms are named).
        experiment, arm: as in :data:`ARMS` (``arm`` without the bin for a binned summary).
        seed, seed_kind: the seed and its kind (``None`` with ``"none"``).
        metrics: summary columns to keep.
        subset: the summary row to use (``All``: the whole test set).

    Returns:
        Columns :data:`MEASUREMENT_COLUMNS`.
    """
    rows = summary[summary["subset"] == subset]
    out = []
    for _, r in rows.iterrows():
        name = f"{arm}/{r['fg_bin']}" if "fg_bin" in summary.columns else arm
        for m in metrics:
            out.append(
                {
                    "experiment": experiment,
                    "arm": name,
                    "metric": m,
                    "seed_kind": seed_kind,
                    "seed": seed,
                    "value": float(r[m]),
                }
            )
    return pd.DataFrame(out, columns=list(MEASUREMENT_COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harmonylib.claims MEASUREMENTS.csv OUT_DIR``: rebuild claims.md / claims.csv."""
    p = argparse.ArgumentParser(description="Rebuild claims.md and claims.csv from per-seed measurements.")
    p.add_argument("measurements", help="measurements CSV (experiment, arm, metric, seed_kind, seed, value)")
    p.add_argument("out_dir", help="folder for claims.md, claims.csv, claims.provenance.json")
    p.add_argument("--title", default="Claims")
    args = p.parse_args(argv)
    paths = rebuild_claims(args.measurements, args.out_dir, title=args.title)
    print(f"wrote {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
