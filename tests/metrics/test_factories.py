"""roc_auc_metric / accuracy_metric: the validation metrics of a classification bundle's mode."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from medssl3d.metrics import (
    MulticlassAccuracy,
    MulticlassRocAuc,
    MultilabelAccuracy,
    MultilabelRocAuc,
    accuracy_metric,
    roc_auc_metric,
)


@pytest.mark.parametrize("flag, auc, accuracy", [(False, MulticlassRocAuc, MulticlassAccuracy),
                                                 ("false", MulticlassRocAuc, MulticlassAccuracy),
                                                 (True, MultilabelRocAuc, MultilabelAccuracy),
                                                 ("true", MultilabelRocAuc, MultilabelAccuracy)])
def test_the_mode_picks_the_metric(flag, auc, accuracy):
    assert type(roc_auc_metric(flag)) is auc and type(accuracy_metric(flag)) is accuracy


def test_keyword_arguments_reach_the_metric():
    assert accuracy_metric(True, threshold=0.3).threshold == 0.3
    engine = Engine(lambda _, batch: batch)
    roc_auc_metric(False, output_transform=lambda out: (out["p"], out["y"])).attach(engine, "auc")
    state = engine.run([{"p": torch.tensor([[0.9, 0.1], [0.2, 0.8]]), "y": torch.tensor([0, 1])}])
    assert state.metrics["auc"] == pytest.approx(1.0)


def test_a_value_that_is_no_flag_is_refused():
    with pytest.raises(ValueError, match="multi_label must be true or false"):
        roc_auc_metric("sometimes")
    with pytest.raises(ValueError, match="multi_label must be true or false"):
        accuracy_metric(2)
