"""Data augmentation with the inverse harmonization model (paper §4.1, §4.2, §5.3.2).

Three steps, each callable on its own:

1. :func:`generate_candidates` -- for every (real, mask) pair, K candidate composites from the
   inverse pipeline (``direction="inverse"``: real image + mask in, composite out).
2. :func:`mix_training_list` -- the blending ratio γ (§4.1): with N1 (real, mask) pairs and N2
   composites in the training split, add ⌈γ·N2/N1⌉ randomly chosen candidates per pair.
3. :func:`score_candidates` + :func:`select_best` -- the harmony classifier scores every
   candidate; per (real, mask) pair the one with the highest P(unharmonious) is kept (§4.2).

The package, by concern (every public name is importable from ``harmonylib.augment``):

- :mod:`~harmonylib.augment.manifest`: the generated root's layout, candidate names
  (:func:`pairs_from_samples`) and the manifest of candidates;
- :mod:`~harmonylib.augment.generate`: step 1, with its seeds, geometry, sharding over processes
  and model hashes;
- :mod:`~harmonylib.augment.mixing`: step 2;
- :mod:`~harmonylib.augment.selection`: step 3;
- :mod:`~harmonylib.augment.fidelity`: how far a candidate's foreground lies from its real image;
- :mod:`~harmonylib.augment.commands`: ``harmonylib augment {generate,mix,score}``.
"""

from harmonylib.augment.commands import add_parser
from harmonylib.augment.fidelity import FIDELITY_COLUMNS, candidate_fidelity, foreground_difference
from harmonylib.augment.generate import (
    LINK_MODES,
    candidate_seed,
    generate_candidates,
    hash_folder,
    hash_state_dict,
    model_hashes,
)
from harmonylib.augment.manifest import (
    CANDIDATE_SUFFIX,
    GEN_ROOT_NAME,
    MANIFEST,
    MIX_FILE,
    PARTS_DIR,
    AugmentError,
    merge_manifests,
    pairs_from_samples,
    read_manifest,
    write_manifest,
)
from harmonylib.augment.mixing import MixResult, mix_training_list, mixing_count
from harmonylib.augment.selection import GROUP_BY, score_candidates, score_images, select_best
from harmonylib.data.iharmony4 import Pair  # re-exported: the unit the steps work on
from harmonylib.io import link_or_copy  # re-exported: how the generated root links the originals

__all__ = [
    "CANDIDATE_SUFFIX",
    "FIDELITY_COLUMNS",
    "GEN_ROOT_NAME",
    "GROUP_BY",
    "LINK_MODES",
    "MANIFEST",
    "MIX_FILE",
    "PARTS_DIR",
    "AugmentError",
    "MixResult",
    "Pair",
    "add_parser",
    "candidate_fidelity",
    "candidate_seed",
    "foreground_difference",
    "generate_candidates",
    "hash_folder",
    "hash_state_dict",
    "link_or_copy",
    "merge_manifests",
    "mix_training_list",
    "mixing_count",
    "model_hashes",
    "pairs_from_samples",
    "read_manifest",
    "score_candidates",
    "score_images",
    "select_best",
    "write_manifest",
]
