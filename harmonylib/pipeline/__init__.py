"""DiffHarmony / DiffHarmony++ inference as a diffusers pipeline (paper §3.1, §3.2).

The package, by concern:

- :mod:`harmonylib.pipeline.diffharmony`: :class:`DiffHarmonyPipeline`, its components and the
  numbered steps of a call (encode, denoise, decode, refine);
- :mod:`harmonylib.pipeline.processing`: the image pre- and post-processing around the models
  (argument checks, inputs to arrays, processing sizes, resizes, background paste, output types);
- :mod:`harmonylib.pipeline.loading`: ``from_pretrained``, ``from_authors_layout`` and
  :func:`load_vae`.

Every public name is importable from ``harmonylib.pipeline``.

Examples::

    >>> from harmonylib.pipeline import DiffHarmonyPipeline
    >>> from harmonylib.reproducibility import make_generator
    >>> pipe = DiffHarmonyPipeline.from_pretrained("results/mini/runs/pipeline")
    >>> out = pipe("comp.jpg", "mask.png", generator=make_generator(0)).images[0]
    >>> out.save("harmonized.png")
    >>> # authors' parity: 512x512 squash, raw decoder output, resized to 256 by the evaluator
    >>> raw = pipe("comp.jpg", "mask.png", size_mode="square", size=512, keep_background=False,
    ...            resize_to_input=False, generator=make_generator(0)).images[0]
"""

from harmonylib.pipeline.diffharmony import DiffHarmonyPipeline, DiffHarmonyPipelineOutput, vae_scale
from harmonylib.pipeline.loading import PipelineLoading, load_vae
from harmonylib.pipeline.processing import (
    DIRECTIONS,
    OUTPUT_TYPES,
    SIZE_MODES,
    SIZE_MULTIPLE,
    EmptyMaskWarning,
    FullMaskWarning,
    PreparedSample,
    check_arguments,
    finish_sample,
    format_results,
    prepare_samples,
    processing_size,
    to_uint8,
)

__all__ = [
    "DIRECTIONS",
    "OUTPUT_TYPES",
    "SIZE_MODES",
    "SIZE_MULTIPLE",
    "DiffHarmonyPipeline",
    "DiffHarmonyPipelineOutput",
    "EmptyMaskWarning",
    "FullMaskWarning",
    "PipelineLoading",
    "PreparedSample",
    "check_arguments",
    "finish_sample",
    "format_results",
    "load_vae",
    "prepare_samples",
    "processing_size",
    "to_uint8",
    "vae_scale",
]
