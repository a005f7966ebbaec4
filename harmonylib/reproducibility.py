"""One place for seeds: explicit generators, derived seeds, determinism switches."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed derived from any parts, e.g. ``derive_seed(seed, "pair", 12, "k", 3)``.

    Stable across processes and Python versions (no ``hash()``), so a sample's randomness does
    not depend on batch position, batch size or the number of processes.
    """
    blob = "\x1f".join(repr(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed`` on ``device``."""
    return torch.Generator(device=device).manual_seed(int(seed))


def numpy_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from ``derive_seed(*parts)``."""
    return np.random.default_rng(derive_seed(*parts))


def seed_everything(seed: int) -> None:
    """Seed the global RNGs. Library code never relies on them; this guards third-party code."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def enable_full_determinism() -> None:
    """Deterministic kernels, for tests that compare runs bit for bit."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
