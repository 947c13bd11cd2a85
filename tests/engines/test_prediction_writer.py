"""ClassificationPredictionWriter on a real MONAI SupervisedEvaluator over unlabelled items."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd

from medssl3d.engines import ClassificationPredictionWriter

NAMES = ["No DR", "Mild", "Severe"]


def _items(n=7, features=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g) * 3
    return x, [{"image": x[i], "source": f"/data/img_{i}.png"} for i in range(n)]


def _net(outputs=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, outputs)


def _run(net, items, writer, postprocessing=None, batch_size=3):
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(items, batch_size=batch_size),
        network=net,
        postprocessing=postprocessing,
        val_handlers=[writer],
    )
    evaluator.run()
    return evaluator


def _read(path):
    rows = list(csv.reader(path.open()))
    return rows[0], rows[1:]


@pytest.mark.parametrize("softmax", [True, False], ids=["probabilities", "logits"])
def test_single_label_rows(tmp_path, softmax):
    x, items = _items()
    net = _net()
    out = tmp_path / "run" / "sub" / "predictions.csv"  # parent folders are created
    post = Activationsd(keys="pred", softmax=True) if softmax else None
    _run(net, items, ClassificationPredictionWriter(out, NAMES), post)
    with torch.no_grad():
        expected = torch.softmax(net(x), dim=1).numpy()
    header, rows = _read(out)
    assert header == ["source", "pred", "pred_class", "prob_No DR", "prob_Mild", "prob_Severe"]
    assert [r[0] for r in rows] == [f"/data/img_{i}.png" for i in range(7)]
    np.testing.assert_allclose(np.array([[float(v) for v in r[3:]] for r in rows]), expected, atol=1e-5, rtol=0)
    argmax = expected.argmax(1)
    assert len(set(argmax.tolist())) > 1  # the check below can tell classes apart
    assert [int(r[1]) for r in rows] == argmax.tolist()
    assert [r[2] for r in rows] == [NAMES[k] for k in argmax]


def test_multi_label_thresholds(tmp_path):
    x, items = _items(n=9, seed=1)
    net = _net(seed=1)
    out = tmp_path / "findings.csv"
    writer = ClassificationPredictionWriter(out, ["effusion", "nodule", "mass"], multi_label="true", threshold=0.7)
    _run(net, items, writer, Activationsd(keys="pred", sigmoid=True), batch_size=4)
    with torch.no_grad():
        expected = torch.sigmoid(net(x)).numpy()
    header, rows = _read(out)
    assert header == ["source", "pred_effusion", "pred_nodule", "pred_mass", "prob_effusion", "prob_nodule",
                      "prob_mass"]
    prob = np.array([[float(v) for v in r[4:]] for r in rows])
    np.testing.assert_allclose(prob, expected, atol=1e-5, rtol=0)
    hits = np.array([[int(v) for v in r[1:4]] for r in rows])
    np.testing.assert_array_equal(hits, (expected >= 0.7).astype(int))
    assert hits.any() and not hits.all()
    assert ((expected >= 0.5) & (expected < 0.7)).any()  # 0.5 would have given other rows
    # logits (no sigmoid post-processing) give the same file
    _run(net, items, writer, None, batch_size=4)
    assert _read(out)[1] == rows


def test_rows_numbered_without_sources_and_reset_between_runs(tmp_path):
    x, items = _items(n=5)
    out = tmp_path / "p.csv"
    writer = ClassificationPredictionWriter(out, NAMES, source_key=None)
    net = _net()
    _run(net, items, writer)
    assert [r[0] for r in _read(out)[1]] == ["0", "1", "2", "3", "4"]
    _run(net, items[:2], writer)
    assert len(_read(out)[1]) == 2


def test_mismatch_and_empty_errors(tmp_path):
    _, items = _items(n=4)
    out = tmp_path / "p.csv"
    writer = ClassificationPredictionWriter(out, ["a", "b"])
    with pytest.raises(ValueError, match=r"gives 3 scores per image but class_names has 2 names \(\['a', 'b'\]\)"):
        _run(_net(), items, writer)
    assert not out.exists()
    writer.reset()
    with pytest.raises(ValueError, match="saw no predictions"):
        writer(None)
    with pytest.raises(ValueError, match="threshold"):
        ClassificationPredictionWriter(out, NAMES, threshold=1.5)
    with pytest.raises(TypeError, match="string"):
        ClassificationPredictionWriter(out, "abc")
    with pytest.raises(ValueError, match="class_names"):
        ClassificationPredictionWriter(out, [])
