from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

import torch
import torch.nn.functional as F
from parameterized import parameterized

from medssl3d.nets import UNet, UNetDecoder, UNetEncoder, load_encoder_weights, save_encoder

# (kwargs, input shape, expected logits shape, expected deepest feature shape)
TEST_CASES_SHAPE = [
    (
        {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "base_filters": 4, "levels": 3},
        (2, 1, 32, 16, 48),
        (2, 3, 32, 16, 48),
        (2, 32, 4, 2, 6),
    ),
    (
        {"spatial_dims": 3, "in_channels": 2, "out_channels": 2, "base_filters": 4, "levels": 4},
        (2, 2, 32, 16, 48),
        (2, 2, 32, 16, 48),
        (2, 64, 2, 1, 3),
    ),
    (
        {"spatial_dims": 2, "in_channels": 1, "out_channels": 4, "base_filters": 8, "levels": 3},
        (2, 1, 32, 48),
        (2, 4, 32, 48),
        (2, 64, 4, 6),
    ),
    (
        {"spatial_dims": 2, "in_channels": 3, "out_channels": 2, "base_filters": 4, "levels": 2,
         "upsample": "nontrainable", "norm": ("instance", {"affine": True}), "dropout": 0.1},
        (1, 3, 12, 20),
        (1, 2, 12, 20),
        (1, 16, 3, 5),
    ),
]

ILL_CASES_ARGS = [
    ({"spatial_dims": 1}, "spatial_dims"),
    ({"spatial_dims": 4}, "spatial_dims"),
    ({"in_channels": 0}, "in_channels"),
    ({"base_filters": -4}, "base_filters"),
    ({"base_filters": 2.5}, "base_filters"),
    ({"levels": 0}, "levels"),
    ({"dropout": 1.0}, "dropout"),
    ({"upsample": "bogus"}, "bogus"),
    ({"out_channels": 0}, "out_channels"),
]

# (encoder kwargs, bad input shape, text the message must contain)
ILL_CASES_INPUT = [
    ({"spatial_dims": 3, "levels": 3, "base_filters": 2}, (1, 1, 20, 16, 16), r"\(20, 16, 16\).*8"),
    ({"spatial_dims": 3, "levels": 2, "base_filters": 2}, (1, 1, 16, 16, 18), r"\(16, 16, 18\).*4"),
    ({"spatial_dims": 2, "levels": 2, "base_filters": 2}, (1, 1, 16, 16, 16), r"\(B, C, H, W\)"),
    ({"spatial_dims": 2, "levels": 2, "base_filters": 2, "in_channels": 1}, (1, 3, 16, 16), "in_channels=3"),
]


