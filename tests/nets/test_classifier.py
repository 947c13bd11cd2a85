from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import torch
from parameterized import parameterized

from medssl3d.nets import UNetEncoder, create_encoder, save_encoder, with_pretrained_encoder
from medssl3d.nets.classifier import Classifier, check_input_size, classification_head

# (encoder factory, classifier kwargs, input shape, expected head layer widths)
TEST_CASES_SHAPE = [
    (lambda: UNetEncoder(2, 1, base_filters=4, levels=2), {"num_classes": 5}, (2, 1, 20, 28), [(16, 5)]),
    (lambda: UNetEncoder(3, 1, base_filters=2, levels=1), {"num_classes": 3, "head": "mlp", "hidden": (8,)},
     (2, 1, 8, 6, 10), [(4, 8), (8, 3)]),
    (lambda: UNetEncoder(2, 3, base_filters=4, levels=2), {"num_classes": 2, "head": "MLP", "dropout": 0.0},
     (3, 3, 16, 16), [(16, 256), (256, 128), (128, 2)]),
    (lambda: create_encoder("resnet18", 2, 3), {"num_classes": 5, "head": "mlp"}, (2, 3, 32, 32),
     [(512, 256), (256, 128), (128, 5)]),
    (lambda: create_encoder("densenet121", 2, 3), {"num_classes": 5}, (2, 3, 32, 32), [(1024, 5)]),
]

ILL_CASES = [
    ({"num_classes": 0}, ValueError, "num_classes"),
    ({"num_classes": 2.5}, ValueError, "num_classes"),
    ({"num_classes": 3, "head": "transformer"}, ValueError, "transformer"),
    ({"num_classes": 3, "dropout": 1.0}, ValueError, "dropout"),
    ({"num_classes": 3, "head": "mlp", "hidden": ()}, ValueError, "hidden"),
    ({"num_classes": 3, "head": "mlp", "hidden": (8, 0)}, ValueError, "hidden"),
]


def _tiny() -> UNetEncoder:
    return UNetEncoder(2, 1, base_filters=4, levels=2)


class TestClassifier(unittest.TestCase):
    @parameterized.expand(TEST_CASES_SHAPE)
    def test_shape_and_head(self, make_encoder, kwargs, shape, widths):
        torch.manual_seed(0)
        net = Classifier(make_encoder(), **kwargs).eval()
        x = torch.rand(*shape)
        linear = [(m.in_features, m.out_features) for m in net.head if isinstance(m, torch.nn.Linear)]
        self.assertEqual(linear, widths)
        has_dropout = any(isinstance(m, torch.nn.Dropout) for m in net.head)
        self.assertEqual(has_dropout, kwargs.get("dropout", 0.3) > 0)
        with torch.no_grad():
            out = net(x)
            self.assertEqual(tuple(out.shape), (shape[0], kwargs["num_classes"]))
            # forward == head(global average pool of the encoder's features)
            pooled = net.encoder.forward_features(x).flatten(2).mean(-1)
            torch.testing.assert_close(out, net.head(pooled))
            torch.testing.assert_close(net.embed(x), pooled)

    def test_gradients_reach_the_encoder(self):
        net = Classifier(_tiny(), 3, head="mlp")
        loss = torch.nn.functional.cross_entropy(net(torch.rand(4, 1, 16, 16)), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        self.assertTrue(all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.encoder.parameters()))

    def test_dropout_only_in_training(self):
        torch.manual_seed(0)
        net = Classifier(_tiny(), 3, head="mlp", dropout=0.5)
        x = torch.rand(2, 1, 16, 16)
        net.eval()
        torch.testing.assert_close(net(x), net(x))
        net.train()
        self.assertFalse(torch.allclose(net.head(torch.ones(64, 16)), net.head(torch.ones(64, 16))))

    def test_pretrained_encoder_loads_under_prefix(self):
        torch.manual_seed(1)
        source = _tiny()
        with tempfile.TemporaryDirectory() as tmp:
            path = save_encoder(source, Path(tmp) / "encoder.pt", task="rotation")
            net = with_pretrained_encoder(Classifier(_tiny(), 5, head="mlp"), path)
            for key, value in source.state_dict().items():
                torch.testing.assert_close(net.state_dict()["encoder." + key], value)
            # a pretrained encoder of another width fails, naming the shape
            save_encoder(UNetEncoder(2, 1, base_filters=8, levels=2), Path(tmp) / "wide.pt")
            with self.assertRaisesRegex(ValueError, "shape"):
                with_pretrained_encoder(Classifier(_tiny(), 5), Path(tmp) / "wide.pt")

    def test_config(self):
        cfg = Classifier(_tiny(), 4, head="mlp", hidden=(8, 4), dropout=0.1).config()
        self.assertEqual((cfg["num_classes"], cfg["head"], cfg["hidden"], cfg["dropout"]), (4, "mlp", [8, 4], 0.1))
        self.assertEqual(cfg["encoder"]["base_filters"], 4)
        self.assertEqual((cfg["class_names"], cfg["multi_label"], cfg["input_size"]), (["0", "1", "2", "3"], False, []))
        named = Classifier(_tiny(), 2, class_names=("cat", "dog"), multi_label=True, input_size=(24, 32))
        self.assertEqual((named.class_names, named.multi_label, named.input_size), (["cat", "dog"], True, [24, 32]))
        self.assertEqual(Classifier(_tiny(), 2, input_size=16).input_size, [16, 16])

    def test_descriptive_attributes_checked(self):
        with self.assertRaisesRegex(ValueError, "class_names must hold num_classes=2 names"):
            Classifier(_tiny(), 2, class_names=["a", "b", "c"])
        with self.assertRaisesRegex(ValueError, "class_names must hold"):
            Classifier(_tiny(), 2, class_names="ab")
        with self.assertRaisesRegex(ValueError, "input_size must be 2 positive ints"):
            Classifier(_tiny(), 2, input_size=(8, 8, 8))

    @parameterized.expand(ILL_CASES)
    def test_ill_arguments(self, kwargs, error, message):
        with self.assertRaisesRegex(error, message):
            Classifier(_tiny(), **kwargs)

    def test_not_an_encoder(self):
        with self.assertRaisesRegex(TypeError, "forward_features"):
            Classifier(torch.nn.Linear(3, 3), 2)
        with self.assertRaisesRegex(ValueError, "in_features"):
            classification_head(0, 3)

    def test_check_input_size(self):
        net = Classifier(_tiny(), 3)
        self.assertEqual(check_input_size(net, 16), (4, 4))
        self.assertEqual(check_input_size(net.encoder, (8, 12)), (2, 3))
        self.assertTrue(net.training)  # mode restored
        with self.assertRaisesRegex(ValueError, r"image_size=3 is too small"):
            check_input_size(net, 3)
        with self.assertRaisesRegex(ValueError, "image_size"):
            check_input_size(net, (8, 8, 8))


if __name__ == "__main__":
    unittest.main()
