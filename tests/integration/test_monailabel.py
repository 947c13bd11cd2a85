"""MONAI Label runs the pancreas_ct_ssl bundle: real ``BundleInferTask`` and ``BundleTrainTask``.

These tests need ``monailabel``, which cannot live in the project's ``.venv`` (its task classes import
torchvision, which does not import beside the pinned torch build), so they skip there.
``scripts/test_monailabel.sh`` builds (or reuses) a separate environment with MONAI Label, installs
medssl3d into it as a MONAI Label user would, and runs this file.

What is checked, each on a copy of the bundle folder as a user would drop it into a MONAI Label app:
- inference writes a label with the input image's shape and affine, for an input that is neither RAS
  nor at the bundle's spacing; a network that thresholds the pre-processed intensity shows the label
  is also in the right place voxel by voxel (a flipped or shifted result would fail);
- an unreadable image and an image with the wrong channel count are refused with the file named;
- training from a MONAI Label datastore folder (images plus ``labels/final``) through the keys
  ``BundleTrainTask`` overrides writes ``models/model.pt``, which then infers; a second training with
  ``val_split=0`` continues from that model and still leaves a model;
- with ``MEDSSL3D_REAL_DATA``, inference on one MSD Task04 case and on a real abdominal CT;
- the 2D classification bundles: ``BundleInferTask(type="classification", add_post_restore=False)`` returns
  the network's softmax for a PNG, named from ``metadata.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("monailabel", reason="MONAI Label is not installed here; run scripts/test_monailabel.sh")

import nibabel as nib  # noqa: E402
import torch  # noqa: E402
from monailabel.datastore.local import LocalDatastore  # noqa: E402
from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402

from medssl3d.data import generate_phantom_dataset  # noqa: E402
from medssl3d.nets import UNet  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # itk's SWIG bindings, imported by MONAI Label, warn on every import of their types
    pytest.mark.filterwarnings("ignore:builtin type [Ss]wig"),
    # MONAI's reminder that bundle configs run code; these are the repository's own
    pytest.mark.filterwarnings("ignore:parsing config_file"),
]

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundles" / "pancreas_ct_ssl"
REAL = os.environ.get("MEDSSL3D_REAL_DATA", "")

# A "network" for the bundle's scripts/ folder (MONAI Label puts the bundle on sys.path): class 1 where the
# pre-processed intensity is above a threshold, class 0 elsewhere, never class 2. Its prediction is a
# known function of the image, so the written label can be compared voxel by voxel with the same
# threshold applied to the original image.
THRESHOLD_NET = '''
import torch


class ThresholdNet(torch.nn.Module):
    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = torch.nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x):
        d = (x[:, :1] - self.threshold) * 50.0
        return torch.cat([-d, d, torch.full_like(d, -1e3)], dim=1)
'''


def copy_bundle(dest: Path) -> Path:
    """The bundle as a user copies it into a MONAI Label app's model folder (no models, no outputs)."""
    shutil.copytree(BUNDLE, dest, ignore=shutil.ignore_patterns("models", "predictions", "__pycache__"))
    (dest / "models").mkdir()
    return dest


def save_unet(bundle: Path) -> Path:
    """A freshly initialised UNet of the bundle's architecture as models/model.pt (what train.json writes)."""
    torch.manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=16, levels=4, norm="batch")
    path = bundle / "models" / "model.pt"
    torch.save({"model": net.state_dict()}, path)
    return path


def edit_config(bundle: Path, name: str, **changes) -> None:
    path = bundle / "configs" / name
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(changes)
    path.write_text(json.dumps(config, indent=4), encoding="utf-8")


def infer(bundle: Path, image: Path) -> tuple[Path, dict]:
    task = BundleInferTask(str(bundle), {})
    assert task.is_valid(), f"MONAI Label did not accept {bundle}"
    label, result = task({"image": str(image), "device": "cpu"})
    assert label is not None and Path(label).is_file(), result
    return Path(label), result


def assert_same_geometry(image: Path, label: Path) -> np.ndarray:
    src, out = nib.load(str(image)), nib.load(str(label))
    assert out.shape == src.shape[:3], f"label shape {out.shape} != image shape {src.shape}"
    np.testing.assert_allclose(out.affine, src.affine, atol=1e-4, err_msg="label affine differs from the image's")
    return np.asarray(out.dataobj)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    return generate_phantom_dataset(tmp_path_factory.mktemp("ml") / "Task00_Phantom", num_cases=4, num_test=1, seed=0)


