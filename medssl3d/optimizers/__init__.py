"""Optimisers and learning-rate schedules for large-batch pretraining: LARS, warm-up + cosine."""

from __future__ import annotations

from medssl3d.optimizers.lars import LARS, exclude_bias_and_norm_param_groups, is_bias_or_norm
from medssl3d.optimizers.param_groups import encoder_head_param_groups
from medssl3d.optimizers.schedules import warmup_cosine_factor, warmup_cosine_schedule

__all__ = [
    "LARS",
    "exclude_bias_and_norm_param_groups",
    "encoder_head_param_groups",
    "is_bias_or_norm",
    "warmup_cosine_factor",
    "warmup_cosine_schedule",
]
