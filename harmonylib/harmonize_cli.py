"""``harmonylib harmonize``: run a DiffHarmony(++) pipeline on one image or on folders of images.

    harmonylib harmonize --image comp.png --mask mask.png --out out.png
    harmonylib harmonize --input-dir comps/ --mask-dir masks/ --out-dir out/
    harmonylib harmonize --iharmony4-root data/iHarmony4 --split test --out-dir out/

Each image gets its own seed, ``derive_seed(seed, image name)``, so a result depends neither on
the order nor on the batch. Existing outputs are skipped (resume); every file is written
atomically. Without ``--pipeline`` the mini-profile pipeline ``results/mini/runs/pipeline`` under
the project home is used (``$HARMONYLIB_HOME``, else the clone you are in, else the current
folder), which ``harmonylib assemble --profile mini`` writes.

``--save-float npy`` also writes ``<output stem>.npy`` beside each output, and ``--save-float
png16`` writes each ``.png`` output in 16 bits: the prediction before its rounding to 8 bits, on
the 0–255 scale, for ``harmonylib evaluate --convention issam`` (which scores float outputs).

A mistake in the arguments (a missing input, an output that cannot be written, a --size that is
not a multiple of 8) ends with one line naming the path and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_DTYPES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
           "fp16": "float16", "float16": "float16"}  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One input pair and where its result goes."""

    name: str  # seeds the sample: derive_seed(seed, name)
    image: Path
    mask: Path
    out: Path


def default_pipeline_dir() -> Path:
    """``results/mini/runs/pipeline``: written by ``python -m harmonylib.assemble --profile mini``."""
    from harmonylib.paths import results_dir

    return results_dir("mini", "runs") / "pipeline"


def _find_mask(mask_dir: Path, stem: str) -> Path | None:
    """``<stem>.*`` in ``mask_dir``, else the iHarmony4 mask ``<stem minus _k>.*``."""
    for candidate in (stem, stem.rsplit("_", 1)[0] if "_" in stem else None):
        if candidate is None:
            continue
        for suffix in _IMAGE_SUFFIXES:
            for s in (suffix, suffix.upper()):
                p = mask_dir / f"{candidate}{s}"
                if p.is_file():
                    return p
    return None


def pair_folders(input_dir: Path, mask_dir: Path, out_dir: Path, ext: str = ".png") -> list[Job]:
    """Pair every image in ``input_dir`` with its mask in ``mask_dir`` by name.

    Raises:
        FileNotFoundError: a folder is missing, it holds no image, or some images have no mask
            (all unmatched names are listed).
    """
    for d, what in ((input_dir, "--input-dir"), (mask_dir, "--mask-dir")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} {d}: folder does not exist")
    images = sorted(p for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"--input-dir {input_dir}: no images ({', '.join(_IMAGE_SUFFIXES)})")
    jobs, unmatched = [], []
    for img in images:
        mask = _find_mask(mask_dir, img.stem)
        if mask is None:
            unmatched.append(img.name)
        else:
            jobs.append(Job(img.stem, img, mask, out_dir / f"{img.stem}{ext}"))
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" ... ({len(unmatched)} in all)" if len(unmatched) > 10 else "")
        raise FileNotFoundError(
            f"--mask-dir {mask_dir}: no mask for {shown} (looked for <name>.* and the iHarmony4 <name minus _k>.*)"
        )
    return jobs


def iharmony4_jobs(root: Path, split: str, out_dir: Path, ext: str = ".png") -> list[Job]:
    """The composites of an iHarmony4 split; outputs are flat, ``<composite stem><ext>`` (authors' naming)."""
    from harmonylib.data.iharmony4 import read_split

    return [Job(s.name, s.composite, s.mask, out_dir / f"{s.name}{ext}") for s in read_split(root, split)]


