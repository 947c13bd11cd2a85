"""classification_loss: the loss of a classification bundle's mode."""

from __future__ import annotations

import pytest
import torch

from medssl3d.losses import classification_loss


@pytest.mark.parametrize("flag, loss", [(False, torch.nn.CrossEntropyLoss), ("false", torch.nn.CrossEntropyLoss),
                                        (True, torch.nn.BCEWithLogitsLoss), ("true", torch.nn.BCEWithLogitsLoss)])
def test_the_mode_picks_the_loss(flag, loss):
    assert type(classification_loss(flag)) is loss


def test_keyword_arguments_reach_the_loss():
    assert classification_loss(False, label_smoothing=0.1).label_smoothing == 0.1
    weight = torch.tensor([1.0, 3.0])
    assert torch.equal(classification_loss(True, pos_weight=weight).pos_weight, weight)
    logits, targets = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    assert classification_loss(True)(logits, targets) == pytest.approx(
        float(torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)))


def test_a_value_that_is_no_flag_is_refused():
    with pytest.raises(ValueError, match="multi_label must be true or false, got 'maybe'"):
        classification_loss("maybe")
