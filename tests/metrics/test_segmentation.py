from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice, from_engine
from monai.metrics import DiceMetric
from monai.transforms import AsDiscreted, Compose
from parameterized import parameterized

from medssl3d.metrics import SegmentationMetricsWriter, dice_summary

NAN = float("nan")

# (dice_per_class, class_names, expected summary)
TEST_CASES_SUMMARY = [
    (
        [0.9, 0.5, 0.7],
        ["bg", "a", "b"],
        {"dice_per_class": {"bg": 0.9, "a": 0.5, "b": 0.7}, "mean_dice_foreground": 0.6,
         "mean_dice_all_classes": 0.7, "num_classes": 3},
    ),
    (
        torch.tensor([1.0, 0.25, NAN, 0.75]),
        ["background", "liver", "absent", "tumour"],
        {"dice_per_class": {"background": 1.0, "liver": 0.25, "absent": None, "tumour": 0.75},
         "mean_dice_foreground": 0.5, "mean_dice_all_classes": 2.0 / 3.0, "num_classes": 4},
    ),
    (
        np.array([0.8, NAN]),
        ["bg", "fg"],
        {"dice_per_class": {"bg": 0.8, "fg": None}, "mean_dice_foreground": None,
         "mean_dice_all_classes": 0.8, "num_classes": 2},
    ),
    (
        0.5,
        ["bg"],
        {"dice_per_class": {"bg": 0.5}, "mean_dice_foreground": None, "mean_dice_all_classes": 0.5,
         "num_classes": 1},
    ),
]

ILL_CASES_SUMMARY = [
    ([0.9, 0.5], ["bg", "a", "b"], "2 values.*3 names"),
    (torch.ones(2, 3), ["bg", "a", "b"], r"1-D.*\(2, 3\)"),
    ([0.9, 0.5], ["bg", "bg"], "unique"),
]


def assert_summary_close(test: unittest.TestCase, got: dict, expected: dict) -> None:
    test.assertEqual(set(got), set(expected))
    test.assertEqual(got["num_classes"], expected["num_classes"])
    test.assertEqual(list(got["dice_per_class"]), list(expected["dice_per_class"]))
    for key in ("mean_dice_foreground", "mean_dice_all_classes"):
        if expected[key] is None:
            test.assertIsNone(got[key])
        else:
            test.assertAlmostEqual(got[key], expected[key], places=6)
    for name, value in expected["dice_per_class"].items():
        if value is None:
            test.assertIsNone(got["dice_per_class"][name])
        else:
            test.assertAlmostEqual(got["dice_per_class"][name], value, places=6)


class TestDiceSummary(unittest.TestCase):
    @parameterized.expand(TEST_CASES_SUMMARY)
    def test_values(self, dice, names, expected):
        got = dice_summary(dice, names)
        assert_summary_close(self, got, expected)
        json.dumps(got, allow_nan=False)  # JSON-able, no NaN

    def test_foreground_excludes_background(self):
        got = dice_summary([0.99, 0.2, 0.4], ["bg", "a", "b"])
        self.assertAlmostEqual(got["mean_dice_foreground"], 0.3)
        self.assertAlmostEqual(got["mean_dice_all_classes"], 1.59 / 3)

    @parameterized.expand(ILL_CASES_SUMMARY)
    def test_ill(self, dice, names, pattern):
        with self.assertRaisesRegex(ValueError, pattern):
            dice_summary(dice, names)


NUM_CLASSES = 4  # class 3 appears in no label and no prediction: its Dice is NaN
CLASS_NAMES = ["background", "organ", "lesion", "absent"]


def make_cases(num_cases: int = 3, size: tuple[int, int, int] = (8, 6, 10)) -> tuple[list[dict], torch.Tensor]:
    """Labels with classes 0-2 and predictions that are the labels with a few voxels changed.

    Returns the data dicts (image = the prediction's class indices, so the network can return its one-hot)
    and the (N, 1, *size) label tensor.
    """
    g = torch.Generator().manual_seed(0)
    cases, labels = [], []
    for i in range(num_cases):
        label = torch.zeros((1, *size), dtype=torch.long)
        label[:, 1:5, 1:5, 2:8] = 1
        label[:, 2 + i % 2 : 4, 2:4, 3 + i : 6] = 2
        pred = label.clone()
        flip = torch.rand(pred.shape, generator=g) < 0.15
        pred[flip] = torch.randint(0, 3, (int(flip.sum()),), generator=g)
        cases.append({"image": pred.float(), "label": label})
        labels.append(label)
    return cases, torch.stack(labels)