def load_pipeline(args: argparse.Namespace):
    """The pipeline named by ``--pipeline`` (saved folder or the authors' SD-inpainting base)."""
    import json

    import torch

    from harmonylib.pipeline import DiffHarmonyPipeline

    dtype = getattr(torch, _DTYPES[args.dtype])
    if not args.pipeline and not (args.unet or args.harmony_vae or args.vae):
        # the committed mini release: no training, no run folder, works from any folder
        from harmonylib.release import ReleaseError, released_pipeline

        try:
            pipe = released_pipeline("mini").to(dtype=dtype)
        except ReleaseError as exc:
            raise FileNotFoundError(str(exc)) from exc
        pipe.to(args.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    folder = Path(args.pipeline) if args.pipeline else default_pipeline_dir()
    if not folder.is_dir():
        if args.pipeline:
            raise FileNotFoundError(f"--pipeline {folder}: folder does not exist")
        raise FileNotFoundError(
            f"no pipeline at {folder} (the default, assembled from the mini-profile runs). Make it with "
            "`python -m harmonylib.assemble --profile mini` (it trains the missing runs, minutes on CPU, "
            "on top of the `make pretrain-mini` base weights), or pass --pipeline DIR (a folder saved "
            "by DiffHarmonyPipeline.save_pretrained, or the authors' SD-inpainting base with "
            "--unet/--harmony-vae)"
        )
    index = folder / "model_index.json"
    authors = args.unet or args.harmony_vae or args.vae
    if not authors and index.is_file():
        authors = json.loads(index.read_text()).get("_class_name") != DiffHarmonyPipeline.__name__
    if authors:
        pipe = DiffHarmonyPipeline.from_authors_layout(
            folder, unet_dir=args.unet, harmony_vae_dir=args.harmony_vae, vae_dir=args.vae,
            torch_dtype=dtype, direction=args.direction or "forward",
        )  # fmt: skip
    else:
        pipe = DiffHarmonyPipeline.from_pretrained(folder, dtype=dtype)
    pipe.to(args.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _check_outputs(args: argparse.Namespace, jobs: list[Job]) -> None:
    """Fail before loading any model if an output cannot be written (``OutputPathError``)."""
    from harmonylib.io import check_image_output, check_output_path

    if args.out:
        check_image_output(args.out, "--out")
    else:
        check_output_path(Path(args.out_dir) / "x", "--out-dir")
        if jobs:  # one name checks the extension for all: they share it
            check_image_output(jobs[0].out, "--ext")


def _jobs(args: argparse.Namespace) -> list[Job]:
    save_float = getattr(args, "save_float", None)
    if save_float == "png16" and Path(args.out or f"x.{args.ext}").suffix.lower() != ".png":
        raise ValueError("--save-float png16 writes the outputs as 16-bit PNG: they must be .png")
    if args.size is not None and (args.size <= 0 or args.size % 8):
        raise ValueError(f"--size {args.size}: must be a positive multiple of 8 (the VAE downsamples by 8)")
    ext = "." + args.ext.lstrip(".")
    modes = [bool(args.image or args.mask or args.out), bool(args.input_dir or args.mask_dir),
             bool(args.iharmony4_root)]  # fmt: skip
    if sum(modes) != 1:
        raise ValueError(
            "give exactly one input: --image/--mask/--out, --input-dir/--mask-dir/--out-dir, or --iharmony4-root"
        )
    if modes[0]:
        if not (args.image and args.mask and args.out):
            raise ValueError("--image, --mask and --out go together")
        image = Path(args.image)
        return [Job(image.stem, image, Path(args.mask), Path(args.out))]
    if not args.out_dir:
        raise ValueError("--out-dir is required with --input-dir or --iharmony4-root")
    if modes[1]:
        if not (args.input_dir and args.mask_dir):
            raise ValueError("--input-dir and --mask-dir go together")
        return pair_folders(Path(args.input_dir), Path(args.mask_dir), Path(args.out_dir), ext)
    return iharmony4_jobs(Path(args.iharmony4_root), args.split, Path(args.out_dir), ext)


def run(args: argparse.Namespace) -> int:
    """Harmonize every job; return 0, 1 if some inputs could not be read, 2 on a usage error."""
    from harmonylib.io import OutputPathError

    try:
        jobs = _jobs(args)
        _check_outputs(args, jobs)
    except (ValueError, FileNotFoundError, OutputPathError) as exc:
        print(f"harmonize: {exc}", file=sys.stderr)
        return 2
    todo = [j for j in jobs if args.overwrite or not j.out.exists()]
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"harmonize: all {len(jobs)} outputs exist; nothing to do (--overwrite to redo)")
        return 0
    try:
        with _diffusers_progress(enabled=not args.quiet):
            pipe = load_pipeline(args)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as exc:
        print(f"harmonize: {exc}", file=sys.stderr)
        return 2

    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    from harmonylib.float_predictions import save_float_prediction
    from harmonylib.inference import InferenceSettings, harmonize_batch
    from harmonylib.io import ImageReadError, atomic_save_image, load_mask_l, load_rgb
    from harmonylib.pipeline import to_uint8

    settings = InferenceSettings(
        size=args.size, size_mode=args.size_mode, steps=args.steps, output_resolution=None,
        keep_background=not args.no_keep_background, seed=args.seed, direction=args.direction,
    )  # fmt: skip
    failed: list[str] = []
    done = 0
    bar = tqdm(total=len(todo), desc="harmonize", unit="img", disable=args.quiet)
    for start in range(0, len(todo), args.batch_size):
        batch, images, masks = [], [], []
        for job in todo[start : start + args.batch_size]:
            try:
                with _our_warnings(bar, []):  # a transparent composite: the message names the file
                    images.append(load_rgb(job.image))
                masks.append(load_mask_l(job.mask))
                batch.append(job)
            except ImageReadError as exc:
                failed.append(str(exc))
                if len(images) > len(masks):
                    images.pop()
                bar.update()
        if not batch:
            continue
        try:
            with _our_warnings(bar, batch):
                outputs = harmonize_batch(
                    pipe, images, masks, [j.name for j in batch], settings,
                    refine=None,  # the pipeline's own: refine when it holds a refinement UNet
                    resize_to_input=None if args.size_mode == "keep_aspect" else args.resize_to_input,
                    output_type="np" if getattr(args, "save_float", None) else "pil",
                )  # fmt: skip
        except ValueError as exc:  # e.g. image and mask of different sizes: name the files
            names = ", ".join(f"{j.image} + {j.mask}" for j in batch)
            failed.append(f"{names}: {exc}")
            bar.update(len(batch))
            continue
        for job, img in zip(batch, outputs, strict=True):
            try:
                save_float = getattr(args, "save_float", None)
                if save_float == "png16":
                    save_float_prediction(job.out, np.asarray(img) * 255.0)  # (H, W, 3) float in [0, 1]
                elif save_float == "npy":
                    save_float_prediction(job.out.with_suffix(".npy"), np.asarray(img) * 255.0)
                    atomic_save_image(job.out, Image.fromarray(to_uint8(img)))  # as output_type="pil"
                else:
                    atomic_save_image(job.out, img)
            except OutputPathError as exc:  # e.g. the disk filled up: stop, naming the file
                bar.close()
                print(f"harmonize: {exc}", file=sys.stderr)
                return 2
            done += 1
        bar.update(len(batch))
    bar.close()
    if not args.quiet or failed:
        print(f"harmonize: wrote {done}, skipped {skipped} existing, failed {len(failed)}")
    for msg in failed:
        print(f"  failed: {msg}", file=sys.stderr)
    return 1 if failed else 0


@contextlib.contextmanager
def _diffusers_progress(enabled: bool):
    """diffusers' own "Loading pipeline components" bar, off while ``enabled`` is False."""
    from diffusers.utils import logging as dlogging

    was = dlogging.is_progress_bar_enabled()
    (dlogging.enable_progress_bar if enabled else dlogging.disable_progress_bar)()
    try:
        yield
    finally:
        (dlogging.enable_progress_bar if was else dlogging.disable_progress_bar)()


@contextlib.contextmanager
def _our_warnings(bar, batch: list[Job]):
    """Print the warnings about the user's inputs (``UserWarning``s), one line each, with the file.

    The pipeline names an input by its index (``mask_image[1]``); it is replaced by the file.
    Other categories (a library's ``DeprecationWarning``) keep Python's default filters, which
    hide them: they are not the user's business.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            caught = list(caught)
    # back under the caller's warning machinery: what is not ours goes where it would have gone
    ours = [w for w in caught if issubclass(w.category, UserWarning)]
    for w in caught:
        if not issubclass(w.category, UserWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for w in ours:
        msg = str(w.message)
        m = re.search(r"(image|mask_image)\[(\d+)\]", msg)
        if m and int(m.group(2)) < len(batch):
            job = batch[int(m.group(2))]
            msg = f"{job.mask if m.group(1) == 'mask_image' else job.image}: {msg}"
        bar.write(f"harmonize: warning: {msg}", file=sys.stderr)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonize`` on the ``harmonylib`` command line."""
    p = subparsers.add_parser(
        "harmonize",
        help="harmonize composites with a DiffHarmony(++) pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pipeline", metavar="DIR", help="saved pipeline folder (default: the committed mini release, "
                   "harmonylib/weights/mini: base VAE + Harmony-VAE seed 0 + forward UNet), "
                   "or the authors' SD-inpainting base folder together with --unet/--harmony-vae/--vae")  # fmt: skip
    p.add_argument("--unet", metavar="DIR", help="authors' layout: fine-tuned UNet folder")
    p.add_argument("--harmony-vae", metavar="DIR", help="authors' layout: Harmony-VAE (condition_vae) folder")
    p.add_argument("--vae", metavar="DIR", help="authors' layout: plain VAE folder (e.g. sd-vae-ft-mse)")
    one = p.add_argument_group("one image")
    one.add_argument("--image", metavar="PATH", help="composite (real image for --direction inverse)")
    one.add_argument("--mask", metavar="PATH", help="foreground mask (white = foreground)")
    one.add_argument("--out", metavar="PATH", help="output image")
    many = p.add_argument_group("folders")
    many.add_argument("--input-dir", metavar="DIR", help="images; each paired with a mask by name")
    many.add_argument(
        "--mask-dir", metavar="DIR", help="masks named <image stem>.* or <stem minus _k>.* (iHarmony4)"
    )
    many.add_argument(
        "--iharmony4-root", metavar="DIR", help="an iHarmony4 root; harmonize the composites of --split"
    )
    many.add_argument(
        "--split", default="test", choices=("train", "test"), help="iHarmony4 split (default: test)"
    )
    many.add_argument("--out-dir", metavar="DIR", help="outputs, <image stem>.<ext>")
    many.add_argument("--ext", default="png", help="output format for folder inputs (default: png)")
    opt = p.add_argument_group("sampling")
    opt.add_argument("--steps", type=int, default=5, help="Euler-ancestral steps (paper: 5)")
    opt.add_argument("--seed", type=int, default=0, help="base seed; image seed = derive_seed(seed, name)")
    opt.add_argument("--size-mode", default="keep_aspect", choices=("keep_aspect", "square"),
                     help="keep_aspect: shorter side -> --size, output at input size; square: squash to "
                          "--size x --size as the authors (parity)")  # fmt: skip
    opt.add_argument(
        "--size",
        type=int,
        default=None,
        help="processing size in pixels, a multiple of 8 (the VAE downsamples by up to 8); default: the "
        "size the pipeline records, its profile's R_inf '1024' rung (1024 px paper, 128 px mini), else "
        "the UNet's training size",
    )
    opt.add_argument(
        "--resize-to-input", action="store_true", help="square mode: resize the result back to the input size"
    )
    opt.add_argument(
        "--no-keep-background", action="store_true", help="do not paste the input background back"
    )
    opt.add_argument(
        "--direction", choices=("forward", "inverse"), default=None, help="default: the pipeline's"
    )
    opt.add_argument(
        "--batch-size", type=int, default=1, help="images per pipeline call (results do not change)"
    )
    opt.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    opt.add_argument("--dtype", default="fp32", choices=sorted(_DTYPES), help="weights dtype (default: fp32)")
    opt.add_argument(
        "--save-float",
        choices=("npy", "png16"),
        default=None,
        help="keep the float output for --convention issam: npy writes <stem>.npy beside each output, "
        "png16 writes the .png outputs in 16 bits",
    )
    opt.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    opt.add_argument("--quiet", action="store_true", help="no progress bars, no summary; errors and "
                     "warnings about the inputs still go to stderr")  # fmt: skip
    p.set_defaults(func=run)
