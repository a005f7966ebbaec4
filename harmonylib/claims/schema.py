"""What a claim is, and the names its measurements use: experiments, arms, metrics, seed kinds.

A claim is data (:class:`Claim`): the paper's own words, the arms it compares, and how their
per-seed numbers combine into one signed difference ``d`` (``d > 0`` is the paper's direction).
:mod:`harmonylib.claims.catalogue` holds the paper's claims; :mod:`harmonylib.claims.verdicts`
judges them with :mod:`harmonylib.claim_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harmonylib.claim_rule import DIRECTIONAL, EQUIVALENCE, KINDS, N_MIN

SEED_KINDS = ("training", "sampling", "none")
METRIC_DIRECTION = {"psnr": +1.0, "mse": -1.0, "fmse": -1.0}  # +1: higher is better
PAPER_METRIC = {"psnr": "PSNR", "mse": "MSE", "fmse": "fMSE"}
MEASUREMENT_COLUMNS = ("experiment", "arm", "metric", "seed_kind", "seed", "value")
PER_IMAGE_COLUMNS = (
    "experiment",
    "arm",
    "seed_kind",
    "seed",
    "image",
    "cluster",
    "cluster_kind",
    "psnr",
    "mse",
    "fmse",
)
CLUSTER_KINDS = ("source photo", "real image")
FG_BINS = ("0-5%", "5-15%", "15-100%")
HUMAN_HARMONY_ARM = "Human Harmony"  # prefix of Table 3's Human Harmony arms

# Verdicts the claims package gives besides the rule's (harmonylib.claim_rule.VERDICTS): no
# statistics is run for these, so they are not part of the rule.
NOT_MEASURED = "NOT MEASURED"  # an arm the claim needs has no value at all
BY_CONSTRUCTION = "BY CONSTRUCTION (no verdict)"  # the data were built to show it

# experiment -> arm -> (paper table, that table's key columns) of the paper's matching cell.
ARMS: dict[str, dict[str, tuple[int, dict[str, str]]]] = {
    "table1": {m: (1, {"subset": "All", "model": m}) for m in ("DiffHarmony++", "DiffHarmony", "Composite")},
    # Table 2: one DiffHarmony UNet per (subset, training list), trained on that subset only.
    "table2": {
        f"{s}/{setting}": (2, {"subset": s, "setting": setting})
        for s in ("Hday2night", "HFlickr")
        for setting in ("base", "augmented")
    },
    # Table 4's 512px / 1024px are "low" / "high" here: the mini profile infers at other sizes.
    "table4": {
        **{
            f"{level}/{vae}": (4, {"setting": f"{res}/{vae}"})
            for level, res in (("low", "512"), ("high", "1024"))
            for vae in ("plain", "harmony_vae")
        },
        # the grey rows: the refinement module of DiffHarmony [52], at 1024 only
        **{f"high/{vae}+refine": (4, {"setting": f"1024/{vae}+refine"}) for vae in ("plain", "harmony_vae")},
    },
    "table5": {
        f"{p}/{i}": (5, {"params": p, "init": i}) for p in ("E_c", "E_c+D") for i in ("zero", "random")
    },
    # PixelHarmonizer stands in for HDNet_512 (harmonylib.models.pixel_baseline). iHarmony4 arms
    # are "<model>/<bin>" (their names before Human Harmony was added); Human Harmony arms are
    # "Human Harmony/<model>/<bin>".
    "table3": {
        f"{prefix}{ours}/{b}": (3, {"dataset": dataset, "fg_bin": b, "model": paper})
        for dataset, prefix in (("iHarmony4", ""), ("Human Harmony", f"{HUMAN_HARMONY_ARM}/"))
        for ours, paper in (("DiffHarmony++", "DiffHarmony++"), ("PixelHarmonizer", "HDNet_512"))
        for b in FG_BINS
    },
}


@dataclass(frozen=True)
class Claim:
    """One testable claim: ``d = direction(metric) · Σ coef · metric[arm]`` per seed.

    ``kind`` is ``directional`` (the paper says better / larger) or ``equivalence`` (the paper
    says negligible / comparable; TOST against ``bound``, in the metric's units, declared here
    with ``bound_reason`` before measuring). ``quote`` is the paper's own sentence the claim
    tests, ``where`` its place (section, caption). A claim with ``by_construction`` (its reason)
    has no terms and gets no verdict: the data were built to show it.
    """

    id: str
    statement: str
    source: str
    experiment: str
    metric: str
    terms: tuple[tuple[str, float], ...]  # (arm, coefficient)
    seed_kinds: tuple[str, ...]  # seed kinds that count towards n_min
    n_min: int = N_MIN
    verdict: bool = True  # False: reported only
    kind: str = DIRECTIONAL
    bound: float | None = None  # equivalence margin, declared before measuring
    bound_reason: str = ""
    quote: str = ""  # the paper's own words
    where: str = ""  # where they are, e.g. "§5.3.3"
    by_construction: str = ""  # why no verdict can be drawn on the built data
    paper_note: str = ""  # the paper's effect in words, where no table cell gives it

    @property
    def direction(self) -> float:
        return METRIC_DIRECTION[self.metric]

    def __post_init__(self) -> None:
        coefs = [c for _, c in self.terms]
        if len(coefs) % 2 or any(a != -b for a, b in zip(coefs[::2], coefs[1::2], strict=True)):
            raise ValueError(f"claim {self.id}: terms must come in (+c, -c) pairs, got {coefs}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: unknown kind {self.kind!r}; allowed: {list(KINDS)}")
        if self.kind == EQUIVALENCE and not (self.bound is not None and self.bound > 0 and self.bound_reason):
            raise ValueError(f"claim {self.id}: an equivalence claim declares a bound > 0 and its reason")
        if self.kind == DIRECTIONAL and self.bound is not None:
            raise ValueError(f"claim {self.id}: a directional claim takes no bound")
        if bool(self.by_construction) == bool(self.terms):
            raise ValueError(
                f"claim {self.id}: give either terms (a measured claim) or a by_construction reason"
            )
        if self.terms and self.experiment not in ARMS:
            raise ValueError(
                f"claim {self.id}: unknown experiment {self.experiment!r}; allowed: {list(ARMS)}"
            )
        unknown = [a for a, _ in self.terms if a not in ARMS.get(self.experiment, {})]
        if unknown:
            raise ValueError(f"claim {self.id}: unknown arm(s) {unknown} of {self.experiment}")

    @property
    def arms(self) -> list[str]:
        return [a for a, _ in self.terms]

    def contrast_text(self) -> str:
        """``d`` as an expression in the paper's metric names, e.g. ``−(fMSE[A] − fMSE[B])``."""
        if not self.terms:
            return "—"
        name = PAPER_METRIC[self.metric]
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
