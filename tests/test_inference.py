"""Dataset-wide inference: named outputs, batch/shard invariance, cache by settings."""

import numpy as np
import pytest
from PIL import Image

from harmonylib.data.iharmony4 import read_split
from harmonylib.inference import InferenceSettings, is_complete, predict_split
from harmonylib.models.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(0)


@pytest.fixture(scope="module")
def samples(smoke_data_root):
    return read_split(smoke_data_root, "test")[:6]


def _read(folder, samples):
    return {s.name: np.asarray(Image.open(folder / f"{s.name}.png"), dtype=np.int16) for s in samples}


def test_outputs_are_named_sized_and_independent_of_batch_and_shards(pipe, samples, tmp_path):
    settings = InferenceSettings(size=64, output_resolution=256, seed=3)
    one = predict_split(
        pipe, samples, tmp_path / "b1", settings, batch_size=1, rank=0, world_size=1, progress=False
    )
    assert is_complete(one, settings)
    three = predict_split(
        pipe, samples, tmp_path / "b3", settings, batch_size=3, rank=0, world_size=1, progress=False
    )
    shards = tmp_path / "sharded"
    predict_split(pipe, samples, shards, settings, batch_size=2, rank=1, world_size=2, progress=False)
    assert not is_complete(shards, settings)  # rank 0's share is still missing
    predict_split(pipe, samples, shards, settings, batch_size=2, rank=0, world_size=2, progress=False)
    assert is_complete(shards, settings)
    a, b, c = _read(one, samples), _read(three, samples), _read(shards, samples)
    for name in a:
        assert a[name].shape == (256, 256, 3)
        assert np.abs(a[name] - b[name]).max() <= 1  # CPU kernels are not bit-batch-invariant
        assert np.abs(a[name] - c[name]).max() <= 1


def test_other_settings_are_refused_and_reruns_skip(pipe, samples, tmp_path):
    settings = InferenceSettings(size=64, seed=0)
    out = predict_split(pipe, samples, tmp_path / "p", settings, rank=0, world_size=1, progress=False)
    stamp = (out / f"{samples[0].name}.png").stat().st_mtime_ns
    predict_split(pipe, samples, out, settings, rank=0, world_size=1, progress=False)
    assert (out / f"{samples[0].name}.png").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other settings"):
        predict_split(
            pipe, samples, out, InferenceSettings(size=64, seed=1), rank=0, world_size=1, progress=False
        )


def test_different_seeds_give_different_predictions(pipe, samples, tmp_path):
    a = predict_split(
        pipe,
        samples[:2],
        tmp_path / "s0",
        InferenceSettings(size=64, seed=0),
        rank=0,
        world_size=1,
        progress=False,
    )
    b = predict_split(
        pipe,
        samples[:2],
        tmp_path / "s1",
        InferenceSettings(size=64, seed=1),
        rank=0,
        world_size=1,
        progress=False,
    )
    ra, rb = _read(a, samples[:2]), _read(b, samples[:2])
    assert any(np.abs(ra[n] - rb[n]).max() > 1 for n in ra)