@pytest.fixture(scope="module")
def oblique_image(phantoms, tmp_path_factory) -> Path:
    """A phantom case re-oriented to PLS (array axes swapped and flipped) at 1.2 x 0.9 x 2.5 mm."""
    src = nib.load(str(sorted((phantoms / "imagesTr").glob("*.nii.gz"))[0]))
    affine = src.affine.copy()
    affine[:3, :3] = np.diag([1.2, 0.9, 2.5])
    img = nib.Nifti1Image(np.asarray(src.dataobj), affine)
    target = nib.orientations.axcodes2ornt(("P", "L", "S"))
    img = img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(affine), target))
    assert nib.aff2axcodes(img.affine) == ("P", "L", "S")
    path = tmp_path_factory.mktemp("oblique") / "oblique_pls.nii.gz"
    nib.save(img, str(path))
    return path


def test_infer_unet_writes_label_in_input_geometry(tmp_path, oblique_image):
    bundle = copy_bundle(tmp_path / "pancreas_ct_ssl")
    save_unet(bundle)
    label, result = infer(bundle, oblique_image)
    values = assert_same_geometry(oblique_image, label)
    assert set(np.unique(values).tolist()) <= {0, 1, 2}
    assert result["label_names"] == {"pancreas": 1, "tumour": 2}


def test_infer_label_lies_on_the_input_voxels(tmp_path, oblique_image):
    """Pre-processing, sliding window, inversion and MONAI Label's restore put each voxel back in place."""
    bundle = copy_bundle(tmp_path / "pancreas_ct_ssl")
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "__init__.py").write_text("", encoding="utf-8")
    (bundle / "scripts" / "threshold_net.py").write_text(THRESHOLD_NET, encoding="utf-8")
    edit_config(bundle, "inference.json", network_def={"_target_": "scripts.threshold_net.ThresholdNet"})
    torch.save({"model": {"threshold": torch.tensor(0.5)}}, bundle / "models" / "model.pt")
    label, _ = infer(bundle, oblique_image)
    predicted = assert_same_geometry(oblique_image, label) == 1
    lo, hi = json.loads((BUNDLE / "configs" / "inference.json").read_text(encoding="utf-8"))["hu_window"]
    hu = np.asarray(nib.load(str(oblique_image)).dataobj, dtype=np.float32)
    expected = hu > lo + 0.5 * (hi - lo)  # the threshold of ThresholdNet in Hounsfield units
    assert expected.sum() > 1000 and expected.mean() < 0.5, "the phantom has no usable bright region"
    # resampling to 1.5 x 1.5 x 2 mm and back blurs the noisy threshold's edges (measured: 0.84), but the
    # label is where it belongs: moving it by one voxel along any axis, or flipping it, matches worse
    aligned = dice(predicted, expected)
    assert aligned > 0.8
    for axis in range(3):
        for shift in (-1, 1):
            assert dice(np.roll(predicted, shift, axis=axis), expected) < aligned - 0.02, (axis, shift)
        assert dice(np.flip(predicted, axis=axis), expected) < aligned - 0.2, axis


def test_infer_refuses_unreadable_and_multichannel_images(tmp_path, oblique_image):
    bundle = copy_bundle(tmp_path / "pancreas_ct_ssl")
    save_unet(bundle)
    task = BundleInferTask(str(bundle), {})
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(Exception, match="cannot read .*broken.nii.gz.*this bundle reads a 3D image as NIfTI"):
        task({"image": str(broken), "device": "cpu"})
    src = nib.load(str(oblique_image))
    four = np.stack([np.asarray(src.dataobj)] * 4, axis=-1)
    multi = tmp_path / "four_channels.nii.gz"
    nib.save(nib.Nifti1Image(four, src.affine), str(multi))
    with pytest.raises(Exception, match=r"four_channels.nii.gz has 4 channel\(s\).*1-channel 3D CT volume"):
        task({"image": str(multi), "device": "cpu"})


def make_datastore(phantoms: Path, folder: Path) -> LocalDatastore:
    """A MONAI Label datastore folder: images at the top, their labels under labels/final."""
    (folder / "labels" / "final").mkdir(parents=True)
    for image in sorted((phantoms / "imagesTr").glob("*.nii.gz")):
        shutil.copy(image, folder / image.name)
        shutil.copy(phantoms / "labelsTr" / image.name, folder / "labels" / "final" / image.name)
    store = LocalDatastore(str(folder), extensions=("*.nii.gz",))
    assert len(store.datalist()) == 4
    return store


