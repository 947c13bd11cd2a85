"""Every bundle's metadata passes MONAI's schema, and its network matches the declared input/output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bundles.conftest import BUNDLES, ROOT

SCHEMA = Path(os.environ.get("MEDSSL3D_BUNDLE_SCHEMA", ROOT.parent / "shared" / "monai" / "meta_schema_20240725.json"))
ALL_BUNDLES = sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())
REQUIRED_FILES = ["configs/metadata.json", "configs/train.json", "configs/logging.conf", "docs/README.md", "LICENSE"]


@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_bundle_layout_and_no_python(bundle):
    root = BUNDLES / bundle
    for rel in REQUIRED_FILES:
        assert (root / rel).is_file(), f"{bundle} is missing {rel}"
    assert not list(root.rglob("*.py")), f"{bundle} contains Python files: logic belongs in the medssl3d package"
    for cfg in (root / "configs").glob("*.json"):
        json.loads(cfg.read_text())  # every config parses


@pytest.mark.skipif(not SCHEMA.is_file(), reason=f"MONAI bundle schema not found at {SCHEMA}; set MEDSSL3D_BUNDLE_SCHEMA")
@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_metadata_matches_schema(bundle):
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(BUNDLES / bundle / "configs" / "metadata.json"), filepath=str(SCHEMA))


@pytest.mark.parametrize("bundle", [b for b in ALL_BUNDLES if (BUNDLES / b / "configs" / "inference.json").is_file()])
def test_network_matches_metadata(bundle):
    from monai.bundle import verify_net_in_out

    root = BUNDLES / bundle
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "inference.json"),
        bundle_root=str(root),
        device="cpu",
    )


@pytest.mark.parametrize("bundle", ["fundus_dr_ssl", "chest_xray_ssl"])
def test_inference_default_network_is_the_one_train_json_builds(bundle):
    """inference.json's default_network (what verify_net_in_out checks, before any model.pt exists) is
    train.json's default classifier, so the two configs cannot drift apart."""
    from monai.bundle import ConfigParser

    configs = BUNDLES / bundle / "configs"
    train, infer = ConfigParser(), ConfigParser()
    train.read_config(str(configs / "train.json"))
    infer.read_config(str(configs / "inference.json"))
    default = infer.get_parsed_content("default_network")
    arch = train.get_parsed_content("default_architecture")
    assert default["encoder"] == {"name": arch["backbone"], "spatial_dims": 2, "in_channels": arch["in_channels"]}
    assert infer.get_parsed_content("default_architecture") == arch
    for key in ("head", "dropout", "num_classes", "class_names"):
        assert default[key] == train.get_parsed_content(key), key
    assert default["hidden"] == (train.get("hidden") or [256, 128])
    assert default["input_size"] == [train.get("image_size")] * 2
