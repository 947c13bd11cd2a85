"""Held-out pretext metrics and the encoder.pt writer."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine

from medssl3d.engines import PretextAccuracy, PretextLoss, SaveEncoder
from medssl3d.nets import UNetEncoder, encoder_from_config


class _ArgmaxTask:
    """A minimal classification task: correct = argmax matches the target."""

    name = "toy"

    def correct(self, output, target):
        return int((output.argmax(1) == target).sum()), int(target.numel())

    def state(self):
        return {"name": self.name, "permutations": [[0, 1], [1, 0]]}


def _run_metric(metric, batches):
    engine = Engine(lambda e, b: b)
    metric.attach(engine, "m")
    engine.run(batches, max_epochs=1)
    return engine.state.metrics["m"]


def test_pretext_accuracy_counts_over_batches():
    logits1 = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    logits2 = torch.tensor([[0.0, 5.0]])
    batches = [(logits1, torch.tensor([0, 0, 0])), (logits2, torch.tensor([1]))]
    # right: rows 0 and 2 of batch 1, row 0 of batch 2 -> 3 of 4 (not the mean of per-batch accuracies, 0.83)
    assert abs(_run_metric(PretextAccuracy(_ArgmaxTask()), batches) - 0.75) < 1e-9


def test_pretext_accuracy_is_nan_when_nothing_was_judged():
    class _NothingToJudge(_ArgmaxTask):
        def correct(self, output, target):
            return 0, 0

    assert math.isnan(_run_metric(PretextAccuracy(_NothingToJudge()), [(torch.zeros(2, 2), torch.tensor([0, 1]))]))


def test_pretext_accuracy_reads_engine_dicts():
    batch = {"pred": torch.tensor([[0.0, 1.0]]), "label": torch.tensor([1]), "image": None}
    assert _run_metric(PretextAccuracy(_ArgmaxTask()), [batch]) == 1.0


def test_pretext_loss_is_sample_weighted():
    loss = torch.nn.CrossEntropyLoss()
    b1 = (torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), torch.tensor([0, 0, 1]))
    b2 = (torch.tensor([[0.0, 3.0]]), torch.tensor([0]))
    expected = (loss(*b1).item() * 3 + loss(*b2).item() * 1) / 4
    assert abs(_run_metric(PretextLoss(loss), [b1, b2]) - expected) < 1e-6


def test_pretext_loss_without_labels_uses_prediction_batch():
    def loss_fn(pred, target):
        assert target is None
        return pred[0].pow(2).mean()

    b1 = ((torch.ones(2, 3), torch.zeros(2, 3)), None)
    b2 = ((torch.full((1, 3), 2.0), torch.zeros(1, 3)), None)
    assert abs(_run_metric(PretextLoss(loss_fn), [b1, b2]) - (1.0 * 2 + 4.0 * 1) / 3) < 1e-6


def test_save_encoder_only_on_completion(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = UNetEncoder(2, 1, base_filters=2, levels=1)
            self.head = torch.nn.Linear(4, 2)

    net, path = Net(), tmp_path / "enc" / "encoder.pt"
    seen = []
    engine = Engine(lambda e, b: seen.append(path.exists()))
    SaveEncoder(net, _ArgmaxTask(), path, config={"epochs": 2}).attach(engine)
    engine.run([0, 1], max_epochs=2)
    assert seen == [False] * 4  # never written mid-run: an existing file means a finished pretraining
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["task"] == "toy" and ckpt["epochs"] == 2 and ckpt["config"] == {"epochs": 2}
    assert ckpt["task_state"]["permutations"] == [[0, 1], [1, 0]]
    assert set(ckpt["model"]) == set(net.encoder.state_dict())
    rebuilt = encoder_from_config(ckpt["encoder_config"])
    rebuilt.load_state_dict(ckpt["model"])  # architecture + weights round-trip
