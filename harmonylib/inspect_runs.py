"""Looking at trained runs: what notebooks 01-03 show after ``ensure_trained``.

- :func:`harmony_vae_reconstructions` / :func:`plot_reconstructions` / :func:`psnr_summary`:
  target | plain VAE decode of E(target) | Harmony-VAE decode with the condition, per-image PSNR
  on held-out images (notebook 01).
- :func:`generate_examples` / :func:`plot_generated`: a pipeline's outputs for a few test images,
  several seeds each (notebook 02; inverse: candidate composites from real + mask).
- :func:`classifier_examples` / :func:`plot_classifier_examples`: P(composite) of test composites
  and their reals (notebook 03).

Every figure is written as PNG atomically when ``out`` is given and returned for display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; notebooks display the returned figure themselves

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from harmonylib import metrics  # noqa: E402
from harmonylib.config import Config  # noqa: E402
from harmonylib.io import atomic_path  # noqa: E402
from harmonylib.reproducibility import derive_seed, make_generator, numpy_rng  # noqa: E402


def run_dir_param(
    cfg: Config, recipe: str, run_dir: str = "", out_dir: str | os.PathLike = ""
) -> Path | None:
    """A notebook's run folder: ``run_dir`` if given, else ``<out_dir>/runs/<run name>``, else None
    (``ensure_trained``'s default, ``results/<profile>/runs/<run name>``)."""
    from harmonylib.assemble import run_dir_for
    from harmonylib.paths import resolve

    if run_dir:
        return resolve(run_dir)
    return run_dir_for(cfg, recipe, out_dir) if out_dir else None


def pick_indices(n_total: int, n: int, seed: int, what: str) -> list[int]:
    """``n`` sorted indices out of ``n_total`` drawn from ``numpy_rng(seed, what)`` (all when n >= n_total)."""
    if n <= 0 or n >= n_total:
        return list(range(n_total))
    return sorted(int(i) for i in numpy_rng(seed, what).choice(n_total, size=n, replace=False))


def pick_samples(samples: Sequence, n: int, seed: int, what: str = "examples") -> list:
    """``n`` samples with distinct real images (iHarmony4 shares a real among ``x_1_1 ... x_1_5``)."""
    first: dict[str, object] = {}
    for s in samples:
        first.setdefault(str(s.real), s)
    unique = list(first.values())
    return [unique[i] for i in pick_indices(len(unique), n, seed, what)]


def _save_png(fig: plt.Figure, out: str | os.PathLike) -> Path:
    dest = Path(out).with_suffix(".png")
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return dest


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] → (B, H, W, 3) uint8, rounded."""
    x = ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _show(ax: plt.Axes, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


# ---- 01: Harmony-VAE reconstructions -------------------------------------------------------------


@dataclass
class Reconstructions:
    """Held-out reconstructions of the Harmony-VAE target, all (N, H, W, 3) uint8 (mask (N, H, W))."""

    direction: str
    names: list[str]
    condition: np.ndarray  # composite (forward) or real (inverse): E_c's image input
    mask: np.ndarray
    target: np.ndarray  # real (forward) or composite (inverse)
    plain: np.ndarray  # base VAE: D(E(target))
    harmony: np.ndarray  # Harmony-VAE: D(E(target), E_c(condition, mask))

    def table(self) -> pd.DataFrame:
        """Per image: ``name``, ``psnr_plain``, ``psnr_harmony`` (dB against the target, 0-255 scale)."""
        return pd.DataFrame(
            {
                "name": self.names,
                "psnr_plain": [metrics.psnr(p, t) for p, t in zip(self.plain, self.target, strict=True)],
                "psnr_harmony": [metrics.psnr(h, t) for h, t in zip(self.harmony, self.target, strict=True)],
            }
        )


@torch.no_grad()
def harmony_vae_reconstructions(
    cfg: Config, run, split: str = "test", n: int = 0, seed: int = 0, batch_size: int = 16
) -> Reconstructions:
    """Reconstruct held-out targets with the base VAE and with the trained Harmony-VAE.

    Both decode the same latent, the posterior mean of the frozen encoder E(target); the
    Harmony-VAE also gets E_c's features of (condition image, mask), taken at its posterior mean
    too, so the comparison has no randomness (training and the pipeline sample both posteriors).

    Args:
        cfg: the config the run was trained with (``train.harmony_vae.direction`` decides target
            and condition, as in training; images at its ``resolution`` and ``resize``).
        run: the ``harmony_vae`` :class:`~harmonylib.training.runs.TrainedRun`.
        split: the split scored (held out: ``"test"``).
        n: images scored, drawn with ``seed``; 0 = the whole split.

    Returns:
        :class:`Reconstructions`; ``.table()`` gives per-image PSNR.
    """
    from torch.utils.data import DataLoader, Subset

    from harmonylib.assemble import base_vae
    from harmonylib.training.objectives import target_and_condition
    from harmonylib.training.recipes import harmony_dataset

    rc = cfg.train.harmony_vae
    hvae = run.load_model(ema=True).eval()
    plain_vae = base_vae(cfg, "harmony_vae").eval()
    dataset = harmony_dataset(cfg, rc.resolution, rc.resize, split=split)
    dataset = Subset(dataset, pick_indices(len(dataset), n, seed, "harmony_vae_reconstructions"))
    parts: dict[str, list] = {k: [] for k in ("names", "condition", "mask", "target", "plain", "harmony")}
    for batch in DataLoader(dataset, batch_size=batch_size):
        target, cond_img = target_and_condition(batch, rc.direction)  # (B, 3, H, W) each
        z = hvae.encode(target).latent_dist.mean  # (B, 4, H/8, W/8), the frozen encoder E
        plain = plain_vae.decode(z).sample  # (B, 3, H, W)
        cond = torch.cat([cond_img, batch["mask"]], dim=1)  # (B, 4, H, W)
        harmony = hvae.decode_with_cond(z, cond, sample_posterior=False).sample  # (B, 3, H, W)
        parts["names"] += list(batch["name"])
        parts["condition"].append(_to_uint8(cond_img))
        parts["mask"].append((batch["mask"][:, 0].numpy() * 255).astype(np.uint8))  # (B, H, W)
        parts["target"].append(_to_uint8(target))
        parts["plain"].append(_to_uint8(plain))
        parts["harmony"].append(_to_uint8(harmony))
    arrays = {k: np.concatenate(v) for k, v in parts.items() if k != "names"}
    return Reconstructions(direction=rc.direction, names=parts["names"], **arrays)


def psnr_summary(rec: Reconstructions) -> pd.DataFrame:
    """Mean and median PSNR of each decoder, and how often the Harmony-VAE is the better one."""
    t = rec.table()
    better = float((t["psnr_harmony"] > t["psnr_plain"]).mean()) if len(t) else float("nan")
    rows = [
        ("plain VAE decode", t["psnr_plain"].mean(), t["psnr_plain"].median(), float("nan")),
        ("Harmony-VAE", t["psnr_harmony"].mean(), t["psnr_harmony"].median(), better),
    ]
    out = pd.DataFrame(rows, columns=["decoder", "psnr_mean", "psnr_median", "share_better"])
    out["n_images"] = len(t)
    return out.set_index("decoder")


def plot_reconstructions(
    rec: Reconstructions, indices: Sequence[int] | None = None, out: str | os.PathLike | None = None
) -> plt.Figure:
    """condition | mask | target | plain decode (PSNR) | Harmony-VAE (PSNR), one row per image."""
    indices = list(range(min(6, len(rec.names)))) if indices is None else list(indices)
    table = rec.table()
    cond_name, target_name = ("composite", "real") if rec.direction == "forward" else ("real", "composite")
    fig, axes = plt.subplots(len(indices), 5, figsize=(8.5, 1.8 * len(indices)), squeeze=False)
    for row, i in zip(axes, indices, strict=True):
        _show(row[0], rec.condition[i], f"{cond_name} (condition): {rec.names[i]}")
        _show(row[1], rec.mask[i], "mask")
        _show(row[2], rec.target[i], f"{target_name} (target)")
        _show(row[3], rec.plain[i], f"plain VAE decode, {table.psnr_plain[i]:.2f} dB")
        _show(row[4], rec.harmony[i], f"Harmony-VAE, {table.psnr_harmony[i]:.2f} dB")
    fig.tight_layout()
    if out is not None:
        _save_png(fig, out)
    return fig


# ---- 02: pipeline samples ------------------------------------------------------------------------


@dataclass
class Generated:
    """A pipeline's outputs for a few samples: ``outputs[i][k]`` is sample i with seed k."""

    direction: str
    names: list[str]
    inputs: list[np.ndarray]  # (H, W, 3) uint8: composite (forward) or real (inverse)
    masks: list[np.ndarray]  # (H, W) uint8
    references: list[np.ndarray]  # the dataset's counterpart: real (forward) or composite (inverse)
    outputs: list[list[np.ndarray]]  # (H, W, 3) uint8

    def table(self) -> pd.DataFrame:
        """Per output: ``name``, ``candidate``, PSNR against the input and against the reference."""
        rows = []
        for i, name in enumerate(self.names):
            for k, o in enumerate(self.outputs[i]):
                rows.append((name, k, metrics.psnr(o, self.inputs[i]), metrics.psnr(o, self.references[i])))
        return pd.DataFrame(rows, columns=["name", "candidate", "psnr_to_input", "psnr_to_reference"])


