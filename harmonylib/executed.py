"""Publish executed notebooks for reading: ``results/<profile>/notebooks`` -> ``results/<profile>/executed``.

``make reproduce`` leaves papermill's executed copies in ``results/<profile>/notebooks/``, where
the next run overwrites them. The copies committed for a reader browsing the repository (issue
[report] §5) live in a folder of their own, ``results/<profile>/executed/``, that ``make`` never
writes, and they are made readable first:

- progress bars are dropped: tqdm redraws its bar with carriage returns, so one training loop
  leaves thousands of redraws in a stderr stream output (the bar says nothing a reader needs;
  the final numbers are in the cells' own outputs);
- kernel-start noise (the Jupyter transport warning, tqdm's missing-widget warning) is dropped;
- absolute paths are rewritten: the clone's own folder becomes relative (``results/mini/...``),
  and the Python environment's folder becomes ``<env>``, so the committed text is the same
  whichever clone or machine ran it (the rule of ``harmonylib.paths.portable``).

Everything else (code, figures, tables, printed results, errors) is kept as executed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harmonylib.io import atomic_write_text
from harmonylib.paths import project_root, results_dir

EXECUTED_DIR = "executed"
SOURCE_DIR = "notebooks"  # where the Makefile's papermill rule writes its executed copies
ENV_TOKEN = "<env>"

# a tqdm redraw: "  42%|####      | 21/50 [00:03<00:04,  6.1it/s]" (with or without the bar)
_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d*|\d+(?:it|cell|real|img|step|batch)?/s\]|it/s\]|s/it\]")
_NOISE = (
    "Kernel is running over TCP without encryption",
    "IProgress not found",
    "TqdmWarning",
    "from .autonotebook import tqdm as notebook_tqdm",
)


def _is_noise_line(line: str) -> bool:
    return bool(_PROGRESS.search(line)) or any(n in line for n in _NOISE)


def clean_stream_text(text: str) -> str:
    """``text`` of a stderr stream without progress redraws and kernel-start noise.

    A line redrawn with ``\\r`` keeps only its last state; lines that are progress bars or
    known noise are dropped whole.
    """
    kept = []
    for line in text.split("\n"):
        last = line.split("\r")[-1]  # what a terminal shows after the redraws
        if _is_noise_line(last):
            continue
        kept.append(last)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + ("\n" if kept else "")


def _rewrite_paths(text: str, replacements: Iterable[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def path_replacements(home: Path | None = None) -> list[tuple[str, str]]:
    """(absolute prefix, its portable form) pairs, longest first: the home and the environment."""
    home = (home or project_root()).resolve()
    pairs = {str(home) + "/": "", str(home): "."}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        if prefix and prefix != "/":
            pairs[str(Path(prefix).resolve())] = ENV_TOKEN
            pairs[prefix] = ENV_TOKEN
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def clean_notebook(nb: dict[str, Any], replacements: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A copy of notebook JSON ``nb`` with stderr noise dropped and absolute paths rewritten."""
    replacements = list(replacements)
    out = json.loads(
        _rewrite_paths(json.dumps(nb), [(json.dumps(o)[1:-1], json.dumps(n)[1:-1]) for o, n in replacements])
    )
    for cell in out.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                text = clean_stream_text(text)
                if not text.strip():
                    continue
                o = {**o, "text": text}
            outputs.append(o)
        cell["outputs"] = outputs
    return out


def publish_executed(profile: str, results: Path | None = None, home: Path | None = None) -> list[Path]:
    """Copy ``results/<profile>/notebooks/*.ipynb`` (finished ones only) to ``.../executed/``, cleaned.

    Raises:
        FileNotFoundError: no executed notebook to publish (run ``make reproduce`` first).
    """
    res = Path(results) if results is not None else results_dir(profile)
    src = sorted(p for p in (res / SOURCE_DIR).glob("*.ipynb") if not p.name.startswith(".partial-"))
    if not src:
        raise FileNotFoundError(
            f"{res / SOURCE_DIR}: no executed notebook to publish; run `make reproduce PROFILE={profile}` first"
        )
    home = (home or project_root()).resolve()
    reps = path_replacements(home)
    written = []
    for p in src:
        try:
            nb = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not a notebook (invalid JSON: {e})") from e
        dst = res / EXECUTED_DIR / p.name
        out = clean_notebook(nb, reps)
        pm = out.get("metadata", {}).get("papermill")
        if isinstance(pm, dict) and "output_path" in pm:  # papermill's hidden partial name, not the file's
            pm["output_path"] = _rewrite_paths(str(dst.resolve()), reps)
        atomic_write_text(dst, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
        written.append(dst)
    return written


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.executed") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Copy make reproduce's executed notebooks to results/<profile>/executed/ for readers: "
        "progress bars dropped, absolute paths made relative.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--profile", default="mini", help="profile whose results to publish")
    args = parser.parse_args(argv)
    try:
        written = publish_executed(args.profile)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
