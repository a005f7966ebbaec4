"""Data order: derived from (seed, epoch), disjoint shards, 2 processes == 1 process x 2 accumulation."""

from __future__ import annotations

import pytest

from harmonylib.training.data_order import ShardBatchSampler, epoch_permutation, steps_per_epoch


def _epoch(n, seed, epoch, bsz, nproc, accum, start=0):
    """{(step, accum, rank): indices} of one epoch."""
    out = {}
    for r in range(nproc):
        it = iter(ShardBatchSampler(n, seed, epoch, bsz, r, nproc, accum, start_step=start))
        for s in range(start, steps_per_epoch(n, bsz, nproc, accum)):
            for a in range(accum):
                out[(s, a, r)] = next(it)
    return out


def test_shards_are_disjoint_and_cover_global_batches():
    got = _epoch(n=50, seed=1, epoch=0, bsz=3, nproc=2, accum=2)
    steps = steps_per_epoch(50, 3, 2, 2)
    assert steps == 4  # 50 // 12, last incomplete global batch dropped
    for s in range(steps):
        per_rank = [sum((got[(s, a, r)] for a in range(2)), []) for r in range(2)]
        assert not set(per_rank[0]) & set(per_rank[1])
        assert len(set(per_rank[0]) | set(per_rank[1])) == 12
    everything = sum(got.values(), [])
    assert len(everything) == len(set(everything)) == 48


def test_two_processes_see_what_one_process_with_accumulation_sees():
    two = _epoch(n=40, seed=7, epoch=3, bsz=4, nproc=2, accum=1)
    one = _epoch(n=40, seed=7, epoch=3, bsz=4, nproc=1, accum=2)
    for s in range(steps_per_epoch(40, 4, 2, 1)):
        assert two[(s, 0, 0)] == one[(s, 0, 0)] and two[(s, 0, 1)] == one[(s, 1, 0)]


def test_order_is_derived_from_seed_and_epoch_and_resumes_mid_epoch():
    assert epoch_permutation(30, 0, 1) == epoch_permutation(30, 0, 1)
    assert epoch_permutation(30, 0, 1) != epoch_permutation(30, 0, 2)
    assert epoch_permutation(30, 0, 1) != epoch_permutation(30, 1, 1)
    full = _epoch(n=30, seed=0, epoch=2, bsz=2, nproc=1, accum=1)
    tail = _epoch(n=30, seed=0, epoch=2, bsz=2, nproc=1, accum=1, start=5)
    assert all(tail[k] == full[k] for k in tail) and min(k[0] for k in tail) == 5


def test_too_small_dataset_names_sizes():
    with pytest.raises(ValueError, match="10 samples, fewer than one global batch of 16"):
        steps_per_epoch(10, 4, 2, 2)
