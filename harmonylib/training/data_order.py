"""Which samples each process sees at each step: a pure function of (seed, epoch, step, rank).

An epoch is a permutation of the dataset drawn from ``derive_seed(seed, "order", epoch)``. It is
cut into *global micro-batches* of ``batch_size`` samples; optimizer step ``s`` of the epoch,
accumulation index ``a`` and process ``r`` (of ``P``) take global micro-batch
``(s * G + a) * P + r``. So

- the shards of the processes are disjoint, and together cover ``P * G * batch_size`` samples
  per optimizer step;
- 2 processes without accumulation see exactly the samples that 1 process with accumulation 2
  sees in the same optimizer step (so their weights agree);
- a resumed run recomputes the order from its step counter; nothing about the order is stored.

Incomplete global batches at the end of an epoch are dropped (``drop_last``, as the authors'
Harmony-VAE and refinement trainers).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from harmonylib.reproducibility import derive_seed, make_generator


def steps_per_epoch(n: int, batch_size: int, num_processes: int = 1, grad_accum: int = 1) -> int:
    """Optimizer steps in one epoch of ``n`` samples (incomplete global batches dropped).

    Raises:
        ValueError: the dataset is smaller than one global batch; the message gives both sizes.
    """
    global_batch = batch_size * num_processes * grad_accum
    steps = n // global_batch
    if steps == 0:
        raise ValueError(
            f"the dataset has {n} samples, fewer than one global batch of {global_batch} "
            f"(batch_size {batch_size} x {num_processes} processes x {grad_accum} accumulation steps)"
        )
    return steps


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The sample order of ``epoch``: a permutation of ``range(n)`` drawn from (seed, epoch)."""
    g = make_generator(derive_seed(seed, "order", epoch))
    return torch.randperm(n, generator=g).tolist()


def microbatch_indices(
    perm: list[int],
    step_in_epoch: int,
    accum_index: int,
    rank: int,
    batch_size: int,
    num_processes: int,
    grad_accum: int,
) -> list[int]:
    """Dataset indices of one process's micro-batch (see the module docstring)."""
    j = (step_in_epoch * grad_accum + accum_index) * num_processes + rank
    return perm[j * batch_size : (j + 1) * batch_size]


class ShardBatchSampler(Sampler[list[int]]):
    """This process's micro-batches of one epoch, from ``start_step`` to the epoch's end.

    Yields ``grad_accum`` micro-batches per optimizer step, in accumulation order.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        epoch: int,
        batch_size: int,
        rank: int = 0,
        num_processes: int = 1,
        grad_accum: int = 1,
        start_step: int = 0,
    ):
        if not 0 <= rank < num_processes:
            raise ValueError(f"rank {rank} outside [0, {num_processes})")
        self.n, self.seed, self.epoch = n, seed, epoch
        self.batch_size, self.rank, self.num_processes, self.grad_accum = (
            batch_size,
            rank,
            num_processes,
            grad_accum,
        )
        self.steps = steps_per_epoch(n, batch_size, num_processes, grad_accum)
        self.start_step = start_step

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step) * self.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        perm = epoch_permutation(self.n, self.seed, self.epoch)
        for s in range(self.start_step, self.steps):
            for a in range(self.grad_accum):
                yield microbatch_indices(
                    perm, s, a, self.rank, self.batch_size, self.num_processes, self.grad_accum
                )
