"""EncoderWithHead (the one network shape of the pretext tasks) and the state-dict keys of older checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from medssl3d.nets import UNetEncoder, global_pool
from medssl3d.nets.encoder_head import ANY_VIEWS, EncoderWithHead
from medssl3d.nets.pretext import CPCNet, ExemplarNet, JigsawNet, RelativePatchLocationNet, RotationNet


def _encoder() -> UNetEncoder:
    return UNetEncoder(2, 1, base_filters=2, levels=2)


def test_one_image_layout_is_head_of_pooled_features():
    torch.manual_seed(0)
    enc = _encoder()
    head = nn.Linear(enc.out_channels, 3)
    net = EncoderWithHead(enc, 2, head).eval()
    x = torch.rand(5, 1, 16, 16)
    torch.testing.assert_close(net(x), head(global_pool(enc.forward_features(x))))
    with pytest.raises(ValueError, match=r"a batch of images \(B, C, S0, S1\).*got shape \(5, 2, 1, 16, 16\)"):
        net(torch.rand(5, 2, 1, 16, 16))


def test_views_are_encoded_together_and_the_head_sees_them_per_row_or_per_sample():
    torch.manual_seed(0)
    enc = _encoder()
    x = torch.rand(3, 4, 1, 16, 16)
    enc.train()  # one encoder call on all B * V views, sample-major, as the network makes it
    pooled = global_pool(enc.forward_features(x.reshape(12, 1, 16, 16))).view(3, 4, -1)
    with torch.no_grad():  # and view v of sample b is row (b, v)
        enc.eval()
        torch.testing.assert_close(
            EncoderWithHead(enc, 2, nn.Identity(), views=4)(x)[1, 2], global_pool(enc.forward_features(x[1:2, 2]))[0]
        )
    # per row: a batch-norm head normalises over all B * V rows of the batch together
    bn_head = nn.Sequential(nn.Linear(enc.out_channels, 6), nn.BatchNorm1d(6))
    per_row = EncoderWithHead(enc, 2, bn_head, views=4, head_per_view=True).train()
    out = per_row(x)
    assert out.shape == (3, 4, 6)
    torch.testing.assert_close(out, bn_head(pooled.reshape(12, -1)).view(3, 4, 6), rtol=1e-4, atol=1e-5)
    # per sample: the head gets (B, V, F)
    seen = []
    per_sample = EncoderWithHead(enc, 2, _Record(seen), views=4, head_per_view=False)
    per_sample(x)
    torch.testing.assert_close(seen[0], pooled, rtol=1e-4, atol=1e-5)
    wrong = r"a batch of views \(B, 4, C, S0, S1\) with 2 spatial dims.*\(3, 3, 1, 16, 16\)"
    with pytest.raises(ValueError, match=wrong):
        per_sample(torch.rand(3, 3, 1, 16, 16))


class _Record(nn.Module):
    def __init__(self, seen: list) -> None:
        super().__init__()
        self.seen = seen

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x


def test_any_views_takes_both_layouts():
    torch.manual_seed(0)
    enc = _encoder()
    head = nn.Linear(enc.out_channels, 2)
    net = EncoderWithHead(enc, 2, head, views=ANY_VIEWS).eval()
    x = torch.rand(3, 2, 1, 16, 16)
    both = net(x)
    assert both.shape == (3, 2, 2)
    torch.testing.assert_close(both[:, 1], net(x[:, 1]), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"images \(B, C, S0, S1\) or of views \(B, V, C, S0, S1\)"):
        net(torch.rand(3, 16, 16))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="head must be an nn.Module"):
        EncoderWithHead(_encoder(), 2, lambda x: x)
    with pytest.raises(ValueError, match="views"):
        EncoderWithHead(_encoder(), 2, nn.Identity(), views=0)
    with pytest.raises(ValueError, match="spatial_dims=3"):
        EncoderWithHead(_encoder(), 3, nn.Identity())


# state-dict keys (besides encoder.*) of the networks as the task modules defined them before they became
# EncoderWithHead subclasses, and where they live now
OLD_LAYOUTS = {
    "jigsaw": (
        lambda: JigsawNet(_encoder(), 2, 4, 9, hidden_size=5),
        torch.rand(3, 4, 1, 16, 16),
        {"patch_fc.0.weight", "patch_fc.0.bias", "classifier.0.weight", "classifier.0.bias", "classifier.2.weight",
         "classifier.2.bias"},
        {"head.per_view.": "patch_fc.", "head.classifier.": "classifier."},
    ),
    "rpl": (
        lambda: RelativePatchLocationNet(_encoder(), 2, 8, hidden_size=7),
        torch.rand(3, 2, 1, 16, 16),
        {"classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"},
        {"head.classifier.": "classifier."},
    ),
    "cpc": (
        lambda: CPCNet(_encoder(), 2, (3, 3), code_size=5, num_steps=2),
        torch.rand(2, 9, 1, 16, 16),
        {"latent.weight", "latent.bias", "context.weight_ih_l0", "context.weight_hh_l0", "context.bias_ih_l0",
         "context.bias_hh_l0", "predictors.0.weight", "predictors.0.bias", "predictors.1.weight",
         "predictors.1.bias"},
        {"head.latent.": "latent.", "head.context.": "context.", "head.predictors.": "predictors."},
    ),
    "exemplar": (
        lambda: ExemplarNet(_encoder(), 2, 6),
        torch.rand(3, 2, 1, 16, 16),
        {"embedding.weight", "embedding.bias"},
        {"head.": "embedding."},
    ),
    "rotation": (lambda: RotationNet(_encoder(), 4, 2), torch.rand(3, 1, 16, 16), {"head.weight", "head.bias"}, {}),
}


def _flat(output):
    if isinstance(output, dict):
        return torch.cat([_flat(v) for v in output.values()])
    if isinstance(output, tuple):
        return torch.cat([t.reshape(-1) for t in output])
    return output.reshape(-1).float()


@pytest.mark.parametrize("name", sorted(OLD_LAYOUTS))
def test_checkpoints_of_the_former_layout_load_strictly_and_give_the_same_outputs(name):
    build, x, old_keys, new_to_old = OLD_LAYOUTS[name]
    torch.manual_seed(0)
    trained, fresh = build().eval(), build().eval()

    def old_name(key: str) -> str:
        for new, old in new_to_old.items():
            if key.startswith(new):
                return old + key[len(new):]
        return key

    old_state = {old_name(k): v for k, v in trained.state_dict().items()}
    assert {k for k in old_state if not k.startswith("encoder.")} == old_keys
    fresh.load_state_dict(old_state, strict=True)
    torch.testing.assert_close(_flat(fresh(x)), _flat(trained(x)))
    # also inside a parent module (a wrapper's prefix, e.g. DistributedDataParallel's "module.")
    wrapper = nn.ModuleDict({"module": build()})
    wrapper.load_state_dict({f"module.{k}": v for k, v in old_state.items()}, strict=True)
    torch.testing.assert_close(_flat(wrapper["module"].eval()(x)), _flat(trained(x)))
    # and the current layout loads as it is
    build().load_state_dict(trained.state_dict(), strict=True)


def test_cpc_and_exemplar_keep_their_layer_attributes():
    cpc = CPCNet(_encoder(), 2, (3, 3), code_size=5, num_steps=2)
    assert cpc.latent is cpc.head.latent and cpc.context is cpc.head.context and len(cpc.predictors) == 2
    exemplar = ExemplarNet(_encoder(), 2, 6)
    assert exemplar.embedding is exemplar.head and exemplar.embedding.out_features == 6


def test_jigsaw_layers_draw_their_initial_weights_in_the_former_order():
    """Seeded runs reproduce across the change: per-patch layer, then the classifier's two layers."""
    torch.manual_seed(0)
    net = JigsawNet(_encoder(), 2, 4, 9, hidden_size=5, fc_size=6)
    torch.manual_seed(0)
    encoder = _encoder()
    per_patch, hidden, out = nn.Linear(encoder.out_channels, 5), nn.Linear(4 * 5, 6), nn.Linear(6, 9)
    torch.testing.assert_close(net.head.per_view[0].weight, per_patch.weight, rtol=0, atol=0)
    torch.testing.assert_close(net.head.classifier[0].weight, hidden.weight, rtol=0, atol=0)
    torch.testing.assert_close(net.head.classifier[2].weight, out.weight, rtol=0, atol=0)
