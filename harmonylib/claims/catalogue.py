"""The paper's claims, each in its own words, as :class:`~harmonylib.claims.schema.Claim` data.

One claim per statement the paper draws from a table or figure; which table or figure gives
which claim (or why none) is :mod:`harmonylib.claims.registry`. Ids 1-5 keep their meaning from
the first claims file (claim 4 was split into 4a-4d: levels per bin, not only the trend); 6-8
are the statements added after it (issue 11).

Metrics are declared here, with the rule: PSNR where the paper's sentence is about overall
quality, fMSE where it is about the foreground (Table 3's bins; claim 1b).
"""

from __future__ import annotations

from harmonylib.claim_rule import EQUIVALENCE
from harmonylib.claims.schema import HUMAN_HARMONY_ARM, Claim

_TRAINING = ("training",)
_ANY = ("training", "sampling")

# --------------------------------------------------------------------- Table 1 (§5.3.1)
_Q_TABLE1 = (
    "For the overall results on the entire test set, our method significantly outperforms previous "
    "SOTA methods. [...] Our proposed model outperforms DiffHarmony because we utilize Harmony-VAE "
    "instead of the VAE from Stable Diffusion."
)
_VS_DH = (("DiffHarmony++", 1.0), ("DiffHarmony", -1.0))
_VS_COMPOSITE = (("DiffHarmony++", 1.0), ("Composite", -1.0))
_Q_COMPOSITE = (
    "(no sentence; Table 1 prints the Composite row, the unharmonized input, as the floor every "
    "method improves on: Ours 41.66 dB against 34.35 dB)"
)
TABLE1 = (
    Claim("1a", "DiffHarmony++ beats DiffHarmony on PSNR", "Table 1", "table1", "psnr", _VS_DH, _TRAINING,
          quote=_Q_TABLE1, where="§5.3.1"),
    Claim("1b", "DiffHarmony++ beats DiffHarmony on fMSE", "Table 1", "table1", "fmse", _VS_DH, _TRAINING,
          quote=_Q_TABLE1, where="§5.3.1"),
    # Claim 5 was reported without a verdict in rule version 2's first files; issue 11 asks for
    # one. On the built-in data the Composite row itself is calibrated to the paper's (built-in
    # recolouring strengths fitted to it), but DiffHarmony++'s distance from it is measured.
    Claim("5a", "DiffHarmony++ improves on the Composite row (its input), PSNR", "Table 1", "table1", "psnr",
          _VS_COMPOSITE, _ANY, quote=_Q_COMPOSITE, where="Table 1"),
    Claim("5b", "DiffHarmony++ improves on the Composite row (its input), fMSE", "Table 1", "table1", "fmse",
          _VS_COMPOSITE, _ANY, quote=_Q_COMPOSITE, where="Table 1"),
)  # fmt: skip

# --------------------------------------------------------------------- Table 2 (§5.3.2)
_Q_TABLE2 = (
    "The results show that data augmentation with inverse harmonization model significantly "
    "improves the model performance on both datasets"
)
TABLE2 = tuple(
    Claim(cid, f"Augmented training data improve {s} (a UNet trained on {s} only), PSNR", "Table 2",
          "table2", "psnr", ((f"{s}/augmented", 1.0), (f"{s}/base", -1.0)), _TRAINING,
          quote=_Q_TABLE2, where="§5.3.2")
    for cid, s in (("6a", "Hday2night"), ("6b", "HFlickr"))
)  # fmt: skip

