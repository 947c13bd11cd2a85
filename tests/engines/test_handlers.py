"""Tests for checkpointing/resume, encoder freezing and the non-finite-loss stop."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import LrScheduleHandler

from medssl3d.engines import (
    BestModelSaver,
    CheckpointManager,
    FreezeEncoder,
    NonFiniteLossError,
    StopOnNonFiniteLoss,
    latest_checkpoint,
)


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x)))


def _data(n: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(1, keepdim=True)
    return [{"image": x[i], "label": y[i]} for i in range(n)]


def _trainer(net, epochs, handlers, loss=None, lr=0.05):
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(_data(), batch_size=4, shuffle=False)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=loader,
        network=net,
        optimizer=opt,
        loss_function=loss or torch.nn.MSELoss(),
        train_handlers=[LrScheduleHandler(sched, print_lr=False)] + handlers(net, opt, sched),
    )
    return trainer, opt, sched


def test_checkpoint_files_and_pruning(tmp_path):
    net = TinyNet()
    trainer, _, _ = _trainer(net, 4, lambda n, o, s: [CheckpointManager(tmp_path, {"model": n, "optimizer": o}, n_saved=2)])
    trainer.run()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint_epoch=3.pt", "checkpoint_epoch=4.pt"]
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=4.pt"
    ckpt = torch.load(tmp_path / "checkpoint_epoch=4.pt", weights_only=True)
    assert set(ckpt) == {"model", "optimizer", "trainer"}
    assert ckpt["trainer"]["iteration"] == 4 * 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_matches_uninterrupted_run(tmp_path):
    """Train 4 epochs straight vs. 2 epochs + resume to 4: same epoch count, lr, and weights."""

    def handlers(ckpt_dir, resume):
        return lambda n, o, s: [CheckpointManager(ckpt_dir, {"model": n, "optimizer": o, "lr_scheduler": s}, resume=resume)]

    ref = TinyNet()
    torch.manual_seed(1)
    ref.load_state_dict(TinyNet().state_dict())
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    t_ref, o_ref, _ = _trainer(ref, 4, handlers(tmp_path / "a", False))
    t_ref.run()

    first = TinyNet()
    first.load_state_dict(init)
    t1, _, _ = _trainer(first, 2, handlers(tmp_path / "b", False))
    t1.run()  # "killed" after epoch 2
    second = TinyNet()  # a fresh process: fresh weights, optimiser, scheduler
    t2, o2, _ = _trainer(second, 4, handlers(tmp_path / "b", True))
    t2.run()
    assert t2.state.epoch == 4 and t2.state.iteration == t_ref.state.iteration
    assert o2.param_groups[0]["lr"] == pytest.approx(o_ref.param_groups[0]["lr"])
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(second.state_dict()[k], v)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    net = TinyNet()
    trainer, _, _ = _trainer(net, 1, lambda n, o, s: [CheckpointManager(tmp_path / "none", {"model": n}, resume=True)])
    trainer.run()
    assert trainer.state.epoch == 1


def test_nan_loss_stops_with_epoch_and_iteration_and_keeps_last_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss(pred, target):
        calls["n"] += 1
        value = torch.nn.functional.mse_loss(pred, target)
        return value * float("nan") if calls["n"] == 4 else value  # epoch 2, iteration 2

    net = TinyNet()
    trainer, _, _ = _trainer(
        net, 5, lambda n, o, s: [CheckpointManager(tmp_path, {"model": n}), StopOnNonFiniteLoss()], loss=loss
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, iteration 2"):
        trainer.run()
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=1.pt"
    state = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_freeze_encoder_for_first_epochs():
    net = TinyNet()
    snapshots = []

    class Snap:
        def attach(self, engine):
            from ignite.engine import Events

            engine.add_event_handler(
                Events.EPOCH_COMPLETED, lambda e: snapshots.append(net.encoder.weight.detach().clone())
            )

    before = net.encoder.weight.detach().clone()
    head_before = net.head.weight.detach().clone()
    trainer, _, _ = _trainer(net, 3, lambda n, o, s: [FreezeEncoder(n, epochs=2), Snap()])
    trainer.run()
    torch.testing.assert_close(snapshots[0], before)
    torch.testing.assert_close(snapshots[1], before)
    assert not torch.equal(snapshots[2], before)
    assert not torch.equal(net.head.weight, head_before)
    assert all(p.requires_grad for p in net.parameters())


def test_freeze_encoder_bad_args():
    with pytest.raises(ValueError, match="no sub-module 'backbone'"):
        FreezeEncoder(TinyNet(), 2, attr="backbone")
    with pytest.raises(ValueError, match="-1"):
        FreezeEncoder(TinyNet(), -1)


class BNNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # like Classifier: the encoder's layers, not encoder(x)
        return self.head(torch.relu(self.encoder[1](self.encoder[0](x))))


@pytest.mark.parametrize("eval_mode", [True, False])
def test_freeze_encoder_eval_mode_keeps_batchnorm_statistics(eval_mode):
    """A linear probe (frozen for every epoch, eval mode): the encoder's weights and BN statistics stay put."""
    net = BNNet()
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    head_before = net.head.weight.detach().clone()
    freeze = FreezeEncoder(net, epochs=2, eval_mode=eval_mode)
    trainer, _, _ = _trainer(net, 2, lambda n, o, s: [freeze])
    trainer.run()
    after = net.encoder.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in ("0.weight", "0.bias", "1.weight", "1.bias"))
    assert torch.equal(after["1.running_mean"], before["1.running_mean"]) == eval_mode
    assert not torch.equal(net.head.weight, head_before)
    assert freeze._hook is None and all(p.requires_grad for p in net.parameters())  # released at the end
    net.train()
    net(torch.randn(4, 4))
    assert net.encoder.training  # no hook left behind


