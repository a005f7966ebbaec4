"""Classical, non-learned baselines that write a predictions folder the evaluator can score.

:func:`colour_transfer_predictions` is colour-statistics transfer (Reinhard et al., "Color
transfer between images", IEEE CG&A 2001) applied foreground <- background: the composite's
foreground gets the Lab mean and standard deviation of its own background
(:func:`harmonylib.data.recolor.reinhard_transfer`). It needs no training and no real image.

Read its numbers with :data:`COLOUR_TRANSFER_CAPTION`. It is not a fair baseline on the built-in
data (profiles ``smoke`` and ``mini``): it is the very statistics transfer the built-in generator
uses to make many of its composites (:mod:`harmonylib.data.builtin`, foreground <- another
photo), so it is matched to how that data was made. It does not, however, invert that
recolouring: setting the foreground's statistics to the *background's* does not restore the
real foreground's, which differ from its background's. Measured with the generator
of commit bb6da23 (tests/test_baselines.py pins the direction on smoke): fMSE 2000 vs 838 for
the composites on the smoke test split, 2352 vs 620 on the mini test split (400 images), i.e.
clearly worse than doing nothing.

Predictions are written as ``<out_dir>/<composite stem>.png`` (lossless), one file at a time and
atomically, so a killed run leaves only complete files and a rerun skips what exists.

Example::

    from harmonylib.baselines import colour_transfer_predictions
    from harmonylib.data.iharmony4 import read_split
    from harmonylib.evaluation import aggregate, evaluate_predictions

    samples = read_split("data/mini", "test")
    colour_transfer_predictions(samples, "results/mini/predictions/colour_transfer")
    print(aggregate(evaluate_predictions(samples, "results/mini/predictions/colour_transfer")))
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from harmonylib.data.recolor import reinhard_transfer
from harmonylib.imageproc import threshold_mask
from harmonylib.io import atomic_save_image, load_mask_l, load_rgb

COLOUR_TRANSFER_NAME = "colour_transfer"
COLOUR_TRANSFER_CAPTION = (
    "Colour-statistics transfer (Reinhard et al. 2001), foreground <- own background: the "
    "composite's foreground Lab mean and std are set to those of its background; the background "
    "is untouched. Not a fair baseline on the built-in smoke/mini data: it is the same Lab "
    "statistics transfer the built-in generator uses to recolour many of its composites "
    "(foreground <- another photo), yet it does not invert that recolouring, because a real "
    "foreground's colours are not its background's; on the built-in test splits its fMSE is "
    "worse than the unharmonized composites'."
)


@dataclass
class PredictionReport:
    """What a predictions writer did: files ``written`` now, files ``skipped`` (already there)."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return sorted(self.written + self.skipped)


def colour_transfer(composite: Image.Image, mask: Image.Image) -> Image.Image:
    """One composite harmonized by foreground <- background Lab statistics transfer.

    Args:
        composite: RGB composite.
        mask: single-channel mask of the same size; binarised by
            :func:`harmonylib.imageproc.threshold_mask` (the training/inference threshold).

    Returns:
        An RGB image of the composite's size whose background pixels equal the composite's bit
        for bit. An empty or full mask returns the composite unchanged (nothing to match).
    """
    if composite.size != mask.size:
        raise ValueError(f"composite {composite.size} and mask {mask.size} differ in size")
    comp_u8 = np.asarray(composite.convert("RGB"))  # (H, W, 3) uint8
    fg = threshold_mask(mask) > 0.5  # (H, W) bool
    if not fg.any() or fg.all():
        return Image.fromarray(comp_u8.copy(), "RGB")
    comp = comp_u8.astype(np.float64) / 255.0
    out = reinhard_transfer(comp, fg, comp, ref_mask=~fg)  # (H, W, 3) in [0, 1]
    out_u8 = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    # Paste the composite's own bytes outside the mask, so the background is exact by construction.
    out_u8 = np.where(fg[..., None], out_u8, comp_u8)
    return Image.fromarray(out_u8, "RGB")


def colour_transfer_predictions(
    samples: Sequence, out_dir: str | os.PathLike, overwrite: bool = False, progress: bool = False
) -> PredictionReport:
    """Write the colour-transfer prediction of every sample as ``<out_dir>/<stem>.png``.

    Resumable: an existing ``<stem>.png`` is kept unless ``overwrite``; every file is written
    atomically, so an existing file is always complete.

    Args:
        samples: objects with ``name``, ``composite`` and ``mask`` paths
            (``harmonylib.data.iharmony4.Sample``).
        out_dir: the predictions folder (created if needed).
        overwrite: recompute files that already exist.
        progress: show a progress bar (tqdm, on stderr).

    Returns:
        A :class:`PredictionReport` of the files written and skipped.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("duplicate composite names would share a prediction file")
    report = PredictionReport(out_dir)
    it = samples
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(samples, desc=COLOUR_TRANSFER_NAME, unit="img")
    for s in it:
        dest = out_dir / f"{s.name}.png"
        if dest.is_file() and not overwrite:
            report.skipped.append(dest)
            continue
        pred = colour_transfer(load_rgb(s.composite), load_mask_l(s.mask))
        atomic_save_image(dest, pred)
        report.written.append(dest)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harmonylib.baselines --data-root R --out DIR``: write colour-transfer predictions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True, help="iHarmony4-layout root (holds the split lists)")
    p.add_argument("--split", default="test", help="split list (default: test)")
    p.add_argument("--out", required=True, help="predictions folder to write (<stem>.png)")
    p.add_argument("--overwrite", action="store_true", help="recompute existing predictions")
    args = p.parse_args(argv)
    from harmonylib.data.iharmony4 import read_split

    samples = read_split(args.data_root, args.split)
    rep = colour_transfer_predictions(samples, args.out, overwrite=args.overwrite, progress=True)
    print(f"{len(rep.written)} written, {len(rep.skipped)} kept, in {rep.out_dir}", file=sys.stderr)
    print(COLOUR_TRANSFER_CAPTION, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