# --------------------------------------------------------------------- Table 3 (§5.3.3)
_Q_IH4 = (
    "Our results on the iHarmony4 dataset indicate that when test samples have small foreground "
    "proportions (0% ~ 5%), HDNet₅₁₂ outperforms DiffHarmony++. However, as the foreground proportion "
    "increases, DiffHarmony++ demonstrates increasingly superior performance."
)
_Q_HH = (
    "On the Human Harmony dataset, particularly on larger foreground proportions (15% ~ 100%), "
    "DiffHarmony++ consistently outperforms HDNet₅₁₂."
)
_PIX = "pixel baseline = PixelHarmonizer, the stand-in for HDNet_512"
_HH = f"{HUMAN_HARMONY_ARM}/"
TABLE3 = (
    Claim("4a", f"iHarmony4, 15-100% bin: DiffHarmony++ has lower fMSE than the pixel baseline ({_PIX})",
          "Table 3", "table3", "fmse",
          (("DiffHarmony++/15-100%", 1.0), ("PixelHarmonizer/15-100%", -1.0)), _ANY, quote=_Q_IH4, where="§5.3.3"),
    Claim("4b", f"iHarmony4, 0-5% bin: the pixel baseline has lower fMSE than DiffHarmony++ ({_PIX})",
          "Table 3", "table3", "fmse",
          (("PixelHarmonizer/0-5%", 1.0), ("DiffHarmony++/0-5%", -1.0)), _ANY, quote=_Q_IH4, where="§5.3.3"),
    # the first claim 4: the trend alone, which holds even where DiffHarmony++ is worse in every bin
    Claim("4c", "iHarmony4: DiffHarmony++'s fMSE advantage over the pixel baseline grows with the foreground "
          "ratio (15-100% bin minus 0-5% bin)",
          "Table 3", "table3", "fmse",
          (("PixelHarmonizer/15-100%", -1.0), ("DiffHarmony++/15-100%", 1.0),
           ("PixelHarmonizer/0-5%", 1.0), ("DiffHarmony++/0-5%", -1.0)),
          _ANY, quote=_Q_IH4, where="§5.3.3"),
    Claim("4d", f"Human Harmony, 15-100% bin: DiffHarmony++ has lower fMSE than the pixel baseline ({_PIX}; "
          "both trained on iHarmony4)",
          "Table 3", "table3", "fmse",
          ((f"{_HH}DiffHarmony++/15-100%", 1.0), (f"{_HH}PixelHarmonizer/15-100%", -1.0)), _ANY,
          quote=_Q_HH, where="§5.3.3"),
)  # fmt: skip

# --------------------------------------------------------------------- Table 4 (§5.4)
_VAE_GAIN = (("low/harmony_vae", 1.0), ("low/plain", -1.0), ("high/harmony_vae", -1.0), ("high/plain", 1.0))
_Q_RES = (
    "The benefit of introducing Harmony-VAE is more prominent when DiffHarmony uses lower image "
    "resolutions, as the Harmony-VAE and using higher resolution input both aim to address the issue "
    "of image distortion, and they complement each other."
)
_Q_REFINE = (
    "Comparing to using only Harmony-VAE, using only the refinement module and the cascaded use of "
    "Harmony-VAE and refinement module only bring negligible improvement."
)
# The equivalence bound of claims 7a/7b, declared before their seeds are measured. Mini v1 (one
# seed, rule v1) had printed +0.26 and +0.46 dB for these two rows; the bound is not fitted to
# them but read off the paper's own words, which is the scale the sentence was written at.
REFINE_BOUND_DB = 0.15
REFINE_BOUND_REASON = (
    "the paper calls +0.06 and +0.09 dB 'negligible' (these rows) and +0.25 dB a further benefit "
    "(Table 5, E_c+D over E_c, §5.4); 0.15 dB lies between the two"
)
TABLE4 = (
    Claim("2", "The Harmony-VAE PSNR gain is larger at the lower inference resolution", "Table 4", "table4",
          "psnr", _VAE_GAIN, _TRAINING, quote=_Q_RES, where="§5.4"),
    Claim("7a", "The refinement module alone (plain VAE + refinement) is within ±0.15 dB of Harmony-VAE "
          "alone, PSNR at 1024", "Table 4 (grey rows)", "table4", "psnr",
          (("high/plain+refine", 1.0), ("high/harmony_vae", -1.0)), _TRAINING, kind=EQUIVALENCE,
          bound=REFINE_BOUND_DB, bound_reason=REFINE_BOUND_REASON, quote=_Q_REFINE, where="§5.4"),
    Claim("7b", "Harmony-VAE followed by the refinement module is within ±0.15 dB of Harmony-VAE alone, "
          "PSNR at 1024", "Table 4 (grey rows)", "table4", "psnr",
          (("high/harmony_vae+refine", 1.0), ("high/harmony_vae", -1.0)), _TRAINING, kind=EQUIVALENCE,
          bound=REFINE_BOUND_DB, bound_reason=REFINE_BOUND_REASON, quote=_Q_REFINE, where="§5.4"),
)  # fmt: skip

