"""Training-loop pieces around MONAI's engines: checkpointing and resume, encoder freezing,
non-finite-loss stopping, distributed set-up, and the prediction CSV of unlabelled inference."""

from __future__ import annotations

from medssl3d.engines.batch_meta import image_meta_dicts
from medssl3d.engines.checkpoint import (
    BestModelSaver,
    CheckpointManager,
    latest_checkpoint,
)
from medssl3d.engines.distributed import init_distributed, unwrap_model, wrap_ddp
from medssl3d.engines.handlers import (
    FreezeEncoder,
    LossProgressBar,
    NonFiniteLossError,
    StopOnNonFiniteLoss,
    LossTerms,
    TrainingPlan,
    ValidationHandler,
    every_n_iterations,
    loss_terms,
    loss_value,
)
from medssl3d.engines.predictions import ClassificationPredictionWriter
from medssl3d.engines.pretext import PretextAccuracy, PretextLoss, SaveEncoder
from medssl3d.utils.distributed import is_main_process

__all__ = [
    "BestModelSaver",
    "CheckpointManager",
    "latest_checkpoint",
    "init_distributed",
    "is_main_process",
    "unwrap_model",
    "wrap_ddp",
    "FreezeEncoder",
    "LossProgressBar",
    "every_n_iterations",
    "loss_value",
    "loss_terms",
    "LossTerms",
    "NonFiniteLossError",
    "StopOnNonFiniteLoss",
    "TrainingPlan",
    "ValidationHandler",
    "PretextAccuracy",
    "PretextLoss",
    "SaveEncoder",
    "ClassificationPredictionWriter",
    "image_meta_dicts",
]