def test_best_model_saver_keeps_best_and_survives_resume(tmp_path):
    net = TinyNet()
    saver = BestModelSaver(tmp_path / "model.pt", net, metric_name="m", extra={"class_names": ["a", "b"]})

    class FakeState:
        def __init__(self, value, epoch):
            self.metrics = {"m": value}
            self.epoch = epoch

    class FakeEngine:
        def __init__(self, value, epoch):
            self.state = FakeState(value, epoch)

    saver(FakeEngine(0.5, 1))
    first = (tmp_path / "model.pt").stat().st_mtime_ns
    saver(FakeEngine(0.4, 2))
    saver(FakeEngine(float("nan"), 3))
    assert (tmp_path / "model.pt").stat().st_mtime_ns == first
    restored = BestModelSaver(tmp_path / "model.pt", net, metric_name="m")
    restored.load_state_dict(saver.state_dict())
    assert restored.best == 0.5 and restored.best_epoch == 1
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(payload) == {"model", "metric", "validated", "epoch", "class_names"} and payload["metric"]["m"] == 0.5
    assert payload["validated"] is True and payload["epoch"] == 1
    with pytest.raises(KeyError, match="'missing'"):
        BestModelSaver(tmp_path / "x.pt", net, metric_name="missing")(FakeEngine(1.0, 1))
    assert not math.isnan(restored.best)


def test_best_model_saver_with_monai_evaluator(tmp_path):
    from ignite.metrics import MeanSquaredError
    from monai.handlers import from_engine

    net = TinyNet()
    loader = torch.utils.data.DataLoader(_data(), batch_size=4)
    saver = BestModelSaver(tmp_path / "model.pt", net, mode="min")
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=net,
        key_val_metric={"mse": MeanSquaredError(output_transform=from_engine(["pred", "label"]))},
        val_handlers=[saver],
    )
    evaluator.run()
    assert (tmp_path / "model.pt").is_file() and saver.best == pytest.approx(evaluator.state.metrics["mse"])



def _validated_training(tmp_path, val_items, epochs=2, interval=1):
    """A trainer whose medssl3d ValidationHandler runs an evaluator (MSE, lower is better) on ``val_items``."""
    from ignite.metrics import MeanSquaredError
    from monai.handlers import from_engine

    from medssl3d.engines import ValidationHandler

    net = TinyNet()
    saver = BestModelSaver(tmp_path / "model.pt", net, mode="min", extra={"class_names": ["a"]})
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(val_items, batch_size=4),
        network=net,
        key_val_metric={"mse": MeanSquaredError(output_transform=from_engine(["pred", "label"]))},
        val_handlers=[saver],
    )
    runs = []
    evaluator.add_event_handler(Events.COMPLETED, lambda e: runs.append(e.state.epoch))
    handler = ValidationHandler(evaluator, interval=interval, best_model_saver=saver)
    trainer, _, _ = _trainer(net, epochs, lambda n, o, s: [handler])
    return trainer, net, saver, runs


def test_validation_handler_empty_list_trains_and_saves_last_weights(tmp_path, caplog):
    trainer, net, saver, runs = _validated_training(tmp_path, [], epochs=2)
    with caplog.at_level("WARNING"):
        trainer.run()
    assert runs == [] and trainer.state.epoch == 2
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["validated"] is False and payload["metric"] == {} and payload["epoch"] == 2
    assert payload["class_names"] == ["a"]
    assert all(torch.equal(payload["model"][k], v) for k, v in net.state_dict().items())  # the final weights
    assert sum("validation list is empty" in r.getMessage() for r in caplog.records) == 1  # warned once
    assert not saver.has_saved  # a later validation would still replace the file


def test_validation_handler_interval_beyond_epochs_still_leaves_a_model(tmp_path):
    trainer, _, _, runs = _validated_training(tmp_path, _data(4), epochs=2, interval=5)
    trainer.run()
    assert runs == []
    assert torch.load(tmp_path / "model.pt", weights_only=True)["validated"] is False