class FixedLogits(torch.nn.Module):
    """Returns the one-hot of the class indices it is given, as logits (B, NUM_CLASSES, *spatial)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * F.one_hot(x[:, 0].long(), NUM_CLASSES).movedim(-1, 1).float() + 0.0 * self.dummy


class TestSegmentationMetricsWriterEvaluator(unittest.TestCase):
    def test_supervised_evaluator(self):
        cases, labels = make_cases()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "eval" / "metrics.json"
            writer = SegmentationMetricsWriter(out, CLASS_NAMES, extra={"checkpoint": "model.pt", "num_cases": 3})
            evaluator = SupervisedEvaluator(
                device=torch.device("cpu"),
                val_data_loader=DataLoader(Dataset(cases), batch_size=2),
                network=FixedLogits(),
                postprocessing=Compose(
                    [
                        AsDiscreted(keys="pred", argmax=True, to_onehot=NUM_CLASSES),
                        AsDiscreted(keys="label", to_onehot=NUM_CLASSES),
                    ]
                ),
                key_val_metric={
                    "val_mean_dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))
                },
                additional_metrics={
                    "dice_per_class": MeanDice(
                        include_background=True, reduction="mean_batch", output_transform=from_engine(["pred", "label"])
                    )
                },
                val_handlers=[writer],
            )
            evaluator.run()
            # what MONAI's handler leaves in engine.state.metrics: a (C,) tensor
            per_class = evaluator.state.metrics["dice_per_class"]
            self.assertIsInstance(per_class, torch.Tensor)
            self.assertEqual(tuple(per_class.shape), (NUM_CLASSES,))
            self.assertEqual(sorted(p.name for p in out.parent.iterdir()), ["metrics.json"])  # no temp file left
            got = json.loads(out.read_text())

        # reference: DiceMetric directly on the same one-hot tensors
        pred = F.one_hot(torch.stack([c["image"][0].long() for c in cases]), NUM_CLASSES).movedim(-1, 1)
        truth = F.one_hot(labels[:, 0], NUM_CLASSES).movedim(-1, 1)
        ref = DiceMetric(include_background=True, reduction="mean_batch")
        ref(pred, truth)
        expected = ref.aggregate()
        torch.testing.assert_close(per_class, expected)
        # MONAI's mean_batch gives 0.0 to a class that is empty in every case; the per-case values are NaN
        self.assertEqual(expected[3].item(), 0.0)
        per_case = DiceMetric(include_background=True, reduction="none")(pred, truth)
        self.assertTrue(torch.isnan(per_case[:, 3]).all())
        self.assertFalse(torch.isnan(per_case[:, :3]).any())

        self.assertEqual(got["num_classes"], NUM_CLASSES)
        for i, name in enumerate(CLASS_NAMES[:3]):
            self.assertAlmostEqual(got["dice_per_class"][name], expected[i].item(), places=5)
        self.assertIsNone(got["dice_per_class"]["absent"])
        fg = expected[1:3].mean().item()
        self.assertAlmostEqual(got["mean_dice_foreground"], fg, places=5)
        self.assertAlmostEqual(got["mean_dice_all_classes"], expected[:3].mean().item(), places=5)
        # background Dice is high: including it inflates the mean, so the two must differ
        self.assertGreater(got["mean_dice_all_classes"] - got["mean_dice_foreground"], 0.01)
        # the key metric (foreground, mean over cases and classes) is written too and agrees
        self.assertAlmostEqual(got["metrics"]["val_mean_dice"], fg, places=5)
        self.assertNotIn("dice_per_class", got["metrics"])
        self.assertEqual(got["checkpoint"], "model.pt")
        self.assertEqual(got["num_cases"], 3)


def run_fake_engine(metrics: dict, writer: SegmentationMetricsWriter) -> Engine:
    engine = Engine(lambda e, b: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _set_metrics(e: Engine) -> None:
        e.state.metrics.update(metrics)

    writer.attach(engine)
    writer.attach(engine)  # attaching twice registers once
    engine.run([0], max_epochs=1)
    return engine


class TestSegmentationMetricsWriter(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.out = Path(self._tmp.name) / "metrics.json"

    def tearDown(self):
        self._tmp.cleanup()

    def test_scalars_and_nan(self):
        metrics = {
            "dice": torch.tensor([0.9, 0.6, NAN]),
            "acc": torch.tensor(0.5),
            "loss": NAN,
            "count": 7,
            "matrix": torch.ones(2, 2),  # not a scalar: left out
        }
        run_fake_engine(metrics, SegmentationMetricsWriter(self.out, ["bg", "a", "b"], metric_name="dice"))
        got = json.loads(self.out.read_text())
        self.assertEqual(got["metrics"], {"acc": 0.5, "loss": None, "count": 7})
        self.assertEqual(got["dice_per_class"]["b"], None)
        self.assertAlmostEqual(got["mean_dice_foreground"], 0.6, places=6)
        self.assertAlmostEqual(got["mean_dice_all_classes"], 0.75, places=6)

    def test_absent_class_from_details(self):
        metrics = {"dice_per_class": torch.tensor([0.9, 0.6, 0.0])}
        details = {"dice_per_class": torch.tensor([[0.8, 0.6, NAN], [1.0, NAN, NAN]])}
        writer = SegmentationMetricsWriter(self.out, ["bg", "a", "b"])
        got = writer.summary(metrics, details)
        self.assertIsNone(got["dice_per_class"]["b"])  # NaN in every case: absent, not 0.0
        self.assertAlmostEqual(got["dice_per_class"]["a"], 0.6, places=6)
        self.assertAlmostEqual(got["mean_dice_foreground"], 0.6, places=6)
        got = writer.summary(metrics)  # without details the value is taken as given
        self.assertEqual(got["dice_per_class"]["b"], 0.0)

    def test_default_class_names_and_labelled_dict(self):
        run_fake_engine({"dice_per_class": {"label_0": 1.0, "label_1": 0.5}}, SegmentationMetricsWriter(self.out))
        got = json.loads(self.out.read_text())
        self.assertEqual(got["dice_per_class"], {"class_0": 1.0, "class_1": 0.5})

    def test_missing_metric(self):
        writer = SegmentationMetricsWriter(self.out, ["bg", "a"])
        with self.assertRaisesRegex(ValueError, r"'dice_per_class' not found.*\['other'\]"):
            run_fake_engine({"other": 1.0}, writer)
        self.assertFalse(self.out.exists())

    def test_wrong_number_of_classes(self):
        writer = SegmentationMetricsWriter(self.out, ["bg", "a", "b"])
        with self.assertRaisesRegex(ValueError, "2 values.*3 names"):
            run_fake_engine({"dice_per_class": torch.tensor([0.9, 0.1])}, writer)

    def test_bad_extra(self):
        with self.assertRaisesRegex(TypeError, "extra"):
            SegmentationMetricsWriter(self.out, ["bg", "a"], extra={"path": Path("/x")})

    def test_only_rank_zero_writes(self):
        metrics = {"dice_per_class": torch.tensor([0.9, 0.1])}
        fake_dist = mock.Mock(is_available=lambda: True, is_initialized=lambda: True, get_rank=lambda: 1)
        with mock.patch("medssl3d.utils.distributed.dist", fake_dist):
            run_fake_engine(metrics, SegmentationMetricsWriter(self.out, ["bg", "a"]))
        self.assertFalse(self.out.exists())
        fake_dist.get_rank = lambda: 0
        with mock.patch("medssl3d.utils.distributed.dist", fake_dist):
            run_fake_engine(metrics, SegmentationMetricsWriter(self.out, ["bg", "a"]))
        self.assertTrue(self.out.exists())


if __name__ == "__main__":
    unittest.main()
