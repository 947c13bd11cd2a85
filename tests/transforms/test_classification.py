"""2D classification loading and preprocessing: files, npz references, arrays; channels; resizing; augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medssl3d.data.classification import npz_reference
from medssl3d.transforms.classification import (
    LoadClassificationImage,
    LoadClassificationImaged,
    classification_transforms,
)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """An RGB, grey, palette, RGBA and 16-bit PNG and a JPEG of one (12, 20) picture."""
    root = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "rgb.png")
    Image.fromarray(rgb[..., 1]).save(root / "grey.png")
    Image.fromarray(rgb).quantize(16).save(root / "palette.png")
    rgba = np.concatenate([rgb, np.full((12, 20, 1), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(root / "rgba.png")
    Image.fromarray((np.arange(240).reshape(12, 20) * 17).astype(np.uint16)).save(root / "deep.png")
    Image.fromarray(rgb).save(root / "rgb.jpg", quality=95)
    return root, rgb


def test_rgb_file_exact_values(images):
    root, rgb = images
    x = LoadClassificationImage(3)(str(root / "rgb.png"))
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 12, 20)  # (C, H, W): rows stay rows
    torch.testing.assert_close(x, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    assert tuple(LoadClassificationImage(None)(root / "rgb.jpg").shape) == (3, 12, 20)


def test_channel_conversions(images):
    root, rgb = images
    grey3 = LoadClassificationImage(3)(str(root / "grey.png"))
    assert tuple(grey3.shape) == (3, 12, 20) and torch.equal(grey3[0], grey3[2])
    torch.testing.assert_close(grey3[0], torch.from_numpy(rgb[..., 1]).float() / 255)
    luma = LoadClassificationImage(1)(str(root / "rgb.png"))
    pil_luma = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255
    assert tuple(luma.shape) == (1, 12, 20) and np.abs(luma[0].numpy() - pil_luma).max() <= 1.0 / 255 + 1e-6
    rgba = LoadClassificationImage(3)(str(root / "rgba.png"))
    torch.testing.assert_close(rgba, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)  # alpha dropped
    palette = LoadClassificationImage(3)(str(root / "palette.png"))
    expected = np.asarray(Image.open(root / "palette.png").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(palette.permute(1, 2, 0).numpy(), expected)  # colours, not palette indices
    deep = LoadClassificationImage(1)(str(root / "deep.png"))
    assert float(deep.min()) == 0.0 and float(deep.max()) == 1.0  # 16-bit: min-max scaled
    with pytest.raises(ValueError, match="in_channels=2"):
        LoadClassificationImage(2)(str(root / "rgb.png"))


def test_npz_references_and_arrays(tmp_path):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (4, 9, 7), dtype=np.uint8)
    colour = rng.integers(0, 256, (4, 9, 7, 3), dtype=np.uint8)
    path = tmp_path / "m.npz"
    np.savez_compressed(path, train_images=grey, val_images=colour)
    load = LoadClassificationImage(1)
    torch.testing.assert_close(load(npz_reference(path, "train_images", 3))[0], torch.from_numpy(grey[3]).float() / 255)
    rgb = LoadClassificationImage(3)(npz_reference(path, "val_images", 2))
    torch.testing.assert_close(rgb, torch.from_numpy(colour[2]).permute(2, 0, 1).float() / 255)
    # in-memory arrays: channel-last, channel-first and float in [0, 1] all give the same tensor
    torch.testing.assert_close(LoadClassificationImage(3)(colour[2]), rgb)
    torch.testing.assert_close(LoadClassificationImage(3)(torch.from_numpy(colour[2]).permute(2, 0, 1)), rgb)
    torch.testing.assert_close(LoadClassificationImage(3)(colour[2].astype(np.float32) / 255), rgb)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 9, 7\)"):
        load(np.zeros((2, 3, 9, 7)))


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="Cannot find image file .*nope.png"):
        LoadClassificationImage(3)(str(tmp_path / "nope.png"))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.png cannot be read"):
        LoadClassificationImage(3)(str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="in_channels"):
        LoadClassificationImage(0)


def test_dictionary_version_keeps_the_source(images):
    root, _ = images
    load = LoadClassificationImaged("image", in_channels=3, source_key="source")
    d = load({"image": str(root / "rgb.png"), "label": 1})
    assert d["source"] == str(root / "rgb.png") and tuple(d["image"].shape) == (3, 12, 20) and d["label"] == 1


def test_resize_keeps_aspect_and_pads(images):
    root, _ = images
    t = classification_transforms("validate", image_size=10, in_channels=3)
    d = t({"image": str(root / "rgb.png"), "label": 3})
    image = d["image"]
    assert type(image) is torch.Tensor and image.dtype == torch.float32 and tuple(image.shape) == (3, 10, 10)
    assert d["label"].dtype == torch.int64 and int(d["label"]) == 3 and d["source"].endswith("rgb.png")
    # (12, 20) -> (6, 10), centred in 10 rows: 2 zero rows above and below, none inside
    assert float(image[:, :2].abs().sum()) == 0 and float(image[:, -2:].abs().sum()) == 0
    assert bool((image[:, 2:8].sum(dim=(0, 2)) > 0).all())
    stretched = classification_transforms("validate", image_size=(10, 10), in_channels=3, keep_aspect=False)
    assert bool((stretched({"image": str(root / "rgb.png")})["image"].sum(dim=(0, 2)) > 0).all())


def test_training_augmentation_is_seeded(images):
    root, _ = images
    item = {"image": str(root / "rgb.png"), "label": 0}
    a = classification_transforms("train", 16, 3).set_random_state(seed=3)
    b = classification_transforms("train", 16, 3).set_random_state(seed=3)
    outs_a = [a(dict(item))["image"] for _ in range(4)]
    outs_b = [b(dict(item))["image"] for _ in range(4)]
    for x, y in zip(outs_a, outs_b):
        torch.testing.assert_close(x, y)
    plain = classification_transforms("validate", 16, 3)(dict(item))["image"]
    assert any(not torch.allclose(x, plain) for x in outs_a)  # augmentation changes the image
    no_aug = classification_transforms("train", 16, 3, augment=False)(dict(item))["image"]
    torch.testing.assert_close(no_aug, plain)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"stage": "test"}, "test"), ({"stage": "train", "image_size": 0}, "image_size"),
     ({"stage": "train", "image_size": (8, 8, 8)}, "image_size")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_transforms(**kwargs)
