"""Candidate fidelity: how far a composite's foreground lies from its real image, and in what way.

Table 2's diagnostics compare the inverse model's candidates with iHarmony4's own composites:
:func:`foreground_difference` splits the difference into a colour shift (what harmonization is
about) and what no global colour transform explains (blur, artefacts of a weak autoencoder).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from harmonylib.data.iharmony4 import Sample
from harmonylib.io import load_rgb

if TYPE_CHECKING:
    import pandas as pd

FIDELITY_COLUMNS = ("fmse", "colour_shift", "residual_fmse")


def foreground_difference(composite: Any, real: Any, mask: Any) -> dict[str, float]:
    """How a composite's foreground differs from the real image's, split into colour and the rest.

    A good harmonization composite (iHarmony4's, or a useful inverse-model candidate) changes the
    foreground's colour and light but keeps its content sharp; a candidate decoded through a weak
    autoencoder also carries blur and artefacts, which no harmonizer should learn to add or remove.

    Args:
        composite, real: RGB images of one size (paths, PIL images or (H, W, 3) uint8 arrays).
        mask: the foreground mask, same size (thresholded as in training: ``threshold_mask``).

    Returns:
        ``fmse``: mean squared difference over foreground pixels and channels, 0-255 scale;
        ``colour_shift``: mean over channels of |mean_fg(composite) - mean_fg(real)|;
        ``residual_fmse``: the fMSE left after the least-squares per-channel affine map
        composite -> real inside the mask, i.e. what no global colour transform explains.
        NaN for an empty mask.

    Raises:
        ValueError: the three have different sizes.
    """
    from harmonylib.imageproc import threshold_mask
    from harmonylib.io import load_mask_l

    a = np.asarray(load_rgb(composite) if not isinstance(composite, np.ndarray) else composite, np.float64)
    b = np.asarray(load_rgb(real) if not isinstance(real, np.ndarray) else real, np.float64)
    m = threshold_mask(np.asarray(load_mask_l(mask) if not isinstance(mask, np.ndarray) else mask)) > 0
    if a.shape != b.shape or a.shape[:2] != m.shape[:2]:
        raise ValueError(f"sizes differ: composite {a.shape[:2]}, real {b.shape[:2]}, mask {m.shape[:2]}")
    if not m.any():
        return dict.fromkeys(FIDELITY_COLUMNS, float("nan"))
    x, y = a[m], b[m]  # (N, 3) foreground pixels
    residual = []
    for c in range(3):
        design = np.stack([x[:, c], np.ones(len(x))], axis=1)  # (N, 2): gain and offset
        coef, *_ = np.linalg.lstsq(design, y[:, c], rcond=None)
        residual.append(float(np.mean((design @ coef - y[:, c]) ** 2)))
    return {
        "fmse": float(np.mean((x - y) ** 2)),
        "colour_shift": float(np.mean(np.abs(x.mean(0) - y.mean(0)))),
        "residual_fmse": float(np.mean(residual)),
    }


def candidate_fidelity(samples: Iterable[Sample], progress: bool = False) -> pd.DataFrame:
    """:func:`foreground_difference` for every sample (composite vs its real): one row each.

    Columns: ``name``, ``subset``, ``root_name`` and :data:`FIDELITY_COLUMNS`.
    """
    import pandas as pd

    rows = []
    for s in tqdm(list(samples), desc="fidelity", unit="img", disable=not progress):
        try:
            diff = foreground_difference(s.composite, s.real, s.mask)
        except ValueError as exc:
            raise ValueError(f"{s.composite}: {exc}") from None
        rows.append({"name": s.name, "subset": s.subset, "root_name": s.root_name, **diff})
    return pd.DataFrame(rows, columns=["name", "subset", "root_name", *FIDELITY_COLUMNS])
