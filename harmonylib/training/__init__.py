"""Training: one loop on ``accelerate`` (:mod:`.loop`), small pure objectives (:mod:`.objectives`),
recipes that bind them to models and data (:mod:`.recipes`), and run folders with
``ensure_trained`` (:mod:`.runs`)."""

from harmonylib.training.loop import TrainResult, TrainSpec, export_weights, save_model, train_loop
from harmonylib.training.recipes import RECIPES, build_spec
from harmonylib.training.runs import (
    TrainedRun,
    TrainingInterrupted,
    ensure_trained,
    read_done,
    run_hash,
    run_name,
)

__all__ = [
    "RECIPES",
    "TrainResult",
    "TrainSpec",
    "TrainedRun",
    "TrainingInterrupted",
    "build_spec",
    "ensure_trained",
    "export_weights",
    "read_done",
    "run_hash",
    "run_name",
    "save_model",
    "train_loop",
]
