"""A side table: the same predictions scored under every metric convention.

Table 1 compares methods under the authors' protocol. Peers' papers use other conventions
(``harmonylib.conventions``), and the convention alone moves the numbers (soft- vs binary-mask
fMSE alone by about 10 points, peers.md §5). :func:`convention_side_table` scores the Composite
row and any methods under each convention, so a reader sees how much. Notebook 04 can call it
next to Table 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from harmonylib.config import EvalConfig
from harmonylib.conventions import CONVENTIONS, get_convention
from harmonylib.evaluation import ALL, GroundTruthCache, aggregate, evaluate_predictions

COMPOSITE = "Composite"


def convention_side_table(
    samples: Sequence,
    methods: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike | None]],
    conventions: Sequence[str] = tuple(CONVENTIONS),
    cfg: EvalConfig | None = None,
    cache: GroundTruthCache | None = None,
    include_composite: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Overall MSE / PSNR / fMSE of each method under each convention.

    Args:
        samples: the test set (``name``, ``subset``, ``composite``, ``mask``, ``real``).
        methods: row name → predictions folder (or per-sample paths), e.g.
            ``{"DiffHarmony++": "results/mini/predictions/ours"}``.
        conventions: names from ``harmonylib.conventions.CONVENTIONS``, in column order.
        cfg: background, ``allow_missing``; its ``convention`` is replaced per column.
        cache: a ground-truth cache shared with Table 1 (used by ``diffharmony``).
        include_composite: add the Composite row first (the composites scored as predictions).
        progress: progress bars.

    Returns:
        One row per (method, convention), methods in order (Composite first), with columns
        ``method``, ``convention``, ``n``, ``mse``, ``psnr``, ``fmse``, ``n_fmse_nan``,
        ``definition``: the "All" aggregate (mean over images) of :func:`evaluation.aggregate`.
    """
    cfg = cfg or EvalConfig()
    rows_in: dict[str, object] = {}
    if include_composite:
        rows_in[COMPOSITE] = [s.composite for s in samples]
    rows_in.update(methods)
    cache = cache if cache is not None else GroundTruthCache()
    out = []
    for method, preds in rows_in.items():
        for name in conventions:
            conv = get_convention(name)
            df = evaluate_predictions(
                samples, preds, replace(cfg, convention=name), cache=cache, progress=progress
            )
            total = aggregate(df).set_index("subset").loc[ALL]
            out.append(
                {
                    "method": method,
                    "convention": name,
                    "n": int(total["n"]),
                    "mse": total["mse"],
                    "psnr": total["psnr"],
                    "fmse": total["fmse"],
                    "n_fmse_nan": int(total["n_fmse_nan"]),
                    "definition": conv.definition(),
                }
            )
    return pd.DataFrame(out)


def pivot_side_table(table: pd.DataFrame, metrics: Sequence[str] = ("mse", "psnr", "fmse")) -> pd.DataFrame:
    """The side table as methods × (metric, convention), for display next to Table 1."""
    wide = table.pivot(index="method", columns="convention", values=list(metrics))
    order = list(dict.fromkeys(table["method"]))
    conv_order = list(dict.fromkeys(table["convention"]))
    return wide.reindex(index=order, columns=pd.MultiIndex.from_product([list(metrics), conv_order]))