def expected_num_params(spatial_dims: int, in_channels: int, out_channels: int, base: int, levels: int) -> int:
    """Slow-but-obvious parameter count of UNet (BatchNorm, biases, deconv up-sampling)."""
    k3, k2 = 3**spatial_dims, 2**spatial_dims

    def conv_bn(c_in: int, c_out: int) -> int:
        return c_in * c_out * k3 + c_out + 2 * c_out  # weights + bias + BatchNorm (weight, bias)

    ch = [base * 2**i for i in range(levels + 1)]
    enc = conv_bn(in_channels, ch[0]) + conv_bn(ch[0], ch[0])
    enc += sum(conv_bn(ch[i - 1], ch[i]) + conv_bn(ch[i], ch[i]) for i in range(1, levels + 1))
    dec = sum(
        ch[i] * ch[i - 1] * k2 + ch[i - 1]  # transposed conv, kernel 2
        + conv_bn(2 * ch[i - 1], ch[i - 1]) + conv_bn(ch[i - 1], ch[i - 1])
        for i in range(1, levels + 1)
    )
    dec += ch[0] * out_channels + out_channels  # 1x1 head
    return enc + dec


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class TestUNetShapes(unittest.TestCase):
    @parameterized.expand(TEST_CASES_SHAPE)
    def test_shapes(self, kwargs, in_shape, out_shape, deep_shape):
        net = UNet(**kwargs)
        x = torch.randn(in_shape)
        with torch.no_grad():
            self.assertEqual(tuple(net(x).shape), out_shape)
            feats = net.encoder(x)
            self.assertEqual(tuple(net.encoder.forward_features(x).shape), deep_shape)
        levels, base = kwargs["levels"], kwargs["base_filters"]
        self.assertEqual(len(feats), levels + 1)
        self.assertEqual(net.encoder.feature_channels, tuple(base * 2**i for i in range(levels + 1)))
        self.assertEqual(net.encoder.out_channels, base * 2**levels)
        for i, f in enumerate(feats):
            self.assertEqual(f.shape[1], base * 2**i)
            self.assertEqual(tuple(f.shape[2:]), tuple(s // 2**i for s in in_shape[2:]))

    def test_submodules_and_config(self):
        net = UNet(spatial_dims=3, in_channels=2, out_channels=3, base_filters=4, levels=2)
        self.assertEqual([name for name, _ in net.named_children()], ["encoder", "decoder"])
        self.assertIsInstance(net.encoder, UNetEncoder)
        self.assertIsInstance(net.decoder, UNetDecoder)
        self.assertEqual(
            net.encoder.config(),
            {"name": "unet", "spatial_dims": 3, "in_channels": 2, "base_filters": 4, "levels": 2, "norm": "batch",
             "act": "relu", "dropout": 0.0},
        )
        self.assertEqual(net.config(), {"out_channels": 3, "upsample": "deconv", "encoder": net.encoder.config()})

    def test_num_params_hand_computed(self):
        # 2D, 1 -> 2 channels, base 2, one level; every term written out:
        enc = (1 * 2 * 9 + 2 + 4) + (2 * 2 * 9 + 2 + 4) + (2 * 4 * 9 + 4 + 8) + (4 * 4 * 9 + 4 + 8)  # 306
        dec = (4 * 2 * 4 + 2) + (4 * 2 * 9 + 2 + 4) + (2 * 2 * 9 + 2 + 4) + (2 * 2 + 2)  # 160
        net = UNet(spatial_dims=2, in_channels=1, out_channels=2, base_filters=2, levels=1)
        self.assertEqual(num_params(net.encoder), enc)
        self.assertEqual(num_params(net.decoder), dec)
        self.assertEqual(num_params(net), 466)

    @parameterized.expand([(3, 1, 3, 16, 4), (3, 2, 2, 4, 3), (2, 3, 5, 8, 2)])
    def test_num_params_formula(self, spatial_dims, in_channels, out_channels, base, levels):
        net = UNet(spatial_dims, in_channels, out_channels, base_filters=base, levels=levels)
        self.assertEqual(num_params(net), expected_num_params(spatial_dims, in_channels, out_channels, base, levels))

    def test_overfit_one_sample(self):
        torch.manual_seed(0)
        net = UNet(spatial_dims=3, in_channels=1, out_channels=2, base_filters=4, levels=2)
        grid = torch.stack(torch.meshgrid(*[torch.arange(16.0)] * 3, indexing="ij"))
        label = (((grid - 7.5) ** 2).sum(0) < 25).long()[None]  # a ball, (1, 16, 16, 16)
        image = label[:, None].float() + 0.3 * torch.randn(1, 1, 16, 16, 16)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        losses = []
        for _ in range(25):
            opt.zero_grad()
            loss = F.cross_entropy(net(image), label)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], 0.5 * losses[0])


class TestUNetIllArgs(unittest.TestCase):
    @parameterized.expand(ILL_CASES_ARGS)
    def test_ill_args(self, kwargs, pattern):
        with self.assertRaisesRegex(ValueError, pattern):
            UNet(**kwargs)

    def test_decoder_needs_two_scales(self):
        with self.assertRaisesRegex(ValueError, "feature_channels"):
            UNetDecoder(3, (16,), 2)

    @parameterized.expand(ILL_CASES_INPUT)
    def test_ill_input(self, kwargs, shape, pattern):
        enc = UNetEncoder(**kwargs)
        with self.assertRaisesRegex(ValueError, pattern):
            enc(torch.zeros(shape))

    def test_forward_features_needs_only_minimum_size(self):
        enc = UNetEncoder(spatial_dims=3, in_channels=1, base_filters=2, levels=2)
        # 18 is not a multiple of 4, but pooled features do not need the decoder's divisibility
        self.assertEqual(tuple(enc.forward_features(torch.zeros(2, 1, 18, 16, 5)).shape), (2, 8, 4, 4, 1))
        with self.assertRaisesRegex(ValueError, r"\(16, 16, 3\).*at least 2\*\*levels = 4"):
            enc.forward_features(torch.zeros(2, 1, 16, 16, 3))
        with self.assertRaisesRegex(ValueError, "not divisible"):
            enc(torch.zeros(2, 1, 18, 16, 8))


