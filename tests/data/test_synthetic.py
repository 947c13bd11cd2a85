"""Tests of medssl3d.data.synthetic: phantom layout, determinism, labels and plausible HU values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl3d.data import generate_phantom_dataset, load_decathlon, validate_datalist
from medssl3d.data.phantom import make_phantom_case
from tests.data._helpers import dilate, erode

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (48, 40, 32)  # small and non-cubic
SPACING = (1.5, 1.5, 2.0)


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    return generate_phantom_dataset(
        tmp_path_factory.mktemp("ph") / "Task00_Phantom", num_cases=6, num_test=2, shape=SHAPE, spacing=SPACING, seed=0
    )


def _arrays(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    image = np.asanyarray(nib.load(folder / "imagesTr" / name).dataobj)
    label = np.asanyarray(nib.load(folder / "labelsTr" / name).dataobj)
    return image, label


def test_layout_and_dataset_json(phantom_dir):
    info = json.loads((phantom_dir / "dataset.json").read_text())
    assert info["modality"] == {"0": "CT"}
    assert info["labels"] == {"0": "background", "1": "pancreas", "2": "tumour"}
    assert info["numTraining"] == 6 and info["numTest"] == 2
    assert info["training"][0] == {"image": "./imagesTr/phantom_000.nii.gz", "label": "./labelsTr/phantom_000.nii.gz"}
    assert info["test"] == ["./imagesTs/phantom_006.nii.gz", "./imagesTs/phantom_007.nii.gz"]
    assert {"name", "description"} <= set(info)
    assert sorted(os.listdir(phantom_dir / "imagesTr")) == [f"phantom_{i:03d}.nii.gz" for i in range(6)]
    assert len(os.listdir(phantom_dir / "labelsTr")) == 6 and len(os.listdir(phantom_dir / "imagesTs")) == 2
    assert len(load_decathlon(phantom_dir, "test")) == 2


def test_files_validate_and_have_spacing(phantom_dir):
    validate_datalist(load_decathlon(phantom_dir), num_classes=3)
    image = nib.load(phantom_dir / "imagesTr" / "phantom_000.nii.gz")
    label = nib.load(phantom_dir / "labelsTr" / "phantom_000.nii.gz")
    assert image.shape == label.shape == SHAPE
    assert image.get_data_dtype() == np.int16 and label.get_data_dtype() == np.uint8
    np.testing.assert_allclose(image.header.get_zooms(), SPACING)
    np.testing.assert_allclose(np.diag(image.affine)[:3], SPACING)
    np.testing.assert_allclose(image.affine, label.affine)


def test_same_seed_same_arrays(phantom_dir, tmp_path):
    again = generate_phantom_dataset(tmp_path / "again", num_cases=2, num_test=0, shape=SHAPE, spacing=SPACING, seed=0)
    for name in ("phantom_000.nii.gz", "phantom_001.nii.gz"):
        for a, b in zip(_arrays(phantom_dir, name), _arrays(again, name)):
            np.testing.assert_array_equal(a, b)  # also: case i does not depend on num_cases


def test_different_seed_different_arrays():
    a_img, a_lab = make_phantom_case(SHAPE, np.random.default_rng(1))
    b_img, b_lab = make_phantom_case(SHAPE, np.random.default_rng(2))
    assert not np.array_equal(a_img, b_img) and not np.array_equal(a_lab, b_lab)
    c_img, c_lab = make_phantom_case(SHAPE, np.random.default_rng(1))
    np.testing.assert_array_equal(a_img, c_img)
    np.testing.assert_array_equal(a_lab, c_lab)


def test_cases_vary(phantom_dir):
    volumes = [int((_arrays(phantom_dir, f"phantom_{i:03d}.nii.gz")[1] > 0).sum()) for i in range(6)]
    assert len(set(volumes)) == 6


def test_label_classes(phantom_dir):
    with_tumour = 0
    for i in range(6):
        _, label = _arrays(phantom_dir, f"phantom_{i:03d}.nii.gz")
        values = set(np.unique(label).tolist())
        assert values <= {0, 1, 2} and {0, 1} <= values
        with_tumour += 2 in values
        assert (label > 0).mean() > 0.003  # the pancreas is a sizeable target
    assert with_tumour >= 3  # most cases have a tumour


def test_hounsfield_units_plausible(phantom_dir):
    for i in range(6):
        image, label = _arrays(phantom_dir, f"phantom_{i:03d}.nii.gz")
        assert image.min() >= -1024 and image.max() < 1200
        assert abs(float(np.median(image[:3, :3, :])) + 1000) < 60  # air in the corners
        assert (image > 300).sum() > 50  # bone
        body = image > -500
        assert 0.3 < body.mean() < 0.9
        fat = ((image > -150) & (image < -50)).sum() / body.sum()
        assert fat > 0.1  # subcutaneous and visceral fat
        core = erode(label > 0) & (label == 1)
        assert 30 < image[core].mean() < 60  # pancreas ~45 HU
        shell = dilate(label > 0, 2) & (label == 0)
        assert image[core].mean() - image[shell].mean() >= 20  # visible against its surroundings
        if (label == 2).any():
            assert image[label == 2].mean() < image[core].mean() - 10  # hypodense tumour
            assert -10 < image[label == 2].mean() < 35


def test_refuses_non_empty_folder(phantom_dir, tmp_path):
    with pytest.raises(FileExistsError, match="is not empty; pass overwrite=True"):
        generate_phantom_dataset(phantom_dir, num_cases=1)
    folder = generate_phantom_dataset(tmp_path / "ds", num_cases=3, num_test=1, shape=(16, 16, 16))
    (folder / "README.txt").write_text("keep me")
    generate_phantom_dataset(folder, num_cases=1, num_test=0, shape=(16, 16, 16), overwrite=True)
    assert sorted(os.listdir(folder / "imagesTr")) == ["phantom_000.nii.gz"]  # stale cases removed
    assert os.listdir(folder / "imagesTs") == []
    assert (folder / "README.txt").read_text() == "keep me"


def test_empty_existing_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    assert generate_phantom_dataset(tmp_path / "empty", num_cases=1, num_test=0, shape=(16, 16, 16)).is_dir()


ILL_CASES = [
    ({"num_cases": 0}, r"num_cases must be an integer >= 1"),
    ({"num_test": -1}, r"num_test must be an integer >= 0"),
    ({"shape": (64, 64)}, r"shape must be 3 integers"),
    ({"shape": (64, 64, 8)}, r"shape must be 3 integers >= 16"),
    ({"spacing": (1.0, 0.0, 1.0)}, r"spacing must be 3 positive numbers"),
    ({"spacing": "1,1,1"}, r"spacing must be 3 positive numbers"),
    ({"seed": -3}, r"seed must be a non-negative integer"),
]


@pytest.mark.parametrize("kwargs,pattern", ILL_CASES)
def test_ill_arguments(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        generate_phantom_dataset(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path):
    script = ROOT / "scripts" / "make_phantoms.py"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, str(script), str(tmp_path / "cli"), "--num-cases", "2", "--num-test", "1"]
    args += ["--shape", "16", "20", "24", "--spacing", "1", "1", "2.5", "--seed", "4"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "cli")
    image = nib.load(tmp_path / "cli" / "imagesTr" / "phantom_001.nii.gz")
    assert image.shape == (16, 20, 24)
    np.testing.assert_allclose(image.header.get_zooms(), (1, 1, 2.5))
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    proc = subprocess.run(args + ["--overwrite"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
