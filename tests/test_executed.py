"""Publishing executed notebooks: progress redraws and kernel noise dropped, absolute paths made
relative, everything else kept; make's own copies left alone."""

from __future__ import annotations

import json
import sys

import pytest

from harmonylib import executed


def _nb(home, stderr_text, stdout_text):
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": "print(root)",
                "outputs": [
                    {"output_type": "stream", "name": "stderr", "text": stderr_text},
                    {"output_type": "stream", "name": "stdout", "text": stdout_text},
                    {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "fig"}},
                ],
            },
        ],
        "metadata": {
            "papermill": {
                "input_path": "notebooks/x.ipynb",
                "output_path": "results/mini/notebooks/.partial-04_table1.ipynb",
                "cwd": str(home),
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_clean_stream_drops_progress_and_noise_keeps_messages():
    bar = "train:  10%|#         | 5/50 [00:01<00:09,  4.9it/s]\rtrain: 100%|##########| 50/50 [00:10<00:00,  4.9it/s]\n"
    warn = f"{sys.prefix}/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found.\n"
    kept = "UserWarning: the run diverged at step 7\n"
    assert executed.clean_stream_text(bar + warn + kept) == kept
    assert executed.clean_stream_text(bar) == ""


def test_publish_writes_a_clean_copy_and_leaves_the_source(tmp_path):
    home = tmp_path / "clone"
    res = home / "results" / "mini"
    (res / "notebooks").mkdir(parents=True)
    stderr = "Executing:  50%|#####     | 1/2 [00:01<00:01,  1.1cell/s]\rdone\n"
    nb = _nb(home, stderr, f"data from {home}/data/mini, env {sys.prefix}/lib\n")
    src = res / "notebooks" / "04_table1.ipynb"
    src.write_text(json.dumps(nb))
    (res / "notebooks" / ".partial-05_table2.ipynb").write_text("{}")  # unfinished: not published
    written = executed.publish_executed("mini", results=res, home=home)
    assert [p.name for p in written] == ["04_table1.ipynb"]
    assert written[0].parent == res / executed.EXECUTED_DIR
    out = json.loads(written[0].read_text())
    text = json.dumps(out)
    assert str(home) not in text and str(tmp_path) not in text and sys.prefix not in text
    outputs = out["cells"][1]["outputs"]
    assert outputs[0] == {"output_type": "stream", "name": "stderr", "text": "done\n"}
    assert outputs[1]["text"] == f"data from data/mini, env {executed.ENV_TOKEN}/lib\n"
    assert outputs[2]["data"] == {"text/plain": "fig"}  # figures and results kept as executed
    assert out["metadata"]["papermill"]["cwd"] == "."
    assert out["metadata"]["papermill"]["output_path"] == "results/mini/executed/04_table1.ipynb"
    assert json.loads(src.read_text()) == nb  # make's copy untouched


def test_publish_without_executed_notebooks_says_what_to_run(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="make reproduce PROFILE=mini"):
        executed.publish_executed("mini", results=tmp_path)
    bad = tmp_path / "notebooks"
    bad.mkdir()
    (bad / "01.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match=r"01\.ipynb: not a notebook"):
        executed.publish_executed("mini", results=tmp_path)
