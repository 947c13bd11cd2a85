"""Classification metrics against scikit-learn and hand-computed values; the QWK ignite metric; the report writer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from sklearn import metrics as skm

from medssl3d.metrics.classification import (
    MulticlassAccuracy,
    MulticlassRocAuc,
    QuadraticKappa,
    classification_metrics,
    cohen_kappa,
    roc_auc_ovr,
)
from medssl3d.metrics.classification_writer import ClassificationMetricsWriter
from medssl3d.reports.plots import plot_confusion_matrix, plot_roc_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# y_true, y_pred, C, {key: hand value}. Case 1 by hand: confusion [[1,0,0],[0,0,1],[0,1,1]], marginals (1,1,2)
# both ways; quadratic weights (i-j)^2/4 give observed 0.5 vs expected 1.375 -> 1 - 0.5/1.375 = 7/11; linear
# weights |i-j|/2 give 1 - 1/1.75 = 3/7; unweighted p_o = 0.5, p_e = 6/16 -> (0.5-0.375)/0.625 = 0.2.
HAND_CASES = [
    ([0, 1, 2, 2], [0, 2, 2, 1], 3, {"qwk": 7 / 11, "kappa_linear": 3 / 7, "kappa": 0.2, "accuracy": 0.5,
                                     "balanced_accuracy": 0.5}),
    ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], 5, {"qwk": 1.0, "kappa_linear": 1.0, "kappa": 1.0, "accuracy": 1.0}),
    # one-grade misses cost little under quadratic weights, a 0 <-> 4 swap costs the most
    ([0, 0, 4, 4], [4, 4, 0, 0], 5, {"qwk": -1.0, "accuracy": 0.0}),
    # every label and prediction the same class: kappa is 0/0 -> None
    ([2, 2, 2], [2, 2, 2], 5, {"qwk": None, "kappa_linear": None, "kappa": None, "accuracy": 1.0}),
]


@pytest.mark.parametrize("y_true, y_pred, n, expected", HAND_CASES)
def test_hand_values(y_true, y_pred, n, expected):
    m = classification_metrics(y_true, y_pred, num_classes=n)
    for key, value in expected.items():
        assert m[key] == (None if value is None else pytest.approx(value)), key


def test_per_class_recall_confusion_and_absent_class():
    m = classification_metrics([0, 1, 2, 2], [0, 2, 2, 1], num_classes=4, class_names=["a", "b", "c", "d"])
    assert m["recall_per_class"] == {"a": 1.0, "b": 0.0, "c": 0.5, "d": None}
    assert m["support_per_class"] == {"a": 1, "b": 1, "c": 2, "d": 0}
    assert m["confusion_matrix"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert m["num_samples"] == 4 and m["num_classes"] == 4 and m["class_names"] == ["a", "b", "c", "d"]
    assert m["roc_auc_ovr"] is None and set(m["roc_auc_per_class"].values()) == {None}  # no probabilities given


def test_roc_auc_by_hand_and_undefined_for_an_absent_class():
    # class 1 scores: positives 0.35, 0.8 vs negatives 0.1, 0.4 -> 3 of 4 pairs ranked right
    prob = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    m = classification_metrics([0, 0, 1, 1], y_prob=prob)
    assert m["roc_auc_per_class"]["1"] == pytest.approx(0.75) and m["roc_auc_per_class"]["0"] == pytest.approx(0.75)
    assert m["roc_auc_ovr"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)  # y_pred = argmax: [0, 0, 0, 1]
    three = np.concatenate([prob * 0.9, np.full((4, 1), 0.1)], axis=1)
    m3 = classification_metrics([0, 0, 1, 1], y_prob=three)
    assert m3["roc_auc_per_class"]["2"] is None and m3["roc_auc_ovr"] is None
    assert m3["roc_auc_per_class"]["1"] == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    n, c = 60, 5
    y = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])  # every class present
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = prob.argmax(1)
    m = classification_metrics(torch.as_tensor(y), y_prob=torch.as_tensor(prob))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["qwk"] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="quadratic"))
    assert m["kappa_linear"] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="linear"))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (m["precision_macro"], m["recall_macro"], m["f1_macro"]) == pytest.approx((p, r, f))
    assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, prob, multi_class="ovr"))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    recall = skm.recall_score(y, pred, average=None)
    assert list(m["recall_per_class"].values()) == pytest.approx(recall.tolist())
    json.dumps(m, allow_nan=False)  # JSON-able


ILL_CASES = [
    (dict(y_true=[], y_pred=[]), "empty"),
    (dict(y_true=[0, 1], y_pred=[0]), "entries"),
    (dict(y_true=[0, 5], y_pred=[0, 1], num_classes=3), r"outside \[0, 2\]"),
    (dict(y_true=[0, 1]), "y_pred"),
    (dict(y_true=[0, 1], y_prob=[[0.5, 0.5]]), r"\(N, C\)"),
    (dict(y_true=[0.5, 1], y_pred=[0, 1]), "integer"),
    (dict(y_true=[0, 1], y_pred=[0, 1], class_names=["a"], num_classes=2), "one name per class"),
]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(**kwargs)


def test_cohen_kappa_weights_and_errors():
    assert cohen_kappa([0, 1, 2, 2], [0, 2, 2, 1], 3, None) == pytest.approx(0.2)
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([0, 1], [0, 1], weights="cubic")


def _engine(batches, attach):
    """An ignite engine whose output is MONAI's decollated list of {"pred", "label"} dicts."""

    def step(engine, batch):
        engine.state.batch = [{"source": s} for s in batch["source"]]
        return [{"pred": p, "label": l} for p, l in zip(batch["pred"], batch["label"])]

    engine = Engine(step)
    for name, obj in attach.items():
        obj.attach(engine, name) if name else obj.attach(engine)
    return engine