class TestEncoderWeights(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)
        self.kwargs = {"spatial_dims": 3, "in_channels": 1, "base_filters": 4, "levels": 2}

    def tearDown(self):
        self._tmp.cleanup()

    def _pretrained_encoder(self) -> UNetEncoder:
        torch.manual_seed(1)
        enc = UNetEncoder(**self.kwargs)
        enc.train()
        with torch.no_grad():  # perturb weights and BatchNorm running statistics
            for p in enc.parameters():
                p.add_(torch.randn_like(p))
            enc(torch.randn(2, 1, 8, 8, 8))
        return enc

    def test_save_and_load_into_unet(self):
        enc = self._pretrained_encoder()
        path = save_encoder(enc, self.tmp / "sub" / "encoder.pt", task="jigsaw", config={"lr": 0.1, "size": (8, 8)},
                            epoch=3)
        self.assertEqual([p.name for p in path.parent.iterdir()], ["encoder.pt"])  # no temp file left
        obj = torch.load(path, map_location="cpu", weights_only=True)
        self.assertEqual(set(obj), {"model", "task", "config", "encoder_config", "epoch"})
        self.assertEqual(obj["task"], "jigsaw")
        self.assertEqual(obj["config"], {"lr": 0.1, "size": [8, 8]})
        self.assertEqual(obj["encoder_config"]["base_filters"], 4)

        net = UNet(out_channels=3, **self.kwargs)
        decoder_before = {k: v.clone() for k, v in net.decoder.state_dict().items()}
        loaded = load_encoder_weights(net, path)
        self.assertEqual(loaded, sorted("encoder." + k for k in enc.state_dict()))
        for k, v in enc.state_dict().items():
            torch.testing.assert_close(net.encoder.state_dict()[k], v, rtol=0, atol=0)
        for k, v in net.decoder.state_dict().items():
            torch.testing.assert_close(v, decoder_before[k], rtol=0, atol=0)

    def test_load_into_bare_encoder_and_raw_state_dict(self):
        enc = self._pretrained_encoder()
        other = UNetEncoder(**self.kwargs)
        loaded = load_encoder_weights(other, enc.state_dict(), prefix="")
        self.assertEqual(len(loaded), len(enc.state_dict()))
        torch.testing.assert_close(other.blocks[2].conv_1.conv.weight, enc.blocks[2].conv_1.conv.weight)
        with self.assertRaisesRegex(ValueError, "prefix=''"):
            load_encoder_weights(UNetEncoder(**self.kwargs), enc.state_dict())  # default prefix "encoder."

    def test_full_unet_checkpoint(self):
        src = UNet(out_channels=2, **self.kwargs)
        with torch.no_grad():
            for p in src.parameters():
                p.add_(1.0)
        dst = UNet(out_channels=5, **self.kwargs)  # different head: only the encoder must move
        decoder_before = {k: v.clone() for k, v in dst.decoder.state_dict().items()}
        path = self.tmp / "unet.pt"
        torch.save({"model": src.state_dict(), "epoch": 10}, path)
        for source in (src.state_dict(), path):
            loaded = load_encoder_weights(dst, source)
            self.assertTrue(all(k.startswith("encoder.") for k in loaded))
            for k, v in src.encoder.state_dict().items():
                torch.testing.assert_close(dst.encoder.state_dict()[k], v, rtol=0, atol=0)
            for k, v in dst.decoder.state_dict().items():
                torch.testing.assert_close(v, decoder_before[k], rtol=0, atol=0)

    def test_ddp_prefix(self):
        enc = self._pretrained_encoder()
        state = {"module." + k: v for k, v in enc.state_dict().items()}
        net = UNet(**self.kwargs)
        self.assertEqual(len(load_encoder_weights(net, state)), len(state))

    def test_mismatch_base_filters(self):
        enc = self._pretrained_encoder()
        path = save_encoder(enc, self.tmp / "encoder.pt")
        net = UNet(spatial_dims=3, in_channels=1, base_filters=8, levels=2)
        with self.assertRaisesRegex(ValueError, r"'encoder\.blocks\.0\.conv_0\.conv\.weight'.*\(4, 1, 3, 3, 3\).*"
                                                r"\(8, 1, 3, 3, 3\).*base_filters"):
            load_encoder_weights(net, path)

    def test_mismatch_levels_strict_and_not(self):
        enc = self._pretrained_encoder()  # levels=2
        net = UNet(spatial_dims=3, in_channels=1, base_filters=4, levels=3)
        with self.assertRaisesRegex(ValueError, r"not in the source.*encoder\.blocks\.3"):
            load_encoder_weights(net, enc.state_dict())
        with self.assertLogs("medssl3d.nets.unet", level="WARNING"):
            loaded = load_encoder_weights(net, enc.state_dict(), strict=False)
        self.assertEqual(loaded, sorted("encoder." + k for k in enc.state_dict()))
        # the other way round: source keys with no destination
        small = UNet(spatial_dims=3, in_channels=1, base_filters=4, levels=1)
        with self.assertRaisesRegex(ValueError, r"no destination.*blocks\.2"):
            load_encoder_weights(small, enc.state_dict())

    def test_file_errors(self):
        net = UNet(**self.kwargs)
        missing = self.tmp / "nope" / "encoder.pt"
        with self.assertRaisesRegex(ValueError, f"Cannot find.*{missing.name}"):
            load_encoder_weights(net, missing)
        with self.assertRaisesRegex(ValueError, str(missing)):
            load_encoder_weights(net, str(missing))
        not_dict = self.tmp / "list.pt"
        torch.save([torch.zeros(1)], not_dict)
        with self.assertRaisesRegex(ValueError, "list.pt.*not a dict of tensors"):
            load_encoder_weights(net, not_dict)
        strings = self.tmp / "strings.pt"
        torch.save({"a": "b"}, strings)
        with self.assertRaisesRegex(ValueError, "not a dict of tensors"):
            load_encoder_weights(net, strings)
        garbage = self.tmp / "garbage.pt"
        garbage.write_text("not a checkpoint")
        with self.assertRaisesRegex(ValueError, "garbage.pt"):
            load_encoder_weights(net, garbage)
        with self.assertRaisesRegex(ValueError, "No key"):
            load_encoder_weights(net, {"fc.weight": torch.zeros(2, 2)})

    def test_save_rejects_unsafe_values(self):
        enc = UNetEncoder(**self.kwargs)
        with self.assertRaisesRegex(TypeError, "data_dir"):
            save_encoder(enc, self.tmp / "encoder.pt", data_dir=Path("/data"))
        self.assertFalse(os.listdir(self.tmp))


if __name__ == "__main__":
    unittest.main()



PATCH_ILL_CASES = [
    ((30, 32, 32), 4, 3, r"not divisible by 2\*\*levels = 16.*\[32, 32, 32\]"),
    ((32, 32), 4, 3, "must have 3 entries"),
    ((0, 32, 32), 4, 3, "must be positive"),
]


class TestCheckPatchSize(unittest.TestCase):
    @parameterized.expand(PATCH_ILL_CASES)
    def test_errors(self, patch, levels, dims, match):
        from medssl3d.nets import check_patch_size

        with self.assertRaisesRegex(ValueError, match):
            check_patch_size(patch, levels, dims)

    def test_ok(self):
        from medssl3d.nets import check_patch_size

        self.assertEqual(check_patch_size([96, 64, 32], 4, 3), (96, 64, 32))