def test_validation_handler_with_cases_keeps_best_model(tmp_path):
    trainer, _, saver, runs = _validated_training(tmp_path, _data(4), epochs=3)
    trainer.run()
    assert runs == [1, 2, 3] and saver.has_saved
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    # the validated best model is kept at completion, not replaced by the last weights
    assert payload["validated"] is True and payload["epoch"] == saver.best_epoch
    assert payload["metric"]["mse"] == pytest.approx(saver.best)

def test_every_n_iterations_filter_and_bad_value():
    from medssl3d.engines import every_n_iterations

    f = every_n_iterations(3)
    assert [i for i in range(1, 11) if f(None, i)] == [1, 3, 6, 9]
    with pytest.raises(ValueError, match="0"):
        every_n_iterations(0)


def test_loss_progress_bar_shows_loss(capsys):
    from medssl3d.engines import LossProgressBar

    net = TinyNet()
    bar = LossProgressBar(persist=True)
    trainer, _, _ = _trainer(net, 1, lambda n, o, s: [bar])
    trainer.run()
    err = capsys.readouterr().err
    assert "loss=" in err and "[2/2]" in err


def test_loss_terms_and_tensorboard_output_transform():
    from medssl3d.engines import LossTerms, loss_terms
    from medssl3d.losses import LabeledTripletLoss, NTXentLoss, VICRegLoss
    from medssl3d.tasks.joint_embedding import ViewPairLoss

    torch.manual_seed(0)
    vicreg = VICRegLoss(cross_weight=0.5)
    wrapped = ViewPairLoss(vicreg)  # the terms are found on the wrapped loss
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    value = wrapped({"z1": z1, "z2": z2})
    expected = {k: float(v) for k, v in vicreg.forward_terms(z1, z2).items() if k != "loss"}
    assert loss_terms(wrapped) == pytest.approx(expected)
    out = LossTerms(wrapped, "pretext_loss")({"loss": value})
    assert out["pretext_loss"] == pytest.approx(float(value))
    assert {k: v for k, v in out.items() if k != "pretext_loss"} == pytest.approx(
        {f"pretext_loss/{k}": v for k, v in expected.items()}
    )

    triplet = LabeledTripletLoss()
    labels = torch.tensor([0, 0, 1, 1])
    triplet(torch.nn.functional.normalize(torch.randn(4, 3), dim=1), labels)
    # 2 classes x 2 ordered (anchor, positive) pairs x 2 negatives
    assert loss_terms(triplet)["valid_triplets"] == 8.0
    assert loss_terms(triplet)["fraction_active_triplets"] == triplet.last_fraction_active
    # a loss without parts: only the total, from a decollated output too
    assert LossTerms(NTXentLoss(), "x")([{"loss": torch.tensor(1.5)}, {"loss": torch.tensor(1.5)}]) == {"x": 1.5}
    with pytest.raises(ValueError, match="tag must be a non-empty string"):
        LossTerms(NTXentLoss(), "")


@pytest.mark.parametrize("accumulation, n, batch, epochs", [(1, 8, 4, 3), (3, 10, 2, 2), (8, 16, 2, 2), (8, 8, 2, 1)])
def test_training_plan_counts_the_optimiser_steps_the_trainer_takes(accumulation, n, batch, epochs, caplog):
    """The logged plan equals the optimiser steps MONAI's trainer really takes (flush at the epoch end included)."""
    from medssl3d.engines import TrainingPlan

    net = TinyNet()
    loader = torch.utils.data.DataLoader(_data(n), batch_size=batch, shuffle=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    taken = []
    opt.register_step_post_hook(lambda *_: taken.append(1))
    plan = TrainingPlan(min_optimizer_steps=5, name="pretraining")
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=epochs, train_data_loader=loader, network=net, optimizer=opt,
        loss_function=torch.nn.MSELoss(), train_handlers=[plan], accumulation_steps=accumulation,
    )
    with caplog.at_level("INFO", logger="medssl3d.engines.handlers"):
        trainer.run()
    iterations = math.ceil(n / batch)
    assert plan.plan["optimizer_steps"] == len(taken) == epochs * math.ceil(iterations / accumulation)
    assert plan.plan["effective_batch_size"] == batch * accumulation and plan.plan["num_samples"] == n
    assert f"-> {len(taken)} optimiser steps" in caplog.text
    few = len(taken) < 5
    assert ("will take only" in caplog.text) == few
    assert ("larger than the" in caplog.text) == (batch * accumulation > n)
    if few and accumulation > 1:
        assert f"lower accumulation_steps (now {accumulation})" in caplog.text


def test_training_plan_rejects_a_negative_minimum():
    from medssl3d.engines import TrainingPlan

    with pytest.raises(ValueError, match="min_optimizer_steps"):
        TrainingPlan(min_optimizer_steps=-1)