def test_train_from_datastore_then_infer(tmp_path, phantoms, oblique_image):
    bundle = copy_bundle(tmp_path / "pancreas_ct_ssl")
    store = make_datastore(phantoms, tmp_path / "datastore")
    task = BundleTrainTask(str(bundle), {})
    assert task.is_valid()
    request = {"model": "pancreas_ct_ssl", "device": "cpu", "max_epochs": 1, "val_split": 0.25, "multi_gpu": False}
    task(request, store)
    model = bundle / "models" / "model.pt"
    assert model.is_file(), "BundleTrainTask did not leave models/model.pt"
    payload = torch.load(model, weights_only=True)
    assert payload["validated"] is True and "val_mean_dice" in payload["metric"]
    assert payload["class_names"] == ["background", "pancreas", "tumour"]
    split = json.loads((bundle / "models" / "split.json").read_text(encoding="utf-8"))
    assert (len(split["train"]), len(split["validation"])) == (3, 1) and split["source"] == "datalists"
    label, _ = infer(bundle, oblique_image)
    assert_same_geometry(oblique_image, label)

    # again without validation, continuing from that model (MONAI Label adds a CheckpointLoader for it)
    before = payload["model"]
    task(dict(request, val_split=0.0), store)
    loaders = [h for h in task.bundle_config.get("train#handlers") if isinstance(h, dict) and h["_target_"] == "CheckpointLoader"]
    assert [h["load_path"] for h in loaders] == [str(model)]
    again = torch.load(model, weights_only=True)
    assert again["validated"] is False and again["epoch"] == 1
    changed = [k for k, v in again["model"].items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "the second training did not change the weights"
    label, _ = infer(bundle, oblique_image)
    assert_same_geometry(oblique_image, label)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="MEDSSL3D_REAL_DATA is not set; point it at the shared real-data folder")
@pytest.mark.parametrize(
    "case, modality",
    [("msd_task04_hippocampus/imagesTr/hippocampus_001.nii.gz", "MR"), ("totalseg_example_ct/example_ct_sm.nii.gz", "CT")],
)
def test_infer_real_case(tmp_path, case, modality):
    image = Path(REAL) / case
    if not image.is_file():
        pytest.skip(f"{image} is not there")
    bundle = copy_bundle(tmp_path / "pancreas_ct_ssl")
    edit_config(bundle, "inference.json", modality=modality)
    save_unet(bundle)
    label, _ = infer(bundle, image)
    assert_same_geometry(image, label)


# ---------------------------------------------------------------- the 2D classification bundles
# What their READMEs say about MONAI Label 0.8.5, checked against the installed version.


@pytest.mark.parametrize(
    "name, backbone, in_channels, names",
    [("fundus_dr_ssl", "resnet18", 3, ["No DR", "Mild", "Moderate", "Severe", "Proliferative DR"]),
     ("chest_xray_ssl", "resnet18", 1, ["normal", "pneumonia"])],
)
def test_2d_bundles_classify_through_bundle_infer_task(tmp_path, name, backbone, in_channels, names):
    """With inference.json, a classification app (type="classification", no restore step) returns the
    bundle's own probabilities for an image file, named from metadata.json's channel_def."""
    from PIL import Image

    from medssl3d.nets import Classifier, create_encoder
    from medssl3d.transforms import classification_transforms

    bundle = tmp_path / name
    shutil.copytree(ROOT / "bundles" / name, bundle, ignore=shutil.ignore_patterns("models", "__pycache__"))
    (bundle / "models").mkdir()
    torch.manual_seed(0)
    net = Classifier(create_encoder(backbone, 2, in_channels), len(names)).eval()
    torch.save({"model": net.state_dict(), "network_config": net.config(), "class_names": names, "image_size": 32},
               bundle / "models" / "model.pt")
    rgb = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    image = tmp_path / "photo.png"
    Image.fromarray(rgb if in_channels == 3 else rgb[..., 0]).save(image)

    task = BundleInferTask(str(bundle), {}, type="classification", add_post_restore=False)
    assert task.is_valid()
    label_file, result = task({"image": str(image), "device": "cpu"})
    assert label_file is None and [p["label"] for p in result["prediction"]] == [n.lower() for n in names]
    x = classification_transforms("infer", image_size=32, in_channels=in_channels, label_key=None)(
        {"image": str(image)})["image"]
    with torch.no_grad():
        expected = torch.softmax(net(x[None]), dim=1)[0]
    np.testing.assert_allclose([p["score"] for p in result["prediction"]], expected.numpy(), atol=1e-5)


def test_monailabel_classification_output_and_restore():
    """MONAI Label returns a classification as JSON scores (no label file), and its default post-restore
    step, meant for segmentation, fails on a class vector: a classification bundle needs an app that
    builds BundleInferTask(..., type="classification", add_post_restore=False)."""
    from monai.data import MetaTensor
    from monailabel.transform.post import Restored
    from monailabel.transform.writer import ClassificationWriter

    scores = MetaTensor(torch.tensor([0.25, 0.75]))
    label_file, result = ClassificationWriter(label="pred", label_names={0: "normal", 1: "pneumonia"})({"pred": scores})
    assert label_file is None
    assert result == {
        "prediction": [{"idx": 0, "label": "normal", "score": 0.25}, {"idx": 1, "label": "pneumonia", "score": 0.75}]
    }
    image = MetaTensor(torch.zeros(1, 32, 32), meta={"spatial_shape": np.array([32, 32])})
    with pytest.raises(ValueError):
        Restored(keys="pred", ref_image="image")({"image": image, "pred": scores})