def generate_examples(
    pipe, samples: Sequence, n_candidates: int = 3, seed: int = 0, num_inference_steps: int = 5
) -> Generated:
    """Run ``pipe`` on samples, ``n_candidates`` seeds each (``derive_seed(seed, name, k)``).

    Forward pipelines take the composite, inverse ones the real image (paper §4.1: one real and
    mask give many candidate composites). Outputs are at the input's size, background kept.
    """
    from harmonylib.io import load_mask_l, load_rgb

    direction = pipe.config.direction
    gen = Generated(direction, [], [], [], [], [])
    for s in samples:
        inp, ref = (s.composite, s.real) if direction == "forward" else (s.real, s.composite)
        image, mask = load_rgb(inp), load_mask_l(s.mask)
        gens = [make_generator(derive_seed(seed, s.name, k)) for k in range(n_candidates)]
        out = pipe([image] * n_candidates, [mask] * n_candidates, generator=gens,
                   num_inference_steps=num_inference_steps).images  # fmt: skip
        gen.names.append(s.name)
        gen.inputs.append(np.asarray(image))
        gen.masks.append(np.asarray(mask))
        gen.references.append(np.asarray(load_rgb(ref)))
        gen.outputs.append([np.asarray(o) for o in out])
    return gen


def plot_generated(gen: Generated, out: str | os.PathLike | None = None) -> plt.Figure:
    """input | mask | output per seed | reference, one row per sample."""
    k = max((len(o) for o in gen.outputs), default=0)
    inp_name, ref_name = ("composite", "real") if gen.direction == "forward" else ("real", "composite")
    out_name = "harmonized" if gen.direction == "forward" else "generated composite"
    fig, axes = plt.subplots(
        len(gen.names), k + 3, figsize=(1.8 * (k + 3), 1.8 * len(gen.names)), squeeze=False
    )
    for i, row in enumerate(axes):
        _show(row[0], gen.inputs[i], f"{inp_name}: {gen.names[i]}")
        _show(row[1], gen.masks[i], "mask")
        for j in range(k):
            _show(row[2 + j], gen.outputs[i][j], f"{out_name}, seed {j}")
        _show(row[k + 2], gen.references[i], f"{ref_name} (dataset)")
    fig.tight_layout()
    if out is not None:
        _save_png(fig, out)
    return fig