def _batches(prob, labels, size=3):
    out = []
    for i in range(0, len(labels), size):
        out.append({
            "pred": torch.as_tensor(prob[i : i + size], dtype=torch.float32),
            "label": torch.as_tensor(labels[i : i + size]),
            "source": [f"img_{j}.png" for j in range(i, min(i + size, len(labels)))],
        })
    return out


def test_quadratic_kappa_metric_over_decollated_batches():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 11)
    prob = rng.random((11, 5))
    engine = _engine(_batches(prob, labels), {"qwk": QuadraticKappa(num_classes=5), "acc": MulticlassAccuracy(),
                                              "lin": QuadraticKappa(num_classes=5, weights="linear")})
    state = engine.run(_batches(prob, labels), max_epochs=1)
    pred = prob.argmax(1)
    qwk = skm.cohen_kappa_score(labels, pred, weights="quadratic", labels=range(5))
    assert state.metrics["qwk"] == pytest.approx(qwk)
    assert state.metrics["lin"] == pytest.approx(skm.cohen_kappa_score(labels, pred, weights="linear", labels=range(5)))
    assert state.metrics["acc"] == pytest.approx(float(np.mean(pred == labels)))
    # plain (N, C) / (N,) tensors work too
    metric = QuadraticKappa()
    metric.update((torch.eye(3), torch.tensor([0, 1, 2])))
    assert metric.compute() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights"):
        QuadraticKappa(weights="squared")


def test_roc_auc_metric_binary_and_multiclass():
    assert roc_auc_ovr([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]]) == pytest.approx(0.75)  # by hand
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 13)
    prob = rng.random((13, 2))
    prob /= prob.sum(1, keepdims=True)
    engine = _engine(_batches(prob, labels), {"auc": MulticlassRocAuc()})
    state = engine.run(_batches(prob, labels), max_epochs=1)
    assert state.metrics["auc"] == pytest.approx(skm.roc_auc_score(labels, prob[:, 1]))
    assert state.metrics["auc"] == pytest.approx(classification_metrics(labels, y_prob=prob)["roc_auc_ovr"])
    labels3, prob3 = rng.integers(0, 3, 20), rng.dirichlet(np.ones(3), 20)
    expected = skm.roc_auc_score(labels3, prob3, multi_class="ovr", average="macro")
    assert roc_auc_ovr(labels3, prob3) == pytest.approx(expected)
    assert np.isnan(roc_auc_ovr([1, 1, 1], np.eye(3)[:, :2]))  # class 0 absent: undefined
    with pytest.raises(ValueError, match="shape"):
        roc_auc_ovr([0, 1], [0.2, 0.8])


def test_metrics_writer_files(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.array([0, 1, 2, 3, 4, 0, 1, 2, 2, 0])
    logits = rng.normal(size=(10, 5)) + 2 * np.eye(5)[labels]
    names = ["No DR", "Mild", "Moderate", "Severe", "PDR"]
    writer = ClassificationMetricsWriter(tmp_path / "out", names, extra={"checkpoint": "model.pt"})
    engine = _engine(None, {"val_qwk": QuadraticKappa(5), "": writer})
    engine.run(_batches(logits, labels, size=4), max_epochs=1)  # logits: soft-maxed by the writer
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = classification_metrics(labels, y_prob=prob, class_names=names)
    assert list(metrics)[0] == "qwk" and metrics["qwk"] == pytest.approx(expected["qwk"])
    assert metrics["recall_per_class"] == pytest.approx(expected["recall_per_class"])
    assert metrics["roc_auc_ovr"] == pytest.approx(expected["roc_auc_ovr"])
    assert metrics["metrics"]["val_qwk"] == pytest.approx(expected["qwk"])
    assert metrics["checkpoint"] == "model.pt" and metrics["num_samples"] == 10
    rows = list(csv.reader((tmp_path / "out" / "predictions.csv").open()))
    assert rows[0][:3] == ["source", "label", "pred"] and len(rows) == 11
    assert [r[0] for r in rows[1:]] == [f"img_{i}.png" for i in range(10)]
    assert [int(r[2]) for r in rows[1:]] == prob.argmax(1).tolist()
    np.testing.assert_allclose(np.array([[float(v) for v in r[3:]] for r in rows[1:]]), prob, rtol=1e-4)
    for png in ("confusion_matrix.png", "roc_curves.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == PNG_MAGIC
    # a second run starts afresh (reset at STARTED)
    engine.run(_batches(logits[:5], labels[:5]), max_epochs=1)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_samples"] == 5


def test_metrics_writer_errors(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        ClassificationMetricsWriter(tmp_path, extra={"path": tmp_path})
    writer = ClassificationMetricsWriter(tmp_path, ["a", "b"])
    with pytest.raises(ValueError, match="3 class scores but class_names has 2"):
        writer.summary(np.eye(3), np.array([0, 1, 2]))


def test_plots_write_png_and_check_shapes(tmp_path):
    cm_path = plot_confusion_matrix([[3, 1], [0, 2]], tmp_path / "a" / "cm.png", ["neg", "pos"])
    assert cm_path.read_bytes()[:8] == PNG_MAGIC
    prob = np.array([[0.8, 0.2, 0.0], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    roc = plot_roc_curves([0, 0, 1], prob, tmp_path / "roc.png")
    assert roc.read_bytes()[:8] == PNG_MAGIC  # class 2 is absent: listed as undefined, still drawn
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix([[1, 2, 3]], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="one name per class"):
        plot_confusion_matrix(np.eye(2), tmp_path / "bad.png", ["x"])
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "bad.png").exists()
