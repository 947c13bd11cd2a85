"""Unlabelled 2D inference inputs: listing a folder, CSV or npz; checking readability, channels and bit depth."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medssl3d.data import (
    DatasetNotFoundError,
    DataValidationError,
    check_classification_images,
    list_classification_images,
)
from medssl3d.data.classification import npz_reference


def _rgb(path: Path, size=(16, 20), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8), mode="RGB").save(path)
    return path


def _grey(path: Path, size=(16, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.arange(size[0] * size[1], dtype=np.uint8).reshape(size), mode="L").save(path)
    return path


def _grey16(path: Path, size=(16, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (np.arange(size[0] * size[1]).reshape(size) * 150).astype(np.uint16)
    Image.fromarray(array).save(path)
    with Image.open(path) as check:
        assert check.mode == "I;16"  # really a 16-bit PNG
    return path


def _truncated_jpeg(path: Path) -> Path:
    _rgb(path, size=(64, 64), seed=3)  # random pixels: the JPEG is large enough to cut
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def photos(tmp_path) -> Path:
    """photos/: RGB, grey, 16-bit PNGs, a truncated JPEG, a 2D float NIfTI, hidden entries and a text file."""
    root = tmp_path / "photos"
    _rgb(root / "a_rgb.png")
    _grey(root / "b_grey.png")
    _grey16(root / "sub" / "c_16bit.png")
    _truncated_jpeg(root / "d_corrupt.jpg")
    scan = np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10)
    nib.save(nib.Nifti1Image(scan, np.eye(4)), str(root / "e_scan.nii.gz"))
    _rgb(root / ".hidden.png")
    _rgb(root / ".cache" / "thumb.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _names(items):
    return [Path(it["image"]).name for it in items]


def test_folder_listing_sorted_recursive_without_hidden(photos):
    items = list_classification_images(photos)
    assert _names(items) == ["a_rgb.png", "b_grey.png", "d_corrupt.jpg", "e_scan.nii.gz", "c_16bit.png"]
    assert items[-1]["image"] == str((photos / "sub" / "c_16bit.png").resolve())
    assert all(set(it) == {"image"} and Path(it["image"]).is_absolute() for it in items)
    assert list_classification_images(str(photos / "a_rgb.png")) == [{"image": str((photos / "a_rgb.png").resolve())}]


def test_listing_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        list_classification_images(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DataValidationError, match=r"no images found in .*empty \(looked for \.png, \.jpg.*\.nii\.gz"):
        list_classification_images(empty)
    with pytest.raises(DatasetNotFoundError, match="labels.csv"):
        list_classification_images(empty, csv="labels.csv")


def test_check_raises_naming_the_corrupt_file_and_writes_nothing(photos, tmp_path):
    items = list_classification_images(photos)
    skipped = tmp_path / "out" / "skipped.csv"
    with pytest.raises(DataValidationError) as err:
        check_classification_images(items, in_channels=3, skipped_file=skipped)
    message = str(err.value)
    assert message.startswith("1 of 5 image(s) cannot be classified:")
    assert f"{photos / 'd_corrupt.jpg'}: cannot be read (OSError: image file is truncated" in message
    assert "a_rgb.png" not in message and "on_error='skip'" in message
    assert not skipped.exists()


def test_skip_drops_bad_images_and_records_them(photos, tmp_path, caplog):
    items = list_classification_images(photos)
    skipped = tmp_path / "out" / "skipped.csv"
    with caplog.at_level("WARNING"):
        good = check_classification_images(items, 3, image_dtype="uint8", on_error="skip", skipped_file=skipped)
    assert _names(good) == ["a_rgb.png", "b_grey.png"]
    assert good[0] is items[0]  # the same dicts, in order
    rows = list(csv.DictReader(skipped.open()))
    assert [Path(r["image"]).name for r in rows] == ["d_corrupt.jpg", "e_scan.nii.gz", "c_16bit.png"]
    reasons = {Path(r["image"]).name: r["reason"] for r in rows}
    assert reasons["d_corrupt.jpg"].startswith("cannot be read (OSError")
    assert reasons["c_16bit.png"] == (
        "stored as uint16 but image_dtype=uint8: the model was trained on uint8 images; convert the image to uint8, "
        "or pass image_dtype=null to accept any bit depth (intensities are then min-max scaled per image)"
    )
    assert reasons["e_scan.nii.gz"].startswith("stored as float32 but image_dtype=uint8")
    assert "skipping 3 of 5 image(s)" in caplog.text and "c_16bit.png" in caplog.text
    # without image_dtype every depth is accepted; the skipped file is rewritten (header only when none is bad)
    good = check_classification_images(items, 1, on_error="skip", skipped_file=skipped)
    assert _names(good) == ["a_rgb.png", "b_grey.png", "e_scan.nii.gz", "c_16bit.png"]
    assert [Path(r["image"]).name for r in csv.DictReader(skipped.open())] == ["d_corrupt.jpg"]
    assert check_classification_images(good, 1, on_error="skip", skipped_file=skipped) == good
    assert skipped.read_text().splitlines() == ["image,reason"]
    assert check_classification_images(items[4:], 3, image_dtype="uint16") == items[4:]


def test_image_dtype_refuses_16bit_with_raise(photos):
    items = [{"image": str(photos / "a_rgb.png")}, {"image": str(photos / "sub" / "c_16bit.png")}]
    with pytest.raises(DataValidationError, match=r"c_16bit\.png: stored as uint16 but image_dtype=uint8"):
        check_classification_images(items, 3, image_dtype="uint8")
    with pytest.raises(ValueError, match="image_dtype must be a numeric numpy dtype"):
        check_classification_images(items, 3, image_dtype="pixels")


def test_channels_rules(photos, tmp_path):
    rgb, grey = str(photos / "a_rgb.png"), str(photos / "b_grey.png")
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (9, 7), (10, 20, 30, 255)).save(rgba)
    assert len(check_classification_images([{"image": grey}, {"image": str(rgba)}], 3)) == 2  # repeat; drop alpha
    assert len(check_classification_images([{"image": rgb}, {"image": str(rgba)}], 1)) == 2  # luminance
    assert len(check_classification_images([{"image": grey}], 2)) == 1  # grey repeats into any count
    with pytest.raises(DataValidationError, match=r"a_rgb\.png: the image has 3 channels but in_channels=2"):
        check_classification_images([{"image": grey}, {"image": rgb}], 2)


def test_npz_two_channel_images_refused_even_with_skip(tmp_path):
    path = tmp_path / "only.npz"
    np.savez(path, foo_images=np.zeros((3, 10, 12, 2), np.uint8), foo_labels=np.zeros(3))
    items = list_classification_images(path)
    assert [it["image"] for it in items] == [npz_reference(path, "foo_images", i) for i in range(3)]
    with pytest.raises(DataValidationError) as err:
        check_classification_images(items, 3, on_error="skip", skipped_file=tmp_path / "skipped.csv")
    message = str(err.value)
    assert message.startswith("3 of 3 image(s) cannot be classified:") and "No image can be classified" in message
    assert f"{items[2]['image']}: the image has 2 channels but in_channels=3" in message
    assert not (tmp_path / "skipped.csv").exists()
    # mixed with a usable image, "skip" keeps it
    good = _rgb(tmp_path / "ok.png")
    kept = check_classification_images([items[0], {"image": str(good)}], 3, on_error="skip")
    assert kept == [{"image": str(good)}]


def test_npz_array_choice(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), test_images=np.ones((4, 8, 8), np.uint8),
             test_labels=np.zeros(4), images=np.zeros((1, 8, 8), np.uint8))
    assert [it["image"] for it in list_classification_images(path)] == [
        npz_reference(path, "test_images", i) for i in range(4)
    ]
    assert len(list_classification_images(path, npz_array="train_images")) == 2
    ambiguous = tmp_path / "two.npz"
    np.savez(ambiguous, a_images=np.zeros((2, 8, 8)), b_images=np.zeros((1, 8, 8)))
    with pytest.raises(DataValidationError, match=r"arrays: \['a_images', 'b_images'\].*pass npz_array=<name>"):
        list_classification_images(ambiguous)
    assert len(list_classification_images(ambiguous, npz_array="b_images")) == 1
    with pytest.raises(DataValidationError, match=r"no array 'c_images'"):
        list_classification_images(ambiguous, npz_array="c_images")
    volumes = tmp_path / "vol.npz"
    np.savez(volumes, test_images=np.zeros((2, 8, 8, 8, 8)))
    with pytest.raises(DataValidationError, match="not a stack of 2D images"):
        list_classification_images(volumes)


def test_npz_nan_and_references_named(tmp_path):
    path = tmp_path / "f.npz"
    images = np.full((3, 6, 6), 0.5, np.float32)
    images[1, 2, 2] = np.nan
    images[2, 0, 0] = np.inf
    np.savez(path, test_images=images)
    items = list_classification_images(path)
    with pytest.raises(DataValidationError) as err:
        check_classification_images(items, 1)
    message = str(err.value)
    assert message.startswith("2 of 3 image(s)")
    assert f"{items[1]['image']}: the image holds NaN or infinite values" in message
    assert f"{items[2]['image']}: the image holds NaN or infinite values" in message
    assert f"{items[0]['image']}:" not in message


def test_csv_listing(tmp_path):
    root = tmp_path / "csvdata"
    for name in ("x1", "x2", "x3"):
        _rgb(root / "images" / f"{name}.png")
    (root / "train.csv").write_text("id_code,diagnosis\nx2,1\nx1,\nx2,3\n")
    items = list_classification_images(root / "train.csv")  # names without suffix; labels ignored (even empty)
    assert _names(items) == ["x2.png", "x1.png"]  # row order, a repeated name once
    (root / "list.csv").write_text("label,File\n0,images/x3.png\n1,images/x1.png\n")
    items = list_classification_images(root, csv="list.csv", image_column="file")
    assert _names(items) == ["x3.png", "x1.png"]
    assert items[0]["image"] == str((root / "images" / "x3.png").resolve())
    (root / "other.csv").write_text("image\nx3\n")
    items = list_classification_images(root / "other.csv", image_dir=root / "images")
    assert _names(items) == ["x3.png"]


def test_csv_missing_files_all_counted(tmp_path):
    root = tmp_path / "csvdata"
    _rgb(root / "x1.png")
    names = ["x1"] + [f"gone{i:02d}" for i in range(25)]
    (root / "list.csv").write_text("image\n" + "\n".join(names) + "\n")
    with pytest.raises(DataValidationError) as err:
        list_classification_images(root / "list.csv")
    message = str(err.value)
    assert message.startswith(f"25 image(s) listed in {root / 'list.csv'} (column 'image') do not exist:")
    assert f"line 3: {root / 'gone00.png'}" in message and "gone19.png" in message
    assert "gone20.png" not in message and "... and 5 more" in message
    (root / "bad.csv").write_text("name,level\nx1,0\n")
    with pytest.raises(DataValidationError, match="image_column"):
        list_classification_images(root / "bad.csv", image_column="path")


def test_many_bad_images_listed_first_20(tmp_path):
    items = []
    for i in range(23):
        fake = tmp_path / f"fake{i:02d}.png"
        fake.write_text("not a png")
        items.append({"image": str(fake)})
    items.append({"image": str(tmp_path / "missing.png")})
    with pytest.raises(DataValidationError) as err:
        check_classification_images(items, 3)
    message = str(err.value)
    assert message.startswith("24 of 24 image(s) cannot be classified:")
    assert f"{tmp_path / 'fake00.png'}: cannot be read (UnidentifiedImageError" in message
    assert "fake19.png" in message and "fake20.png" not in message and "... and 4 more" in message


def test_missing_file_and_arguments(tmp_path):
    ok = _rgb(tmp_path / "ok.png")
    with pytest.raises(DataValidationError, match=r"missing\.png: file not found"):
        check_classification_images([{"image": str(ok)}, {"image": str(tmp_path / "missing.png")}], 3)
    with pytest.raises(ValueError, match=r"on_error must be one of \['raise', 'skip'\], got 'ignore'"):
        check_classification_images([{"image": str(ok)}], 3, on_error="ignore")
    with pytest.raises(ValueError, match="in_channels"):
        check_classification_images([{"image": str(ok)}], 0)
    with pytest.raises(DataValidationError, match="empty"):
        check_classification_images([], 3)


def test_each_image_decoded_once(photos, monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(Path(fp).name)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    items = [it for it in list_classification_images(photos) if not it["image"].endswith(".nii.gz")]
    good = check_classification_images(items, 3, on_error="skip", progress=True)
    assert sorted(opened) == sorted(_names(items)) and len(good) == 3
