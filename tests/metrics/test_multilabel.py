"""Multi-label finding metrics against scikit-learn and a hand-computed case; ignite metrics; the report writer."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from medssl3d.metrics import (
    ClassificationMetricsWriter,
    MultilabelAccuracy,
    MultilabelRocAuc,
    multilabel_metrics,
    roc_auc_multilabel,
)
from medssl3d.reports.plots import plot_roc_curves
from tests.metrics.test_classification import PNG_MAGIC, _batches, _engine

# By hand. Finding "a": positives score 0.9, 0.6 above negatives 0.3, 0.2 -> AUC 1, AP 1; predicted exactly
# at 0.5 -> F1 1. Finding "b": positives 0.4, 0.1 vs negatives 0.2, 0.3 -> 2 of 4 pairs right, AUC 0.5;
# ranked 0.4 (+), 0.3, 0.2, 0.1 (+) -> AP = 0.5 * 1 + 0.5 * 2/4 = 0.75; nothing reaches 0.5 -> F1 0.
# Rows 1 and 2 miss "b": subset accuracy 2/4, Hamming loss 2/8; micro F1 = 2 tp / (2 tp + 0 fp + 2 fn) = 2/3.
HAND_TRUE = [[1, 0], [0, 1], [1, 1], [0, 0]]
HAND_PROB = [[0.9, 0.2], [0.3, 0.4], [0.6, 0.1], [0.2, 0.3]]


def test_hand_computed_case():
    m = multilabel_metrics(HAND_TRUE, HAND_PROB, ["a", "b"])
    assert m["roc_auc_per_class"] == {"a": 1.0, "b": 0.5}
    assert m["auc"] == m["roc_auc_macro"] == pytest.approx(0.75)
    assert m["average_precision_per_class"] == {"a": 1.0, "b": 0.75}
    assert m["average_precision_macro"] == pytest.approx(0.875)
    assert m["f1_per_class"] == {"a": 1.0, "b": 0.0} and m["f1_macro"] == pytest.approx(0.5)
    assert m["f1_micro"] == pytest.approx(2 / 3)
    assert m["subset_accuracy"] == 0.5 and m["hamming_loss"] == 0.25
    assert m["prevalence_per_class"] == {"a": 0.5, "b": 0.5} and m["support_per_class"] == {"a": 2, "b": 2}
    assert (m["num_samples"], m["num_classes"], m["num_findings_with_auc"]) == (4, 2, 2)
    assert m["multi_label"] is True and m["class_names"] == ["a", "b"] and m["threshold"] == 0.5
    assert roc_auc_multilabel(HAND_TRUE, HAND_PROB) == pytest.approx(0.75)
    # a lower threshold predicts "b" in rows 0, 1 and 3 (0.2, 0.4, 0.3 >= 0.2): F1 of "b" = 2 * 1 / (2 + 2 + 1)
    assert multilabel_metrics(HAND_TRUE, HAND_PROB, threshold=0.2)["f1_per_class"]["1"] == pytest.approx(0.4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    t = (rng.random((40, 5)) < [0.1, 0.3, 0.5, 0.2, 0.6]).astype(int)
    t[0], t[1] = 1, 0  # every finding has positives and negatives
    prob = np.clip(0.35 * t + rng.random((40, 5)) * 0.7, 0, 1)
    m = multilabel_metrics(t, prob, threshold=0.5)
    pred = (prob >= 0.5).astype(int)
    assert m["roc_auc_macro"] == pytest.approx(skm.roc_auc_score(t, prob, average="macro"))
    assert m["roc_auc_micro"] == pytest.approx(skm.roc_auc_score(t, prob, average="micro"))
    assert list(m["roc_auc_per_class"].values()) == pytest.approx(skm.roc_auc_score(t, prob, average=None).tolist())
    ap = skm.average_precision_score(t, prob, average=None)
    assert list(m["average_precision_per_class"].values()) == pytest.approx(ap.tolist())
    assert m["average_precision_macro"] == pytest.approx(skm.average_precision_score(t, prob, average="macro"))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(t, pred, average="macro", zero_division=0))
    assert m["f1_micro"] == pytest.approx(skm.f1_score(t, pred, average="micro", zero_division=0))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(t, pred, average="macro", zero_division=0))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(t, pred, average="macro", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(t, pred))
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(t, pred))
    assert list(m["support_per_class"].values()) == t.sum(0).tolist()
    json.dumps(m, allow_nan=False)  # JSON-able as it is


def test_undefined_findings_are_left_out_of_the_means():
    t = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])  # finding 1 never present, finding 2 always
    prob = np.array([[0.8, 0.1, 0.9], [0.3, 0.2, 0.7], [0.6, 0.1, 0.8], [0.1, 0.4, 0.6]])
    m = multilabel_metrics(t, prob, ["x", "never", "always"])
    assert m["roc_auc_per_class"] == {"x": 1.0, "never": None, "always": None}
    assert m["roc_auc_macro"] == 1.0 and m["num_findings_with_auc"] == 1
    assert m["average_precision_per_class"]["never"] is None and m["average_precision_per_class"]["always"] == 1.0
    assert m["prevalence_per_class"] == {"x": 0.5, "never": 0.0, "always": 1.0}
    none = multilabel_metrics(t[:, 1:], prob[:, 1:])
    assert none["auc"] is None and none["roc_auc_macro"] is None and none["num_findings_with_auc"] == 0
    assert math.isnan(roc_auc_multilabel(t[:, 1:], prob[:, 1:]))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([[0, 2]], [[0.1, 0.2]]), {}, r"must be 0 or 1, got \[2.0\]"),
        (([[0, 1]], [[0.1, 0.2, 0.3]]), {}, r"shape of the labels \(1, 2\)"),
        (([[0, 1]], [[0.1, 0.2]]), {"threshold": 1.5}, "threshold"),
        (([[0, 1]], [[0.1, 0.2]]), {"class_names": ["a"]}, "one name per finding"),
        ((np.zeros((0, 2)), np.zeros((0, 2))), {}, "empty"),
        (([[0, 1]], [[0.1, float("nan")]]), {}, "NaN"),
    ],
)
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(*args, **kwargs)


def test_ignite_metrics_over_decollated_batches():
    rng = np.random.default_rng(3)
    t = (rng.random((11, 4)) < 0.4).astype(np.float32)
    t[0], t[1] = 1, 0
    prob = rng.random((11, 4))
    metrics = {"auc": MultilabelRocAuc(), "acc": MultilabelAccuracy()}
    state = _engine(None, metrics).run(_batches(prob, t), max_epochs=1)
    assert state.metrics["auc"] == pytest.approx(skm.roc_auc_score(t, prob, average="macro"))
    assert state.metrics["acc"] == pytest.approx(1 - skm.hamming_loss(t, prob >= 0.5))
    # one finding (C = 1, which ignite squeezes to (N,)) and the undefined case
    single = MultilabelRocAuc()
    single.update((torch.tensor([[0.2], [0.9], [0.4]]), torch.tensor([[0.0], [1.0], [1.0]])))
    assert single.compute() == pytest.approx(1.0)
    empty = MultilabelRocAuc()
    empty.update((torch.rand(3, 2), torch.zeros(3, 2)))
    assert math.isnan(empty.compute())


def test_writer_multi_label_files(tmp_path):
    rng = np.random.default_rng(4)
    t = (rng.random((10, 3)) < 0.5).astype(np.float32)
    t[0], t[1] = 1, 0
    logits = rng.normal(size=(10, 3)) + 2 * t - 1
    names = ["Atelectasis", "Effusion", "Mass"]
    writer = ClassificationMetricsWriter(tmp_path / "out", names, multi_label="true", extra={"checkpoint": "m.pt"})
    _engine(None, {"val_roc_auc": MultilabelRocAuc(), "": writer}).run(_batches(logits, t, size=4), max_epochs=1)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    prob = 1 / (1 + np.exp(-logits))  # logits go through a sigmoid
    expected = multilabel_metrics(t, prob, names)
    assert list(metrics)[0] == "auc" and metrics["roc_auc_macro"] == pytest.approx(expected["roc_auc_macro"])
    assert len(metrics["roc_auc_per_class"]) == 3 and metrics["f1_macro"] == pytest.approx(expected["f1_macro"])
    assert metrics["metrics"]["val_roc_auc"] == pytest.approx(expected["roc_auc_macro"])
    assert metrics["checkpoint"] == "m.pt" and metrics["multi_label"] is True and "confusion_matrix" not in metrics
    rows = list(csv.reader((tmp_path / "out" / "predictions.csv").open(encoding="utf-8")))
    assert rows[0] == ["source", *[f"{k}_{n}" for k in ("label", "pred", "prob") for n in names]] and len(rows) == 11
    table = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_array_equal(table[:, :3], t)
    np.testing.assert_array_equal(table[:, 3:6], prob >= 0.5)
    np.testing.assert_allclose(table[:, 6:], prob, rtol=1e-4)
    assert [r[0] for r in rows[1:]] == [f"img_{i}.png" for i in range(10)]
    assert (tmp_path / "out" / "roc_curves.png").read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / "out" / "confusion_matrix.png").exists()
    with pytest.raises(ValueError, match="must be 0 or 1"):
        _engine(None, {"": writer}).run(_batches(logits, 2 * t), max_epochs=1)
    with pytest.raises(ValueError, match="threshold"):
        ClassificationMetricsWriter(tmp_path, multi_label=True, threshold=2)


def test_roc_plot_takes_indicator_labels(tmp_path):
    prob = np.array([[0.8, 0.2], [0.6, 0.3], [0.1, 0.8]])
    path = plot_roc_curves([[1, 0], [0, 0], [0, 1]], prob, tmp_path / "roc.png", ["a", "b"], title="per finding")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="indicator labels"):
        plot_roc_curves([[1, 0, 0], [0, 0, 1], [0, 1, 0]], prob, tmp_path / "bad.png")