# --------------------------------------------------------------------- Table 5 (§5.4)
_Q_ZERO = "not using zero-initialized convolution severely damages the normal training of the model"
_Q_DECODER = (
    "fine-tuning only the conditional encoder already provides a considerable improvement in "
    "reconstruction performance, while unfreezing the decoder can further increase the benefits."
)
TABLE5 = (
    Claim("3a", "Zero init beats random init (finetuning E_c+D), PSNR", "Table 5", "table5", "psnr",
          (("E_c+D/zero", 1.0), ("E_c+D/random", -1.0)), _TRAINING, quote=_Q_ZERO, where="§5.4"),
    Claim("3b", "Zero init beats random init (finetuning E_c only; the paper's random run gave NaN), PSNR",
          "Table 5", "table5", "psnr", (("E_c/zero", 1.0), ("E_c/random", -1.0)), _TRAINING,
          quote=_Q_ZERO, where="§5.4"),
    Claim("3c", "Unfreezing the decoder further increases the benefit: E_c+D beats E_c alone (zero init), PSNR",
          "Table 5", "table5", "psnr", (("E_c+D/zero", 1.0), ("E_c/zero", -1.0)), _TRAINING,
          quote=_Q_DECODER, where="§5.4"),
)  # fmt: skip

# --------------------------------------------------------------------- Figure 2 (§4.2)
FIGURE2 = (
    Claim(
        "8",
        "Large foregrounds dominate Human Harmony and are rare in iHarmony4",
        "Figure 2",
        "figure2",
        "psnr",  # unused: nothing is measured
        (),
        (),
        quote=(
            "approximately 70% of the images in the Human Harmony dataset have foreground ratios above "
            "0.2, whereas in iHarmony4 this is less than 15%."
        ),
        where="§4.2, Figure 2",
        by_construction=(
            "on the built-in data both datasets are made to a target mix: the built-in iHarmony4 "
            "stand-in draws its masks to iHarmony4's test bin counts (harmonylib.data.builtin), and "
            "the iMaterialist stand-in paints figures covering about 20-60 % of each image "
            "(harmonylib.data.imaterialist_fixture); the curves show those recipes, not photographs"
        ),
        paper_note="about 70 % of Human Harmony above a ratio of 0.2; under 15 % of iHarmony4",
    ),
)

CLAIMS: tuple[Claim, ...] = (
    TABLE1[:2] + TABLE4[:1] + TABLE5 + TABLE3 + TABLE1[2:] + TABLE2 + TABLE4[1:] + FIGURE2
)

# What a training seed varies, per experiment, as harmonylib.experiments makes them (its module
# docstring, "Seeds"; harmonylib.inverse_data for Table 2). A "sampling" seed varies the sampling
# only; a "none" arm is evaluated once. claims.csv's seeds_vary column is built from these and
# from the seed kinds the measurements actually carry.
_UNET = (
    "the forward UNet is not retrained: the profile's one (train.unet.adopt: the released UNet, "
    "used as it is; else trained once at the base seed), sampled with each seed"
)
SEEDS_VARY: dict[str, str] = {
    "table1": f"Harmony-VAE retrained per seed; {_UNET}; the DiffHarmony arm (plain VAE) shares each "
    "seed's sampling",
    "table2": "each subset's base and augmented UNets retrained per seed from the same initial weights, "
    "same steps; the generated data made once",
    "table3": f"Harmony-VAE and the pixel baseline retrained per seed; {_UNET}",
    "table4": f"Harmony-VAE retrained per seed; {_UNET}; the refinement UNet trained once (base seed)",
    "table5": f"each Harmony-VAE variant retrained per seed; {_UNET}",
}
SAMPLING_VARIES = "one trained model, sampled with each seed"
NONE_VARIES = "evaluated once, no seed"