# ---- 03: classifier examples ---------------------------------------------------------------------


@dataclass
class ClassifierExamples:
    """P(composite) for a few test composites and their reals; images (N, H, W, 3) uint8."""

    names: list[str]
    composites: np.ndarray
    reals: np.ndarray
    p_composite: np.ndarray  # (N,) for each composite
    p_real: np.ndarray  # (N,) for each real (P(composite) of the real image)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"name": self.names, "p_composite_of_composite": self.p_composite,
                             "p_composite_of_real": self.p_real})  # fmt: skip


@torch.no_grad()
def classifier_examples(
    cfg: Config, run, n: int = 6, seed: int = 0, split: str = "test"
) -> ClassifierExamples:
    """P(composite) (``HarmonyClassifier.predict_proba``) of ``n`` test composites and their reals."""
    from harmonylib.training.recipes import harmony_dataset

    rc = cfg.train.classifier
    clf = run.load_model().eval()
    dataset = harmony_dataset(cfg, rc.resolution, rc.resize, split=split)
    items = [dataset[i] for i in pick_indices(len(dataset), n, seed, "classifier_examples")]
    comp = torch.stack([it["composite"] for it in items])  # (N, 3, H, W) in [-1, 1]
    real = torch.stack([it["real"] for it in items])  # (N, 3, H, W)
    mask = torch.stack([it["mask"] for it in items])  # (N, 1, H, W); a real gets its composite's

    def args(x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # a mask-pooled probe needs the mask
        return (x, mask) if getattr(clf, "requires_mask", False) else (x,)

    return ClassifierExamples(
        names=[it["name"] for it in items],
        composites=_to_uint8(comp),
        reals=_to_uint8(real),
        p_composite=clf.predict_proba(*args(comp)).numpy(),
        p_real=clf.predict_proba(*args(real)).numpy(),
    )


def plot_classifier_examples(ex: ClassifierExamples, out: str | os.PathLike | None = None) -> plt.Figure:
    """composite (P) | real (P), one row per sample; P = the classifier's P(composite)."""
    fig, axes = plt.subplots(len(ex.names), 2, figsize=(4, 1.9 * len(ex.names)), squeeze=False)
    for i, row in enumerate(axes):
        _show(row[0], ex.composites[i], f"composite {ex.names[i]}: P={ex.p_composite[i]:.2f}")
        _show(row[1], ex.reals[i], f"real: P={ex.p_real[i]:.2f}")
    fig.tight_layout()
    if out is not None:
        _save_png(fig, out)
    return fig
