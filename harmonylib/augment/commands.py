"""``harmonylib augment {generate,mix,score}``: the three augmentation steps on the command line."""

from __future__ import annotations

import argparse

from harmonylib.augment.generate import generate_candidates
from harmonylib.augment.manifest import pairs_from_samples
from harmonylib.augment.mixing import mix_training_list
from harmonylib.augment.selection import score_candidates
from harmonylib.data.iharmony4 import read_split


def _load_pipeline(path: str):
    from harmonylib.pipeline import DiffHarmonyPipeline

    return DiffHarmonyPipeline.from_pretrained(path)


def _load_classifier(path: str, arch: str):
    from harmonylib.models.classifier import build_classifier

    return build_classifier(arch).load_authors_checkpoint(path)


def _run_generate(args: argparse.Namespace) -> int:
    samples = read_split(args.root, args.split, subsets=args.subsets)
    pipe = _load_pipeline(args.pipeline)
    if args.device:
        pipe.to(args.device)
    generate_candidates(
        pipe, pairs_from_samples(samples), args.out, k=args.k, seed=args.seed, batch_size=args.batch_size,
        num_inference_steps=args.steps, size_mode=args.size_mode, size=args.size,
        model_paths={"pipeline": args.pipeline},
    )  # fmt: skip
    return 0


def _run_mix(args: argparse.Namespace) -> int:
    res = mix_training_list(args.root, args.out, args.gamma, args.seed, subsets=args.subsets)
    for subset, c in res.counts.items():
        print(
            f"{subset}: N1={c['n_pairs']} N2={c['n_composites']} per pair={c['per_pair']} added={c['added']}"
        )
    print(f"wrote {res.list_path}")
    return 0


def _run_score(args: argparse.Namespace) -> int:
    clf = _load_classifier(args.classifier, args.arch).to(args.device or "cpu")
    score_candidates(clf, args.out, batch_size=args.batch_size, device=args.device or "cpu")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib augment {generate,mix,score}``."""
    p = subparsers.add_parser("augment", help="inverse-model data augmentation (paper §4.1)")
    sub = p.add_subparsers(dest="augment_command", metavar="STEP", required=True)
    g = sub.add_parser("generate", help="K candidates per (real, mask) pair (accelerate launch shards it)")
    g.add_argument("--root", required=True, help="original iHarmony4 root")
    g.add_argument("--out", required=True, help="generated root (a separate folder)")
    g.add_argument("--pipeline", required=True, help="saved inverse DiffHarmonyPipeline folder")
    g.add_argument("--split", default="train")
    g.add_argument("--subsets", nargs="*", default=None)
    g.add_argument("--k", type=int, default=10)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--steps", type=int, default=5)
    g.add_argument("--size-mode", default="keep_aspect", choices=("keep_aspect", "square"))
    g.add_argument("--size", type=int, default=None)
    g.add_argument("--device", default=None)
    g.set_defaults(func=_run_generate)
    m = sub.add_parser("mix", help="write the γ-mixed training list into the generated root")
    m.add_argument("--root", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--gamma", type=float, default=1.0)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--subsets", nargs="*", default=None)
    m.set_defaults(func=_run_mix)
    s = sub.add_parser("score", help="score candidates with the harmony classifier")
    s.add_argument("--out", required=True)
    s.add_argument("--classifier", required=True, help="model_state_dict.pth")
    s.add_argument("--arch", default="resnet50")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--device", default=None)
    s.set_defaults(func=_run_score)
